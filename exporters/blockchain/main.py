"""`ticketmon exporter blockchain --config FILE`: the Solana exporter in the foreground."""

from __future__ import annotations

import logging
import sys

import prometheus_client

from exporters.blockchain.collector import SolanaCollector
from exporters.blockchain.settings import BlockchainSettings
from exporters.framework import Exporter
from ticketmon.core import config, logs


def build(settings: BlockchainSettings) -> Exporter:
    return Exporter("blockchain", [SolanaCollector(settings)], settings.http)


def run(config_path: str | None, check: bool = False) -> int:
    settings = config.load(BlockchainSettings, config_path)
    prometheus_client.disable_created_metrics()  # *_created series only add noise here
    logs.setup()
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # one line per RPC call otherwise
    exporter = build(settings)
    if check:
        collector = exporter.collectors[0]
        ok = collector.run_once()
        if not ok:
            print(f"solana: {collector.health.last_error}", file=sys.stderr)
        return 0 if ok else 1
    exporter.serve()
    return 0
