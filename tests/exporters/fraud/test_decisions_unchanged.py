"""Speed work on the check must not change what it answers.

A fixed labelled mix from the checkout simulator (humans, bots, scalpers, evasive bots,
and an older checkout that leaves signals out) goes through FraudService.check on a
simulated clock, the outlier model refitted by the real refitter process every
`REFIT_EVERY` checks. Every answer but the random check id is compared with
tests/fixtures/fraud/decisions.json.gz, written by the service as it was before the
request path was made cheaper (git 3f1e869).

Rewrite the fixture only for a change meant to alter decisions, and say so in its commit:
`python tests/exporters/fraud/test_decisions_unchanged.py --write`
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import tempfile
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "fraud" / "decisions.json.gz"
CHECKS = 3000
REFIT_EVERY = 250
RATE = 50.0  # simulated checks per second
SHARES = {"bot": 0.04, "scalper": 0.03, "evasive_bot": 0.04}


def answers(database_url: str) -> list[dict]:
    """The service's answer to each check of the mix, check id left out."""
    from exporters.fraud.app import FraudService
    from exporters.fraud.settings import FraudSettings
    from ticketmon.simulator.checkout import CheckoutSettings, labelled

    settings = FraudSettings.model_validate({"database_url": database_url,
                                             "auth": {"disabled": True}})
    now = [1_700_000_000.0]
    service = FraudService(settings, clock=lambda: now[0])
    rng = random.Random(16)
    sim = CheckoutSettings(users=800, seed=16)
    out = []
    try:
        for i in range(CHECKS):
            now[0] += 1 / RATE
            kind, body = labelled(rng, SHARES, sim)
            if i % 5 == 0:  # an older checkout: no session or payment signals
                body.pop("session", None)
                body.pop("payment_methods_recent", None)
            answer, status = service.check(json.dumps(body).encode())
            assert status == 200, answer
            answer.pop("check_id")
            out.append({"kind": kind, **answer})
            if (i + 1) % REFIT_EVERY == 0:
                assert service.outlier.refit()
    finally:
        service.stop()
    return out


def test_decisions_are_those_of_the_service_before_the_speed_work(tmp_path):
    expected = json.loads(gzip.decompress(FIXTURE.read_bytes()))
    got = answers(f"sqlite:///{tmp_path}/fraud.db")
    assert len(got) == len(expected) == CHECKS
    scored = [a for a in expected if a["outlier_score"] is not None]
    flagged = [a for a in expected if any(p["pattern"] == "outlier" for p in a["patterns"])]
    decisions = {a["decision"] for a in expected}
    # the mix exercises what matters: scored checks, the outlier taking part, all decisions
    assert len(scored) > CHECKS * 0.9 and flagged and decisions == {"allow", "review", "block"}
    for i, (was, now) in enumerate(zip(expected, got, strict=True)):
        assert now == was, f"check {i} answered differently"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the fixture")
    args = parser.parse_args()
    if not args.write:
        parser.error("run the test with pytest; --write rewrites the fixture")
    with tempfile.TemporaryDirectory() as tmp:
        doc = answers(f"sqlite:///{tmp}/fraud.db")
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_bytes(gzip.compress(json.dumps(doc, separators=(",", ":")).encode(), mtime=0))
    print(f"wrote {len(doc)} answers to {FIXTURE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
