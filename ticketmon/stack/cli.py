"""`ticketmon stack …`: the main job and its demo scenarios."""

from __future__ import annotations

import argparse
from pathlib import Path


def _up(args: argparse.Namespace) -> int:
    from ticketmon.core import logs
    from ticketmon.stack import up

    logs.setup(args.log_level)
    return up.run(workdir=args.workdir, keep=args.keep, interval=args.interval)


def _scenario(args: argparse.Namespace) -> int:
    import sys

    from ticketmon.stack import scenario

    if args.name == "list":
        for name, s in scenario.SCENARIOS.items():
            undo = f"; undo: {s.undo}" if s.undo else ""
            print(f"{name:20} {s.what}; expect {s.expect}{undo}")
        return 0
    try:
        print(scenario.run(args.name, args.target, workdir=args.workdir))
    except scenario.ScenarioError as exc:
        print(f"ticketmon: {exc}", file=sys.stderr)
        return 1
    return 0


def _token(args: argparse.Namespace) -> int:
    """Print the admin token of the stack (for `ADMIN_TOKEN=$(ticketmon stack token)`)."""
    import sys

    from ticketmon.stack import state

    try:
        _, doc = state.find(args.workdir)
    except state.StackNotFound as exc:
        print(f"ticketmon: {exc}", file=sys.stderr)
        return 1
    print(doc["admin_token"])
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    stack = sub.add_parser("stack", help="run the whole stack on loopback")
    stack_sub = stack.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = stack_sub.add_parser("up", help="start everything in the foreground; Ctrl-C stops it")
    up.add_argument("--workdir", type=Path, help="keep state here (default: a temp dir)")
    up.add_argument("--keep", action="store_true", help="keep the temp dir on exit")
    up.add_argument("--interval", default="5s",
                    help="Prometheus scrape and evaluation interval for the demo (default 5s)")
    up.add_argument("--log-level", default="info")
    up.set_defaults(func=_up)
    sc = stack_sub.add_parser("scenario", help="break something in the running stack ('list')")
    sc.add_argument("name", help="scenario name, or 'list'")
    sc.add_argument("target", nargs="?", help="service or Solana node it applies to")
    sc.add_argument("--workdir", type=Path,
                    help="the stack's work directory (default: your only running stack)")
    sc.set_defaults(func=_scenario)
    tok = stack_sub.add_parser("token", help="print the running stack's admin API token")
    tok.add_argument("--workdir", type=Path,
                     help="the stack's work directory (default: your only running stack)")
    tok.set_defaults(func=_token)
