#!/usr/bin/env python3
"""Precision and recall of the fraud decisions on a labelled mix, with and without the
outlier score taking part.

The checkout simulator (ticketmon.simulator.checkout.labelled) draws humans, scripted
bots, scalpers (people with real browsers buying in bulk) and evasive bots (tuned to
stay under every single pattern's threshold). Each attempt goes through the fraud
service's own check (FraudService.check, in process, on a simulated clock at --rate
checks/s; the outlier model is refitted every `refit_seconds` of that clock by the
real refitter process). The same stream is run once with the configured outlier
weight and once with weight 0 (patterns alone).

Positive = anything not human. For `block`: precision and recall of decision ==
block; for `review`: of decision in (review, block), the checks a person or a block
stops. Recall is also given per kind, which shows who each setting catches.

Run: .venv/bin/python bench/fraud_decisions.py [--checks N] [--weight W]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from exporters.fraud.app import FraudService  # noqa: E402
from exporters.fraud.settings import FraudSettings  # noqa: E402
from ticketmon.simulator.checkout import KINDS, CheckoutSettings, labelled  # noqa: E402

SHARES = {"bot": 0.03, "scalper": 0.02, "evasive_bot": 0.03}


def run(weight: int | None, checks: int, rate: float, seed: int, db: str) -> dict:
    outlier = {} if weight is None else {"weight": weight}
    settings = FraudSettings.model_validate({"database_url": db, "auth": {"disabled": True},
                                             "outlier": outlier})
    now = [1_700_000_000.0]
    service = FraudService(settings, clock=lambda: now[0])
    rng = random.Random(seed)
    sim = CheckoutSettings(users=5000, seed=seed)
    refit_every = int(settings.outlier.refit_seconds * rate)
    tally = {k: {"allow": 0, "review": 0, "block": 0} for k in KINDS}
    try:
        for i in range(checks):
            now[0] += 1 / rate
            kind, body = labelled(rng, SHARES, sim)
            answer, status = service.check(json.dumps(body).encode())
            if status != 200:
                raise RuntimeError(answer)
            if i >= settings.outlier.min_samples:  # before the first model: warm-up
                tally[kind][answer["decision"]] += 1
            if i and i % refit_every == 0:
                service.outlier.refit()
    finally:
        service.stop()
    return tally


def rates(tally: dict, decisions: tuple[str, ...]) -> dict:
    tp = sum(sum(t[d] for d in decisions) for k, t in tally.items() if k != "human")
    fp = sum(tally["human"][d] for d in decisions)
    pos = sum(sum(t.values()) for k, t in tally.items() if k != "human")
    per_kind = {k: round(sum(t[d] for d in decisions) / max(sum(t.values()), 1), 3)
                for k, t in tally.items()}
    return {"precision": round(tp / max(tp + fp, 1), 3), "recall": round(tp / max(pos, 1), 3),
            "per_kind": per_kind}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checks", type=int, default=30_000)
    parser.add_argument("--rate", type=float, default=100.0, help="simulated checks/s")
    parser.add_argument("--weight", type=int, help="outlier weight (default: the settings')")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, weight in (("patterns only (weight 0)", 0),
                              ("patterns + outlier", args.weight)):
            tally = run(weight, args.checks, args.rate, args.seed, f"sqlite:///{tmp}/f.db")
            results[label] = {"block": rates(tally, ("block",)),
                              "review": rates(tally, ("review", "block")), "tally": tally}
    print(f"{args.checks} checks, mix {SHARES} (rest human)")
    print(f"{'setting':28} {'decision':9} {'precision':>9} {'recall':>7}  recall by kind")
    for label, r in results.items():
        for d in ("block", "review"):
            kinds = " ".join(f"{k}={v:.2f}" for k, v in r[d]["per_kind"].items())
            print(f"{label:28} {d:9} {r[d]['precision']:9.3f} {r[d]['recall']:7.3f}  {kinds}")
    print(json.dumps({label: {d: {k: r[d][k] for k in ("precision", "recall")}
                              for d in ("block", "review")} for label, r in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
