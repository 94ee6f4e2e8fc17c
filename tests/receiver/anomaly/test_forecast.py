"""Capacity forecasts: the model's figures, the job against a real Prometheus, bad input."""

from __future__ import annotations

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import requests
from prometheus_client import CollectorRegistry, generate_latest
from support import capacity_series as cap
from support.promtool import promtool_check_metrics

from receiver.anomaly import forecast
from receiver.anomaly.forecast_job import Forecaster, prepare, without_refills
from receiver.anomaly.forecast_settings import ForecastSettings
from receiver.anomaly.job import AnomalyJob
from receiver.anomaly.prometheus_source import Samples, SkipSeries
from receiver.anomaly.settings import AnomalySettings
from receiver.store import Store, migrate
from ticketmon.core.config import ConfigError, load


def capacity(**kw) -> ForecastSettings:
    return ForecastSettings(**{
        "name": "test_capacity", "query": "ticketmon_test_capacity", "by": ["case"],
        "step_seconds": cap.STEP, "history_seconds": cap.STEP * (cap.POINTS - 1),
        "season_seconds": cap.SEASON, "min_points": 60, "max_gap_seconds": 600, **kw})


def true_steps(values: np.ndarray, times: np.ndarray) -> float:
    """Steps until the noise-free drain of support/capacity_series reaches 0."""
    left, t, steps = values[-1], times[-1], 0
    while left > 0:
        t += cap.STEP
        left -= cap.drain_rate(np.array([t]))[0]
        steps += 1
    return steps


