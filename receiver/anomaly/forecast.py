"""Seasonal forecast of a draining series and the time until it reaches its floor.

Additive Holt-Winters (level, trend, one season) in error-correction form, written
with numpy: statsmodels is a heavy dependency for one small recursion. The smoothing
constants are chosen per series by one-step squared error over a small grid that runs
as one vectorised pass, so a fit of a week of 5-minute points takes milliseconds.

Why seasonal: ticket sales and fee-payer spending follow the day. A straight line
fitted to the last hours (predict_linear) says "never" at night and "soon" at the
evening peak; the seasonal model carries the daily shape forward, so the predicted
time to exhaustion moves less with the hour it is asked at.

The band is the forecast ± z·σ_h with the ETS(A,A,A) variance of an h-step
forecast (Hyndman et al., *Forecasting with Exponential Smoothing*, class 1): the
earliest exhaustion is where the lower path crosses the floor, the latest where the
upper path does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

# grid of smoothing constants (ETS parameters: 0 < beta <= alpha, 0 < gamma <= 1 - alpha)
ALPHAS = (0.05, 0.15, 0.4, 0.8)
BETAS = (0.0005, 0.005, 0.03)
GAMMAS = (0.01, 0.1, 0.3)


@dataclass(frozen=True)
class Fit:
    level: float
    trend: float  # per step
    season: np.ndarray  # m values, season[0] is the phase of the next step; empty: none
    alpha: float
    beta: float
    gamma: float
    sigma: float  # standard deviation of the one-step errors

    def path(self, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """Point forecast and its standard deviation for 1..steps ahead."""
        h = np.arange(1, steps + 1, dtype=np.float64)
        mean = self.level + h * self.trend
        m = len(self.season)
        if m:
            mean = mean + self.season[(h.astype(np.int64) - 1) % m]
        j = h - 1  # c_j for j = 1..h-1, summed: the error an h-step forecast inherits
        c = self.alpha + j * self.beta
        if m:
            c = c + self.gamma * ((j % m == 0) & (j > 0))
        c[0] = 0.0
        var = self.sigma**2 * (1.0 + np.cumsum(c**2))
        return mean, np.sqrt(var)


@dataclass(frozen=True)
class Exhaustion:
    """Steps until the floor (inf: not within the horizon) and the band around it."""

    steps: float
    earliest: float
    latest: float


def _grid(seasonal: bool) -> np.ndarray:
    rows = [(a, b, g if seasonal else 0.0) for a in ALPHAS for b in BETAS
            for g in (GAMMAS if seasonal else (0.0,)) if b <= a and g <= 1 - a]
    return np.array(rows)


def fit(values: np.ndarray, period: int) -> Fit:
    """Fit on finite, evenly spaced values. With fewer than two periods of history (or
    period < 2) the season is left out: Holt's linear trend alone."""
    y = np.asarray(values, dtype=np.float64)
    if len(y) < 3 or not np.all(np.isfinite(y)):
        raise ValueError("need at least 3 finite values")
    m = period if period >= 2 and len(y) >= 2 * period + 2 else 0
    params = _grid(bool(m))
    alpha, beta, gamma = params[:, 0], params[:, 1], params[:, 2]
    k = len(params)
    if m:
        first, second = y[:m].mean(), y[m : 2 * m].mean()
        trend0 = (second - first) / m
        centre = np.arange(m) - (m - 1) / 2
        season0 = y[:m] - (first + trend0 * centre)
        level0 = first + trend0 * (m - 1) / 2  # level at the last point of the first period
        start = m
    else:
        season0 = np.zeros(1)
        trend0 = float(np.mean(np.diff(y[: max(3, len(y) // 10)])))
        level0 = y[0]
        start = 1
    level = np.full(k, level0)
    trend = np.full(k, trend0)
    season = np.tile(season0, (k, 1)).T.copy()  # (m, k)
    burn = start + max(m, 10)
    if burn >= len(y) - 2:  # short history: judge on every error
        burn = start
    sse = np.zeros(k)
    used = 0
    for t in range(start, len(y)):
        phase = t % m if m else 0
        err = y[t] - (level + trend + season[phase])
        if t >= burn:
            sse += err * err
            used += 1
        level = level + trend + alpha * err
        trend = trend + beta * err
        if m:
            season[phase] = season[phase] + gamma * err
    best = int(np.argmin(sse))
    nxt = len(y) % m if m else 0
    seasonal = np.roll(season[:, best], -nxt) if m else np.empty(0)
    return Fit(float(level[best]), float(trend[best]), seasonal, float(alpha[best]),
               float(beta[best]), float(gamma[best]), math.sqrt(sse[best] / used))


def exhaustion(model: Fit, floor: float, horizon_steps: int, band: float = 0.9) -> Exhaustion:
    """When the forecast (and the lower and upper edge of its central `band`) first
    reaches `floor`, in steps from the last value."""
    mean, sd = model.path(horizon_steps)
    z = NormalDist().inv_cdf(0.5 + band / 2)
    return Exhaustion(_first_at_or_below(mean, floor), _first_at_or_below(mean - z * sd, floor),
                      _first_at_or_below(mean + z * sd, floor))


def _first_at_or_below(path: np.ndarray, floor: float) -> float:
    hit = np.flatnonzero(path <= floor)
    return float(hit[0] + 1) if len(hit) else math.inf
