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

    past: np.ndarray
    u: float
    zeta: float  # fraction of past scores above u
    sigma: float
    xi: float

    @classmethod
    def fit(cls, past: np.ndarray, level: float = 0.95) -> TailModel:
        """Fit on past scores (method of moments on the exceedances: fast and stable)."""
        past = np.asarray(past, dtype=np.float64)
        past = past[np.isfinite(past)]
        if len(past) < 20:
            raise ValueError("need at least 20 past scores")
        k = min(int(level * len(past)), len(past) - 1)
        u = float(np.partition(past, k)[k])
        excess = past[past > u] - u
        zeta = len(excess) / len(past)
        if len(excess) < 3:
            # (almost) all scores equal: any larger score is news
            spread = float(np.std(past)) or 1e-9
            return cls(past, u, max(zeta, 1.0 / len(past)), spread, 0.0)
        mean = float(excess.mean())
        var = float(excess.var())
        if var <= 0:
            return cls(past, u, zeta, max(mean, 1e-9), 0.0)
        ratio = mean * mean / var
        xi = float(np.clip(0.5 * (1 - ratio), 0.0, 0.5))
        sigma = max(0.5 * mean * (ratio + 1), 1e-9)
        return cls(past, u, zeta, sigma, xi)

    def tail_probability(self, scores: np.ndarray) -> np.ndarray:
        """P(S >= s): empirical up to u, generalised Pareto above it."""
        s = np.asarray(scores, dtype=np.float64)
        y = np.maximum(s - self.u, 0.0)
        if abs(self.xi) < 1e-6:
            gpd = self.zeta * np.exp(-y / self.sigma)
        else:
            base = np.maximum(1 + self.xi * y / self.sigma, 0.0)
            with np.errstate(divide="ignore"):
                gpd = self.zeta * np.power(base, -1 / self.xi)
        n = len(self.past)
        emp = ((self.past[None, :] >= s[:, None]).sum(axis=1) + 1) / (n + 1)
        return np.where(s > self.u, np.minimum(gpd, emp), emp)


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
    for i in np.flatnonzero(candidates):
        if first_index + i - last_candidate > gap:
            out[i] = True
        last_candidate = first_index + i
    return out, last_candidate
