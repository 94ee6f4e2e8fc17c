"""Counters are scored on their increase per step, not on their ever-growing value.

A raw counter (a PromQL query without rate()) only grows, so every new point is a
"new maximum" and its resets look like crashes. `looks_like_counter` tells one apart
from a gauge on the first points of its history (never non-negative and growing
only by chance: decreases must be rare and deep, like a process restarting), and
`Increases` turns values into per-step increases the way Prometheus's increase()
does: after a reset the counter counts from zero, so the increase is the new value.
"""

from __future__ import annotations

import numpy as np

KIND_POINTS = 200  # how many first points of a series decide its kind
MAX_RESET_SHARE = 0.01  # decreases allowed, as a share of the steps (at least one)
MIN_GROWTH_SHARE = 0.1  # a counter grows on at least this share of its steps


def looks_like_counter(values: np.ndarray) -> bool:
    """True when the values behave as a Prometheus counter: non-negative, growing on a
    fair share of steps, and falling only rarely and then to under half (a reset)."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 20 or not np.all(np.isfinite(v)) or v.min() < 0:
        return False
    steps = np.diff(v)
    falls = np.flatnonzero(steps < 0)
    if len(falls) > max(1, MAX_RESET_SHARE * len(steps)):
        return False
    if np.any(v[falls + 1] > 0.5 * v[falls]):  # a dip, not a restart from zero
        return False
    return bool(np.count_nonzero(steps > 0) >= MIN_GROWTH_SHARE * len(steps))


class Increases:
    """Per-step increases of a counter across pushes (the first point's is 0)."""

    def __init__(self) -> None:
        self.last: float | None = None

    def __call__(self, values: np.ndarray) -> np.ndarray:
        if not len(values):
            return values
        before = np.concatenate(([values[0] if self.last is None else self.last], values[:-1]))
        out = values - before
        reset = out < 0
        out[reset] = values[reset]  # counting again from zero
        self.last = float(values[-1])
        return out
