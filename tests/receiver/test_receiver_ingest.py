"""Ingest rules, scenario by scenario, with the real Alertmanager 0.25 payloads.

Every test here runs on SQLite and on PostgreSQL (the `database_url` fixture).
"""

from __future__ import annotations

import copy
import threading

import pytest
import sqlalchemy as sa
from support.receiver import ALL_PAYLOADS, count, payload, payload_bytes, snapshot

from receiver.payload import WebhookPayload, parse
from receiver.store import queries
from receiver.store.tables import incidents


def ingest(store, name_or_dict):
    if isinstance(name_or_dict, str):
        return store.ingest(parse(payload_bytes(name_or_dict)))
    return store.ingest(WebhookPayload.model_validate(name_or_dict))


def all_incidents(store) -> list[dict]:
    rows, _ = store.read(queries.list_incidents, "*", queries.IncidentFilter(), 100)
    return sorted(rows, key=lambda r: r["id"])


def incident(store, incident_id: int) -> dict:
    return store.read(queries.get_incident, "*", incident_id)


def alert_states(inc: dict) -> dict[str, str]:
    return {a["labels"]["instance"]: a["status"] for a in inc["alerts"]}


@pytest.mark.parametrize("name", ALL_PAYLOADS)
def test_every_real_payload_is_stored_and_a_repeat_changes_nothing(store, name):
    first = ingest(store, name)
    assert first.changed == len(payload(name)["alerts"])
    assert count(store, "alerts") == len(payload(name)["alerts"])
    before = snapshot(store)
    again = ingest(store, name)
    assert again.changed == 0 and again.duplicates == len(payload(name)["alerts"])
    assert again.opened == [] and again.resolved == []
    assert snapshot(store) == before


def test_group_episode_opens_resolves_and_refires_as_a_new_incident(store):
    opened = ingest(store, "group-3-firing")
    assert len(opened.opened) == 1
    [inc] = all_incidents(store)
    assert (inc["status"], inc["severity"], inc["tenant"], inc["service"]) == (
        "open", "warning", "acme", "checkout")
    assert inc["title"] == "HighErrorRate"  # no summary common to the group
    assert inc["opened_at"] == "2026-11-22T04:35:25.660000Z"

    ingest(store, "group-3-partly-resolved")
    detail = incident(store, inc["id"])
    assert detail["status"] == "open"
    assert alert_states(detail) == {"checkout-1:8080": "firing", "checkout-2:8080": "firing",
                                    "checkout-3:8080": "resolved"}

    done = ingest(store, "group-3-resolved")  # lists only two of the three alerts
    assert done.resolved == [inc["id"]]
    detail = incident(store, inc["id"])
    assert detail["status"] == "resolved" and detail["resolved_by"] == "alertmanager"
    assert detail["resolved_at"] == "2026-11-22T04:35:36.660000Z"
    assert set(alert_states(detail).values()) == {"resolved"}
    kinds = [e["kind"] for e in detail["timeline"]]
    assert kinds[0] == "opened" and kinds[-1] == "resolved"
    assert kinds.count("alert_firing") == 3 and kinds.count("alert_resolved") == 3

    again = ingest(store, "refire-new-episode")
    assert len(again.opened) == 1 and again.opened[0] != inc["id"]
    second = incident(store, again.opened[0])
    assert second["status"] == "open" and second["group_key"] == inc["group_key"]
    assert [a["starts_at"] for a in second["alerts"]] == ["2026-11-22T04:35:41.660000Z"]
    assert incident(store, inc["id"])["status"] == "resolved"
    assert count(store, "alerts") == 4  # the refired alert is a new instance


def test_resolved_before_firing_ends_resolved(store):
    ingest(store, "resolved")
    ingest(store, "firing")  # the firing post, late (retry from an HA peer)
    [inc] = all_incidents(store)
    assert inc["status"] == "resolved" and inc["severity"] == "critical"
    assert inc["title"] == "E2E gauge tripped on 127.0.0.1:19100 (value 1)"
    assert alert_states(incident(store, inc["id"])) == {"127.0.0.1:19100": "resolved"}
    assert count(store, "incidents", "status != 'resolved'") == 0


