"""`ticketmon report NAME|sla [--period ...] [--format ...] [--out FILE]`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ticketmon.reports import REPORTS_DIR

DEFAULT_PROMETHEUS = "http://127.0.0.1:9090"


def prometheus_default() -> str:
    return os.environ.get("TICKETMON_PROMETHEUS_URL", DEFAULT_PROMETHEUS)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="SLA report from Prometheus and the incident store",
        description="Build a report defined in reports/NAME.yaml (or `sla`: every SLO).")
    parser.add_argument("name", metavar="NAME", help="reports/NAME.yaml, a path, or sla")
    parser.add_argument("--period", help="1h, 1d, 7d, 30d (ending now) or FROM..TO "
                        "(ISO dates, UTC); default: the report's period")
    parser.add_argument("--format", choices=("html", "md", "json"),
                        help="default: the report's format")
    parser.add_argument("--out", type=Path, help="write here instead of standard output")
    parser.add_argument("--prometheus", default=prometheus_default(),
                        help="Prometheus URL (default $TICKETMON_PROMETHEUS_URL or "
                        f"{DEFAULT_PROMETHEUS})")
    parser.add_argument("--database-url", default=os.environ.get("TICKETMON_DATABASE_URL"),
                        help="incident store for incidents, MTTA and MTTR "
                        "(default $TICKETMON_DATABASE_URL; none: not counted)")
    parser.add_argument("--reports-dir", type=Path, default=REPORTS_DIR, help=argparse.SUPPRESS)
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from ticketmon.reports.prometheus import PrometheusUnavailable, QueryError
    from ticketmon.reports.run import produce
    from ticketmon.reports.spec import find_report, parse_period

    spec = find_report(args.name, args.reports_dir)
    start, end = parse_period(args.period or spec.period)
    fmt = args.format or spec.format
    if fmt == "html" and args.out is None and sys.stdout.isatty():
        print("ticketmon: an HTML report goes to a file: add --out FILE", file=sys.stderr)
        return 2
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        produced = produce(spec, start, end, args.prometheus, fmt, args.database_url,
                           chart_dir=args.out.parent if args.out else None)
    except PrometheusUnavailable as exc:
        print(f"ticketmon report: {exc}; no report was written", file=sys.stderr)
        return 1
    except QueryError as exc:
        print(f"ticketmon report: Prometheus refused a query: {exc}", file=sys.stderr)
        return 1
    if args.out:
        args.out.write_text(produced.text, encoding="utf-8")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(produced.text)
    for note in produced.report.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0
