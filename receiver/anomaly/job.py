"""The anomaly job: every interval, read each series' new points and score them.

Per series it keeps a `SeriesStream` and the time of the last scored point. The first
run (and any run after a break) reads the whole history window and scores it as a
stream (backfill); later runs read only the points since. Whatever goes wrong with
one series (Prometheus down, gaps, NaN, a constant or too short series, a query
returning several series) skips that series with a reason and leaves the others be.
A run's scores are written in batches; its forecasts (forecast_job.py) run after the
scores, on the forecasts this worker claimed.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import numpy as np
import requests

from receiver.anomaly import claims
from receiver.anomaly import scores as anomaly_store
from receiver.anomaly.counters import KIND_POINTS, looks_like_counter
from receiver.anomaly.explain import summary
from receiver.anomaly.forecast_job import Forecaster, ForecastOutcome, claim_name
from receiver.anomaly.prometheus_source import Samples, SkipSeries, query_range
from receiver.anomaly.settings import AnomalyJobSettings, SeriesSettings
from receiver.anomaly.stream import SeriesStream, StreamConfig, config_for_step

log = logging.getLogger("receiver.anomaly")
GAP_TOLERANCE = 1.5  # steps between samples before it counts as a gap
CHUNK = 500
# scores written per transaction: a commit per series is most of a run's time at
# thousands of series (bench/anomaly_scale.py)
SAVE_BATCH = 500


def stream_config(s: SeriesSettings) -> StreamConfig:
    return config_for_step(s.step_seconds, detector=s.detector, season_seconds=s.season_seconds,
                           suppress_seconds=s.suppress_seconds, risk=s.risk,
                           min_train=s.min_train, min_scores=s.min_scores,
                           refit_every=s.refit_every)


def describe(explanation: dict, step_seconds: float, at: float) -> dict:
    """The stream's explanation in time: when, the season's lag in seconds, a summary."""
    out = {**explanation, "flagged_at": datetime.fromtimestamp(at, UTC).isoformat(),
           "summary": summary(explanation, step_seconds)}
    if out.get("season"):
        out["season"] = {**out["season"],
                         "lag_seconds": out["season"]["period_points"] * step_seconds}
    return out


def first_score_after(cfg: StreamConfig) -> int:
    """Points a series needs before its first score."""
    return cfg.first_score_index + 1


@dataclass
class SeriesState:
    stream: SeriesStream
    last_time: float


@dataclass
class Outcome:
    series: str
    status: str  # "scored", "up_to_date" or a skip reason
    score: float | None = None
    anomalous: bool = False


def contiguous_tail(samples: Samples, step: float) -> tuple[Samples, str | None]:
    """The longest run of finite, evenly spaced samples ending at the newest one."""
    t, v = samples.times, samples.values
    breaks = np.flatnonzero(~np.isfinite(v))
    last_bad = int(breaks[-1]) if len(breaks) else -1
    gaps = np.flatnonzero(np.diff(t) > GAP_TOLERANCE * step)
    last_gap = int(gaps[-1]) if len(gaps) else -1  # break between last_gap and last_gap+1
    start = max(last_bad + 1, last_gap + 1)
    why = None
    if start > 0:
        why = "nan" if last_bad + 1 >= last_gap + 1 else "gap"
    return Samples(t[start:], v[start:]), why


class AnomalyJob:
    def __init__(self, settings: AnomalyJobSettings, store, session: requests.Session | None = None,
                 progress: bool = False, background_refit: bool = True) -> None:
        self.settings = settings
        self.store = store
        self.session = session or requests.Session()
        self.progress = progress
        self.executor = ThreadPoolExecutor(1, "anomaly-refit") if background_refit else None
        self.states: dict[str, SeriesState] = {}
        self.worker = claims.worker_id()
        self.forecaster = Forecaster(settings.forecasts, self.session, settings.prometheus_url,
                                     settings.timeout_seconds)
        self.forecasts: list[ForecastOutcome] = []  # of the last run
        self.unsaved: list[anomaly_store.LatestScore] = []

    def close(self) -> None:
        if self.executor:
            self.executor.shutdown(wait=False, cancel_futures=True)
        self.session.close()
        if self.settings.share_series:
            try:
                with self.store.transaction() as conn:
                    claims.release(conn, self.worker)
            except Exception as exc:  # the leases run out by themselves
                log.warning("anomaly claims not released", extra={"error": type(exc).__name__})

    def run_once(self, now: float | None = None) -> list[Outcome]:
        """Score this worker's series and run its forecasts (outcomes in `forecasts`)."""
        now = time.time() if now is None else now
        series, forecasts = self.claimed(now)
        self.unsaved = []
        outcomes = [self.run_series(s, now) for s in series]
        self.save()
        self.forecasts = self.forecaster.run(forecasts, now)
        return outcomes

    def claimed(self, now: float) -> tuple[list[SeriesSettings], list[str]]:
        """The series this worker scores and the forecasts it runs this run; the states
        of the others are dropped (another worker has them, and a series coming back is
        backfilled afresh)."""
        forecasts = {claim_name(f.name): f.name for f in self.settings.forecasts}
        if not self.settings.share_series:
            return list(self.settings.series), list(forecasts.values())
        lease = self.settings.lease_seconds or 2 * self.settings.interval_seconds
        at = datetime.fromtimestamp(now, UTC)
        with self.store.transaction() as conn:  # each shared fairly on its own
            mine = claims.claim(conn, self.worker, [s.name for s in self.settings.series],
                                at, lease)
            if forecasts:
                mine |= claims.claim(conn, self.worker, list(forecasts), at, lease)
        for name in set(self.states) - mine:
            del self.states[name]
        return ([s for s in self.settings.series if s.name in mine],
                [name for claim, name in forecasts.items() if claim in mine])

    def run_forever(self, stop: threading.Event) -> None:
        """Run every interval until `stop` is set; a failed run (say the database is
        away) is logged and the next one tried, so the job outlives outages."""
        while not stop.is_set():
            began = time.monotonic()
            try:
                for outcome in self.run_once():
                    log.info("anomaly run", extra={"series": outcome.series,
                                                   "status": outcome.status,
                                                   "score": outcome.score})
                for done in self.forecasts:
                    log.info("forecast run", extra={"forecast": done.forecast,
                                                    "status": done.status,
                                                    "series": done.series})
            except Exception as exc:
                log.warning("anomaly run failed", extra={"error": type(exc).__name__})
            stop.wait(max(0.0, self.settings.interval_seconds - (time.monotonic() - began)))

    def run_series(self, s: SeriesSettings, now: float) -> Outcome:
        try:
            return self._score(s, now)
        except SkipSeries as skip:
            if skip.reason != "prometheus_unreachable":  # else resume where it stopped
                self.states.pop(s.name, None)
            self._skip(s.name, skip.reason, skip.detail)
            return Outcome(s.name, skip.reason)

    def _skip(self, series: str, reason: str, detail: str) -> None:
        log.warning("anomaly series skipped", extra={"series": series, "reason": reason,
                                                     "detail": detail})
        at = datetime.now(UTC)
        with self.store.transaction() as conn:
            anomaly_store.record_skip(conn, series, reason, detail, at)
            anomaly_store.forget_score(conn, series)

    def _score(self, s: SeriesSettings, now: float) -> Outcome:
        step = s.step_seconds
        end = math.floor(now / step) * step
        state = self.states.get(s.name)
        start = end - s.history_seconds if state is None else state.last_time + step
        if start > end:
            return Outcome(s.name, "up_to_date")
        samples = query_range(self.session, self.settings.prometheus_url, s.query, start, end,
                              step, self.settings.timeout_seconds)
        if state is None:
            result = self._backfill(s, samples)
        else:
            result = self._advance(s, state, samples)
        if result is None:
            return Outcome(s.name, "up_to_date")
        scores, flags, values, last_time, explanations = result
        if not np.isfinite(scores[-1]):
            raise SkipSeries("too_little_history", "still warming up")
        anomalous = bool(flags.any() or scores[-1] >= 1 - s.risk)
        explanation = None
        if anomalous:
            stream = self.states[s.name].stream
            at = max(explanations) if explanations else len(scores) - 1
            explanation = explanations.get(at) or stream.explain_at(stream.count - 1)
            explanation = describe(explanation, s.step_seconds,
                                   last_time - (len(scores) - 1 - at) * s.step_seconds)
        latest = anomaly_store.LatestScore(
            s.name, float(scores[-1]), anomalous, float(values[-1]),
            datetime.fromtimestamp(last_time, UTC),
            [sel.model_dump(exclude_none=True) for sel in s.relates_to], explanation)
        self.unsaved.append(latest)
        if len(self.unsaved) >= SAVE_BATCH:
            self.save()
        return Outcome(s.name, "scored", float(scores[-1]), anomalous)

    def save(self) -> None:
        """Write the scores not yet written, in one transaction."""
        if self.unsaved:
            with self.store.transaction() as conn:
                anomaly_store.save_scores(conn, self.unsaved, datetime.now(UTC))
            self.unsaved = []

    def _backfill(self, s: SeriesSettings, samples: Samples):
        tail, why = contiguous_tail(samples, s.step_seconds)
        counter = s.kind == "counter" or (
            s.kind == "auto" and looks_like_counter(tail.values[:KIND_POINTS]))
        cfg = replace(stream_config(s), counter=counter)
        need = first_score_after(cfg)
        if len(tail.values) < need:
            reason = why or "too_little_history"
            raise SkipSeries(reason, f"{len(tail.values)} usable points, need {need}")
        if np.ptp(tail.values) == 0:
            raise SkipSeries("constant", f"value {tail.values[0]:g} throughout the history")
        # the history is scored with inline refits (the same scores as the benchmark);
        # from then on new points never wait for a refit
        stream = SeriesStream(cfg)
        scores, flags, explanations = self._push(stream, tail.values, s.name)
        stream.executor = self.executor
        self.states[s.name] = SeriesState(stream, float(tail.times[-1]))
        return scores, flags, tail.values, float(tail.times[-1]), explanations

    def _advance(self, s: SeriesSettings, state: SeriesState, samples: Samples):
        if not len(samples.times):
            return None
        times = np.concatenate(([state.last_time], samples.times))
        if np.any(np.diff(times) > GAP_TOLERANCE * s.step_seconds):
            raise SkipSeries("gap", "samples missing since the last run")
        if not np.all(np.isfinite(samples.values)):
            raise SkipSeries("nan", "the series returned NaN")
        scores, flags, explanations = self._push(state.stream, samples.values, s.name)
        state.last_time = float(samples.times[-1])
        return scores, flags, samples.values, state.last_time, explanations

    def _push(self, stream: SeriesStream, values: np.ndarray, name: str):
        chunks = range(0, len(values), CHUNK)
        if self.progress and len(values) > CHUNK:
            from tqdm import tqdm

            bar = tqdm(total=len(values), desc=f"backfill {name}", unit="pt", leave=False)
        else:
            bar = None
        results = []
        explanations: dict[int, dict] = {}
        for i in chunks:
            result = stream.push(values[i : i + CHUNK])
            results.append(result)
            explanations.update({i + k: e for k, e in result.explanations.items()})
            if bar:
                bar.update(len(values[i : i + CHUNK]))
        if bar:
            bar.close()
        return (np.concatenate([r.scores for r in results]),
                np.concatenate([r.flags for r in results]), explanations)