def test_firing_then_resolved_is_the_same_end_state(store):
    ingest(store, "firing")
    ingest(store, "resolved")
    [inc] = all_incidents(store)
    assert inc["status"] == "resolved"
    assert inc["resolved_at"] == "2026-11-22T04:06:46.119000Z"


def _end_state(store) -> list[tuple]:
    out = []
    for inc in all_incidents(store):
        detail = incident(store, inc["id"])
        out.append((inc["status"], sorted((a["fingerprint"], a["starts_at"], a["status"])
                                          for a in detail["alerts"])))
    return out


IN_ORDER = ["group-3-firing", "group-3-partly-resolved", "group-3-resolved",
            "refire-new-episode"]


@pytest.mark.parametrize("order", [
    IN_ORDER,
    ["group-3-firing", "group-3-partly-resolved", "refire-new-episode", "group-3-resolved"],
    ["group-3-firing", "group-3-resolved", "group-3-partly-resolved", "refire-new-episode"],
    ["group-3-resolved", "refire-new-episode", "group-3-firing", "group-3-partly-resolved"],
], ids=["in-order", "refire-before-resolved", "resolved-before-partly", "reversed"])
def test_out_of_order_posts_end_in_the_in_order_state(store, order, database_url, tmp_path):
    from receiver.store import Store, migrate

    reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    migrate.upgrade(reference_url)
    reference = Store(reference_url)
    for name in IN_ORDER:
        ingest(reference, name)
    expected = _end_state(reference)
    reference.dispose()
    assert [s for s, _ in expected] == ["resolved", "open"]

    for name in order:
        ingest(store, name)
    assert _end_state(store) == expected


def test_truncated_alerts_are_recorded_until_a_complete_post(store):
    ingest(store, "truncated")
    [inc] = all_incidents(store)
    assert inc["truncated_alerts"] == 1
    ingest(store, "extra-truncated-resolved")  # complete: the group resolved, nothing hidden
    detail = incident(store, inc["id"])
    assert detail["status"] == "resolved" and detail["truncated_alerts"] == 0
    assert len(detail["alerts"]) == 2


def test_two_groups_at_once_are_two_incidents_in_either_order(store):
    ingest(store, "two-groups-inventory")
    ingest(store, "two-groups-payments")
    services = sorted(i["service"] for i in all_incidents(store))
    assert services == ["inventory", "payments"]


def _with_severities(*severities: str) -> dict:
    body = copy.deepcopy(payload("group-3-firing"))
    for alert, severity in zip(body["alerts"], severities, strict=True):
        alert["labels"]["severity"] = severity
    return body


def test_severity_is_the_highest_and_unknown_values_are_kept(store):
    first = _with_severities("info", "page", "none")
    first["alerts"] = first["alerts"][:2]
    ingest(store, first)
    [inc] = all_incidents(store)
    assert inc["severity"] == "info"  # "page" is unknown: kept, but ranks lowest
    pages = store.read(queries.list_alerts, "*",
                       queries.AlertFilter(labels={"severity": "page"}), 10)[0]
    assert [a["severity"] for a in pages] == ["page"]
    ingest(store, _with_severities("info", "page", "critical"))
    assert all_incidents(store)[0]["severity"] == "critical"
    kinds = [e["kind"] for e in incident(store, inc["id"])["timeline"]]
    assert "severity_raised" in kinds


def test_unknown_fields_are_kept(store):
    body = payload("firing")
    body["notification_reason"] = "new_alert"  # Alertmanager 0.32+
    body["alerts"][0]["routeLabels"] = {"team": "ticketing"}
    ingest(store, body)
    [inc] = all_incidents(store)
    assert inc["extra"] == {"notification_reason": "new_alert"}
    detail = incident(store, inc["id"])
    assert detail["alerts"][0]["extra"] == {"routeLabels": {"team": "ticketing"}}


def test_concurrent_identical_posts_make_one_incident(store):
    body = parse(payload_bytes("group-3-firing"))
    errors: list[BaseException] = []
    results = []
    barrier = threading.Barrier(6)

    def post() -> None:
        try:
            barrier.wait()
            results.append(store.ingest(body))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert sum(len(r.opened) for r in results) == 1
    assert count(store, "incidents") == 1 and count(store, "alerts") == 3
    assert count(store, "events", "kind = 'alert_firing'") == 3


