"""ECOD/COPOD scores of one new check from a fitted window, without PyOD in the worker.

PyOD scores a batch against a fitted window by re-ranking window + batch: for a batch
of one, each feature's left and right tail probabilities are the point's rank among
the window's values plus itself, and the skewness correction uses the skewness of the
window plus the point. Both need only the window's sorted columns and its centred
moment sums, which `EcdfScorer` keeps; adding the point to the moments is O(1).
`EcdfScorer.raw` therefore equals PyOD's `decision_function` on that one point
(tests/exporters/fraud hold the two equal for both detectors).

Scoring runs on the request path, so it is scalar Python: `bisect` on a list of floats
costs ~0.4 µs where numpy's searchsorted on one value costs ~1 µs plus array set-up
(measured: 6 µs vs 15 µs for the 16 lookups of a check; 10 µs vs 44 µs per score).
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence

import numpy as np

EPS = float(np.finfo(np.float64).eps)


def _skew_sign(x: float, n: int, mean: float, m2: float, m3: float) -> int:
    """Sign of scipy.stats.skew over the window plus x (0 where scipy calls the column
    constant and PyOD's nan_to_num makes it 0); m2, m3: centred sums of the window."""
    n1 = n + 1
    delta = x - mean
    new_mean = mean + delta / n1
    new_m2 = m2 + delta * delta * n / n1
    new_m3 = m3 + delta ** 3 * n * (n - 1) / (n1 * n1) - 3 * delta * m2 / n1
    if new_m2 / n1 <= (EPS * new_mean) ** 2:
        return 0
    return (new_m3 > 0) - (new_m3 < 0)


class EcdfScorer:
    """Raw ECOD/COPOD score of one point, and its share of the window scoring lower."""

    def __init__(self, detector: str, sorted_columns: np.ndarray, training_scores: np.ndarray,
                 medians: np.ndarray) -> None:
        if detector not in ("ECOD", "COPOD"):
            raise ValueError(f"no scalar scorer for detector {detector!r}")
        self.copod = detector == "COPOD"
        self.n = sorted_columns.shape[1]
        self.columns = sorted_columns.tolist()
        mean = sorted_columns.mean(axis=1)
        centred = sorted_columns - mean[:, None]
        self.moments = list(zip(mean.tolist(), (centred ** 2).sum(axis=1).tolist(),
                                (centred ** 3).sum(axis=1).tolist(), strict=True))
        self.medians = medians.tolist()
        self.window_scores = np.sort(training_scores).tolist()

    def raw(self, x: Sequence[float]) -> float:
        n = self.n
        n1 = n + 1
        total = 0.0
        for col, value, (mean, m2, m3) in zip(self.columns, x, self.moments, strict=True):
            left = -math.log((bisect_right(col, value) + 1) / n1)
            right = -math.log((n - bisect_left(col, value) + 1) / n1)
            sign = _skew_sign(value, n, mean, m2, m3)
            # PyOD: u_skew = u_l * -sign(s - 1) + u_r * sign(s + 1)
            skewed = right if sign > 0 else left if sign < 0 else left + right
            if self.copod:
                total += max(skewed, (left + right) / 2)
            else:
                total += max(left, right, skewed)
        return total

    def score(self, features: Sequence[float]) -> float:
        """0..1: the share of the window's own scores below this check's score."""
        x = [m if v != v else v for v, m in zip(features, self.medians, strict=True)]  # NaN
        below = bisect_left(self.window_scores, self.raw(x))
        return round(below / len(self.window_scores), 4)
