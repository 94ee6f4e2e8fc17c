"""PyOD detectors fitted on past feature rows, scoring new rows without seeing each other.

PyOD's ECOD and COPOD `decision_function` recompute their empirical distributions on
the training rows *plus the whole batch being scored*, so a batch's score depends on
its own future rows. These two models are nothing but their training sample, so here
fitting them is sorting that sample, and `FittedDetector.score` applies PyOD's formulas
to every new row as if it were the only one appended to it (exactly what PyOD returns
for a batch of one; tests/receiver/anomaly/test_detectors.py holds the two equal),
vectorised with binary search. That keeps a refit under a millisecond, where PyOD's
own `fit` (which also scores the training rows) costs several. HBOS and IForest score
rows independently, so they are fitted and applied through PyOD itself.

Beyond the training range an empirical CDF saturates at 1/(n+1): a spike ten times
larger than anything seen would score like one just past the maximum. The tail score
therefore keeps growing past the training extremes, by the distance in robust spreads
(an exponential tail), so the size of a break still counts.
"""

from __future__ import annotations

import warnings

import numpy as np

DETECTORS = ("ecod", "copod", "hbos", "iforest")
# How per-column ECOD/COPOD tail scores become one: PyOD sums them; "max" takes the
# strangest column alone, so one broken feature is not diluted by the ordinary others
# and the flag can name the feature that made it.
COMBINES = ("sum", "max")


def _robust_scales(sorted_cols: np.ndarray) -> np.ndarray:
    """Median absolute deviation of each sorted column (as a std. deviation), never zero.

    `sorted_cols` is (k, n), each row one sorted column. The deviations below and
    above the centre are each already ordered, so they are merged (a stable sort of two
    runs is one linear merge) instead of selecting a median from scratch.
    """
    n = sorted_cols.shape[1]
    h = n // 2
    centre = sorted_cols[:, h : h + 1]
    below = (centre - sorted_cols[:, :h])[:, ::-1]
    deviations = np.concatenate((below, sorted_cols[:, h:] - centre), axis=1)
    deviations.sort(axis=1, kind="stable")
    if n % 2:
        median = deviations[:, h]
    else:
        median = (deviations[:, h - 1] + deviations[:, h]) / 2
    mad = 1.4826 * median
    std = sorted_cols.std(axis=1)
    return np.where(mad > 0, mad, np.where(std > 0, std, 1.0))


class FittedDetector:
    """A detector fitted on training rows; `score` is a pure function of one row."""

    def __init__(self, kind: str, train: np.ndarray, seed: int = 0,
                 ranked: np.ndarray | None = None, combine: str = "sum") -> None:
        """`ranked` may give train's columns already sorted, shape (k, n)."""
        if kind not in DETECTORS:
            raise ValueError(f"unknown detector {kind!r} (choose from {', '.join(DETECTORS)})")
        if combine not in COMBINES:
            raise ValueError(f"unknown combine {combine!r}")
        self.combine = combine
        if train.ndim != 2 or len(train) < 10:
            raise ValueError("need at least 10 training rows")
        self.kind = kind
        self.n = len(train)
        self.model = self._fit_pyod(kind, train, seed) if kind in ("hbos", "iforest") else None
        cols = np.ascontiguousarray(train.T)  # one row per feature: sorts and sums run
        self.sorted = np.sort(cols, axis=1) if ranked is None else ranked
        self.scale = _robust_scales(self.sorted)
        # sign of the skewness for PyOD's skewness correction, from the training rows
        centred = cols - cols.mean(axis=1, keepdims=True)
        third = (centred * centred * centred).mean(axis=1)
        self.skew_sign = np.sign(np.round(third / self.scale**3, 9))

    @staticmethod
    def _fit_pyod(kind: str, train: np.ndarray, seed: int):
        from pyod.models.hbos import HBOS
        from pyod.models.iforest import IForest

        if kind == "hbos":
            model = HBOS(n_bins="auto")
        else:
            model = IForest(n_estimators=50, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(train)
        return model

    def _tails(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """-log of the left and right empirical tail probabilities, row appended alone."""
        n = self.n
        below = np.empty_like(rows)
        above = np.empty_like(rows)
        for j, col in enumerate(self.sorted):
            below[:, j] = np.searchsorted(col, rows[:, j], side="right")
            above[:, j] = n - np.searchsorted(col, rows[:, j], side="left")
        u_l = -np.log((below + 1) / (n + 1))
        u_r = -np.log((above + 1) / (n + 1))
        # exponential tails past the training extremes
        u_l += np.maximum(self.sorted[:, 0] - rows, 0) / self.scale
        u_r += np.maximum(rows - self.sorted[:, -1], 0) / self.scale
        return u_l, u_r

    def score(self, rows: np.ndarray) -> np.ndarray:
        """Outlier score per row (higher is stranger); no row influences another."""
        rows = np.asarray(rows, dtype=np.float64)
        if self.kind in ("hbos", "iforest"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return self.model.decision_function(rows)
        per_column = self.column_scores(rows)
        if self.combine == "max":
            return per_column.max(axis=1)
        return per_column.sum(axis=1)

    def column_scores(self, rows: np.ndarray) -> np.ndarray:
        """(n, k) per-column tail scores of ECOD/COPOD: which feature is strange."""
        if self.kind in ("hbos", "iforest"):
            raise ValueError(f"{self.kind} has no per-column scores")
        u_l, u_r = self._tails(np.asarray(rows, dtype=np.float64))
        sk = self.skew_sign
        u_skew = u_l * -1 * np.sign(sk - 1) + u_r * np.sign(sk + 1)
        if self.kind == "ecod":
            return np.maximum(np.maximum(u_l, u_r), u_skew)
        return np.maximum(u_skew, (u_l + u_r) / 2)  # copod
