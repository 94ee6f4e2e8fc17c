"""ECOD/COPOD scores of one new check from a fitted window, without PyOD in the worker.

PyOD scores a batch against a fitted window by re-ranking window + batch: for a batch
of one, each feature's left and right tail probabilities are the point's rank among
the window's values plus itself, and the skewness correction uses the skewness of the
window plus the point. Both need only the window's sorted columns and its centred
moment sums, which `EcdfScorer` keeps; adding the point to the moments is O(1).
`EcdfScorer.raw` therefore equals PyOD's `decision_function` on that one point
(tests/exporters/fraud hold the two equal for both detectors).

Scoring runs on the request path, so it is scalar Python: for one value, `bisect` on a
list of floats is cheaper than numpy's searchsorted plus its array set-up
(bench/fraud_check.py measures the whole check); the logs are a precomputed table
indexed by the counts.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence

import numpy as np

EPS = float(np.finfo(np.float64).eps)


MAX_DISTINCT = 256  # a column with at most this many distinct values gets a count table


def _counts(sorted_column: np.ndarray) -> dict[float, tuple[int, int]] | None:
    """value -> (window values below it, at or below it), for a column of few distinct
    values (quantities, counts, flags); None for a continuous one. A dict lookup touches
    one entry where two bisects touch ~2 x log2(n) scattered floats: on the request
    path, with caches cold between requests, those misses are most of a score's cost."""
    values, first, repeats = np.unique(sorted_column, return_index=True, return_counts=True)
    if len(values) > MAX_DISTINCT:
        return None
    return {v: (i, i + k) for v, i, k in zip(values.tolist(), first.tolist(),
                                              repeats.tolist(), strict=True)}


class EcdfScorer:
    """Raw ECOD/COPOD score of one point, and its share of the window scoring lower."""

    def __init__(self, detector: str, sorted_columns: np.ndarray, training_scores: np.ndarray,
                 medians: np.ndarray) -> None:
        if detector not in ("ECOD", "COPOD"):
            raise ValueError(f"no scalar scorer for detector {detector!r}")
        self.copod = detector == "COPOD"
        n = self.n = sorted_columns.shape[1]
        mean = sorted_columns.mean(axis=1)
        centred = sorted_columns - mean[:, None]
        self.columns = list(zip(sorted_columns.tolist(), map(_counts, sorted_columns),
                                mean.tolist(), (centred ** 2).sum(axis=1).tolist(),
                                (centred ** 3).sum(axis=1).tolist(), strict=True))
        # -log((k + 1) / (n + 1)) for every count k: a list index instead of two logs
        self.tail = (-np.log((np.arange(n + 1) + 1) / (n + 1))).tolist()
        n1 = n + 1  # the moment updates' constant factors, once per fit
        self.moment_factors = (n / n1, n * (n - 1) / (n1 * n1), 3 / n1)
        self.medians = medians.tolist()
        self.window_scores = np.sort(training_scores).tolist()

    def raw(self, x: Sequence[float]) -> float:
        n, n1, tail, copod = self.n, self.n + 1, self.tail, self.copod
        a, b, c = self.moment_factors
        total = 0.0
        for (col, counts, mean, m2, m3), value in zip(self.columns, x, strict=True):
            # window values below / at or below this one: a dict for a column of few
            # distinct values, else one bisect and a second only on a tie
            below_or_at = counts.get(value) if counts is not None else None
            if below_or_at is not None:
                below, at_or_below = below_or_at
            else:
                at_or_below = below = bisect_right(col, value)
                if below and col[below - 1] == value:
                    below = bisect_left(col, value, 0, below)
            left = tail[at_or_below]
            right = tail[n - below]
            # scipy.stats.skew of the window plus this point, from the window's centred
            # sums m2, m3 updated by one point; a column scipy calls constant, or one of
            # skewness 0, gets left + right (PyOD: u_skew = u_l * -sign(s - 1) +
            # u_r * sign(s + 1), and nan_to_num makes scipy's nan 0)
            delta = value - mean
            d2 = delta * delta
            new_m3 = m3 + d2 * delta * b - delta * m2 * c
            scale = EPS * (mean + delta / n1)
            flat = (m2 + d2 * a) / n1 <= scale * scale or new_m3 == 0
            if copod:
                skewed = left + right if flat else right if new_m3 > 0 else left
                total += max(skewed, (left + right) / 2)
            else:  # ECOD: max(left, right, skewed), and skewed is one of the two or both
                total += left + right if flat else left if left > right else right
        return total

    def score(self, features: Sequence[float]) -> float:
        """0..1: the share of the window's own scores below this check's score."""
        x = [m if v != v else v for v, m in zip(features, self.medians, strict=True)]  # NaN
        below = bisect_left(self.window_scores, self.raw(x))
        return round(below / len(self.window_scores), 4)
