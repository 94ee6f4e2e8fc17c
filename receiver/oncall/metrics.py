"""Rule-ready on-call metrics on the worker's /metrics, computed at scrape time.

ticketmon_oncall_schedule_covered_seconds_ahead{schedule}
    seconds from now until the first moment nobody is on call, overrides included,
    capped at the coverage horizon (7 days): `< 86400` means a gap within 24 hours
    (alert OnCallScheduleGapWithin24h).
ticketmon_oncall_config_reload_success
    0 while the last edit of rules/oncall/ was refused (the previous one still runs).
ticketmon_oncall_calendar_fetch_success{schedule,layer}
    0 while an imported calendar cannot be fetched (its last good copy is used).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from datetime import timedelta

from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy.engine import Engine

from receiver.oncall.overrides import active
from receiver.oncall.service import OnCall, now

CACHE_SECONDS = 15.0  # a scrape every few seconds need not recompute a week of shifts


class OncallCollector:
    def __init__(self, oncall: OnCall, engine: Engine) -> None:
        self.oncall = oncall
        self.engine = engine
        self._cached: tuple[float, list[Metric]] = (0.0, [])
        self._lock = threading.Lock()

    def describe(self) -> Iterable[Metric]:
        return []  # computed at scrape: the registry must not call collect() at register

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            at, metrics = self._cached
            if time.monotonic() - at > CACHE_SECONDS:
                metrics = self._compute()
                self._cached = (time.monotonic(), metrics)
        return metrics

    def _compute(self) -> list[Metric]:
        covered = GaugeMetricFamily(
            "ticketmon_oncall_schedule_covered_seconds_ahead",
            "Seconds until the schedule first has nobody on call (capped at the horizon)",
            labels=["schedule"])
        horizon = timedelta(seconds=self.oncall.settings.coverage_horizon)
        start = now()
        try:
            with self.engine.connect() as conn:
                overrides = active(conn, start, start + horizon)
        except Exception:  # database away: coverage from the layers alone
            overrides = []
        for schedule in self.oncall.schedules:
            covered.add_metric([schedule.name],
                               self.oncall.covered_seconds(schedule, start, overrides))
        reload = GaugeMetricFamily("ticketmon_oncall_config_reload_success",
                                   "1 when the last on-call configuration load succeeded")
        reload.add_metric([], 1.0 if self.oncall.reloaded_ok else 0.0)
        fetch = GaugeMetricFamily("ticketmon_oncall_calendar_fetch_success",
                                  "1 when an imported calendar's last fetch succeeded",
                                  labels=["schedule", "layer"])
        for layer in self.oncall.schedules.calendars():
            fetch.add_metric([layer.schedule, layer.name], 0.0 if layer.problem else 1.0)
        return [covered, reload, fetch]
