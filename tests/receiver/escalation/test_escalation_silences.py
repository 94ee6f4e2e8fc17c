"""Acknowledging never silences; a silence is its own bounded action on a real
Alertmanager, extended when asked again, and expired when the incident resolves."""

from __future__ import annotations

import time

import escalation_helpers
import pytest
import requests
import sqlalchemy as sa
from escalation_helpers import write_policies
from test_escalation_flow import drain, make_worker, open_incident

from receiver.escalation.tables import notifications
from receiver.escalation.timers import on_incident_event
from receiver.store import Store, migrate
from receiver.store.store import Conflict
from ticketmon.servers.process import free_port

sink = escalation_helpers.sink

AM_CONFIG = """
route: {receiver: blackhole}
receivers: [{name: blackhole}]
"""


def silences(am) -> list[dict]:
    return requests.get(f"{am.url}/api/v2/silences", timeout=5).json()


def lasts(silence: dict) -> float:
    def at(text: str) -> float:
        return time.mktime(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
    return at(silence["endsAt"]) - at(silence["startsAt"])


@pytest.fixture
def setup(start_alertmanager, sqlite_url, sink, tmp_path):
    am = start_alertmanager(AM_CONFIG)
    migrate.upgrade(sqlite_url)
    store = Store(sqlite_url, hooks=[on_incident_event])
    policies = write_policies(tmp_path / "p.yaml", [("0s", ["chat"])])
    worker = make_worker(store, sink, policies, alertmanager_url=am.url)
    yield am, store, worker
    store.dispose()


def test_acknowledge_does_not_silence(setup):
    am, store, worker = setup
    incident = open_incident(store, 7)
    drain(worker)
    store.change_incident(incident, "acknowledge", "alice", "*")
    drain(worker)
    assert silences(am) == []
    with store.engine.connect() as conn:
        actions = conn.execute(sa.select(notifications.c.action)).scalars().all()
    assert "silence" not in actions


def test_explicit_silence_is_bounded_extended_and_expired_on_resolve(setup):
    am, store, worker = setup
    incident = open_incident(store, 7)
    drain(worker)
    shown, changed = store.silence_incident(incident, 7200, "alice", "*", comment="deploy")
    assert changed and shown["silenced_by"] == "alice" and shown["silenced_until"]
    drain(worker)
    [silence] = silences(am)
    assert silence["status"]["state"] == "active"
    assert {(m["name"], m["value"], m["isEqual"]) for m in silence["matchers"]} == {
        ("alertname", "CheckoutErrors7", True), ("env", "e2e", True)}
    assert silence["createdBy"] == "ticketmon (alice)"
    assert 7190 <= lasts(silence) <= 7210

    store.silence_incident(incident, 4 * 3600, "bob", "*")  # asked again: the same silence
    drain(worker)
    [extended] = silences(am)
    assert extended["id"] == silence["id"] and 4 * 3600 - 10 <= lasts(extended) <= 4 * 3600 + 10

    resolved, _ = store.change_incident(incident, "resolve", "alice", "*")
    drain(worker)
    assert [s["status"]["state"] for s in silences(am)] == ["expired"]
    with store.engine.connect() as conn:
        kinds = conn.execute(sa.text(
            "SELECT kind FROM events WHERE incident_id = :i ORDER BY id"), {"i": incident}
        ).scalars().all()
        until = conn.execute(sa.text("SELECT silenced_until, resolved_at FROM incidents "
                                     "WHERE id = :i"), {"i": incident}).one()
    assert kinds.count("silenced") == 2 and kinds[-1] == "resolved"
    assert until[0] <= until[1]  # the silence shown on the incident ended with it


def test_lifting_a_silence_expires_it(setup):
    am, store, worker = setup
    incident = open_incident(store, 9)
    store.silence_incident(incident, 3600, "alice", "*")
    drain(worker)
    _, changed = store.silence_incident(incident, None, "alice", "*")
    assert changed
    drain(worker)
    assert [s["status"]["state"] for s in silences(am)] == ["expired"]
    _, changed = store.silence_incident(incident, None, "alice", "*")
    assert not changed  # nothing left to lift


def test_a_resolved_incident_cannot_be_silenced(setup):
    _, store, _ = setup
    incident = open_incident(store, 10)
    store.change_incident(incident, "resolve", "alice", "*")
    with pytest.raises(Conflict):
        store.silence_incident(incident, 3600, "alice", "*")


def test_alertmanager_down_is_retried_not_lost(sqlite_url, sink, tmp_path):
    migrate.upgrade(sqlite_url)
    store = Store(sqlite_url, hooks=[on_incident_event])
    policies = write_policies(tmp_path / "p.yaml", [("0s", ["chat"])])
    worker = make_worker(store, sink, policies,
                         alertmanager_url=f"http://127.0.0.1:{free_port()}")
    incident = open_incident(store, 8)
    drain(worker)
    store.silence_incident(incident, 3600, "alice", "*")
    worker.run_once()
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(notifications).where(
            notifications.c.action == "silence")).mappings().one()
    assert row["state"] == "pending" and "ConnectionError" in row["last_error"]
    store.dispose()
