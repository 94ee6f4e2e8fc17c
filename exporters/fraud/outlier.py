"""Outlier score of a check against the recent ones: PyOD refitted off the request path.

Each check writes its feature vector into a fixed numpy ring (the sliding window). A
background thread sends the window to the refitter process every `refit_seconds`
(exporters.fraud.refitter: the only process that imports PyOD) and swaps in the
`EcdfScorer` built from its answer. The request path only scores one point against
the last fitted model; it never fits and never imports PyOD.

The score returned is the share of the window's own scores below the point's score
(0..1): comparable across refits and detectors, unlike raw scores.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable

import numpy as np

from exporters.fraud import refitter as refitter_mod
from exporters.fraud.ecdf import EcdfScorer

log = logging.getLogger("ticketmon.fraud.outlier")


class OutlierModel:
    """The sliding window, the background refit, and the current fitted scorer."""

    def __init__(self, detector: str, window: int, features: int, min_samples: int,
                 refit_seconds: float, on_refit: Callable[[bool], None] | None = None) -> None:
        self.detector = detector
        self.rows = np.full((window, features), np.nan)
        self._next = itertools.count()  # next() is atomic under the GIL: no lock per check
        self.added = 0
        self.min_samples = min_samples
        self.refit_seconds = refit_seconds
        self.on_refit = on_refit
        self.scorer: EcdfScorer | None = None
        self.fits = 0
        self.failures = 0
        self._refitter: refitter_mod.Refitter | None = None
        self._private = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, features: list[float]) -> None:
        i = next(self._next)
        self.rows[i % len(self.rows)] = features
        self.added = i + 1

    def score(self, features: list[float]) -> float | None:
        scorer = self.scorer
        return None if scorer is None else scorer.score(features)

    def _window(self) -> np.ndarray:
        filled = min(self.added, len(self.rows))
        return self.rows[:filled].copy()

    def _client(self) -> refitter_mod.Refitter:
        """The service's shared refitter if the gunicorn master started one, else ours."""
        if self._refitter is None:
            if refitter_mod.shared is not None:
                self._refitter = refitter_mod.shared
            else:
                self._refitter = refitter_mod.Refitter().start()
                self._private = True
        return self._refitter

    def refit(self) -> bool:
        rows = self._window()
        if len(rows) < self.min_samples:
            return False
        try:
            fit = self._client().fit(self.detector, rows)
            self.scorer = EcdfScorer(fit.detector, fit.sorted_columns, fit.training_scores,
                                     fit.medians)
        except (refitter_mod.RefitError, ValueError) as exc:
            self.failures += 1  # keep the last model: a stale score beats none
            log.warning("outlier refit failed", extra={"detector": self.detector,
                                                        "error": str(exc)[:300]})
            return False
        self.fits += 1
        return True

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="fraud-outlier-refit",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._private and self._refitter is not None:
            self._refitter.stop()
            self._refitter = None
            self._private = False

    def _loop(self) -> None:
        while not self._stop.wait(self.refit_seconds):
            ok = self.refit()
            if self.on_refit:
                self.on_refit(ok)
