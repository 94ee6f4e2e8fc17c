"""The fraud service's metrics, correct under several gunicorn workers, cheap per check.

With PROMETHEUS_MULTIPROC_DIR set (the gunicorn launcher sets it), prometheus_client
keeps every worker's values in files of that directory and /metrics sums them, so the
answer is the same whichever worker serves the scrape. Without it (tests, one process)
the metrics live in the app's own registry.

Each multiprocess write is a file-backed update, and a check touches eight or so
values, which would add up on the request path. So a check only adds to plain
in-memory tallies (`record`); `flush` folds them into the prometheus_client values
once a second from a background thread (one write per changed series), and before
this worker answers a scrape. Another worker's latest second may be missing from a
scrape, never lost: it arrives with the next.
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_left
from collections import Counter as Tally

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.exposition import generate_latest

LEVELS = ("low", "medium", "high", "critical")
DECISIONS = ("allow", "review", "block")
RISK_BUCKETS = (10, 20, 30, 40, 50, 60, 70, 80, 90, 100)
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
OUTLIER_BUCKETS = (0.5, 0.75, 0.9, 0.95, 0.99, 1.0)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class HistogramTally:
    """Observations waiting to be added to a prometheus_client Histogram in one go."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # le: first bound >= value
        self.total += value

    def add_to(self, histogram: Histogram) -> None:
        """prometheus_client has no public bulk observe; its buckets and sum are value
        objects (a test compares the result with one observe() per observation)."""
        if not any(self.counts):
            return
        histogram._sum.inc(self.total)
        for bucket, count in zip(histogram._buckets, self.counts, strict=True):
            if count:
                bucket.inc(count)


class FraudMetrics:
    def __init__(self, pattern_names: list[str]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.checks = Counter("ticketmon_fraud_checks", "Fraud checks by risk level and decision.",
                              ["risk_level", "decision"], registry=r)
        self.patterns = Counter("ticketmon_fraud_patterns", "Fraud patterns that fired.",
                                ["pattern"], registry=r)
        self.risk_score = Histogram("ticketmon_fraud_risk_score", "Risk score (0-100) of checks.",
                                    buckets=RISK_BUCKETS, registry=r)
        self.duration = Histogram(
            "ticketmon_fraud_check_duration_seconds", "Time to answer a fraud check in the app.",
            buckets=DURATION_BUCKETS, registry=r)
        self.outlier = Histogram(
            "ticketmon_fraud_outlier_score",
            "Outlier score of checks: share of recent checks less unusual (0-1).",
            buckets=OUTLIER_BUCKETS, registry=r)
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
        for name in [*pattern_names, "outlier"]:  # the outlier score fires like one
            self.patterns.labels(name)
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._checks: Tally[tuple[str, str]] = Tally()
        self._patterns: Tally[str] = Tally()
        self._risk = HistogramTally(RISK_BUCKETS)
        self._duration = HistogramTally(DURATION_BUCKETS)
        self._outlier = HistogramTally(OUTLIER_BUCKETS)
        self._rejected = 0
        self._dropped = 0

    def record(self, level: str, decision: str, patterns: list[str], score: int,
               outlier: float | None, seconds: float) -> None:
        """One answered check (the request path: in-memory tallies only)."""
        with self._lock:
            self._checks[(level, decision)] += 1
            for name in patterns:
                self._patterns[name] += 1
            self._risk.observe(score)
            if outlier is not None:
                self._outlier.observe(outlier)
            self._duration.observe(seconds)

    def record_rejected(self) -> None:
        with self._lock:
            self._rejected += 1

    def record_dropped(self, rows: int) -> None:
        with self._lock:
            self._dropped += rows

    def flush(self) -> None:
        """Fold the tallies into the exported values (background thread and scrapes)."""
        with self._lock:
            checks, patterns = self._checks, self._patterns
            risk, duration, outlier = self._risk, self._duration, self._outlier
            rejected, dropped = self._rejected, self._dropped
            self._reset()
        for (level, decision), n in checks.items():
            self.checks.labels(level, decision).inc(n)
        for name, n in patterns.items():
            self.patterns.labels(name).inc(n)
        risk.add_to(self.risk_score)
        duration.add_to(self.duration)
        outlier.add_to(self.outlier)
        if rejected:
            self.rejected.inc(rejected)
        if dropped:
            self.dropped.inc(dropped)

    def exposition(self) -> bytes:
        self.flush()
        path = multiprocess_dir()
        if path is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=path)
        return generate_latest(registry)
