"""A real Prometheus whose TSDB was backfilled (promtool) with series we control."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.anomaly_series import STEP, openmetrics

from ticketmon.servers.process import find_binary
from ticketmon.servers.prometheus import Prometheus


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Prometheus, int]]:
    """Prometheus with ~6.7 h of 1-minute samples per case, the newest at `end`."""
    work: Path = tmp_path_factory.mktemp("prom-anomaly")
    end = (int(time.time()) // STEP - 2) * STEP
    source = work / "series.om"
    source.write_text(openmetrics(end))
    data = work / "prometheus-data"
    data.mkdir()
    promtool = find_binary("promtool", "PROMTOOL", "prometheus")
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
                   check=True, capture_output=True, timeout=120)
    config = work / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
    prom = Prometheus(config, work)
    yield prom, end
    prom.stop()
