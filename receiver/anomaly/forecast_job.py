"""Capacity forecasts inside the anomaly job, and the ticketmon_forecast_* gauges.

Every `interval_seconds` a forecast reads its whole history window again (one
query_range for all its series), cleans each series and fits the seasonal model
(forecast.py); nothing is carried from run to run but the results, so a series that
appears is forecast as soon as it has `min_points`, and one that disappears drops
out of the gauges at the next run.

Bad input never stops the job. Per series: NaN and short gaps are interpolated, a
gap longer than `max_gap_seconds` cuts the history to what follows it, an upward
jump (a top-up, a restock, files deleted: the "counter reset" of a draining gauge)
is taken out of the history so the drain before it still counts, and a series with
too little left is skipped with a reason. Per forecast: a Prometheus that is slow
(timeout) or answers errors skips the run; the last results stay, as absolute
times, for three intervals and are then dropped rather than shown stale.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import requests
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from receiver.anomaly import forecast as model
from receiver.anomaly.forecast_settings import ForecastSettings
from receiver.anomaly.prometheus_source import Samples, SkipSeries, query_range_by

log = logging.getLogger("receiver.anomaly.forecast")
REFILL_SPREADS = 8.0  # an upward step this many times the 90th percentile |step| is a refill
KEEP_RUNS = 3  # results outlive failed runs this many intervals


@dataclass(frozen=True)
class SeriesForecast:
    """Absolute times (unix seconds; inf: not within the horizon)."""

    key: tuple[str, ...]
    exhausts_at: float
    earliest: float
    latest: float


@dataclass
class ForecastRun:
    at: float
    series: dict[tuple[str, ...], SeriesForecast]


@dataclass(frozen=True)
class ForecastOutcome:
    forecast: str
    status: str  # "forecast", "up_to_date" or a skip reason of the whole query
    series: int = 0  # series forecast
    skipped: int = 0  # series skipped


def claim_name(name: str) -> str:
    """The forecast's row among the series claimed in the database."""
    return f"forecast:{name}"


def prepare(samples: Samples, step: float, max_gap_seconds: float,
            end: float) -> tuple[np.ndarray, float]:
    """The usable history on a regular grid, and the time of its last point.

    Raises SkipSeries when nothing usable is left."""
    ok = np.isfinite(samples.values)
    if not ok.any():
        raise SkipSeries("nan", "every sample is NaN")
    times, values = samples.times[ok], samples.values[ok]
    if end - times[-1] > max(max_gap_seconds, step):
        raise SkipSeries("stale", f"no sample for {end - times[-1]:.0f}s")
    slots = np.rint((times - times[0]) / step).astype(np.int64)
    holes = np.diff(slots) - 1
    long = np.flatnonzero(holes * step > max_gap_seconds)
    if len(long):  # only what follows the last long gap
        cut = int(long[-1]) + 1
        times, values, slots = times[cut:], values[cut:], slots[cut:] - slots[cut]
    grid = np.arange(slots[-1] + 1)
    filled = np.interp(grid, slots, values)
    return without_refills(filled), float(times[-1])


def without_refills(values: np.ndarray) -> np.ndarray:
    """Lift the history before each upward jump by the jump, so the series reads as one
    continuous drain ending at its current value."""
    steps = np.diff(values)
    if not len(steps):
        return values
    typical = float(np.quantile(np.abs(steps), 0.9))
    refill = steps > (REFILL_SPREADS * typical if typical > 0 else 0.0)
    if not refill.any():
        return values
    # the jump becomes an ordinary step: the median of the others
    jumps = np.where(refill, steps - float(np.median(steps[~refill])), 0.0)
    lift = np.concatenate((np.cumsum(jumps[::-1])[::-1], [0.0]))
    return values + lift


