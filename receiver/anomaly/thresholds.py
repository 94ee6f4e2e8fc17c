"""Adaptive thresholds: how rare is this raw score, judged by the scores before it.

Raw detector scores have no fixed scale (they change with the series and with each
refit), so a fixed cut-off or a warm-up quantile goes stale. Instead the scores a
series produced so far are modelled with Peaks-Over-Threshold (extreme value theory,
as in SPOT, Siffer et al. 2017): the part above a high quantile `u` follows a
generalised Pareto distribution, which gives a tail probability for scores far beyond
anything seen yet. The exposed score is 1 - that probability (0..1), and a point is
flagged when the probability is below the policy's `risk`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TailModel:
    """GPD tail over past scores: P(S >= s) for any s."""

    ranked: np.ndarray  # the past scores, sorted
    u: float
    zeta: float  # fraction of past scores above u
    sigma: float
    xi: float

    @classmethod
    def fit(cls, past: np.ndarray, level: float = 0.95,
            ranked: np.ndarray | None = None) -> TailModel:
        """Fit on past scores (method of moments on the exceedances: fast and stable).

        `ranked` may pass `past` already sorted (a stream keeps it up to date with
        `slide` instead of sorting thousands of scores at every fit).
        """
        past = np.asarray(past, dtype=np.float64)
        finite = np.isfinite(past)
        if not finite.all():
            past = past[finite]
            ranked = None
        if len(past) < 20:
            raise ValueError("need at least 20 past scores")
        if ranked is None or len(ranked) != len(past):
            ranked = np.sort(past)
        k = min(int(level * len(past)), len(past) - 1)
        u = float(ranked[k])
        excess = past[past > u] - u
        zeta = len(excess) / len(past)
        if len(excess) < 3:
            # (almost) all scores equal: any larger score is news
            spread = float(np.std(past)) or 1e-9
            return cls(ranked, u, max(zeta, 1.0 / len(past)), spread, 0.0)
        # np.mean and np.var spelled out (same operations, same bits, less overhead)
        mean = np.add.reduce(excess) / len(excess)
        centred = excess - mean
        var = float(np.add.reduce(centred * centred) / len(excess))
        mean = float(mean)
        if var <= 0:
            return cls(ranked, u, zeta, max(mean, 1e-9), 0.0)
        ratio = mean * mean / var
        xi = float(np.clip(0.5 * (1 - ratio), 0.0, 0.5))
        sigma = max(0.5 * mean * (ratio + 1), 1e-9)
        return cls(ranked, u, zeta, sigma, xi)

    def tail_probability(self, scores: np.ndarray) -> np.ndarray:
        """P(S >= s): empirical up to u, generalised Pareto above it."""
        s = np.asarray(scores, dtype=np.float64)
        n = len(self.ranked)
        at_least = n - np.searchsorted(self.ranked, s, side="left")  # past scores >= s
        emp = (at_least + 1) / (n + 1)
        above = s > self.u
        if not above.any():  # the usual case: nothing in the tail
            return emp
        y = np.maximum(s - self.u, 0.0)
        if abs(self.xi) < 1e-6:
            gpd = self.zeta * np.exp(-y / self.sigma)
        else:
            base = np.maximum(1 + self.xi * y / self.sigma, 0.0)
            with np.errstate(divide="ignore"):
                gpd = self.zeta * np.power(base, -1 / self.xi)
        return np.where(above, np.minimum(gpd, emp), emp)


def slide(ranked: np.ndarray, leaving: np.ndarray, entering: np.ndarray) -> np.ndarray:
    """`ranked` (sorted) without the values `leaving` and with `entering`, still sorted.

    Moving a window by a few values this way costs a copy, not a sort; equal values
    are interchangeable, so the result is exactly np.sort of the new window.
    """
    if len(leaving):
        gone = np.sort(leaving)
        # the i-th of several equal values leaving takes the i-th equal slot
        repeat = np.arange(len(gone)) - np.searchsorted(gone, gone, side="left")
        keep = np.ones(len(ranked), dtype=bool)
        keep[np.searchsorted(ranked, gone, side="left") + repeat] = False
        ranked = ranked[keep]
    if not len(entering):
        return ranked
    new = np.sort(entering)
    at = np.searchsorted(ranked, new) + np.arange(len(new))  # places in the result
    out = np.empty(len(ranked) + len(new))
    old_places = np.ones(len(out), dtype=bool)
    old_places[at] = False
    out[at] = new
    out[old_places] = ranked
    return out


def suppress(
    candidates: np.ndarray, first_index: int, last_candidate: int, gap: int
) -> tuple[np.ndarray, int]:
    """Keep one flag per anomaly: a candidate starts a new signal only after `gap` quiet points.

    `candidates` are booleans for points first_index.. ; `last_candidate` is the global
    index of the last candidate before them. A run of candidates with shorter pauses is
    one anomaly (a level shift stays one signal however long it lasts). Returns the
    flags and the new `last_candidate`.
    """
    out = np.zeros_like(candidates, dtype=bool)
    if not candidates.any():
        return out, last_candidate
    for i in np.flatnonzero(candidates):
        if first_index + i - last_candidate > gap:
            out[i] = True
        last_candidate = first_index + i
    return out, last_candidate
