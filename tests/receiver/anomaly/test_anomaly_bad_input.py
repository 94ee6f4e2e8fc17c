"""Bad input against a scripted Prometheus: slow answers, errors, a series that comes
and goes, counter resets, NaN; each is a skip with a reason (or scored), never a stop."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from receiver.anomaly.job import AnomalyJob
from receiver.anomaly.settings import AnomalySettings, SeriesSettings
from receiver.anomaly.stream import SeriesStream, StreamConfig
from receiver.store import Store, migrate

STEP = 60
END = 1_800_000_000


class Script:
    """What the fake Prometheus answers per query: 'ok', 'slow', '503', 'none', 'reset',
    'reset_last', 'burst'."""

    def __init__(self) -> None:
        self.mode: dict[str, str] = {}

    def answer(self, query: str, start: float, end: float) -> tuple[int, dict | None]:
        mode = self.mode.get(query, "ok")
        if mode == "slow":
            time.sleep(1.5)
        if mode == "503":
            return 503, None
        if mode == "none":
            return 200, {"status": "success", "data": {"resultType": "matrix", "result": []}}
        times = np.arange(start, end + 1, STEP)
        rng = np.random.default_rng(int(start) % 1000)
        values = 100 + rng.normal(0, 1, len(times))
        if mode == "reset":  # a counter, reset in the middle
            values = np.cumsum(np.abs(values))
            values[len(values) // 2 :] -= values[len(values) // 2 - 1]
        if mode in ("reset_last", "burst"):  # a counter: restarted / 5x its rate, just now
            values = np.cumsum(np.abs(values))
            if mode == "reset_last":
                values[-1] -= values[-2]
            else:
                values[-1] += 4 * (values[-1] - values[-2])
        pairs = [[float(t), repr(float(v))] for t, v in zip(times, values, strict=True)]
        return 200, {"status": "success", "data": {"resultType": "matrix",
                                                   "result": [{"metric": {}, "values": pairs}]}}


@pytest.fixture
def prometheus():
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            q = parse_qs(urlparse(self.path).query)
            status, body = script.answer(q["query"][0], float(q["start"][0]), float(q["end"][0]))
            data = json.dumps(body).encode() if body is not None else b"unavailable"
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", script
    server.shutdown()


@pytest.fixture
def store(sqlite_url):
    migrate.upgrade(sqlite_url)
    s = Store(sqlite_url, pool_size=1)
    yield s
    s.dispose()


def job_for(url: str, store: Store, *names: str) -> AnomalyJob:
    items = [SeriesSettings(name=n, query=n, step_seconds=STEP, history_seconds=STEP * 399,
                            season_seconds=0, min_train=100, min_scores=100) for n in names]
    settings = AnomalySettings(prometheus_url=url, series=items, timeout_seconds=0.5)
    return AnomalyJob(settings, store, background_refit=False)


def test_slow_and_failing_prometheus_skip_only_their_series(prometheus, store):
    url, script = prometheus
    script.mode.update(slow="slow", failing="503")
    job = job_for(url, store, "slow", "failing", "fine")
    try:
        out = {o.series: o.status for o in job.run_once(now=END)}
        assert out == {"slow": "prometheus_unreachable", "failing": "prometheus_unreachable",
                       "fine": "scored"}
        script.mode.update(slow="ok", failing="ok")  # Prometheus recovers
        out = {o.series: o.status for o in job.run_once(now=END + STEP)}
        assert out == {"slow": "scored", "failing": "scored", "fine": "scored"}
    finally:
        job.close()


def test_a_series_that_disappears_and_comes_back_is_backfilled_again(prometheus, store):
    url, script = prometheus
    job = job_for(url, store, "flaky")
    try:
        assert job.run_once(now=END)[0].status == "scored"
        script.mode["flaky"] = "none"
        assert job.run_once(now=END + STEP)[0].status == "no_data"
        assert "flaky" not in job.states  # forgotten: no stale stream
        script.mode["flaky"] = "ok"
        assert job.run_once(now=END + 2 * STEP)[0].status == "scored"
    finally:
        job.close()


def test_a_counter_reset_is_scored_not_fatal(prometheus, store):
    url, script = prometheus
    script.mode["counter"] = "reset"
    job = job_for(url, store, "counter")
    try:
        outcome = job.run_once(now=END)[0]
        assert outcome.status == "scored" and 0 <= outcome.score <= 1
    finally:
        job.close()


def test_a_raw_counter_is_scored_on_its_increase(prometheus, store):
    url, script = prometheus
    script.mode.update(reset_last="reset_last", burst="burst", gauge="ok")
    job = job_for(url, store, "reset_last", "burst", "gauge")
    try:
        out = {o.series: o for o in job.run_once(now=END)}
        assert {n: job.states[n].stream.cfg.counter for n in out} == {
            "reset_last": True, "burst": True, "gauge": False}
        assert out["reset_last"].status == "scored" and not out["reset_last"].anomalous
        assert out["burst"].anomalous  # five times the usual increase
    finally:
        job.close()


def test_stream_refuses_nan_and_keeps_its_state():
    stream = SeriesStream(StreamConfig(min_train=100, min_scores=100, refit_every=50))
    stream.push(np.random.default_rng(1).normal(0, 1, 300))
    before = stream.count
    with pytest.raises(ValueError):
        stream.push(np.array([1.0, np.nan]))
    assert stream.count == before
    assert np.isfinite(stream.push(np.array([0.5])).scores).all()
