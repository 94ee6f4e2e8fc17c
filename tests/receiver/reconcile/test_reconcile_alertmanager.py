"""Reconciliation against a real Alertmanager 0.25, on SQLite and PostgreSQL.

The store is fed the real webhook fixtures directly (as if Alertmanager's posts had
arrived) or not at all (as if they were lost); Alertmanager is fed alerts through its
own API, as Prometheus feeds it. Its receivers post nowhere, so only reconciliation
can bring the two together.
"""

from __future__ import annotations

import json
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
from receiver.store.tables import alerts, incident_alerts, incidents
from receiver.tenant_groups import go_labelset, tenant_group_key
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


# the shipped routing's shape: three routes share the receiver, so the reconciler can
# only guess a new group's route part (receiver/reconcile/groups.py)
ROUTES = """
route:
  receiver: ticketmon
  group_by: [alertname, service]
  group_wait: 1h
  group_interval: 1h
  routes:
    - {matchers: ['severity="warning"'], receiver: ticketmon}
    - {matchers: ['severity="info"'], receiver: ticketmon, group_wait: 5m}
receivers: [{name: ticketmon}]
"""


def _post(route: str, name: str, severity: str, instances: dict[str, str], starts: str,
          status: str = "firing") -> bytes:
    """A webhook post of `route`'s group for alertname `name` (instance -> fingerprint)."""
    group = {"alertname": name, "service": "checkout"}
    ended = "0001-01-01T00:00:00Z" if status == "firing" else starts.replace("00Z", "59Z")
    return json.dumps({
        "version": "4", "groupKey": f"{route}:{go_labelset(group)}", "status": status,
        "receiver": "ticketmon", "groupLabels": group,
        "commonLabels": {**group, "severity": severity}, "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093", "truncatedAlerts": 0,
        "alerts": [{"status": status, "fingerprint": fp, "startsAt": starts, "endsAt": ended,
                    "labels": {**group, "severity": severity, "instance": inst},
                    "annotations": {}, "generatorURL": ""}
                   for inst, fp in instances.items()]}).encode()


def test_a_guessed_group_key_is_taken_over_by_the_groups_first_post(store, start_alertmanager):
    am = start_alertmanager(ROUTES)
    starts = "2026-12-07T10:00:00Z"
    warning, info = '{}/{severity="warning"}', '{}/{severity="info"}'
    store.ingest(parse(_post(warning, "W", "warning", {"a": "00000000000000aa"}, starts)))
    # an info alert fires; its post waits for group_wait (5m, longer than grace)
    push(am, [{"labels": {"alertname": "I", "service": "checkout", "severity": "info",
                          "instance": "x"}, "startsAt": starts}])
    rec = make_reconciler(store, [am.url])
    assert rec.run_once().done.opened_incidents  # under the latest incident's route: wrong
    [fp] = [a["fingerprint"] for a in am_alerts(am) if a["labels"]["alertname"] == "I"]
    [guessed] = [i for i in rows(store, incidents) if '"I"' in i["group_key"]]
    assert guessed["group_key"].startswith(warning)

    first = store.ingest(parse(_post(info, "I", "info", {"x": fp}, starts)))
    grown = store.ingest(parse(_post(info, "I", "info", {"x": fp, "y": "00000000000000bb"},
                                     starts)))
    assert first.opened == [] and grown.opened == []  # no second incident, no second page
    [inc] = [i for i in rows(store, incidents) if '"I"' in i["group_key"]]
    assert inc["id"] == guessed["id"] and inc["group_key"].startswith(info)
    assert inc["extra"]["guessed_group_key"] == guessed["group_key"]
    assert {r["group_key"] for r in rows(store, incident_alerts,
                                         incident_alerts.c.incident_id == inc["id"])} == {
        inc["group_key"]}
    [rekeyed] = timeline(store, "rekeyed")
    assert (rekeyed["incident_id"], rekeyed["detail"]["from"]) == (inc["id"],
                                                                   guessed["group_key"])
    assert len(rows(store, escalations, escalations.c.incident_id == inc["id"])) == 1

    # adopted once: another route posting the same alerts (continue: true) takes nothing
    other = store.ingest(parse(_post("{}", "I", "info", {"x": fp}, starts)))
    assert other.opened == [] and rows(store, incidents, incidents.c.id == inc["id"])[0][
        "group_key"] == inc["group_key"]

    done = store.ingest(parse(_post(info, "I", "info", {"x": fp, "y": "00000000000000bb"},
                                    starts, status="resolved")))
    assert done.resolved == [inc["id"]]
    assert [i["status"] for i in rows(store, incidents)] == ["resolved", "resolved"]


INHIBITING = AM_CONFIG + """
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [service]
"""


def test_silenced_or_inhibited_alerts_the_store_lacks_open_nothing(store, start_alertmanager):
    """Alertmanager never posts them; a maintenance silence or an inhibition must keep
    them from paging through the reconciler too."""
    am = start_alertmanager(INHIBITING)
    starts = "2026-12-07T10:00:00Z"

    def alert(name: str, severity: str) -> dict:
        return {"labels": {"alertname": name, "service": "checkout", "severity": severity},
                "startsAt": starts}

    silence(am, {"alertname": "Maintenance"})
    push(am, [alert("Maintenance", "warning")])
    push(am, [alert("CheckoutDown", "critical"), alert("CheckoutSlow", "warning")])
    deadline = time.monotonic() + 10
    while {a["labels"]["alertname"]: a["status"]["state"] for a in am_alerts(am)} != {
            "Maintenance": "suppressed", "CheckoutDown": "active",
            "CheckoutSlow": "suppressed"}:
        assert time.monotonic() < deadline, am_alerts(am)
        time.sleep(0.1)
    rec = make_reconciler(store, [am.url])
    report = rec.run_once()
    assert report.done.fired_alerts == 1 and report.suppressed == 2
    assert [r["labels"]["alertname"] for r in rows(store, alerts)] == ["CheckoutDown"]
    [inc] = rows(store, incidents)
    assert '"CheckoutDown"' in inc["group_key"]


def test_an_alert_the_store_never_saw_waits_new_alert_grace(store, start_alertmanager):
    """Its group's first post may still be in group_wait: the reconciler opens the
    incident only after new_alert_grace, while other corrections keep to grace."""
    from datetime import timedelta

    am = start_alertmanager(AM_CONFIG)
    push(am, fixture_alerts("firing"))  # Alertmanager holds it; no post yet
    ingest(store, "group-3-firing")  # a lost resolve: Alertmanager holds none of these
    now = [store.read(lambda c: c.execute(sa.select(sa.func.max(alerts.c.received_at))
                                          ).scalar()) + timedelta(seconds=1)]
    rec = make_reconciler(store, [am.url], clock=lambda: now[0], grace=10,
                          new_alert_grace=60)
    assert rec.run_once(claim_turn=False).done.fired_alerts == 0  # first sighting
    now[0] += timedelta(seconds=10)
    report = rec.run_once(claim_turn=False)
    assert (report.done.resolved_alerts, report.done.fired_alerts) == (3, 0)
    now[0] += timedelta(seconds=49)
    assert rec.run_once(claim_turn=False).done.fired_alerts == 0
    now[0] += timedelta(seconds=1)
    assert rec.run_once(claim_turn=False).done.fired_alerts == 1