def test_hooks_run_in_the_transaction_and_a_failing_hook_writes_nothing(store):
    seen = []
    store.add_hook(lambda conn, event: seen.append((event.kind, conn.in_transaction())))
    ingest(store, "firing")
    ingest(store, "resolved")
    assert seen == [("opened", True), ("resolved", True)]

    def broken(conn, event):
        raise RuntimeError("outbox full")

    store.add_hook(broken)
    before = snapshot(store)
    with pytest.raises(RuntimeError):
        ingest(store, "group-3-firing")
    assert snapshot(store) == before


def test_manual_resolve_while_firing_does_not_reopen_on_repeats(store):
    ingest(store, "group-3-firing")
    [inc] = all_incidents(store)
    changed_inc, changed = store.change_incident(inc["id"], "resolve", "alice", "*", "fixed")
    assert changed and changed_inc["status"] == "resolved"
    ingest(store, "group-3-firing")  # Alertmanager repeats while the alerts still fire
    assert count(store, "incidents") == 1
    ingest(store, "group-3-resolved")
    assert count(store, "incidents") == 1
    ingest(store, "refire-new-episode")
    assert count(store, "incidents") == 2


def test_acknowledge_and_resolve_transitions_are_audited(store):
    ingest(store, "firing")
    [inc] = all_incidents(store)
    _, changed = store.change_incident(inc["id"], "acknowledge", "bob", "*", "looking")
    assert changed
    _, changed = store.change_incident(inc["id"], "acknowledge", "bob", "*")
    assert not changed  # repeating is harmless
    _, changed = store.change_incident(inc["id"], "resolve", "bob", "*")
    assert changed
    from receiver.store.store import Conflict, NotFound

    with pytest.raises(Conflict):
        store.change_incident(inc["id"], "acknowledge", "bob", "*")
    with pytest.raises(NotFound):
        store.change_incident(inc["id"], "resolve", "eve", "other-tenant")
    rows, _ = store.read(queries.list_audit, "*", 10)
    assert [(r["action"], r["outcome"]) for r in reversed(rows)] == [
        ("acknowledge", "changed"), ("acknowledge", "unchanged"), ("resolve", "changed"),
        ("acknowledge", "conflict")]
    assert count(store, "incidents", "status = 'resolved' AND resolved_by = 'bob'") == 1


def test_prune_drops_what_ended_before_the_cutoff_and_keeps_the_rest(store):
    from datetime import UTC, datetime, timedelta

    ingest(store, "firing")
    ingest(store, "resolved")  # resolved incident, ended 2026-11-22 04:06
    ingest(store, "two-groups-payments")  # still open
    with store.transaction() as conn:  # make the resolved one old
        conn.execute(incidents.update().where(incidents.c.status == "resolved")
                     .values(resolved_at=datetime(2020, 1, 1, tzinfo=UTC)))
        conn.execute(sa.text("UPDATE alerts SET updated_at = :t WHERE status = 'resolved'"),
                     {"t": datetime(2020, 1, 1)})
    counts = store.prune(datetime.now(UTC) - timedelta(days=90))
    assert counts["incidents"] == 1 and counts["alerts"] == 1 and counts["events"] >= 3
    [left] = all_incidents(store)
    assert left["service"] == "payments" and left["status"] == "open"
    assert count(store, "alerts") == 1 and count(store, "events") > 0
    assert store.prune(datetime.now(UTC) - timedelta(days=90)) == {
        "events": 0, "incidents": 0, "alerts": 0}


def test_migrations_create_exactly_the_declared_tables(store):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from receiver.store.tables import metadata

    with store.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    ours = {t.name for t in metadata.sorted_tables}

    def about_ours(diff) -> bool:
        item = diff[0] if isinstance(diff, list) else diff
        for part in item[1:]:
            table = getattr(part, "table", None)
            name = getattr(table, "name", None) or getattr(part, "name", None)
            if name in ours or (isinstance(part, str) and part in ours):
                return True
        return False

    assert [d for d in diffs if about_ours(d)] == []
