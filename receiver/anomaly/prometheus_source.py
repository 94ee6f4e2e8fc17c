"""Read one series from Prometheus's HTTP API (query_range), checking every part of the answer.

Anything that is not a well-formed answer with exactly one series of finite numbers
on a regular grid becomes a `SkipSeries` with a short machine-readable reason (the
`reason` label of ticketmon_anomaly_skipped_total) and a human detail.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import requests

from receiver.anomaly.windows import MAX_POINTS


class SkipSeries(Exception):
    """This series cannot be scored this time; `reason` says why."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class Samples:
    times: np.ndarray  # float seconds, increasing
    values: np.ndarray  # float64, may hold NaN (Prometheus's "NaN")


def query_range(
    session: requests.Session, base_url: str, query: str, start: float, end: float,
    step: float, timeout: float = 10.0,
) -> Samples:
    """Samples of the one series `query` returns between start and end (inclusive)."""
    return parse_matrix(fetch_matrix(session, base_url, query, start, end, step, timeout))


def query_range_by(
    session: requests.Session, base_url: str, query: str, start: float, end: float,
    step: float, by: list[str], timeout: float = 10.0,
) -> tuple[dict[tuple[str, ...], Samples], dict[tuple[str, ...], SkipSeries]]:
    """Every series `query` returns, keyed by the values of the `by` labels, and the
    series that could not be read (a bad one does not spoil the others)."""
    data = fetch_matrix(session, base_url, query, start, end, step, timeout)
    result = _result(data)
    good: dict[tuple[str, ...], Samples] = {}
    bad: dict[tuple[str, ...], SkipSeries] = {}
    for item in result:
        metric = item.get("metric") if isinstance(item, dict) else None
        if not isinstance(metric, dict):
            raise SkipSeries("bad_response", "a result has no metric object")
        key = tuple(str(metric.get(label, "")) for label in by)
        if key in good or key in bad:
            bad[key] = SkipSeries("duplicate_series",
                                  f"several series share {dict(zip(by, key, strict=True))}; "
                                  "aggregate the query by its `by` labels")
            good.pop(key, None)
            continue
        try:
            good[key] = _samples(item)
        except SkipSeries as skip:
            bad[key] = skip
    return good, bad


def fetch_matrix(
    session: requests.Session, base_url: str, query: str, start: float, end: float,
    step: float, timeout: float = 10.0,
) -> object:
    """The `data` member of a successful query_range answer."""
    if (end - start) / step + 1 > MAX_POINTS:
        raise SkipSeries("too_many_points", f"{(end - start) / step:.0f} steps > {MAX_POINTS}")
    try:
        resp = session.get(
            f"{base_url.rstrip('/')}/api/v1/query_range",
            params={"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}",
                    "step": f"{step:g}"},
            timeout=timeout,
        )
    except requests.RequestException as exc:
        raise SkipSeries("prometheus_unreachable", type(exc).__name__) from exc
    if resp.status_code >= 500:
        raise SkipSeries("prometheus_unreachable", f"HTTP {resp.status_code}")
    try:
        body = resp.json()
    except ValueError as exc:
        raise SkipSeries("bad_response", f"HTTP {resp.status_code}, body is not JSON") from exc
    if not isinstance(body, dict):
        raise SkipSeries("bad_response", "answer is not a JSON object")
    if body.get("status") != "success":
        error = str(body.get("error") or f"HTTP {resp.status_code}")[:300]
        raise SkipSeries("query_error", error)
    return body.get("data")


def _result(data: object) -> list:
    if not isinstance(data, dict) or data.get("resultType") != "matrix":
        raise SkipSeries("bad_response", "data.resultType is not matrix")
    result = data.get("result")
    if not isinstance(result, list):
        raise SkipSeries("bad_response", "data.result is not a list")
    return result


def parse_matrix(data: object) -> Samples:
    """The `data` member of a query_range answer, as one series."""
    result = _result(data)
    if not result:
        raise SkipSeries("no_data", "the query returned no series")
    if len(result) > 1:
        raise SkipSeries("too_many_series",
                         f"the query returned {len(result)} series; aggregate it to one")
    return _samples(result[0])


def _samples(item: object) -> Samples:
    """One result's values, checked."""
    values = item.get("values") if isinstance(item, dict) else None
    if not isinstance(values, list):
        raise SkipSeries("bad_response", "result[0].values is not a list")
    times = np.empty(len(values))
    out = np.empty(len(values))
    for i, pair in enumerate(values):
        try:
            ts, text = pair
            times[i] = float(ts)
            if not isinstance(text, str):
                raise TypeError("value is not a string")
            out[i] = float(text)
        except (TypeError, ValueError) as exc:
            raise SkipSeries("bad_response", f"sample {i} is not [time, \"value\"]") from exc
        if not math.isfinite(times[i]) or math.isinf(out[i]):
            raise SkipSeries("bad_response" if not math.isfinite(times[i]) else "nan",
                             f"sample {i} is not finite")
    if len(times) > 1 and not np.all(np.diff(times) > 0):
        raise SkipSeries("bad_response", "sample times do not increase")
    return Samples(times, out)
