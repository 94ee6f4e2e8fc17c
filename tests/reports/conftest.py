"""One Prometheus with seven days of platform history, shared by the report, backtest
and preview tests (backfilling and starting it takes a few seconds)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.history import backfilled_prometheus, minute_end
from support.report_series import openmetrics

from ticketmon.servers.prometheus import Prometheus


@pytest.fixture(scope="session")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Prometheus, int]]:
    end = minute_end()
    prom = backfilled_prometheus(tmp_path_factory.mktemp("prom-history"), openmetrics(end))
    yield prom, end
    prom.stop()