def forecast_series(f: ForecastSettings, values: np.ndarray, last_time: float,
                    key: tuple[str, ...]) -> SeriesForecast:
    """Exhaustion times of one cleaned series (`prepare`), the band's edges included."""
    if len(values) < f.min_points:
        raise SkipSeries("too_little_history", f"{len(values)} usable points, need "
                                               f"{f.min_points}")
    if values[-1] <= f.floor:  # exhausted already
        steps = model.Exhaustion(0.0, 0.0, 0.0)
    else:
        period = int(round(f.season_seconds / f.step_seconds)) if f.season_seconds else 0
        horizon = max(1, int(f.horizon_seconds // f.step_seconds))
        steps = model.exhaustion(model.fit(values, period), f.floor, horizon, f.band)

    def at(n: float) -> float:
        return last_time + n * f.step_seconds

    return SeriesForecast(key, at(steps.steps), at(steps.earliest), at(steps.latest))


class Forecaster:
    """Runs the forecasts this worker holds and keeps their latest results for /metrics."""

    def __init__(self, forecasts: list[ForecastSettings], session: requests.Session,
                 prometheus_url: str, timeout_seconds: float) -> None:
        self.forecasts = {f.name: f for f in forecasts}
        self.session = session
        self.prometheus_url = prometheus_url
        self.timeout = timeout_seconds
        self.runs: dict[str, ForecastRun] = {}
        self.tried: dict[str, float] = {}
        self.skipped: Counter[tuple[str, str]] = Counter()
        self.lock = threading.Lock()
        self.labels = sorted({label for f in forecasts for label in f.by})

    def run(self, names: Iterable[str], now: float) -> list[ForecastOutcome]:
        names = set(names)
        with self.lock:
            for gone in set(self.runs) - names:  # another worker holds it now
                del self.runs[gone]
        return [self.run_one(self.forecasts[n], now) for n in sorted(names)]

    def run_one(self, f: ForecastSettings, now: float) -> ForecastOutcome:
        if now - self.tried.get(f.name, -math.inf) < f.interval_seconds:
            return ForecastOutcome(f.name, "up_to_date")
        self.tried[f.name] = now
        end = math.floor(now / f.step_seconds) * f.step_seconds
        try:
            found, bad = query_range_by(self.session, self.prometheus_url, f.query,
                                        end - f.history_seconds, end, f.step_seconds, f.by,
                                        self.timeout)
        except SkipSeries as skip:
            self._skip(f.name, skip, count=1)
            with self.lock:
                run = self.runs.get(f.name)
                if run and now - run.at > KEEP_RUNS * f.interval_seconds:
                    del self.runs[f.name]
            return ForecastOutcome(f.name, skip.reason)
        results: dict[tuple[str, ...], SeriesForecast] = {}
        for key, samples in found.items():
            try:
                values, last = prepare(samples, f.step_seconds, f.max_gap_seconds, end)
                results[key] = forecast_series(f, values, last, key)
            except SkipSeries as skip:
                bad[key] = skip
        for skip in bad.values():
            self._skip(f.name, skip)
        if len(results) > f.max_series:  # keep those closest to their floor
            kept = sorted(results.values(), key=lambda r: (r.exhausts_at, r.key))[:f.max_series]
            self.skipped[f.name, "over_max_series"] += len(results) - f.max_series
            results = {r.key: r for r in kept}
        with self.lock:
            self.runs[f.name] = ForecastRun(now, results)
        return ForecastOutcome(f.name, "forecast", len(results), len(bad))

    def _skip(self, name: str, skip: SkipSeries, count: int = 1) -> None:
        log.info("forecast skipped", extra={"forecast": name, "reason": skip.reason,
                                            "detail": skip.detail})
        self.skipped[name, skip.reason] += count

    # -- /metrics ----------------------------------------------------------------------
    def collect(self, now: float | None = None) -> Iterable[Metric]:
        """prometheus_client collector: seconds left are counted at scrape time."""
        now = time.time() if now is None else now
        names = ["forecast", *self.labels]
        point = GaugeMetricFamily(
            "ticketmon_forecast_exhaustion_seconds",
            "Seasonal forecast of the time until the series reaches its floor (+Inf: not "
            "within the horizon)", labels=names)
        lower = GaugeMetricFamily(
            "ticketmon_forecast_exhaustion_lower_seconds",
            "Earliest exhaustion within the forecast band", labels=names)
        upper = GaugeMetricFamily(
            "ticketmon_forecast_exhaustion_upper_seconds",
            "Latest exhaustion within the forecast band", labels=names)
        updated = GaugeMetricFamily(
            "ticketmon_forecast_updated_timestamp_seconds",
            "When the forecast last ran successfully", labels=["forecast"])
        with self.lock:
            runs = sorted(self.runs.items())
            skipped = sorted(self.skipped.items())
        for name, run in runs:
            by = self.forecasts[name].by
            updated.add_metric([name], run.at)
            for key, r in sorted(run.series.items()):
                given = dict(zip(by, key, strict=True))
                labels = [name, *(given.get(label, "") for label in self.labels)]
                point.add_metric(labels, _left(r.exhausts_at, now))
                lower.add_metric(labels, _left(r.earliest, now))
                upper.add_metric(labels, _left(r.latest, now))
        skips = CounterMetricFamily("ticketmon_forecast_skipped",
                                    "Series (or whole runs) a forecast skipped, by reason",
                                    labels=["forecast", "reason"])
        for (name, reason), count in skipped:
            skips.add_metric([name, reason], count)
        return [point, lower, upper, updated, skips]


def _left(at: float, now: float) -> float:
    return max(0.0, at - now)
