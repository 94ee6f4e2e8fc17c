"""`ticketmon dashboards build [--check]`: jsonnet -> dashboards/*.json, validated."""

from __future__ import annotations

import argparse
import json
import sys

from ticketmon.dashboards import DASHBOARDS_DIR


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("dashboards", help="build and validate Grafana dashboards")
    sub = parser.add_subparsers(dest="dashboards_command", required=True, metavar="COMMAND")
    cmd = sub.add_parser("build", help="build dashboards/*.json from jsonnet/ and validate them")
    cmd.add_argument("--check", action="store_true",
                     help="write nothing; fail if the committed JSON differs from a fresh build")
    cmd.set_defaults(func=build)


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
