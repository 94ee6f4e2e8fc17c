"""Acknowledge silences the incident's alerts in a real Alertmanager; resolve expires it."""

from __future__ import annotations

import time

import escalation_helpers
import requests
from escalation_helpers import write_policies
from test_escalation_flow import drain, make_worker, open_incident

from receiver.escalation.timers import on_incident_event
from receiver.store import Store, migrate

sink = escalation_helpers.sink

AM_CONFIG = """
route: {receiver: blackhole}
receivers: [{name: blackhole}]
"""


def silences(am) -> list[dict]:
    return requests.get(f"{am.url}/api/v2/silences", timeout=5).json()


def test_ack_silences_until_the_ack_runs_out_and_resolve_expires(
        start_alertmanager, sqlite_url, sink, tmp_path):
    am = start_alertmanager(AM_CONFIG)
    migrate.upgrade(sqlite_url)
    store = Store(sqlite_url, hooks=[on_incident_event])
    policies = write_policies(tmp_path / "p.yaml", [("0s", ["chat"])])
    worker = make_worker(store, sink, policies, alertmanager_url=am.url,
                         silence_duration="2h")
    incident = open_incident(store, 7)
    drain(worker)
    assert silences(am) == []

    store.change_incident(incident, "acknowledge", "alice", "*")
    drain(worker)
    [silence] = silences(am)
    assert silence["status"]["state"] == "active"
    assert {(m["name"], m["value"], m["isEqual"]) for m in silence["matchers"]} == {
        ("alertname", "CheckoutErrors7", True), ("env", "e2e", True)}
    assert silence["createdBy"] == "ticketmon (alice)"
    lasts = (time.mktime(time.strptime(silence["endsAt"][:19], "%Y-%m-%dT%H:%M:%S"))
             - time.mktime(time.strptime(silence["startsAt"][:19], "%Y-%m-%dT%H:%M:%S")))
    assert 7190 <= lasts <= 7210

    store.change_incident(incident, "resolve", "alice", "*")
    drain(worker)
    [silence] = silences(am)
    assert silence["status"]["state"] == "expired"
    store.dispose()


def test_alertmanager_down_is_retried_not_lost(sqlite_url, sink, tmp_path):
    from ticketmon.servers.process import free_port

    migrate.upgrade(sqlite_url)
    store = Store(sqlite_url, hooks=[on_incident_event])
    policies = write_policies(tmp_path / "p.yaml", [("0s", ["chat"])])
    worker = make_worker(store, sink, policies,
                         alertmanager_url=f"http://127.0.0.1:{free_port()}")
    incident = open_incident(store, 8)
    drain(worker)
    store.change_incident(incident, "acknowledge", "alice", "*")
    worker.run_once()
    import sqlalchemy as sa

    from receiver.escalation.tables import notifications
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(notifications).where(
            notifications.c.action == "silence")).mappings().one()
    assert row["state"] == "pending" and "ConnectionError" in row["last_error"]
    store.dispose()
