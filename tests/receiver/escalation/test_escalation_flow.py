"""Incident -> escalation timer -> outbox -> channels, on SQLite and PostgreSQL.

The web side is the real Store with the escalation hook; the worker is the real Worker
delivering to a local recording server. Time moves by shifting the stored timers back,
so the schedule is tested without waiting for it.
"""

from __future__ import annotations

import json
from datetime import timedelta

import escalation_helpers  # noqa: E402
import pytest
import sqlalchemy as sa
from escalation_helpers import firing_payload, write_policies
from prometheus_client import CollectorRegistry, generate_latest

from receiver.escalation.listings import list_notifications
from receiver.escalation.settings import WorkerSettings
from receiver.escalation.tables import escalations, notifications
from receiver.escalation.timers import on_incident_event
from receiver.escalation.worker import Worker
from receiver.payload import parse
from receiver.store import Store, migrate
from ticketmon.core.config import ConfigError

# fixtures shared by the escalation tests
sink, tls_sink = escalation_helpers.sink, escalation_helpers.tls_sink
templates = escalation_helpers.templates

SECRET = "webhook-signing-secret-0123456789"


@pytest.fixture
def store(database_url):
    migrate.upgrade(database_url)
    s = Store(database_url, hooks=[on_incident_event])
    yield s
    s.dispose()


def make_worker(store, sink, policies, registry=None, **extra) -> Worker:
    channels = {
        name: {"type": "webhook", "url": f"{sink.url}/{name}", "secret": SECRET, "timeout": 2,
               "allow_insecure_http": True}  # the local sink
        for name in ("chat", "pager", "mail")
    }
    settings = WorkerSettings(
        database_url=store.url, policies_file=policies, channels=channels, metrics_port=0,
        retry_base=0.01, retry_cap=0.02, ack_link_secret="a" * 32, **extra)
    return Worker(settings, registry=registry or CollectorRegistry())


def open_incident(store, n: int = 1, **kw) -> int:
    result = store.ingest(parse(json.dumps(firing_payload(n, **kw)).encode()))
    return result.opened[0]


def shift(store, seconds: float) -> None:
    """Pretend `seconds` have passed for every escalation timer."""
    with store.engine.begin() as conn:
        for row in conn.execute(sa.select(escalations)).mappings().all():
            values = {"started_at": row["started_at"] - timedelta(seconds=seconds)}
            if row["due_at"] is not None:
                values["due_at"] = row["due_at"] - timedelta(seconds=seconds)
            conn.execute(escalations.update()
                         .where(escalations.c.incident_id == row["incident_id"]).values(values))


def drain(worker: Worker, passes: int = 20) -> None:
    for _ in range(passes):
        worker.run_once()
        with worker.engine.connect() as conn:
            busy = conn.execute(sa.select(sa.func.count()).select_from(notifications).where(
                notifications.c.state.in_(("pending", "delivering")))).scalar()
        if not busy:
            return
        worker.stopping.wait(0.03)
    raise AssertionError("outbox did not drain")


def sent(sink, path="/") -> list[tuple[str, str]]:
    """(channel path, delivery id) of every accepted request."""
    return [(m.path, m.headers["X-Ticketmon-Delivery"]) for m in sink.received(path)]


def test_full_escalation_ack_and_resolve(store, sink, tmp_path):
    policies = write_policies(tmp_path / "p.yaml", [("0s", ["chat", "pager"]), ("5m", ["mail"]),
                                                    ("15m", ["pager"])])
    worker = make_worker(store, sink, policies)
    incident = open_incident(store)
    drain(worker)
    first = sent(sink)
    assert sorted(p for p, _ in first) == ["/chat", "/pager"]
    drain(worker)
    assert sent(sink) == first  # nothing twice

    shift(store, 301)
    drain(worker)
    assert [p for p, _ in sent(sink)[2:]] == ["/mail"]
    body = sink.received("/mail")[0].json()
    assert body["action"] == "trigger" and body["step"] == 1
    assert body["incident"]["id"] == str(incident) and body["incident"]["severity"] == "critical"
    assert body["links"]["ack"].startswith("http://127.0.0.1:10190/ack/")

    store.change_incident(incident, "acknowledge", "alice", "*")
    drain(worker)
    assert sorted((m.path, m.json()["action"], m.json()["actor"]) for m in sink.received("/")[3:]) \
        == [("/chat", "acknowledge", "alice"), ("/mail", "acknowledge", "alice"),
            ("/pager", "acknowledge", "alice")]
    shift(store, 3600)  # acknowledged: step 3 never fires
    drain(worker)
    assert len(sink.received("/")) == 6

    store.change_incident(incident, "resolve", "bob", "*")
    drain(worker)
    resolves = sorted((m.path, m.json()["action"]) for m in sink.received("/")[6:])
    assert resolves == [("/chat", "resolve"), ("/mail", "resolve"), ("/pager", "resolve")]
    ids = [d for _, d in sent(sink)]
    assert len(ids) == len(set(ids)) == 9
    # what live streams were told, in order (repeats of one change folded)
    with store.engine.connect() as conn:
        changes = conn.execute(sa.text("SELECT change FROM incident_changes WHERE "
                                       "incident_id = :i ORDER BY id"), {"i": incident})
        kinds = [k for (k,) in changes]
    assert [k for i, k in enumerate(kinds) if not i or k != kinds[i - 1]] == [
        "opened", "escalated", "notified", "escalated", "notified", "acknowledged",
        "notified", "resolved", "notified"]


