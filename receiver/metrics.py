"""The receiver's /metrics: live counters plus gauges read from the database.

Under gunicorn with several workers, set PROMETHEUS_MULTIPROC_DIR (receiver.gunicorn_conf
does it) and counters/histograms are summed over workers by prometheus_client's
multiprocess mode. Gauges that describe shared state (open incidents, and later anomaly
scores) are read from the database at scrape time instead, so every worker answers the
same whichever one is asked.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy.engine import Connection

from receiver.store import Store, StoreUnavailable
from receiver.store.queries import open_incident_counts
from ticketmon.core.auth import FAILURE_REASONS

log = logging.getLogger("receiver.metrics")

StoreMetricsSource = Callable[[Connection], Iterable[Metric]]

STORE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def open_incidents(conn: Connection) -> Iterable[Metric]:
    family = GaugeMetricFamily("ticketmon_receiver_incidents_open",
                               "Unresolved incidents (open or acknowledged)",
                               labels=["severity", "tenant"])
    for severity, tenant, count in open_incident_counts(conn):
        family.add_metric([severity, tenant], count)
    yield family


class StoreCollector:
    """Runs every registered source in one read-only transaction per scrape."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.sources: list[StoreMetricsSource] = [open_incidents]

    def add(self, source: StoreMetricsSource) -> None:
        """Extension point: e.g. the anomaly job's ticketmon_anomaly_score from its table."""
        self.sources.append(source)

    def collect(self) -> Iterable[Metric]:
        try:
            with self.store.transaction(readonly=True) as conn:
                families = [f for source in self.sources for f in source(conn)]
        except StoreUnavailable as exc:
            log.warning("metrics from the store are unavailable: %s", exc)
            return []
        return families


class ReceiverMetrics:
    def __init__(self, store: Store, store_gauges: bool = True) -> None:
        """store_gauges=False (the stream server): no gauges read from the database, so
        they are not scraped twice, from the receiver and from the stream server."""
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.store_gauges = store_gauges
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "ticketmon_receiver_http_requests_total", "HTTP requests answered",
            ["route", "code"], registry=self.registry)
        self.alerts_received = Counter(
            "ticketmon_receiver_alerts_received_total",
            "Alerts received from Alertmanager, by the status they were posted with",
            ["status"], registry=self.registry)
        self.alerts_duplicate = Counter(
            "ticketmon_receiver_alerts_duplicate_total",
            "Alerts received that changed nothing (HA pairs and repeats)",
            registry=self.registry)
        self.payload_repairs = Counter(
            "ticketmon_receiver_payload_repairs_total",
            "Strings or numbers of accepted webhook posts repaired to fit the store "
            "(cut with a marker, NUL or lone surrogate replaced, group key shortened)",
            ["kind"], registry=self.registry)
        self.webhook_refused = Counter(
            "ticketmon_receiver_webhook_refused_total",
            "Webhook posts answered 4xx: Alertmanager does not retry them, they are lost",
            ["reason"], registry=self.registry)
        self.auth_failures = Counter(
            "ticketmon_receiver_auth_failures_total",
            "Calls refused for their credentials (401) or role and tenant (403), by reason: "
            "missing, malformed, unknown_token, revoked, expired, bad_jwt, forbidden",
            ["reason"], registry=self.registry)
        for reason in FAILURE_REASONS:  # present from the start: rate() needs a zero
            self.auth_failures.labels(reason)
        self.rate_limited = Counter(
            "ticketmon_receiver_rate_limited_total",
            "API calls answered 429 because their token was over its request rate, by how "
            "the caller authenticated (token, jwt, config, dev)",
            ["via"], registry=self.registry)
        self.store_duration = Histogram(
            "ticketmon_receiver_store_duration_seconds",
            "Time spent in one database transaction", buckets=STORE_BUCKETS,
            registry=self.registry)
        self.webhook_ingest = Histogram(
            "ticketmon_receiver_webhook_ingest_duration_seconds",
            "Time from an Alertmanager post arriving to its alerts and incidents committed "
            "(the receiver's share of a page before the worker's notification lateness)",
            buckets=STORE_BUCKETS, registry=self.registry)
        self.store_collector = StoreCollector(store)
        if store_gauges and not self.multiprocess:
            self.registry.register(self.store_collector)

    def exposition(self) -> bytes:
        """The Prometheus text format, whichever worker is asked."""
        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        if self.store_gauges:
            registry.register(self.store_collector)
        return generate_latest(registry)
