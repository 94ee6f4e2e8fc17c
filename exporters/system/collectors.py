"""Two snapshot collectors: the services' /health endpoints and direct dependency probes.

Probes of one run go out concurrently through a small thread pool, each bounded by
its own timeout, so one hanging target costs one timeout, not one per target.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from exporters.framework import SnapshotCollector
from exporters.system import probes
from exporters.system.healthdoc import STATES

log = logging.getLogger("ticketmon.exporters.system")
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)


class DurationHistogram:
    """Cumulative bucket counts per label set, kept across runs."""

    def __init__(self) -> None:
        self.series: dict[tuple[str, ...], list[float]] = {}  # counts per bucket, +Inf, sum

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        counts = self.series.setdefault(labels, [0.0] * (len(BUCKETS) + 2))
        for i, bound in enumerate(BUCKETS):
            if value <= bound:
                counts[i] += 1
        counts[len(BUCKETS)] += 1
        counts[-1] += value

    def family(self, name: str, doc: str, label_names: list[str]) -> Metric:
        fam = HistogramMetricFamily(name, doc, labels=label_names)
        for labels, counts in sorted(self.series.items()):
            buckets = [(str(b), counts[i]) for i, b in enumerate(BUCKETS)]
            buckets.append(("+Inf", counts[len(BUCKETS)]))
            fam.add_metric(list(labels), buckets, counts[-1])
        return fam


class FailureCounts:
    def __init__(self) -> None:
        self.counts: dict[tuple[str, ...], float] = {}

    def add(self, labels: tuple[str, ...]) -> None:
        self.counts[labels] = self.counts.get(labels, 0.0) + 1

    def family(self, name: str, doc: str, label_names: list[str]) -> Metric:
        fam = CounterMetricFamily(name, doc, labels=label_names)
        for labels, value in sorted(self.counts.items()):
            fam.add_metric(list(labels), value)
        return fam


@dataclass
class ServiceTarget:
    name: str
    url: str
    timeout: float
    slow_after: float


@dataclass
class DependencyTarget:
    name: str
    kind: str  # postgres | redis | tcp | http
    target: str  # URL, or host:port for tcp
    timeout: float


def _probe_dependency(dep: DependencyTarget) -> probes.Outcome:
    run: Callable[[str, float], probes.Outcome] = {
        "postgres": probes.probe_postgres, "redis": probes.probe_redis,
        "tcp": probes.probe_tcp, "http": probes.probe_http,
    }[dep.kind]
    return run(dep.target, dep.timeout)


class ServicesCollector(SnapshotCollector):
    name = "services"

    def __init__(self, interval: float, timeout: float, targets: Sequence[ServiceTarget],
                 workers: int = 16) -> None:
        super().__init__(interval, timeout)
        self.targets = list(targets)
        self.pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(self.targets))),
                                       thread_name_prefix="probe-service")
        self.durations = DurationHistogram()
        self.failures = FailureCounts()

    def collect_snapshot(self) -> list[Metric]:
        outcomes = list(self.pool.map(
            lambda t: probes.probe_service(t.url, t.timeout, t.slow_after), self.targets))
        up = GaugeMetricFamily("ticketmon_service_up",
                               "1 if the service answered its health check.", labels=["service"])
        state = GaugeMetricFamily("ticketmon_service_health_state",
                                  "1 for the service's current health state.",
                                  labels=["service", "state"])
        deps = GaugeMetricFamily("ticketmon_service_dependency_up",
                                 "Dependency status as the service itself reports it.",
                                 labels=["service", "dependency"])
        for target, out in zip(self.targets, outcomes, strict=True):
            up.add_metric([target.name], 1.0 if out.up else 0.0)
            for s in STATES:
                state.add_metric([target.name, s], 1.0 if out.state == s else 0.0)
            for dep, ok in sorted(out.dependencies.items()):
                deps.add_metric([target.name, dep], 1.0 if ok else 0.0)
            self.durations.observe((target.name,), out.duration)
            if not out.up:
                self.failures.add((target.name, out.reason))
                log.info("service probe failed", extra={"service": target.name,
                                                        "reason": out.reason,
                                                        "detail": out.detail[:300]})
        return [
            up, state, deps,
            self.durations.family("ticketmon_service_probe_duration_seconds",
                                  "Time the health check took.", ["service"]),
            self.failures.family("ticketmon_service_probe_failures",
                                 "Failed health checks by reason.", ["service", "reason"]),
        ]

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class DependenciesCollector(SnapshotCollector):
    name = "dependencies"

    def __init__(self, interval: float, timeout: float, targets: Sequence[DependencyTarget],
                 workers: int = 8) -> None:
        super().__init__(interval, timeout)
        self.targets = list(targets)
        self.pool = ThreadPoolExecutor(max_workers=max(1, min(workers, len(self.targets))),
                                       thread_name_prefix="probe-dependency")
        self.failures = FailureCounts()

    def collect_snapshot(self) -> list[Metric]:
        outcomes = list(self.pool.map(_probe_dependency, self.targets))
        up = GaugeMetricFamily("ticketmon_dependency_up",
                               "1 if the dependency answered a direct probe.",
                               labels=["dependency", "kind"])
        duration = GaugeMetricFamily("ticketmon_dependency_probe_duration_seconds",
                                     "Time the last direct probe took.",
                                     labels=["dependency", "kind"])
        ratio = GaugeMetricFamily("ticketmon_postgres_connections_used_ratio",
                                  "Client connections in use over max_connections.",
                                  labels=["dependency"])
        for target, out in zip(self.targets, outcomes, strict=True):
            up.add_metric([target.name, target.kind], 1.0 if out.up else 0.0)
            duration.add_metric([target.name, target.kind], out.duration)
            if out.used_ratio is not None:
                ratio.add_metric([target.name], out.used_ratio)
            if not out.up:
                self.failures.add((target.name, target.kind, out.reason))
                log.info("dependency probe failed", extra={"dependency": target.name,
                                                           "reason": out.reason})
        return [up, duration, ratio, self.failures.family(
            "ticketmon_dependency_probe_failures", "Failed direct probes by reason.",
            ["dependency", "kind", "reason"])]

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
