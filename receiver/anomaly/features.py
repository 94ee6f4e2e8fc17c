"""Causal features of a sliding window: each row uses only its point and earlier ones.

A detector sees a series through these columns rather than through raw values, so a
spike, a level shift, a change of volatility and a break of the daily pattern each
stand out in at least one column. Every column is computed from `values[:t + 1]` for
row t, which is what makes streaming scores free of look-ahead.

The columns come from three per-point window sums (`WindowSums`). Each sum adds its
window's points left to right, so a point's sums (and therefore its row) are the same
bit for bit however the series was chunked; a stream computes them once per point
and builds any row, for fitting or scoring, by indexing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from receiver.anomaly.windows import BASE, SHORT

COLUMNS = ("level", "diff", "shift", "volatility")


@dataclass(frozen=True)
class FeatureSpec:
    """Which columns to build.

    `period` is the seasonal lag in points (0 = none) and `seasons` how many past
    periods the seasonal baseline takes the median of: with three, an anomaly
    yesterday does not make today look anomalous.
    """

    period: int = 0
    seasons: int = 1

    @property
    def lookback(self) -> int:
        """How many earlier points row t needs."""
        return max(SHORT + BASE, self.period * self.seasons + SHORT)

    @property
    def names(self) -> tuple[str, ...]:
        return COLUMNS + (("seasonal",) if self.period else ())


def window_sum(x: np.ndarray, width: int) -> np.ndarray:
    """Sum of x[t - width + 1 .. t] for t >= width - 1 (length len(x) - width + 1),
    added in order so the result does not depend on where x starts."""
    n = len(x) - width + 1
    if n <= 0:
        return np.empty(0)
    out = x[:n].copy()
    for i in range(1, width):
        out += x[i : i + n]
    return out


class WindowSums:
    """Per-point sums every column is made of, aligned with a series' values.

    For point t: `short[t]` = sum of the SHORT points ending at t, `base[t]` = sum of
    the BASE points ending at t, `steps[t]` = sum of |x[i] - x[i-1]| over the SHORT
    steps ending at t (NaN where the series is too short). Rows are then pure indexing.
    """

    def __init__(self, values: np.ndarray | None = None) -> None:
        self.values = np.empty(0)
        self.short = np.empty(0)
        self.base = np.empty(0)
        self.steps = np.empty(0)
        if values is not None:
            self.extend(values)

    def extend(self, new_values: np.ndarray) -> None:
        """Append points, computing sums only for them."""
        first = len(self.values)
        x = np.concatenate((self.values, np.asarray(new_values, dtype=np.float64)))
        self.values = x
        self.short = np.concatenate((self.short, _sums_from(x, first, SHORT)))
        self.base = np.concatenate((self.base, _sums_from(x, first, BASE)))
        self.steps = np.concatenate((self.steps, _step_sums_from(x, first)))

    def drop(self, count: int) -> None:
        """Forget the first `count` points (the caller keeps its own offset)."""
        self.values = self.values[count:]
        self.short = self.short[count:]
        self.base = self.base[count:]
        self.steps = self.steps[count:]

    def rows(self, lo: int, hi: int, spec: FeatureSpec) -> np.ndarray:
        """Feature rows (n, k) for points lo..hi-1 (local indexes); each needs
        `spec.lookback` earlier points."""
        if lo < spec.lookback:
            raise ValueError(f"need {spec.lookback} points before start, got {lo}")
        out = np.empty((hi - lo, len(spec.names)), order="F")  # columns contiguous
        level = self.values[lo:hi]
        out[:, 0] = level
        out[:, 1] = level - self.values[lo - 1 : hi - 1]
        recent = self.short[lo:hi] / SHORT
        # mean of the last SHORT points against the mean of the BASE points before them
        out[:, 2] = recent - self.base[lo - SHORT : hi - SHORT] / BASE
        # mean absolute step over the SHORT window: volatility and spike density
        out[:, 3] = self.steps[lo:hi] / SHORT
        if spec.period:
            # the SHORT-point mean now against the median of the same points in past periods
            p = spec.period
            if spec.seasons == 1:
                median = self.short[lo - p : hi - p]
            else:
                lagged = [self.short[lo - k * p : hi - k * p] for k in range(1, spec.seasons + 1)]
                median = np.median(lagged, axis=0)
            out[:, 4] = recent - median / SHORT
        return out


def _sums_from(x: np.ndarray, first: int, width: int) -> np.ndarray:
    """Window sums for points x[first:], NaN for points with too few before them."""
    out = np.full(len(x) - first, np.nan)
    lo = max(first, width - 1)
    out[lo - first :] = window_sum(x[lo - width + 1 :], width)
    return out


def _step_sums_from(x: np.ndarray, first: int) -> np.ndarray:
    """Sums of the SHORT absolute steps ending at each point of x[first:]."""
    out = np.full(len(x) - first, np.nan)
    lo = max(first, SHORT)
    if lo < len(x):
        out[lo - first :] = window_sum(np.abs(np.diff(x[lo - SHORT :])), SHORT)
    return out


def build(values: np.ndarray, start: int, spec: FeatureSpec) -> np.ndarray:
    """Feature rows for points values[start:], each using only values[: t + 1].

    `start` must leave `spec.lookback` earlier points; rows are float64 (n, k).
    """
    if start < spec.lookback:
        raise ValueError(f"need {spec.lookback} points before start, got {start}")
    sums = WindowSums(np.asarray(values[start - spec.lookback :], dtype=np.float64))
    return sums.rows(spec.lookback, len(sums.values), spec)
