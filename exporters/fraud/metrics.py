"""The fraud service's metrics, correct under several gunicorn workers.

With PROMETHEUS_MULTIPROC_DIR set (the gunicorn launcher sets it), prometheus_client
keeps every worker's values in files of that directory and /metrics sums them, so the
answer is the same whichever worker serves the scrape. Without it (tests, one process)
the metrics live in the app's own registry.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.exposition import generate_latest

LEVELS = ("low", "medium", "high", "critical")
DECISIONS = ("allow", "review", "block")


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class FraudMetrics:
    def __init__(self, pattern_names: list[str]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.checks = Counter("ticketmon_fraud_checks", "Fraud checks by risk level and decision.",
                              ["risk_level", "decision"], registry=r)
        self.patterns = Counter("ticketmon_fraud_patterns", "Fraud patterns that fired.",
                                ["pattern"], registry=r)
        self.risk_score = Histogram("ticketmon_fraud_risk_score", "Risk score (0-100) of checks.",
                                    buckets=(10, 20, 30, 40, 50, 60, 70, 80, 90, 100), registry=r)
        self.duration = Histogram(
            "ticketmon_fraud_check_duration_seconds", "Time to answer a fraud check in the app.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25), registry=r)
        self.outlier = Histogram(
            "ticketmon_fraud_outlier_score",
            "Outlier score of checks: share of recent checks less unusual (0-1).",
            buckets=(0.5, 0.75, 0.9, 0.95, 0.99, 1.0), registry=r)
        self.rejected = Counter("ticketmon_fraud_invalid_requests",
                                "Check requests refused as malformed (HTTP 400).", registry=r)
        self.dropped = Counter(
            "ticketmon_fraud_records_dropped",
            "Check outcomes not stored because the write queue was full or the database failed.",
            registry=r)
        self.history_users = Gauge("ticketmon_fraud_history_users",
                                   "Users in the per-worker history, summed over workers.",
                                   registry=r, multiprocess_mode="livesum")
        for level in LEVELS:  # every series exists from the first scrape
            for decision in DECISIONS:
                self.checks.labels(level, decision)
        for name in pattern_names:
            self.patterns.labels(name)

    def exposition(self) -> bytes:
        path = multiprocess_dir()
        if path is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=path)
        return generate_latest(registry)
