"""Per-series streaming state: score each new point with a model fitted on the past.

`SeriesStream.push(values)` takes the next points of one series (any number at a
time) and returns, for each, a score in 0..1 (NaN while warming up) and a flag. The
result does not depend on how the points are chunked and a point's score never uses
a later point: the detector is fitted on rows before the segment it scores, the tail
model on scores before it, and suppression only looks back.

Refits happen every `refit_every` points. With a `refit_executor` (a one-thread
pool in the job) the fit runs in the background while scoring goes on with the
previous model; without one (benchmark, tests) it runs inline, which gives the same
scores as a background fit that finishes before the next point arrives.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field

import numpy as np

from receiver.anomaly import features, windows
from receiver.anomaly.counters import Increases
from receiver.anomaly.detectors import COMBINES, DETECTORS, FittedDetector
from receiver.anomaly.explain import explain
from receiver.anomaly.thresholds import TailModel, slide, suppress


@dataclass(frozen=True)
class StreamConfig:
    """Detector and threshold policy of one series (all lengths in points)."""

    detector: str = "ecod"
    combine: str = "max"  # per-column tail scores: "max" (strangest column) or "sum" (PyOD)
    period: int = 0  # seasonal lag; used once enough history exists
    seasons: int = 1  # past periods in the seasonal baseline, as history allows
    train_points: int = windows.TRAIN_POINTS  # most recent feature rows a model is fitted on
    min_train: int = 200  # rows needed before the first fit
    refit_every: int = 100
    tail_every: int = windows.TAIL_EVERY  # points between refits of the tail model
    tail_level: float = 0.95
    min_scores: int = 100  # past scores needed before flagging
    score_history: int = 3000
    risk: float = 3e-4  # flag when P(score this high) < risk (SPOT uses 1e-4..1e-3)
    suppress: int = 288  # quiet points after a candidate before a new flag may be raised
    season_min_acf: float = 0.3  # use the seasonal column only where the series repeats
    counter: bool = False  # score the increase per step (counters.looks_like_counter)

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ValueError(f"unknown detector {self.detector!r}")
        if self.combine not in COMBINES:
            raise ValueError(f"unknown combine {self.combine!r}")
        if not 0 < self.risk < 1:
            raise ValueError("risk must be between 0 and 1")
        if min(self.train_points, self.min_train, self.refit_every, self.min_scores) < 1:
            raise ValueError("lengths must be positive")

    @property
    def first_score_index(self) -> int:
        """Index of the first point that gets a score (refits inline)."""
        return windows.first_score_index(self.min_train, self.min_scores, self.refit_every,
                                         self.tail_every)


@dataclass
class _Model:
    spec: features.FeatureSpec
    detector: FittedDetector
    first: int  # global index of its first training point
    fitted_at: int  # global index of the first point it may score (= end of training)
    train_cols: np.ndarray  # (k, n) training columns in time order: the next fit's base


def fit_detector(kind: str, spec: features.FeatureSpec, rows: np.ndarray, first: int,
                 end: int, previous: _Model | None, combine: str = "sum") -> _Model:
    """Fit on `rows` (points first..end-1). When the previous model's training window
    overlaps this one, its sorted columns are slid forward rather than sorted again."""
    cols = np.ascontiguousarray(rows.T)
    ranked = None
    if (previous is not None and previous.spec == spec
            and previous.first <= first <= previous.fitted_at <= end):
        leaving = first - previous.first
        entering = end - previous.fitted_at
        if leaving + entering < len(rows) // 2:
            old = previous.detector.sorted
            ranked = np.stack([
                slide(old[j], previous.train_cols[j, :leaving], cols[j, len(rows) - entering :])
                for j in range(len(cols))])
    return _Model(spec, FittedDetector(kind, rows, ranked=ranked, combine=combine),
                  first, end, cols)


@dataclass
class StreamResult:
    scores: np.ndarray  # 0..1, NaN where no score yet
    flags: np.ndarray  # bool
    # why, for each flagged point: index in this push -> explain.explain()'s dict
    explanations: dict[int, dict] = field(default_factory=dict)


def fit_spec(cfg: StreamConfig, end: int, period: int | None = None) -> features.FeatureSpec:
    """The richest feature set `end` points of history can train: seasonal columns
    over as many past periods as leave `min_train` rows."""
    period = cfg.period if period is None else period
    spec = features.FeatureSpec(0)
    for seasons in range(1, cfg.seasons + 1) if period else ():
        seasonal = features.FeatureSpec(period, seasons)
        if end - seasonal.lookback >= cfg.min_train:
            spec = seasonal
    return spec


def seasonal_strength(values: np.ndarray, period: int) -> float:
    """Autocorrelation of `values` at lag `period` (0 when too short or constant).

    A daily column only helps a series that repeats daily; on one that does not it
    adds noise to every score, so a stream checks before using it."""
    if period < 2 or len(values) < 2 * period + 10:
        return 0.0
    a, b = values[period:], values[:-period]
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    return float(np.dot(a, b)) / den if den > 0 else 0.0


def training_window(cfg: StreamConfig, end: int, period: int | None = None
                    ) -> tuple[features.FeatureSpec, int] | None:
    """Feature set and first point (local index) of the model fitted on the points
    before local index `end`; None while too few."""
    spec = fit_spec(cfg, end, period)
    first = max(spec.lookback, end - cfg.train_points)
    if end - first < cfg.min_train:
        return None
    return spec, first


class SeriesStream:
    """State of one series: recent values and their window sums, the fitted model,
    past scores, last flag."""

    def __init__(
        self, config: StreamConfig, refit_executor: Executor | None = None
    ) -> None:
        self.cfg = config
        self.executor = refit_executor
        self.sums = features.WindowSums()
        self.offset = 0  # global index of self.sums.values[0]
        self.raw_scores = np.empty(0)
        self.scored = 0  # raw scores ever produced; raw_scores holds the last of them
        self.ranked = np.empty(0)  # the tail model's past scores, sorted ...
        self.ranked_span = (0, 0)  # ... global raw-score indexes [from, to)
        self.model: _Model | None = None
        self.pending: Future | None = None
        self.tail: TailModel | None = None
        self.last_fit_request = -(10**12)
        self.last_candidate = -(10**12)
        self.last_tail_fit = -(10**12)
        self.season: int | None = None  # period in use, once decided
        self.season_strength = 0.0
        self.fit_hook: Callable[[], None] | None = None  # tests: observe refits
        self.increases = Increases() if config.counter else None

    @property
    def count(self) -> int:
        return self.offset + len(self.sums.values)

    def _keep(self) -> int:
        spec = features.FeatureSpec(self.cfg.period, self.cfg.seasons)
        return spec.lookback + self.cfg.train_points + self.cfg.refit_every

    def _maybe_refit(self, at: int) -> None:
        """Ask for a model fitted on everything before global index `at`."""
        if self.pending is not None and self.pending.done():
            model = self.pending.result()
            self.pending = None
            if model is not None:
                self.model = model
        if at - self.last_fit_request < self.cfg.refit_every or self.pending is not None:
            return
        self.last_fit_request = at
        window = training_window(self.cfg, at - self.offset, self._period(at - self.offset))
        if window is not None:
            spec, first = window
            rows = self.sums.rows(first, at - self.offset, spec)
            args = (self.cfg.detector, spec, rows, first + self.offset, at, self.model,
                    self.cfg.combine)
            if self.executor is None:
                self.model = fit_detector(*args)
            else:
                self.pending = self.executor.submit(fit_detector, *args)
        if self.fit_hook:
            self.fit_hook()

    def _period(self, end: int) -> int:
        """The configured period if the history before local index `end` repeats at
        it, else 0; decided once, when the history first covers two periods."""
        cfg = self.cfg
        if self.season is None and cfg.period and end >= 2 * cfg.period + 10:
            strength = seasonal_strength(self.sums.values[:end], cfg.period)
            self.season = cfg.period if strength >= cfg.season_min_acf else 0
            self.season_strength = strength
        return self.season or 0 if cfg.season_min_acf > 0 else cfg.period

    def push(self, new_values: np.ndarray) -> StreamResult:
        """Append points (finite floats) and score each of them."""
        new_values = np.asarray(new_values, dtype=np.float64)
        if not np.all(np.isfinite(new_values)):
            raise ValueError("values must be finite numbers")
        if self.increases is not None:
            new_values = self.increases(new_values)
        start = self.count
        self.sums.extend(new_values)
        end = self.count
        scores = np.full(len(new_values), np.nan)
        flags = np.zeros(len(new_values), dtype=bool)
        explanations: dict[int, dict] = {}
        pos = start
        while pos < end:
            self._maybe_refit(pos)
            seg_end = min(end, self.last_fit_request + self.cfg.refit_every)
            if self.model is not None:
                self._score(pos, seg_end, scores[pos - start : seg_end - start],
                            flags[pos - start : seg_end - start])
                for k in np.flatnonzero(flags[pos - start : seg_end - start]):
                    explanations[pos - start + int(k)] = self.explain_at(pos + int(k))
            pos = seg_end
        self._trim()
        return StreamResult(scores, flags, explanations)

    def explain_at(self, at: int) -> dict:
        """Why the point at global index `at` (one of the last pushed) scored as it
        did, under the current model (the one that scored it, for a flag)."""
        spec = self.model.spec
        local = at - self.offset
        row = self.sums.rows(local, local + 1, spec)[0]
        recent = float(self.sums.short[local]) / windows.SHORT
        why = explain(self.model.detector, spec.names, row, recent, spec.period, spec.seasons)
        return {**why, "scored_on": "increase"} if self.cfg.counter else why

    def _score(self, lo: int, hi: int, scores_out: np.ndarray, flags_out: np.ndarray) -> None:
        """Raw scores for [lo, hi) with one model, then tail probabilities block by block."""
        model = self.model
        rows = self.sums.rows(lo - self.offset, hi - self.offset, model.spec)
        before = len(self.raw_scores)
        self.raw_scores = np.concatenate((self.raw_scores, model.detector.score(rows)))
        self.scored += hi - lo
        cfg = self.cfg
        i = lo
        while i < hi:
            if i - self.last_tail_fit >= cfg.tail_every:
                self.last_tail_fit = i
                end = before + i - lo
                past = self.raw_scores[max(0, end - cfg.score_history) : end]
                if len(past) >= cfg.min_scores:
                    ranked = self._rank(end - len(past), end)
                    self.tail = TailModel.fit(past, cfg.tail_level, ranked)
            j = min(hi, self.last_tail_fit + cfg.tail_every)
            if self.tail is not None:
                raw = self.raw_scores[before + i - lo : before + j - lo]
                prob = self.tail.tail_probability(raw)
                scores_out[i - lo : j - lo] = 1.0 - prob
                flags_out[i - lo : j - lo], self.last_candidate = suppress(
                    prob < cfg.risk, i, self.last_candidate, cfg.suppress
                )
            i = j

    def _rank(self, lo: int, hi: int) -> np.ndarray:
        """raw_scores[lo:hi] (local indexes) sorted, slid from the previous window."""
        base = self.scored - len(self.raw_scores)  # global index of raw_scores[0]
        was_lo, was_hi = (g - base for g in self.ranked_span)
        if 0 <= was_lo <= lo <= was_hi <= hi and (lo - was_lo) + (hi - was_hi) < (hi - lo) // 2:
            self.ranked = slide(self.ranked, self.raw_scores[was_lo:lo],
                                self.raw_scores[was_hi:hi])
        else:
            self.ranked = np.sort(self.raw_scores[lo:hi])
        self.ranked_span = (lo + base, hi + base)
        return self.ranked

    def _trim(self) -> None:
        extra = len(self.sums.values) - self._keep()
        if extra > 0:
            self.sums.drop(extra)
            self.offset += extra
        # keep the scores the next tail fit slides out of its window
        history = self.cfg.score_history
        keep = min(max(history, self.scored - self.ranked_span[0]), 2 * history)
        if len(self.raw_scores) > keep:
            self.raw_scores = self.raw_scores[-keep:]


DAY = 86400.0


def config_for_step(
    step_seconds: float,
    detector: str = "ecod",
    season_seconds: float = DAY,
    suppress_seconds: float = 24 * 3600,
    **overrides,
) -> StreamConfig:
    """A policy expressed in time, turned into points for a series sampled every step."""
    if not step_seconds > 0:
        raise ValueError("step must be positive")
    period = int(round(season_seconds / step_seconds)) if season_seconds else 0
    params = {
        "detector": detector,
        "period": period if period >= 2 else 0,
        "suppress": max(int(round(suppress_seconds / step_seconds)), 0),
    }
    params.update(overrides)
    return StreamConfig(**params)
