"""Bad answers from Alertmanager's API count the member out for the run and change nothing;
several workers on one PostgreSQL run once per period."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from reconcile_helpers import make_reconciler, metric
from support.receiver import payload_bytes

from receiver.escalation.timers import on_incident_event
from receiver.payload import parse
from receiver.reconcile.reconciler import ReconcileThread, claim
from receiver.reconcile.settings import ReconcileSettings
from receiver.store import Store, migrate

GOOD_ALERT = {"fingerprint": "95d17acc52c5799e", "startsAt": "2026-11-22T04:35:25.660Z",
              "labels": {"alertname": "X"}, "annotations": {}, "status": {"state": "active"},
              "receivers": [{"name": "ticketmon"}]}


class FakeAm:
    """Answers /api/v2/alerts* with whatever the test sets: status, body, delay."""

    def __init__(self) -> None:
        self.status, self.body, self.delay = 200, b"[]", 0.0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                time.sleep(fake.delay)
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(fake.body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_am():
    am = FakeAm()
    yield am
    am.stop()


@pytest.fixture
def store(sqlite_url):
    migrate.upgrade(sqlite_url)
    s = Store(sqlite_url, hooks=[on_incident_event])
    yield s
    s.dispose()


@pytest.mark.parametrize(("status", "body", "why"), [
    (503, b"overloaded", "HTTP 503"),
    (500, b"[]", "HTTP 500"),
    (200, b"{not json", "not JSON"),
    (200, b'{"alerts": []}', "not a list"),
    (200, b'[{"fingerprint": "ab", "startsAt": 7, "labels": {}}]', "startsAt"),
    (200, b'[{"fingerprint": "../x", "startsAt": "2026-01-01T00:00:00Z", "labels": {}}]',
     "fingerprint"),
    (200, b'[{"fingerprint": "ab", "startsAt": "2026-01-01T00:00:00Z", "labels": {"a": 1}}]',
     "label set"),
    (200, b"[1, 2]", "not an object"),
    (200, json.dumps([GOOD_ALERT] * 3).encode(), "more than max_alerts"),
    (200, b"[" + b" " * 5000 + b"]", "exceeds"),
])
def test_a_bad_answer_counts_the_member_out_and_changes_nothing(store, fake_am, status,
                                                                body, why):
    store.ingest(parse(payload_bytes("firing")))
    fake_am.status, fake_am.body = status, body
    rec = make_reconciler(store, [fake_am.url], max_alerts=2, max_response_bytes=4096)
    report = rec.run_once(claim_turn=False)
    assert report.outcome == "unreachable"
    assert why in report.down[fake_am.url]
    assert report.done.resolved_alerts == 0 and report.done.fired_alerts == 0
    assert metric(rec, "ticketmon_receiver_reconcile_alertmanager_up",
                  alertmanager=fake_am.url) == 0


def test_a_slow_member_times_out(store, fake_am):
    fake_am.delay = 1.5
    rec = make_reconciler(store, [fake_am.url], timeout=0.3)
    started = time.monotonic()
    report = rec.run_once(claim_turn=False)
    assert report.down == {fake_am.url: "timeout"}
    assert time.monotonic() - started < 1.4


def test_the_thread_keeps_running_when_the_database_fails(store, fake_am, monkeypatch):
    from prometheus_client import CollectorRegistry

    from receiver.escalation.metrics import ReconcileMetrics

    calls = []
    metrics = ReconcileMetrics(CollectorRegistry())
    thread = ReconcileThread.start(
        ReconcileSettings(alertmanagers=[fake_am.url], period=1, timeout=0.5, grace=0),
        None, store.url, "w1", metrics)
    monkeypatch.setattr(thread.reconciler, "run_once",
                        lambda: calls.append(1) or (_ for _ in ()).throw(RuntimeError("db")))
    deadline = time.monotonic() + 5
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    thread.stop()
    assert len(calls) >= 2  # failed, waited a period, ran again
    assert metrics.runs.labels("error")._value.get() >= 2


def test_disabled_or_without_alertmanager_nothing_starts(store):
    assert ReconcileThread.start(ReconcileSettings(enabled=False), "http://x:9093",
                                 store.url, "w", None) is None
    assert ReconcileThread.start(ReconcileSettings(), None, store.url, "w", None) is None


@pytest.mark.parametrize("bad", [{"period": 0.5}, {"timeout": 90}, {"receiver": "("},
                                 {"alertmanagers": ["ftp://x"]}, {"grace": "soon"}])
def test_settings_are_validated(bad):
    with pytest.raises(ValueError):
        ReconcileSettings(**bad)


def test_one_run_per_period_among_workers(postgres_url):
    migrate.upgrade(postgres_url)
    store = Store(postgres_url)
    now = datetime.now(UTC)
    try:
        def take(owner: str, at: datetime) -> bool:
            with store.engine.begin() as conn:
                return claim(conn, owner, at, 60)

        assert take("a", now) and not take("b", now)
        assert not take("a", now + timedelta(seconds=30))
        assert take("a", now + timedelta(seconds=55))  # its turn again
        assert not take("b", now + timedelta(seconds=100))  # a keeps its turn
        assert take("b", now + timedelta(seconds=146))  # a missed half a period: b takes over
        assert not take("a", now + timedelta(seconds=150))
        # racing workers: exactly one wins
        at = now + timedelta(seconds=400)
        results: list[bool] = []
        threads = [threading.Thread(target=lambda o=o: results.append(take(o, at)))
                   for o in ("c", "d", "e", "f")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [False, False, False, True]
    finally:
        store.dispose()