# -- the model ---------------------------------------------------------------------------
def test_seasonal_fit_finds_the_time_to_exhaustion_and_brackets_it():
    times = np.arange(cap.POINTS) * cap.STEP + 1_800_000_000.0
    values = cap.drained(times)
    model = forecast.fit(values, cap.SEASON // cap.STEP)
    out = forecast.exhaustion(model, 0.0, 5000)
    truth = true_steps(values, times)
    assert len(model.season) == cap.SEASON // cap.STEP
    assert abs(out.steps - truth) / truth < 0.03, (out, truth)
    assert out.earliest <= out.steps <= out.latest
    assert out.latest - out.earliest > 0


def test_a_series_that_does_not_drain_never_runs_out_and_short_history_has_no_season():
    flat = forecast.fit(np.full(200, 10.0) + np.sin(np.arange(200)), 60)
    assert forecast.exhaustion(flat, 0.0, 10_000).steps == math.inf
    short = forecast.fit(np.linspace(100, 90, 50), 60)  # under two seasons
    assert len(short.season) == 0 and short.trend == pytest.approx(-10 / 49, rel=0.05)
    assert forecast.exhaustion(short, 0.0, 10_000).steps == pytest.approx(49 * 9, rel=0.05)
    with pytest.raises(ValueError, match="finite"):
        forecast.fit(np.array([1.0, math.nan, 2.0, 3.0]), 0)


# -- cleaning ----------------------------------------------------------------------------
def test_prepare_interpolates_nan_cuts_long_gaps_and_refuses_stale_series():
    t = np.arange(100, dtype=float) * 60
    v = 1000 - t / 60
    v[10:13] = math.nan
    values, last = prepare(Samples(t, v), 60, 600, t[-1])
    assert len(values) == 100 and last == t[-1]
    assert np.allclose(values, 1000 - t / 60)
    gap = np.r_[0:20, 50:100]
    values, _ = prepare(Samples(t[gap], v[gap]), 60, 600, t[-1])
    assert len(values) == 50  # only what follows the 30-step gap
    with pytest.raises(SkipSeries) as stale:
        prepare(Samples(t[:50], v[:50]), 60, 600, t[-1])
    assert stale.value.reason == "stale"
    with pytest.raises(SkipSeries) as nan:
        prepare(Samples(t, np.full(100, math.nan)), 60, 600, t[-1])
    assert nan.value.reason == "nan"


def test_a_refill_is_taken_out_of_the_history():
    v = np.r_[np.linspace(100, 50, 51), np.linspace(149, 100, 50)]  # +100 jump at 51
    lifted = without_refills(v)
    assert lifted[-1] == v[-1]
    assert np.allclose(np.diff(lifted), -1.0)


# -- the job against a real Prometheus ---------------------------------------------------
@pytest.fixture
def store(sqlite_url):
    migrate.upgrade(sqlite_url)
    s = Store(sqlite_url, pool_size=1)
    yield s
    s.dispose()


def run_job(store: Store, url: str, at: float, *forecasts: ForecastSettings) -> AnomalyJob:
    settings = AnomalySettings(prometheus_url=url, series=[], forecasts=list(forecasts))
    job = AnomalyJob(settings, store, background_refit=False)
    job.run_once(now=at)
    job.close()
    return job


def exposition(job: AnomalyJob) -> str:
    registry = CollectorRegistry()
    registry.register(job.forecaster)
    return generate_latest(registry).decode()


def test_forecasts_every_series_and_skips_the_bad_ones(capacities, store):
    prom, end = capacities
    job = run_job(store, prom.url, end + 1, capacity())
    (outcome,) = job.forecasts
    assert (outcome.status, outcome.series, outcome.skipped) == ("forecast", 5, 2)
    run = job.forecaster.runs["test_capacity"].series
    assert set(run) == {("drain",), ("refill",), ("nan",), ("gap",), ("flat",)}
    assert run[("flat",)].exhausts_at == math.inf
    times = np.array([t for t, _ in cap.cases(end)["drain"]])
    for case, lift in (("drain", 0), ("nan", 0), ("gap", 0), ("refill", 1500)):
        values = cap.drained(times) + lift
        truth = end + true_steps(values, times) * cap.STEP
        got = run[(case,)]
        assert abs(got.exhausts_at - truth) < 0.06 * (truth - end), case
        assert got.earliest <= got.exhausts_at <= got.latest, case
    assert job.forecaster.skipped == {("test_capacity", "too_little_history"): 1,
                                      ("test_capacity", "stale"): 1}


def test_gauges_pass_promtool_and_count_down_between_runs(capacities, store):
    prom, end = capacities
    job = run_job(store, prom.url, end + 1, capacity())
    text = exposition(job)
    assert promtool_check_metrics(text) == ""
    families = {line.split("{")[0] for line in text.splitlines() if not line.startswith("#")}
    assert families == {"ticketmon_forecast_exhaustion_seconds",
                        "ticketmon_forecast_exhaustion_lower_seconds",
                        "ticketmon_forecast_exhaustion_upper_seconds",
                        "ticketmon_forecast_updated_timestamp_seconds",
                        "ticketmon_forecast_skipped_total"}
    assert 'ticketmon_forecast_exhaustion_seconds{case="flat",forecast="test_capacity"} +Inf' \
        in text
    drain = job.forecaster.runs["test_capacity"].series[("drain",)].exhausts_at
    now = time.time()
    sample = next(m for m in job.forecaster.collect(now) if m.name.endswith("exhaustion_seconds"))
    left = {s.labels["case"]: s.value for s in sample.samples}
    assert left["drain"] == pytest.approx(drain - now)


def test_max_series_keeps_those_closest_to_their_floor(capacities, store):
    prom, end = capacities
    job = run_job(store, prom.url, end + 1, capacity(max_series=2))
    kept = set(job.forecaster.runs["test_capacity"].series)
    assert kept == {("drain",), ("nan",)} or kept == {("drain",), ("gap",)}
    assert job.forecaster.skipped["test_capacity", "over_max_series"] == 3


def test_refits_wait_for_the_interval_and_series_that_vanish_drop_out(capacities, store):
    prom, end = capacities
    settings = AnomalySettings(prometheus_url=prom.url, series=[], forecasts=[capacity()])
    job = AnomalyJob(settings, store, background_refit=False)
    try:
        job.run_once(now=end + 1)
        assert job.forecasts[0].status == "forecast"
        job.run_once(now=end + 60)
        assert job.forecasts[0].status == "up_to_date"
        job.run_once(now=end + 4 * 3600)  # every series is stale by then
        assert job.forecasts[0].series == 0 and job.forecaster.runs["test_capacity"].series == {}
    finally:
        job.close()


# -- a Prometheus that is slow or answers errors -----------------------------------------
@pytest.fixture
def flaky():
    """Answers 'slow' (past the timeout), '500' or a good answer, as `mode[0]` says."""
    mode = ["ok"]
    times = np.arange(cap.POINTS) * cap.STEP + 1_800_000_000.0
    values = cap.drained(times)
    body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"case": "drain"},
         "values": [[float(t), repr(float(v))] for t, v in zip(times, values, strict=True)]}]}}
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if mode[0] == "slow":
                time.sleep(1.5)
            status = 500 if mode[0] == "500" else 200
            data = body if status == 200 else b"broken"
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", mode, float(times[-1])
    server.shutdown()


