"""Reconciliation: how long a lost post takes to converge, with the shipped settings.

    .venv/bin/python bench/reconcile_convergence.py [--scenarios refused,silenced]
        [--rounds 2] [--groups 20] [--alerts-per-group 5] [--period 60s] [--grace 60s]
        [--workdir DIR]

Per scenario and round, on a throw-away PostgreSQL (a database each) with a real
Alertmanager, the gunicorn receiver and an escalation worker paging into a local sink
(ticketmon.servers.faults.FaultBed), the worker reconciling with that Alertmanager at
--period and --grace (the defaults are the worker's own):

- `refused`: Alertmanager sends the wrong bearer token, so every post is answered 401,
  which it never retries: nothing reaches the store. The alerts are pushed into
  Alertmanager (`firing`), later resolved there (`resolved`); only reconciliation can
  open, page and then resolve their incidents.
- `silenced`: the posts arrive (the incidents open and page at once); then every alert is
  silenced and resolved in Alertmanager, which sends nothing for silenced alerts: only
  reconciliation can resolve them (`resolved`).

Each change is made after a random pause within one period, so it meets the worker's
schedule at a random phase. Prints seconds from the change in Alertmanager to the end
state (every incident open and paged on every channel; every incident resolved and its
resolve delivered), beside the bound the README gives (period + grace), and a final
JSON line; exits 1 if a phase did not converge, took longer than the bound (plus 5 s for
the run itself and the page), or ended in a wrong state (lost, duplicated).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
import sqlalchemy as sa
from chaos import table, verdict

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ticketmon.core.durations import parse_duration  # noqa: E402
from ticketmon.servers.faults import FaultBed  # noqa: E402
from ticketmon.servers.postgres import PostgresCluster  # noqa: E402
from ticketmon.servers.process import ServerError  # noqa: E402

SCENARIOS = ("refused", "silenced")
SLACK = 5.0  # seconds over period + grace: the run itself, then the worker's page
COLUMNS = ("scenario", "round", "phase", "pause", "seconds", "bound", "incidents", "pages",
           "resolves", "reconciler_opened", "reconciler_resolved", "am_posts_failed", "ok")


def silence_run(bed: FaultBed, run: str) -> None:
    now = datetime.now(UTC)
    body = {"matchers": [{"name": "run", "value": run, "isRegex": False, "isEqual": True}],
            "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=4)).isoformat(),
            "createdBy": "bench", "comment": "reconcile_convergence"}
    for url in bed.am_urls:
        requests.post(f"{url}/api/v2/silences", json=body, timeout=10).raise_for_status()


def by_reconciler(bed: FaultBed) -> dict[str, int]:
    """Incidents the reconciler opened or resolved: proof that no post did it."""
    with bed.ledger.engine.connect() as conn:
        return dict(conn.execute(sa.text(
            "SELECT kind, count(*) FROM events WHERE actor = 'reconciler'"
            " AND kind IN ('opened', 'resolved') GROUP BY kind")).all())


def timed(bed: FaultBed, began: float, check, limit: float, what: str
          ) -> tuple[float | None, dict]:
    """Seconds from `began` until `check` holds (None if it never did within `limit`),
    and the counts."""
    try:
        counts = bed.settle(check, limit, what)
    except ServerError as exc:
        print(f"# {exc}", file=sys.stderr)
        return None, bed.ledger.count(bed.sent, set()).row()
    return round(time.monotonic() - began, 1), counts.row()


def one_round(name: str, index: int, cluster: PostgresCluster, workdir: Path, args,
              rng: random.Random) -> list[dict]:
    run = f"{name[:3]}{index}"
    url = cluster.create_database(f"converge_{run}")
    settings = {"period": f"{args.period}s", "grace": f"{args.grace}s",
                "timeout": f"{min(10.0, args.period / 2)}s"}  # 10s unless the period is short
    bound = args.period + args.grace
    limit = bound + 3 * args.period  # then give up: it did not converge
    token = "a-token-the-receiver-does-not-know-00" if name == "refused" else None
    rows = []
    with FaultBed(workdir / run, url, run=run, reconcile=settings,
                  **({"am_token": token} if token else {})) as bed:
        bed.start()
        starts = datetime.now(UTC) - timedelta(minutes=1)
        count = args.groups * args.alerts_per_group
        pause = rng.uniform(0, args.period)
        time.sleep(pause)
        began = time.monotonic()
        bed.pusher(count, args.groups, starts, batch=count, spread=0).push_here()
        seconds, counts = timed(bed, began, lambda: bed.converged_firing(args.groups), limit,
                                f"{run} firing to converge")
        rows.append(row(name, index, "firing", pause, seconds, counts,
                        bound if name == "refused" else None))
        if name == "silenced":
            silence_run(bed, run)
        pause = rng.uniform(0, args.period)
        time.sleep(pause)
        began = time.monotonic()
        bed.resolve(count, args.groups, starts)
        seconds, counts = timed(bed, began, bed.converged_resolved, limit,
                                f"{run} resolve to converge")
        rows.append(row(name, index, "resolved", pause, seconds, counts, bound))
        fixed = by_reconciler(bed)
        rows[-1]["reconciler_resolved"] = fixed.get("resolved", 0)
        rows[0]["reconciler_opened"] = fixed.get("opened", 0)
        refused = sum(bed.am_metric("alertmanager_notifications_failed_total"))
        for r in rows:
            r["am_posts_failed"] = int(refused)
            r["ok"] = r["ok"] and (name != "refused" or refused > 0)
    return rows


def row(name: str, index: int, phase: str, pause: float, seconds: float | None,
        counts: dict, bound: float | None) -> dict:
    within = seconds is not None and (bound is None or seconds <= bound + SLACK)
    return {"scenario": name, "round": index, "phase": phase, "pause": round(pause, 1),
            "seconds": seconds, "bound": bound, "incidents": counts["incidents"],
            "pages": counts["pages"], "resolves": counts["resolves"],
            "ok": verdict(counts, phase) and within, "counts": counts}


def summary(rows: list[dict]) -> str:
    lines = []
    for name in sorted({r["scenario"] for r in rows}):
        for phase in ("firing", "resolved"):
            took = [r["seconds"] for r in rows if r["scenario"] == name
                    and r["phase"] == phase and r["seconds"] is not None]
            if took:
                lines.append(f"# {name} {phase}: min {min(took)} s, median "
                             f"{statistics.median(took):.1f} s, max {max(took)} s "
                             f"over {len(took)} rounds")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help=f"comma-separated, of {', '.join(SCENARIOS)}")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--groups", type=int, default=20)
    parser.add_argument("--alerts-per-group", type=int, default=5)
    parser.add_argument("--period", type=parse_duration, default=60.0,
                        help="the worker's reconcile period (default: its own, 60s)")
    parser.add_argument("--grace", type=parse_duration, default=60.0,
                        help="the worker's reconcile grace (default: its own, 60s)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, help="keep logs here (default: a temp dir)")
    args = parser.parse_args()
    names = [s for s in args.scenarios.split(",") if s]
    if set(names) - set(SCENARIOS):
        parser.error(f"unknown scenarios: {sorted(set(names) - set(SCENARIOS))}")
    if not (1 <= args.rounds <= 20 and 1 <= args.groups <= 1000
            and 1 <= args.alerts_per_group <= 100 and 2 <= args.period <= 600
            and 0 <= args.grace <= 600):
        parser.error("rounds 1-20, groups 1-1000, alerts per group 1-100, "
                     "period 2-600 s, grace 0-600 s")
    rng = random.Random(args.seed)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ticketmon-converge-"))
    cluster = PostgresCluster()
    rows: list[dict] = []
    try:
        for name in names:
            for index in range(args.rounds):
                rows += one_round(name, index, cluster, workdir, args, rng)
    finally:
        cluster.stop()
    print(table(rows, COLUMNS))
    print(summary(rows))
    ok = bool(rows) and all(r["ok"] for r in rows)
    if ok and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"# logs in {workdir}", file=sys.stderr)
    print(json.dumps({"reconcile_convergence": rows, "period": args.period,
                      "grace": args.grace, "ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
