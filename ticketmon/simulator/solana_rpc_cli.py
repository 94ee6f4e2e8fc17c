"""`ticketmon simulator solana-rpc [--config FILE]`: the Solana RPC simulator in the foreground.

Without --config it runs the demo chain (solana_rpc_demo.yaml): nodes `primary`
(POST /) and `reference` (POST /reference) on 127.0.0.1:10197.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ticketmon.core import config, logs

DEMO_CONFIG = Path(__file__).with_name("solana_rpc_demo.yaml")


def run(args: argparse.Namespace) -> int:
    from ticketmon.simulator.solana_rpc import SolanaSimSettings, main

    settings = config.load(SolanaSimSettings, args.config or DEMO_CONFIG)
    logs.setup(args.log_level)
    return main(settings)