def test_steps_missed_while_no_worker_ran_all_fire_once_in_order(store, sink, tmp_path):
    policies = write_policies(tmp_path / "p.yaml", [("0s", ["chat"]), ("5m", ["pager"])],
                              repeat={"every": "1h", "times": 1})
    worker = make_worker(store, sink, policies)
    open_incident(store)
    shift(store, 3600 + 301)  # the worker was down for an hour: 4 steps are due
    drain(worker)
    got = [(m.path, m.json()["round"], m.json()["step"]) for m in sink.received("/")]
    assert sorted(got) == [("/chat", 0, 0), ("/chat", 1, 0), ("/pager", 0, 1), ("/pager", 1, 1)]
    shift(store, 10 * 3600)
    drain(worker)
    assert len(sink.received("/")) == 4  # repeat.times reached
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(escalations.c.state)).scalar() == "exhausted"


def test_resolved_by_alertmanager_before_delivery_sends_nothing(store, sink, tmp_path):
    policies = write_policies(tmp_path / "p.yaml", [("0s", ["chat"])])
    worker = make_worker(store, sink, policies)
    open_incident(store)
    with worker.engine.begin() as conn:  # the step fires but is not delivered yet
        from receiver.escalation.steps import advance_escalations
        from receiver.escalation.worker import utcnow
        assert len(advance_escalations(conn, worker.policies, utcnow()).fired) == 1
    store.ingest(parse(json.dumps(firing_payload(1, status="resolved")).encode()))
    drain(worker)
    assert sink.received("/") == []
    with store.engine.connect() as conn:
        states = conn.execute(sa.select(notifications.c.state)).scalars().all()
    assert states == ["cancelled"]


def test_channel_failing_then_recovering_delivers_exactly_once(store, sink, tmp_path):
    policies = write_policies(tmp_path / "p.yaml", [("0s", ["chat"])])
    registry = CollectorRegistry()
    worker = make_worker(store, sink, policies, registry)
    open_incident(store)
    sink.fail_next(503, 429, 500)
    drain(worker)
    attempts = sink.received("/chat", delivered_only=False)
    assert [m.status for m in attempts] == [503, 429, 500, 200]
    assert len({m.headers["X-Ticketmon-Delivery"] for m in attempts}) == 1
    assert len(sink.received("/chat")) == 1
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(notifications)).mappings().one()
    assert (row["state"], row["attempts"]) == ("delivered", 4)
    text = generate_latest(registry).decode()
    assert 'ticketmon_receiver_notifications_total{channel="chat",outcome="retry"} 3.0' in text
    assert 'ticketmon_receiver_notifications_total{channel="chat",outcome="delivered"} 1.0' in text
    assert "ticketmon_receiver_escalation_lateness_seconds_count 1.0" in text


def test_4xx_stops_at_once_and_becomes_a_dead_letter(store, sink, tmp_path):
    policies = write_policies(tmp_path / "p.yaml", [("0s", ["chat", "pager"])])
    worker = make_worker(store, sink, policies)
    open_incident(store)
    sink.fail_next(404)
    drain(worker)
    assert len(sink.received("/", delivered_only=False)) == 2  # one try each, no retry
    with store.engine.connect() as conn:
        dead = list_notifications(conn, state="dead")
    assert len(dead) == 1 and dead[0]["last_error"] == "HTTP 404" and dead[0]["attempts"] == 1


def test_retries_stop_at_max_age(store, sink, tmp_path):
    policies = write_policies(tmp_path / "p.yaml", [("0s", ["chat"])])
    worker = make_worker(store, sink, policies, max_attempts=3)
    open_incident(store)
    sink.fail_next(503, 503, 503, 503)
    drain(worker)
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(notifications)).mappings().one()
    assert row["state"] == "dead" and row["attempts"] == 3
    assert row["last_error"] == "gave up after 3 attempts: HTTP 503"


def test_no_matching_policy_means_no_notification(store, sink, tmp_path):
    policies = write_policies(tmp_path / "p.yaml", [("0s", ["chat"])], severity="critical")
    worker = make_worker(store, sink, policies)
    open_incident(store, severity="info")
    drain(worker)
    assert sink.received("/") == []
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(escalations.c.state)).scalar() == "unmatched"


def test_worker_refuses_a_policy_naming_an_unconfigured_channel(store, sink, tmp_path):
    policies = write_policies(tmp_path / "p.yaml", [("0s", ["chat", "sms"])])
    with pytest.raises(ConfigError, match="policy 'critical': unknown channel 'sms'"):
        make_worker(store, sink, policies)


def test_credentials_stay_out_of_settings_dumps_and_rows(store, sink, tmp_path):
    policies = write_policies(tmp_path / "p.yaml", [("0s", ["chat"])])
    worker = make_worker(store, sink, policies)
    assert SECRET not in repr(worker.settings) + json.dumps(worker.settings.model_dump(
        mode="json"))
    open_incident(store)
    sink.fail_next(500)
    drain(worker)
    with store.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(notifications)).mappings()]
    assert SECRET not in json.dumps(rows, default=str)
