"""Draining series of known shapes for the forecast tests: each case's true time to
exhaustion follows from its drain rate, so the tests can check the forecast's figure."""

from __future__ import annotations

import math

import numpy as np

STEP = 60
POINTS = 360  # six hours
SEASON = 3600  # an hourly pattern stands in for the daily one (Prometheus keeps one day)
START_VALUE = 3000.0


def drain_rate(times: np.ndarray) -> np.ndarray:
    """Units per step: busy half of each hour, quiet the other half (mean 2.0)."""
    phase = (times % SEASON) / SEASON
    return np.where(phase < 0.5, 3.5, 0.5)


def drained(times: np.ndarray, start: float = START_VALUE, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return start - np.cumsum(drain_rate(times)) + rng.normal(0, 0.5, len(times))


def cases(end: int) -> dict[str, list[tuple[int, float]]]:
    times = np.array([end - STEP * (POINTS - 1 - i) for i in range(POINTS)], dtype=float)
    base = drained(times)
    refill = base.copy()
    refill[200:] += 1500  # topped up two and a half hours ago
    nan = base.copy()
    nan[100:104] = math.nan
    keep_gap = np.r_[0:100, 160:POINTS]  # an hour missing, 200 points after it
    return {
        "drain": list(zip(times, base, strict=True)),
        "refill": list(zip(times, refill, strict=True)),
        "nan": list(zip(times, nan, strict=True)),
        "gap": list(zip(times[keep_gap], base[keep_gap], strict=True)),
        "flat": [(t, 500.0) for t in times],
        "new": list(zip(times[-5:], base[-5:], strict=True)),  # appeared five minutes ago
        "gone": list(zip(times[:200], base[:200], strict=True)),  # vanished
    }


def openmetrics(end: int) -> str:
    lines = ["# TYPE ticketmon_test_capacity gauge"]
    for case, samples in cases(end).items():
        for t, v in samples:
            value = "NaN" if math.isnan(v) else repr(float(v))
            lines.append(f'ticketmon_test_capacity{{case="{case}"}} {value} {int(t)}')
    lines.append("# EOF")
    return "\n".join(lines) + "\n"
