"""A small Prometheus HTTP API client for reports, backtests and dashboard previews.

receiver.anomaly.prometheus_source reads exactly one series and turns every problem into
a skip; here a query may return many series, and an unreachable Prometheus must stop the
run with a clear message, so errors are two exceptions instead. Long ranges are split
into pieces under Prometheus's 11,000-points-per-series limit. The client counts the
time spent waiting for Prometheus so callers can tell their own overhead apart.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import requests

MAX_POINTS = 10_000  # Prometheus refuses more than 11,000 points per series


class PrometheusUnavailable(Exception):
    """Prometheus did not answer (connection refused, timeout, 5xx): retry later."""


class QueryError(Exception):
    """Prometheus answered but refused the query (bad PromQL, too many points)."""


@dataclass
class Series:
    labels: dict[str, str]
    times: np.ndarray  # float seconds, increasing
    values: np.ndarray  # float64, NaN where Prometheus said NaN


@dataclass
class Sample:
    labels: dict[str, str]
    value: float


@dataclass
class PromClient:
    url: str
    timeout: float = 30.0
    session: requests.Session = field(default_factory=requests.Session)
    calls: int = 0
    waited: float = 0.0  # seconds spent in HTTP calls to Prometheus
    log: list[tuple[str, dict]] = field(default_factory=list)  # (path, params) issued

    def _get(self, path: str, params: dict) -> dict:
        self.log.append((path, dict(params)))
        started = time.perf_counter()
        try:
            resp = self.session.get(f"{self.url.rstrip('/')}{path}", params=params,
                                    timeout=self.timeout)
        except requests.RequestException as exc:
            raise PrometheusUnavailable(
                f"cannot reach Prometheus at {self.url}: {type(exc).__name__}") from exc
        finally:
            self.calls += 1
            self.waited += time.perf_counter() - started
        if resp.status_code >= 500:  # down, overloaded or timed out: worth a retry
            raise PrometheusUnavailable(
                f"Prometheus at {self.url} answered HTTP {resp.status_code}")
        try:
            body = resp.json()
        except ValueError as exc:
            raise PrometheusUnavailable(f"Prometheus at {self.url} answered HTTP "
                                        f"{resp.status_code} without JSON") from exc
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else None
            raise QueryError(f"{str(error or resp.status_code)[:300]} "
                             f"(query: {params.get('query', '')[:200]})")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        """Instant query: one value per series at `at` (default: now)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._get("/api/v1/query", params)
        if data.get("resultType") == "scalar":
            return [Sample({}, float(data["result"][1]))]
        return [Sample(r.get("metric", {}), float(r["value"][1])) for r in data["result"]]

    def scalar(self, expr: str, at: float | None = None) -> float | None:
        """The value of a query that returns (at most) one series; None for no data."""
        found = [s.value for s in self.query(expr, at) if not math.isnan(s.value)]
        return found[0] if found else None

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        """Range query, split into pieces of at most MAX_POINTS steps and joined."""
        merged: dict[tuple, tuple[dict, list, list]] = {}
        piece = step * (MAX_POINTS - 1)
        t = start
        while t <= end:
            stop = min(end, t + piece)
            data = self._get("/api/v1/query_range", {
                "query": expr, "start": f"{t:.3f}", "end": f"{stop:.3f}", "step": f"{step:g}"})
            for r in data.get("result", []):
                labels = r.get("metric", {})
                key = tuple(sorted(labels.items()))
                _, times, values = merged.setdefault(key, (labels, [], []))
                for ts, text in r["values"]:
                    times.append(float(ts))
                    values.append(float(text))
            t = stop + step
        return [Series(labels, np.asarray(times), np.asarray(values))
                for labels, times, values in merged.values()]

    def ping(self) -> None:
        """Fail fast with PrometheusUnavailable before a long run."""
        self._get("/api/v1/query", {"query": "1"})


def step_for(seconds: float, points: int = 300, minimum: float = 60.0) -> float:
    """A round step giving about `points` points over `seconds` (never below `minimum`)."""
    raw = max(minimum, seconds / points)
    for nice in (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400):
        if raw <= nice:
            return float(nice)
    return float(math.ceil(raw / 86400) * 86400)


def duration_text(seconds: float) -> str:
    """A PromQL duration for a range selector: whole seconds, in the largest exact unit."""
    seconds = max(1, int(round(seconds)))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
