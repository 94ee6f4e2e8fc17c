"""A real Prometheus whose TSDB was backfilled (promtool) with series we control."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import capacity_series
from support.anomaly_series import STEP, openmetrics

from ticketmon.servers.process import find_binary
from ticketmon.servers.prometheus import Prometheus


def start_backfilled(work: Path, exposition: str) -> Prometheus:
    """Prometheus serving the OpenMetrics text `exposition`, written as TSDB blocks."""
    source = work / "series.om"
    source.write_text(exposition)
    data = work / "prometheus-data"
    data.mkdir()
    promtool = find_binary("promtool", "PROMTOOL", "prometheus")
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
                   check=True, capture_output=True, timeout=120)
    config = work / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
    return Prometheus(config, work)


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Prometheus, int]]:
    """Prometheus with ~6.7 h of 1-minute samples per case, the newest at `end`."""
    end = (int(time.time()) // STEP - 2) * STEP
    prom = start_backfilled(tmp_path_factory.mktemp("prom-anomaly"), openmetrics(end))
    yield prom, end
    prom.stop()


@pytest.fixture(scope="module")
def capacities(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Prometheus, int]]:
    """Prometheus with six hours of draining series (support/capacity_series.py)."""
    end = (int(time.time()) // capacity_series.STEP - 2) * capacity_series.STEP
    prom = start_backfilled(tmp_path_factory.mktemp("prom-capacity"),
                            capacity_series.openmetrics(end))
    yield prom, end
    prom.stop()
