"""Report and dashboard-preview cost on top of Prometheus (issue #15).

Starts a throw-away Prometheus holding 7 days of backfilled platform history (the
tests' known series, tests/support/report_series.py), or uses --prometheus URL, then:

1. builds the 7-day SLA report (HTML with charts) `--runs` times;
2. previews every committed dashboard over 6 h;

and for each, replays the exact PromQL requests it issued straight against Prometheus
(same parameters, same order) to show how much of the time is Prometheus and how much
is ticketmon (Python figures, matplotlib, rendering). Prints a table and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import requests  # noqa: E402

from ticketmon.reports.prometheus import PromClient  # noqa: E402


def replay(url: str, log: list[tuple[str, dict]]) -> float:
    """Seconds to issue the same requests directly (the raw PromQL cost)."""
    session = requests.Session()
    started = time.perf_counter()
    for path, params in log:
        session.get(f"{url}{path}", params=params, timeout=60).raise_for_status()
    return time.perf_counter() - started


def bench_report(url: str, end: float) -> dict:
    from ticketmon.reports.run import produce
    from ticketmon.reports.spec import ReportSpec

    stop = datetime.fromtimestamp(end, UTC)
    client = PromClient(url)
    started = time.perf_counter()
    produced = produce(ReportSpec(name="sla"), stop - timedelta(days=7), stop, url, "html",
                       client=client)
    total = time.perf_counter() - started
    return {"total": total, "waited": client.waited, "queries": len(client.log),
            "raw": replay(url, client.log), "bytes": len(produced.text)}


def bench_previews(url: str, end: float, out: Path) -> dict:
    from ticketmon.dashboards.cli import load_committed
    from ticketmon.dashboards.preview import render

    client = PromClient(url)
    started = time.perf_counter()
    boards = list(load_committed().values())
    for board in boards:
        render(client, board, 6 * 3600, end, out)
    total = time.perf_counter() - started
    return {"total": total, "waited": client.waited, "queries": len(client.log),
            "raw": replay(url, client.log), "dashboards": len(boards)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", help="use this Prometheus (default: a backfilled one)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    prom = None
    if args.prometheus:
        url, end = args.prometheus, time.time()
    else:
        from support.history import backfilled_prometheus, minute_end
        from support.report_series import openmetrics

        end = minute_end()
        started = time.perf_counter()
        prom = backfilled_prometheus(Path(tempfile.mkdtemp(prefix="bench-reports-")),
                                     openmetrics(end))
        url = prom.url
        print(f"backfilled Prometheus with 7 days at 1-minute resolution in "
              f"{time.perf_counter() - started:.1f}s")
    try:
        out = Path(tempfile.mkdtemp(prefix="bench-previews-"))
        reports = [bench_report(url, end) for _ in range(args.runs)]
        previews = [bench_previews(url, end, out) for _ in range(args.runs)]
    finally:
        if prom is not None:
            prom.stop()
    rows = []
    print(f"\n{'workload':34} {'queries':>7} {'total s':>8} {'raw PromQL s':>12} "
          f"{'ticketmon s':>11} {'overhead':>8}")
    for name, runs in (("7-day SLA report (HTML, 3 charts)", reports),
                       ("preview all dashboards, 6 h", previews)):
        total = statistics.median(r["total"] for r in runs)
        raw = statistics.median(r["raw"] for r in runs)
        row = {"workload": name, "queries": runs[0]["queries"], "total_s": round(total, 3),
               "raw_promql_s": round(raw, 3), "ticketmon_s": round(total - raw, 3)}
        rows.append(row)
        print(f"{name:34} {row['queries']:>7} {total:>8.2f} {raw:>12.2f} "
              f"{total - raw:>11.2f} {total / raw if raw else 0:>7.1f}x")
    print(json.dumps({"bench": "reports", "runs": args.runs, "results": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
