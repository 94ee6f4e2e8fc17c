"""`ticketmon simulator <name> …`: the simulated platform pieces the demo and tests run.

Each simulator lives in its own module with `run(args) -> int` and `add_arguments(parser)`;
it is imported only when its command runs (or its arguments are built), so the CLI stays fast.
"""

from __future__ import annotations

import argparse
import importlib

# subcommand -> (module, one-line description)
SIMULATORS = {
    "solana-rpc": ("ticketmon.simulator.solana_rpc_cli", "Solana JSON-RPC nodes (port 10197)"),
    "checkout": ("ticketmon.simulator.checkout", "checkout traffic calling the fraud check API"),
    "platform-db": ("ticketmon.simulator.platform_db_cli",
                    "seed the platform database and keep writing live sales"),
    "services": ("ticketmon.simulator.services",
                 "simulated platform services (control port 10200, services 10201+)"),
    "batch-jobs": ("ticketmon.simulator.batch_jobs",
                   "the nightly jobs (settlement, NFT reconciliation) pushing to a Pushgateway"),
}


def _run(args: argparse.Namespace) -> int:
    module, _ = SIMULATORS[args.simulator]
    return importlib.import_module(module).run(args)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("simulator", help="run a simulated platform piece")
    sub = parser.add_subparsers(dest="simulator", required=True, metavar="SIMULATOR")
    for name, (_module, about) in SIMULATORS.items():
        p = sub.add_parser(name, help=about)
        p.add_argument("--config", help="YAML settings file (TICKETMON_* env overrides it)")
        p.add_argument("--log-level", default="info")
        p.set_defaults(func=_run)
