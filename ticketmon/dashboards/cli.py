"""`ticketmon dashboards build [--check]`: jsonnet -> dashboards/*.json, validated;
`ticketmon dashboards preview`: the committed dashboards rendered to PNG for review."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ticketmon.dashboards import DASHBOARDS_DIR


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dashboards", help="build and validate Grafana dashboards")
    sub = parser.add_subparsers(dest="dashboards_command", required=True, metavar="COMMAND")
    cmd = sub.add_parser("build", help="build dashboards/*.json from jsonnet/ and validate them")
    cmd.add_argument("--check", action="store_true",
                     help="write nothing; fail if the committed JSON differs from a fresh build")
    cmd.set_defaults(func=build)
    cmd = sub.add_parser("preview", help="render dashboards to PNG from a Prometheus "
                         "(for reviewing a change without Grafana)")
    cmd.add_argument("uids", nargs="*", metavar="UID", help="dashboard uids (default: all)")
    cmd.add_argument("--since", default="6h", help="time range ending now (default 6h)")
    cmd.add_argument("--out", type=Path, default=Path("dashboard-previews"),
                     help="directory for UID.png (default ./dashboard-previews)")
    cmd.add_argument("--prometheus", default=os.environ.get("TICKETMON_PROMETHEUS_URL",
                                                            "http://127.0.0.1:9090"))
    cmd.set_defaults(func=preview)


def build(args: argparse.Namespace) -> int:
    from ticketmon.dashboards import build as build_mod
    from ticketmon.dashboards.validate import validate_all

    try:
        boards = build_mod.evaluate()
        problems = validate_all(boards)
        if not problems:  # an invalid dashboard is never written
            problems = build_mod.build(check=args.check, boards=boards)
    except build_mod.BuildError as exc:
        print(f"ticketmon: {exc}", file=sys.stderr)
        return 1
    for line in problems:
        print(line, file=sys.stderr)
    panels = sum(1 for b in boards.values() for p in b["panels"] if p["type"] != "row")
    verb = "checked" if args.check else "built"
    if problems:
        print(f"dashboards: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{verb} {len(boards)} dashboards ({panels} panels) in {DASHBOARDS_DIR}: ok")
    return 0


def load_committed() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS_DIR.glob("*.json"))}


def preview(args: argparse.Namespace) -> int:
    import time

    from ticketmon.dashboards.preview import render
    from ticketmon.reports.prometheus import PromClient, PrometheusUnavailable
    from ticketmon.reports.spec import parse_duration

    try:
        since = parse_duration(args.since)
    except ValueError as exc:
        print(f"ticketmon dashboards preview: --since: {exc}", file=sys.stderr)
        return 2
    boards = {b["uid"]: b for b in load_committed().values()}
    wanted = args.uids or sorted(boards)
    unknown = [u for u in wanted if u not in boards]
    if unknown:
        print(f"ticketmon dashboards preview: unknown dashboard uid(s) {', '.join(unknown)} "
              f"(known: {', '.join(sorted(boards))})", file=sys.stderr)
        return 2
    client = PromClient(args.prometheus)
    end = time.time()
    try:
        client.ping()
        for uid in wanted:
            p = render(client, boards[uid], since, end, args.out)
            extra = "".join([f"; no data: {', '.join(p.empty)}" if p.empty else "",
                             f"; query failed: {', '.join(p.failed)}" if p.failed else ""])
            print(f"wrote {p.path} ({p.panels} panels{extra})")
    except PrometheusUnavailable as exc:
        print(f"ticketmon dashboards preview: {exc}", file=sys.stderr)
        return 1
    return 0
