"""A real Prometheus whose TSDB was backfilled (promtool) with series we control."""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ticketmon.servers.process import find_binary
from ticketmon.servers.prometheus import Prometheus

STEP = 60
POINTS = 400


def _cases(end: int) -> dict[str, list[tuple[int, float]]]:
    rng = np.random.default_rng(7)
    times = [end - STEP * (POINTS - 1 - i) for i in range(POINTS)]

    def noise() -> list[float]:
        return list(100 + rng.normal(0, 1, POINTS))

    spike = noise()
    spike[-1] += 40
    gap_times = times[:150] + times[-100:]  # 2.5 h missing, then only 100 points
    nan = noise()
    nan[-1] = math.nan
    return {
        "flat": list(zip(times, noise(), strict=True)),
        "spike": list(zip(times, spike, strict=True)),
        "constant": [(t, 5.0) for t in times],
        "gap": list(zip(gap_times, noise()[:250], strict=True)),
        "nan": list(zip(times, nan, strict=True)),
        "short": list(zip(times[-100:], noise()[:100], strict=True)),
    }


def openmetrics(end: int) -> str:
    lines = ["# TYPE ticketmon_test_value gauge"]
    for case, samples in _cases(end).items():
        for t, v in samples:
            value = "NaN" if math.isnan(v) else repr(float(v))
            lines.append(f'ticketmon_test_value{{case="{case}"}} {value} {t}')
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


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
