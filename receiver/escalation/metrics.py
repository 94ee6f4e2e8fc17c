"""Escalation metrics: deliveries by outcome, step lateness (due -> outbox rows written)
and delivery lateness (due -> delivered) on the worker's /metrics; dead letters and
pending notifications on the receiver's /metrics.

Counters and the lateness histograms are live in each worker process. Dead and pending
notifications are counted in the database at scrape time (`outbox_gauges`, added to the
receiver's StoreCollector), so the numbers are right however many workers run.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy.engine import Connection

from receiver.escalation.listings import state_counts

# fine below 0.25 s, where a healthy worker is: with 0.1 and 0.25 as neighbours, one
# delivery in a hundred at 0.11 s read as a p99 of 0.24 s
LATENESS_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0, 30.0, 60.0, 300.0)
OUTCOME = {"delivered": "delivered", "pending": "retry", "dead": "dead",
           "cancelled": "cancelled"}


def outbox_gauges(conn: Connection) -> Iterable[Metric]:
    dead = GaugeMetricFamily("ticketmon_receiver_dead_letters",
                             "Notifications that will not be delivered (see /api/v1/dead-letters)",
                             labels=["channel"])
    pending = GaugeMetricFamily("ticketmon_receiver_outbox_pending",
                                "Notifications waiting for delivery or being delivered",
                                labels=["channel"])
    waiting: dict[str, int] = {}
    for channel, state, count in state_counts(conn):
        if state == "dead":
            dead.add_metric([channel], count)
        else:
            waiting[channel] = waiting.get(channel, 0) + count
    for channel, count in sorted(waiting.items()):
        pending.add_metric([channel], count)
    yield dead
    yield pending


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        registry = registry if registry is not None else CollectorRegistry()
        self.notifications = Counter(
            "ticketmon_receiver_notifications", "Notification delivery attempts by outcome",
            ["channel", "outcome"], registry=registry)
        self.step_lateness = Histogram(
            "ticketmon_receiver_escalation_lateness_seconds",
            "Delay between an escalation step falling due and its notifications written "
            "to the outbox", buckets=LATENESS_BUCKETS, registry=registry)
        self.delivery_lateness = Histogram(
            "ticketmon_receiver_notification_lateness_seconds",
            "Delay between a notification falling due and its delivery, retries included",
            ["channel"], buckets=LATENESS_BUCKETS, registry=registry)
        self.errors = Counter("ticketmon_receiver_worker_errors",
                              "Worker passes that failed (database unreachable, ...)",
                              registry=registry)
        self.reconcile = ReconcileMetrics(registry)

    def record(self, row: dict, state: str, outcome: str, now: datetime) -> None:
        self.notifications.labels(row["channel"], OUTCOME.get(state, outcome)).inc()
        if state == "delivered":
            self.delivery_lateness.labels(row["channel"]).observe(
                max(0.0, (now - row["due_at"]).total_seconds()))


class ReconcileMetrics:
    """Reconciliation with Alertmanager (receiver.reconcile): runs, corrections, members."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter(
            "ticketmon_receiver_reconcile_runs",
            "Reconciliation runs by outcome (ok, partial: an Alertmanager did not count, "
            "unreachable: none did, skipped: another worker's turn, error)",
            ["outcome"], registry=registry)
        self.corrections = Counter(
            "ticketmon_receiver_reconcile_corrections",
            "Store corrections made from Alertmanager's API by action", ["action"],
            registry=registry)
        self.last_success = Gauge(
            "ticketmon_receiver_reconcile_last_success_timestamp_seconds",
            "When a reconciliation run last compared with at least one Alertmanager",
            registry=registry)
        self.up = Gauge(
            "ticketmon_receiver_reconcile_alertmanager_up",
            "1 if this Alertmanager answered the last reconciliation run usably",
            ["alertmanager"], registry=registry)

    def observe(self, report, truth, now: datetime) -> None:
        self.runs.labels(report.outcome).inc()
        if truth is None:
            return
        for member in truth.members:
            self.up.labels(member.url).set(1 if member.up else 0)
        if report.outcome in ("ok", "partial"):
            self.last_success.set(now.timestamp())
        d = report.done
        for action, n in (("resolved_alert", d.resolved_alerts),
                          ("fired_alert", d.fired_alerts),
                          ("linked_alert", d.linked_alerts),
                          ("resolved_incident", len(d.resolved_incidents)),
                          ("opened_incident", len(d.opened_incidents))):
            if n:
                self.corrections.labels(action).inc(n)
