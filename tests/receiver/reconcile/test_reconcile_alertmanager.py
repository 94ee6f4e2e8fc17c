"""Reconciliation against a real Alertmanager 0.25, on SQLite and PostgreSQL.

The store is fed the real webhook fixtures directly (as if Alertmanager's posts had
arrived) or not at all (as if they were lost); Alertmanager is fed alerts through its
own API, as Prometheus feeds it. Its receivers post nowhere, so only reconciliation
can bring the two together.
"""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from reconcile_helpers import (
    AM_CONFIG,
    am_alerts,
    fixture_alerts,
    make_reconciler,
    metric,
    push,
    silence,
    timeline,
)
from support.receiver import payload_bytes

from receiver.escalation.tables import escalations, notifications
from receiver.escalation.timers import insert_outbox, on_incident_event, outbox_row
from receiver.payload import parse
from receiver.store import Store, migrate, queries
from receiver.store.tables import alerts, incidents
from receiver.tenant_groups import tenant_group_key
from ticketmon.servers.process import free_port


@pytest.fixture
def store(database_url):
    migrate.upgrade(database_url)
    s = Store(database_url, hooks=[on_incident_event])
    yield s
    s.dispose()


def ingest(store, name: str):
    return store.ingest(parse(payload_bytes(name)))


def rows(store, table, *where) -> list[dict]:
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            sa.select(table).where(*where).order_by(*table.primary_key)).mappings()]


def statuses(store) -> dict[str, str]:
    return {a["labels"]["instance"]: a["status"] for a in rows(store, alerts)}


def notified(store, incident_id: int, channel: str = "chat") -> None:
    """Pretend the incident's page went out, so resolving it must tell that channel."""
    row = outbox_row(incident_id, "acme", 0, 0, 0, channel, "trigger",
                     rows(store, incidents)[0]["opened_at"])
    with store.engine.begin() as conn:
        insert_outbox(conn, [row])
        conn.execute(notifications.update().values(state="delivered"))


def test_lost_resolve_is_resolved_with_hooks_timeline_and_metric(store, start_alertmanager):
    am = start_alertmanager(AM_CONFIG)
    opened = ingest(store, "group-3-firing").opened[0]
    notified(store, opened)
    rec = make_reconciler(store, [am.url])
    started = time.monotonic()
    report = rec.run_once()
    took = time.monotonic() - started
    assert report.outcome == "ok", report
    assert set(statuses(store).values()) == {"resolved"}
    [inc] = rows(store, incidents)
    assert (inc["status"], inc["resolved_by"]) == ("resolved", "reconciler")
    # the incident hook ran: escalation stopped, the notified channel hears of the resolve
    [esc] = rows(store, escalations)
    assert esc["state"] == "resolved"
    assert [(n["channel"], n["action"], n["state"], n["actor"])
            for n in rows(store, notifications, notifications.c.action == "resolve")] == [
        ("chat", "resolve", "pending", "reconciler")]
    kinds = [(e["kind"], e["actor"]) for e in timeline(store) if e["actor"] == "reconciler"]
    assert kinds == [("reconciled_resolved", "reconciler")] * 3 + [("resolved", "reconciler")]
    assert "no reachable Alertmanager" in timeline(store, "reconciled_resolved")[0]["detail"][
        "reason"]
    assert metric(rec, "ticketmon_receiver_reconcile_corrections_total",
                  action="resolved_alert") == 3
    assert metric(rec, "ticketmon_receiver_reconcile_corrections_total",
                  action="resolved_incident") == 1
    assert metric(rec, "ticketmon_receiver_reconcile_alertmanager_up", alertmanager=am.url) == 1
    assert metric(rec, "ticketmon_receiver_reconcile_last_success_timestamp_seconds") > 0
    assert took < 5, f"one run took {took:.2f}s"
    again = rec.run_once(claim_turn=False)  # converged: a second run changes nothing
    assert again.done.resolved_alerts == 0 and again.done.resolved_incidents == []


def test_lost_firing_post_opens_an_incident(store, start_alertmanager):
    am = start_alertmanager(AM_CONFIG)
    push(am, fixture_alerts("group-3-firing"))
    rec = make_reconciler(store, [am.url])
    report = rec.run_once()
    assert report.done.fired_alerts == 3 and len(report.done.opened_incidents) == 1
    [inc] = rows(store, incidents)
    assert inc["status"] == "open" and inc["receiver"] == "ticketmon"
    # the key the webhook files it under: Alertmanager's (root route + group labels),
    # per tenant since the group is not grouped by tenant (receiver/tenant_groups.py)
    posted = parse(payload_bytes("group-3-firing"))
    assert inc["group_key"] == tenant_group_key(posted.groupKey, posted.groupLabels, "acme")
    assert inc["group_labels"] == {"alertname": "HighErrorRate", "service": "checkout"}
    assert set(statuses(store).values()) == {"firing"}
    assert {a["fingerprint"] for a in rows(store, alerts)} == {
        a["fingerprint"] for a in fixture_alerts("group-3-firing")}
    [esc] = rows(store, escalations)  # the open hook started escalation
    assert esc["state"] == "active"
    opened = timeline(store, "opened")
    assert opened[0]["actor"] == "reconciler"
    assert len(timeline(store, "reconciled_firing")) == 3
    # the post arriving after all is a replay of what reconciliation stored
    late = ingest(store, "group-3-firing")
    assert late.opened == [] and late.changed == 0
    assert metric(rec, "ticketmon_receiver_reconcile_corrections_total",
                  action="opened_incident") == 1