def test_slow_or_failing_prometheus_skips_the_run_and_keeps_results_for_a_while(flaky):
    url, mode, end = flaky
    f = capacity(interval_seconds=60)
    forecaster = Forecaster([f], requests.Session(), url, timeout_seconds=0.5)
    assert forecaster.run_one(f, end + 1).status == "forecast"
    for m, at in (("slow", end + 61), ("500", end + 121)):
        mode[0] = m
        assert forecaster.run_one(f, at).status == "prometheus_unreachable"
        assert ("drain",) in forecaster.runs["test_capacity"].series  # kept: absolute times
    assert forecaster.skipped["test_capacity", "prometheus_unreachable"] == 2
    assert forecaster.run_one(f, end + 1 + 4 * 60).status == "prometheus_unreachable"
    assert "test_capacity" not in forecaster.runs  # three intervals on: dropped, not stale
    mode[0] = "ok"
    assert forecaster.run_one(f, end + 1 + 5 * 60).status == "forecast"


# -- settings ----------------------------------------------------------------------------
@pytest.mark.parametrize("bad,message", [
    ({"by": ["forecast"]}, "not 'forecast'"),
    ({"by": ["bad-label"]}, "pattern"),
    ({"step_seconds": 1, "history_seconds": 86400}, "query_range limit"),
    ({"step_seconds": 1, "history_seconds": 3600, "horizon_seconds": 14 * 86400},
     "horizon_seconds"),
])
def test_bad_forecast_settings_say_what_is_wrong(tmp_path, bad, message):
    path = tmp_path / "anomaly.yaml"
    entry = {"name": "x", "query": "up", **bad}
    path.write_text(json.dumps({"forecasts": [entry]}))
    with pytest.raises(ConfigError, match=message):
        load(AnomalySettings, path=str(path))


def test_the_default_forecasts_are_the_platform_capacities():
    names = [f.name for f in AnomalySettings().forecasts]
    assert names == ["ticket_inventory", "fee_payer_balance", "disk_free"]



def test_default_forecasts_expose_what_the_catalog_lists():
    from receiver.anomaly.forecast_job import ForecastRun, SeriesForecast
    from receiver.anomaly.forecast_settings import DEFAULT_FORECASTS
    from ticketmon.rules.catalog import load_catalog

    forecaster = Forecaster(DEFAULT_FORECASTS, requests.Session(), "http://127.0.0.1:9", 1)
    keys = {"ticket_inventory": ("final",), "fee_payer_balance": ("payer-1",),
            "disk_free": ("h1", "/var")}
    for name, key in keys.items():
        found = SeriesForecast(key, time.time() + 3600, time.time() + 1800, math.inf)
        forecaster.runs[name] = ForecastRun(time.time(), {key: found})
    forecaster.skipped["disk_free", "stale"] += 1
    registry = CollectorRegistry()
    registry.register(forecaster)
    assert load_catalog().check_exposition(generate_latest(registry).decode(),
                                           source="forecast") == []


def test_the_job_on_its_own_serves_the_forecasts_behind_its_guard(capacities, tmp_path):
    import sys

    import yaml

    from ticketmon.servers.process import ManagedProcess, free_port

    prom, _ = capacities
    port = free_port()
    config = tmp_path / "anomaly.yaml"
    config.write_text(yaml.safe_dump({
        "prometheus_url": prom.url, "database_url": f"sqlite:///{tmp_path / 'r.db'}",
        "interval_seconds": 1, "series": [], "metrics_port": port,
        "metrics_guard": {"basic_auth_username": "prometheus",
                          "basic_auth_password": "scrape-secret"},
        "forecasts": [capacity().model_dump()]}))
    job = ManagedProcess("anomaly", [sys.executable, "-m", "ticketmon", "receiver", "anomaly",
                                     "--config", str(config)], tmp_path / "anomaly.log")
    url = f"http://127.0.0.1:{port}"
    try:
        job.wait_http(f"{url}/healthz")
        assert requests.get(f"{url}/metrics", timeout=5).status_code == 401
        line = 'ticketmon_forecast_exhaustion_seconds{case="drain",forecast="test_capacity"}'
        job.wait_until(lambda: line in requests.get(
            f"{url}/metrics", auth=("prometheus", "scrape-secret"), timeout=5).text, timeout=30)
    finally:
        job.stop()
    assert job.proc.returncode == 0, job.log_tail()


def test_a_series_at_its_floor_is_exhausted_now():
    from receiver.anomaly.forecast_job import forecast_series

    values = np.linspace(50, -1, 60)
    got = forecast_series(capacity(), values, 1_800_000_000.0, ("x",))
    assert got.exhausts_at == got.earliest == got.latest == 1_800_000_000.0
    with pytest.raises(SkipSeries) as short:
        forecast_series(capacity(), values[:10], 1_800_000_000.0, ("x",))
    assert short.value.reason == "too_little_history"
