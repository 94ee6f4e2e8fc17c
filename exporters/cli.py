"""`ticketmon exporter <name> --config FILE`: run one exporter in the foreground.

Each exporter lives in `exporters/<name>/main.py` with `run(config: str | None) -> int`;
it is imported only when its command runs, so the CLI starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util

# exporter name -> (module with run(config), default port, one-line description)
EXPORTERS = {
    "business": ("exporters.business.main", 10191, "sales, revenue, refunds from the platform DB"),
    "system": ("exporters.system.main", 10192, "service /health and dependency probes"),
    "blockchain": ("exporters.blockchain.main", 10193, "Solana JSON-RPC health and activity"),
    "fraud": ("exporters.fraud.main", 10194, "fraud check API under gunicorn"),
}


def _available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _run(args: argparse.Namespace) -> int:
    module, _, _ = EXPORTERS[args.exporter]
    extra = {"prune": True} if getattr(args, "prune", False) else {}
    return importlib.import_module(module).run(args.config, check=args.check, **extra)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("exporter", help="run a Prometheus exporter")
    sub = parser.add_subparsers(dest="exporter", required=True, metavar="EXPORTER")
    for name, (module, port, about) in EXPORTERS.items():
        if not _available(module):
            continue
        p = sub.add_parser(name, help=f"{about} (default port {port})")
        p.add_argument("--config", help="YAML settings file (TICKETMON_* env overrides it)")
        p.add_argument("--check", action="store_true",
                       help="run every collection once, print problems, exit 1 if any")
        if name == "fraud":
            p.add_argument("--prune", action="store_true",
                           help="delete fraud checks older than retention_days, then exit")
        p.set_defaults(func=_run)
