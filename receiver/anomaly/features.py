"""Causal features of a sliding window: each row uses only its point and earlier ones.

A detector sees a series through these columns rather than through raw values, so a
spike, a level shift, a change of volatility and a break of the daily pattern each
stand out in at least one column. Every column is computed from `values[:t + 1]` for
row t, which is what makes streaming scores free of look-ahead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHORT = 3  # points in the "now" window
BASE = 24  # points in the baseline before it


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
        cols = ("level", "diff", "shift", "volatility")
        return cols + (("seasonal",) if self.period else ())


def _window_sum(x: np.ndarray, width: int) -> np.ndarray:
    """Sum of x[t - width + 1 .. t] for t >= width - 1 (length len(x) - width + 1)."""
    c = np.concatenate(([0.0], np.cumsum(x)))
    return c[width:] - c[:-width]


def build(values: np.ndarray, start: int, spec: FeatureSpec) -> np.ndarray:
    """Feature rows for points values[start:], each using only values[: t + 1].

    `start` must leave `spec.lookback` earlier points; rows are float64 (n, k).
    """
    if start < spec.lookback:
        raise ValueError(f"need {spec.lookback} points before start, got {start}")
    x = np.asarray(values[start - spec.lookback :], dtype=np.float64)
    lb = spec.lookback
    n = len(x) - lb
    level = x[lb:]
    diff = level - x[lb - 1 : -1]
    # mean of the last SHORT points against the mean of the BASE points before them
    recent = _window_sum(x, SHORT)[-n:] / SHORT
    base = _window_sum(x, BASE)[lb - SHORT - BASE + 1 : lb - SHORT - BASE + 1 + n] / BASE
    shift = recent - base
    # mean absolute step over the SHORT window: volatility and spike density
    steps = np.abs(np.diff(x))
    volatility = _window_sum(steps, SHORT)[-n:] / SHORT
    cols = [level, diff, shift, volatility]
    if spec.period:
        # the SHORT-point mean now against the median of the same points in past periods
        sums = _window_sum(x, SHORT)
        lagged = [
            sums[lb - SHORT + 1 - k * spec.period : lb - SHORT + 1 - k * spec.period + n]
            for k in range(1, spec.seasons + 1)
        ]
        cols.append(recent - np.median(lagged, axis=0) / SHORT)
    return np.column_stack(cols)
