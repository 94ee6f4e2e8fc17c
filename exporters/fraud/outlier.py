"""Outlier score of a check against the recent ones: a PyOD detector refitted in the background.

Checks append their feature vectors to a sliding window; a background thread refits the
detector on it every `refit_seconds` and swaps the fitted model in. The request path
only scores one point against the last fitted model and never fits.

For ECOD (the default) the request path does not call `decision_function`: PyOD's
version re-ranks the whole training window for each call (milliseconds, and it mutates
the detector, so it is not thread-safe). ECOD's score of one new point only needs the
training columns sorted, which the refit stores; `EcodScorer.score` gives the same
value as `ECOD.decision_function` on that point (a test holds it to that). Other PyOD
detectors are scored through their own `decision_function`.

The score returned is the share of the window's own scores below the point's score
(0..1): comparable across refits and detectors, unlike raw scores.
"""

from __future__ import annotations

import bisect
import importlib
import logging
import math
import threading
from collections import deque
from collections.abc import Callable, Sequence

import numpy as np

log = logging.getLogger("ticketmon.fraud.outlier")


class EcodScorer:
    """ECOD's left/right/skew-corrected tail probabilities of one point, from sorted columns.

    Columns are kept as sorted Python lists: `bisect` on a list costs well under a
    microsecond, numpy's searchsorted on one value costs several.
    """

    def __init__(self, train: np.ndarray) -> None:
        from scipy.stats import skew

        self.columns = [sorted(col) for col in train.T.tolist()]
        self.n = train.shape[0]
        self.skew_sign = np.sign(np.nan_to_num(skew(train, axis=0))).tolist()  # constant: 0

    def score(self, x: Sequence[float]) -> float:
        n1 = self.n + 1
        total = 0.0
        for col, value, sign in zip(self.columns, x, self.skew_sign, strict=True):
            # ECDF over the window plus the point itself, as ECOD computes it
            u_l = -math.log((bisect.bisect_right(col, value) + 1) / n1)
            u_r = -math.log((self.n - bisect.bisect_left(col, value) + 1) / n1)
            u_skew = u_l * -1 * _sign(sign - 1) + u_r * _sign(sign + 1)
            total += max(u_l, u_r, u_skew)
        return total


def _sign(v: float) -> float:
    return (v > 0) - (v < 0)


class Fitted:
    def __init__(self, medians: np.ndarray, score: Callable[[list[float]], float],
                 window_scores: np.ndarray) -> None:
        self.medians = medians.tolist()
        self.score_raw = score
        self.window_scores = np.sort(window_scores).tolist()

    def score(self, features: list[float]) -> float:
        x = [m if math.isnan(v) else v for v, m in zip(features, self.medians, strict=True)]
        raw = self.score_raw(x)
        below = bisect.bisect_left(self.window_scores, raw)
        return round(below / len(self.window_scores), 4)


def fit(detector_name: str, rows: np.ndarray) -> Fitted:
    medians = np.nanmedian(np.where(np.isnan(rows).all(axis=0), 0.0, rows), axis=0)
    medians = np.where(np.isnan(medians), 0.0, medians)
    data = np.where(np.isnan(rows), medians, rows)
    module = importlib.import_module(f"pyod.models.{detector_name.lower()}")
    detector = getattr(module, detector_name)()
    detector.fit(data)
    if detector_name == "ECOD":
        scorer = EcodScorer(data)
        return Fitted(medians, scorer.score, detector.decision_scores_)
    lock = threading.Lock()

    def score(x: list[float]) -> float:
        with lock:
            return float(detector.decision_function(np.asarray([x], dtype=float))[0])

    return Fitted(medians, score, detector.decision_scores_)


class OutlierModel:
    """The sliding window, the background refit, and the current fitted model."""

    def __init__(self, detector: str, window: int, min_samples: int, refit_seconds: float,
                 on_refit: Callable[[], None] | None = None) -> None:
        self.detector = detector
        self.window: deque[list[float]] = deque(maxlen=window)
        self.min_samples = min_samples
        self.refit_seconds = refit_seconds
        self.on_refit = on_refit
        self.fitted: Fitted | None = None
        self.fits = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, features: list[float]) -> None:
        self.window.append(features)  # deque.append is atomic

    def score(self, features: list[float]) -> float | None:
        fitted = self.fitted
        return None if fitted is None else fitted.score(features)

    def refit(self) -> bool:
        rows = list(self.window)
        if len(rows) < self.min_samples:
            return False
        try:
            self.fitted = fit(self.detector, np.asarray(rows, dtype=float))
            self.fits += 1
        except Exception:  # a bad window must not kill the thread: keep the last model
            log.exception("outlier refit failed", extra={"detector": self.detector})
            return False
        return True

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="fraud-outlier-refit",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.refit_seconds):
            self.refit()
            if self.on_refit:
                self.on_refit()
