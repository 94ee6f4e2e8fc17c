"""The exporter's own health: one set of series per collector, read at scrape time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporters.framework.snapshot import SnapshotCollector

LABELS = ["exporter", "collector"]


class CollectorHealthCollector:
    """ticketmon_collector_{up,last_success_timestamp_seconds,duration_seconds,errors_total}."""

    def __init__(self, exporter: str, collectors: Sequence[SnapshotCollector]) -> None:
        self.exporter = exporter
        self.collectors = collectors

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "ticketmon_collector_up", "1 if the collector's last run succeeded.", labels=LABELS
        )
        last = GaugeMetricFamily(
            "ticketmon_collector_last_success_timestamp_seconds",
            "Unix time of the collector's last successful run (0 if none yet).", labels=LABELS,
        )
        duration = GaugeMetricFamily(
            "ticketmon_collector_duration_seconds",
            "How long the collector's last run took.", labels=LABELS,
        )
        errors = CounterMetricFamily(
            "ticketmon_collector_errors",
            "Failed or timed-out runs of the collector.", labels=LABELS,
        )
        for c in self.collectors:
            labels = [self.exporter, c.name]
            h = c.health
            up.add_metric(labels, 1.0 if h.up else 0.0)
            last.add_metric(labels, h.last_success)
            duration.add_metric(labels, h.duration)
            errors.add_metric(labels, float(h.errors))
        return [up, last, duration, errors]