def test_silenced_alert_stays_firing(store, start_alertmanager):
    am = start_alertmanager(AM_CONFIG)
    push(am, fixture_alerts("firing"))
    ingest(store, "firing")
    silence(am, {"alertname": fixture_alerts("firing")[0]["labels"]["alertname"]})
    deadline = time.monotonic() + 10
    while am_alerts(am)[0]["status"]["state"] != "suppressed":
        assert time.monotonic() < deadline, "alertmanager did not apply the silence"
        time.sleep(0.1)
    rec = make_reconciler(store, [am.url])
    report = rec.run_once()
    assert report.outcome == "ok" and report.done.resolved_alerts == 0
    assert set(statuses(store).values()) == {"firing"}
    assert rows(store, incidents)[0]["status"] == "open"


def test_one_member_down_uses_the_other_all_down_changes_nothing(store, start_alertmanager):
    am = start_alertmanager(AM_CONFIG)
    down = f"http://127.0.0.1:{free_port()}"
    ingest(store, "group-3-firing")  # lost resolve for these
    push(am, fixture_alerts("firing"))  # lost firing post for this one

    nobody = make_reconciler(store, [down, f"http://127.0.0.1:{free_port()}"])
    report = nobody.run_once()
    assert report.outcome == "unreachable" and len(report.down) == 2
    assert set(statuses(store).values()) == {"firing"} and len(rows(store, incidents)) == 1
    assert metric(nobody, "ticketmon_receiver_reconcile_alertmanager_up",
                  alertmanager=down) == 0
    assert metric(nobody, "ticketmon_receiver_reconcile_runs_total", outcome="unreachable") == 1
    assert metric(nobody, "ticketmon_receiver_reconcile_last_success_timestamp_seconds") == 0

    rec = make_reconciler(store, [down, am.url])
    report = rec.run_once(claim_turn=False)
    assert report.outcome == "partial" and list(report.down) == [down]
    assert report.done.resolved_alerts == 3 and report.done.fired_alerts == 1
    assert metric(rec, "ticketmon_receiver_reconcile_alertmanager_up", alertmanager=down) == 0
    assert metric(rec, "ticketmon_receiver_reconcile_alertmanager_up", alertmanager=am.url) == 1
    assert metric(rec, "ticketmon_receiver_reconcile_runs_total", outcome="partial") == 1


def test_truncated_group_converges(store, start_alertmanager):
    am = start_alertmanager(AM_CONFIG.replace("receiver: ticketmon\n",
                                              "receiver: capture-truncated\n", 1)
                             .replace("{name: ticketmon}", "{name: capture-truncated}"))
    ingest(store, "truncated")  # 2 of the 3 listed, truncatedAlerts: 1
    push(am, fixture_alerts("group-3-firing"))
    report = make_reconciler(store, [am.url]).run_once()
    assert report.done.fired_alerts == 1 and report.done.opened_incidents == []
    [inc] = rows(store, incidents)
    detail = Store.read(store, queries.get_incident, "*", inc["id"])
    assert sorted(a["labels"]["instance"] for a in detail["alerts"]) == [
        "checkout-1:8080", "checkout-2:8080", "checkout-3:8080"]
    assert set(statuses(store).values()) == {"firing"}
    # live streams hear of the correction (receiver/stream/feed.py)
    with store.engine.connect() as conn:
        changes = conn.execute(sa.text("SELECT change, actor FROM incident_changes "
                                       "ORDER BY id")).all()
    assert [tuple(c) for c in changes] == [("opened", "alertmanager"),
                                           ("corrected", "reconciler")]


def test_grace_waits_before_correcting(store, start_alertmanager):
    from datetime import timedelta

    am = start_alertmanager(AM_CONFIG)
    ingest(store, "firing")
    now = [store.read(lambda c: c.execute(sa.select(sa.func.max(alerts.c.received_at))
                                          ).scalar()) + timedelta(seconds=1)]
    rec = make_reconciler(store, [am.url], clock=lambda: now[0], grace=30)
    assert rec.run_once(claim_turn=False).done.resolved_alerts == 0  # first sighting
    now[0] += timedelta(seconds=29)
    assert rec.run_once(claim_turn=False).done.resolved_alerts == 0
    now[0] += timedelta(seconds=0.6)  # a run a moment early counts as grace later
    assert rec.run_once(claim_turn=False).done.resolved_alerts == 1
