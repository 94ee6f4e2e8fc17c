"""`ticketmon exporter blockchain --config FILE`: the Solana exporter in the foreground."""

from __future__ import annotations

import logging

import prometheus_client

from exporters.blockchain.collector import SolanaCollector
from exporters.blockchain.settings import BlockchainSettings
from exporters.framework import Exporter
from exporters.framework.check import check as run_check
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
        return run_check(exporter)
    exporter.serve()
    return 0
