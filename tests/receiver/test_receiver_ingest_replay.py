"""The ingest fast paths: a replay is one read, a change writes only what moved.

Every test runs on SQLite and on PostgreSQL. Statements are counted with SQLAlchemy's
cursor events on both of the store's pools (BEGIN excluded: SQLite issues it as a
statement, psycopg2 implicitly). On PostgreSQL the probe runs in the autocommit pool,
so the hook test in test_receiver_ingest.py also proves the write pool stays
transactional: a failing hook leaves no trace.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from support.receiver import count, filed_key, payload, snapshot

from receiver.payload import WebhookPayload
from receiver.store import queries


@contextmanager
def statements(store) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        if not statement.lstrip().upper().startswith("BEGIN"):
            seen.append(" ".join(statement.split()))

    engines = [e for e in (store.engine, store.autocommit) if e is not None]
    for engine in engines:
        sa.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines:
            sa.event.remove(engine, "before_cursor_execute", record)


def ingest(store, body: dict):
    return store.ingest(WebhookPayload.model_validate(body))


def incidents_by_group(store) -> dict[str, dict]:
    rows, _ = store.read(queries.list_incidents, "*", queries.IncidentFilter(), 100)
    return {r["group_key"]: store.read(queries.get_incident, "*", r["id"]) for r in rows}


def test_a_replay_is_one_read_and_writes_nothing(store):
    for name in ("group-3-firing", "group-3-resolved"):  # an open, then a resolved group
        ingest(store, payload(name))
        before = snapshot(store)
        with statements(store) as seen:
            again = ingest(store, payload(name))
        assert len(seen) == 1 and seen[0].startswith("SELECT"), seen
        assert (again.changed, again.opened, again.resolved) == (0, [], [])
        assert again.duplicates == len(payload(name)["alerts"])
        assert snapshot(store) == before


def test_a_replay_of_fingerprints_an_array_literal_could_misread_is_one_read(store):
    """PostgreSQL's probe passes the keys as array literals: "NULL" stays a string."""
    body = payload("group-3-firing")
    for alert, fingerprint in zip(body["alerts"], ("NULL", "null", "0"), strict=False):
        alert["fingerprint"] = fingerprint
    ingest(store, body)
    with statements(store) as seen:
        again = ingest(store, body)
    assert len(seen) == 1 and again.duplicates == len(body["alerts"]), seen


def test_a_post_resolving_one_alert_writes_that_alert_and_its_history_only(store):
    ingest(store, payload("group-3-firing"))
    [inc] = incidents_by_group(store).values()
    with statements(store) as seen:
        result = ingest(store, payload("group-3-partly-resolved"))
    assert (result.changed, result.duplicates) == (1, 2)
    # probe, incident lock, one upserted row, "still firing?", one history row, and the
    # incident's change for live streams (receiver/stream/feed.py)
    assert len(seen) <= 6, seen
    assert sum(s.startswith("INSERT INTO incident_changes") for s in seen) == 1, seen
    assert not any(s.startswith("INSERT INTO incident_alerts") for s in seen), seen
    detail = incidents_by_group(store)[inc["group_key"]]
    resolved = [e for e in detail["timeline"] if e["kind"] == "alert_resolved"]
    assert len(resolved) == 1  # the timeline holds this incident's events only
    assert sorted(a["status"] for a in detail["alerts"]) == ["firing", "firing", "resolved"]


def test_an_alert_stored_by_another_group_still_joins_this_groups_incident(store):
    """Stored and unchanged is not enough for a replay: this group must link it too."""
    first = payload("two-groups-inventory")
    other = copy.deepcopy(payload("two-groups-payments"))
    ingest(store, first)
    ingest(store, other)
    other["alerts"] = other["alerts"] + [copy.deepcopy(first["alerts"][0])]
    result = ingest(store, other)
    assert result.changed == 0  # nothing about the alerts themselves moved
    groups = incidents_by_group(store)
    joined = groups[filed_key(other)]
    assert first["alerts"][0]["fingerprint"] in {a["fingerprint"] for a in joined["alerts"]}
    assert first["alerts"][0]["fingerprint"] in {
        a["fingerprint"] for a in groups[filed_key(first)]["alerts"]}
    before = snapshot(store)
    with statements(store) as seen:
        ingest(store, other)  # now it is a replay
    assert len(seen) == 1 and snapshot(store) == before


def test_new_alerts_in_a_replayed_post_are_not_skipped(store):
    body = copy.deepcopy(payload("group-3-firing"))
    ingest(store, body)
    extra = copy.deepcopy(body["alerts"][0])
    extra["fingerprint"] = "f" * 16
    extra["labels"]["instance"] = "checkout-9:8080"
    body["alerts"].append(extra)
    result = ingest(store, body)
    assert (result.changed, result.duplicates) == (1, 3)
    assert count(store, "alerts") == 4
    [inc] = incidents_by_group(store).values()
    assert len(inc["alerts"]) == 4
    assert count(store, "events", f"kind = 'alert_firing' AND incident_id = {inc['id']}") == 4


def test_a_resolved_group_post_is_not_a_replay_while_the_group_is_open(store):
    """Replaying `resolved` with every alert already resolved still ends the open incident.

    The incident was left open by hand-made state (an alert re-linked and reopened is not
    possible through the API, so we reopen the incident row directly): the probe must see
    the open incident and let the full path resolve it.
    """
    ingest(store, payload("firing"))
    ingest(store, payload("resolved"))
    [inc] = incidents_by_group(store).values()
    assert inc["status"] == "resolved"
    with store.transaction() as conn:
        conn.execute(sa.text("UPDATE incidents SET status = 'open', resolved_at = NULL, "
                             "resolved_by = NULL"))
    result = ingest(store, payload("resolved"))
    assert result.resolved == [inc["id"]]
    assert incidents_by_group(store)[inc["group_key"]]["status"] == "resolved"


def test_a_late_copy_of_an_earlier_resolved_post_leaves_the_next_episode_alone(store):
    """Replaying episode 1's "resolved" after the group fired again changes nothing."""
    for name in ("group-3-firing", "group-3-resolved", "refire-new-episode"):
        ingest(store, payload(name))
    before = snapshot(store)
    again = ingest(store, payload("group-3-resolved"))
    assert (again.changed, again.opened, again.resolved) == (0, [], [])
    assert snapshot(store) == before
    assert count(store, "incidents") == 2
    assert count(store, "incidents", "status = 'open'") == 1


def new_alerts_of_the_group(body: dict, tag: str) -> dict:
    """The same group, every alert new to the store (a storm of distinct alerts)."""
    body = copy.deepcopy(body)
    for i, alert in enumerate(body["alerts"]):
        alert["fingerprint"] = f"{tag}{i:015x}"
        alert["labels"]["instance"] = f"{tag}-{i}:8080"
    return body


def test_a_post_of_new_alerts_is_a_fixed_handful_of_statements(store):
    """The storm path: an open incident gains new alerts. On PostgreSQL: the probe, then
    one statement for the incident lock, the upsert, the links, the history and the live
    feed's change, prepared by an earlier post (SQLite has no autocommit probe outside
    the transaction and runs the five apart)."""
    first = payload("group-3-firing")
    ingest(store, first)
    ingest(store, new_alerts_of_the_group(first, "w"))  # prepares the feed's variant
    [inc] = incidents_by_group(store).values()
    body = new_alerts_of_the_group(first, "a")
    with statements(store) as seen:
        result = ingest(store, body)
    assert (result.changed, result.opened, result.resolved) == (3, [], [])
    kinds = [" ".join(s.split()[:3]) for s in seen]
    if store.url.startswith("postgresql"):
        assert kinds == ["SELECT k.i, alerts.status,",
                         "EXECUTE ticketmon_storm (%(group_key)s::text,"], seen
    else:
        assert kinds == ["SELECT alerts.fingerprint, alerts.starts_at,",
                         "SELECT incidents.id, incidents.group_key,",
                         "INSERT INTO alerts", "INSERT INTO incident_changes",
                         "INSERT INTO incident_alerts", "INSERT INTO events"], seen
    detail = incidents_by_group(store)[inc["group_key"]]
    assert len(detail["alerts"]) == 9
    firing = [e for e in detail["timeline"] if e["kind"] == "alert_firing"]
    assert len(firing) == 9  # the timeline holds this incident's events only


def test_in_a_storm_posts_skip_the_probe_until_one_brings_a_stored_alert(store):
    """After STORM_STREAK posts in a row of alerts new to the store, the next post goes
    straight to the write path (PostgreSQL: one statement locks the incident and writes
    the alerts, links, history and the live feed's change). A replay then takes the
    write path once, changes nothing, and ends the streak."""
    from receiver.store.store import STORM_STREAK

    first = payload("group-3-firing")
    ingest(store, first)
    for n in range(STORM_STREAK):
        ingest(store, new_alerts_of_the_group(first, f"s{n}"))
    storm = new_alerts_of_the_group(first, "d")
    with statements(store) as seen:
        result = ingest(store, storm)
    assert (result.changed, result.duplicates, result.all_new) == (3, 0, True)
    if store.url.startswith("postgresql"):
        assert [s.split()[1] for s in seen] == [
            "ticketmon_storm"], seen
    before = snapshot(store)
    again = ingest(store, storm)
    assert (again.changed, again.duplicates, again.opened, again.all_new) == (0, 3, [], False)
    assert snapshot(store) == before
    with statements(store) as seen:
        ingest(store, storm)
    assert len(seen) == 1 and seen[0].startswith("SELECT"), seen
    [inc] = incidents_by_group(store).values()
    assert len(inc["alerts"]) == 3 * (STORM_STREAK + 2)


def test_a_storm_post_that_is_not_all_new_is_ingested_as_any_other(store):
    """In a storm the probe is skipped, so the storm statement (PostgreSQL) may meet an
    alert already stored, or an older instance still firing: the stored alert is linked
    but gets no history twice, and the older instance sends the post the step-by-step
    way, which ends it. Each alert is linked and recorded exactly once."""
    from receiver.store.store import STORM_STREAK

    first = payload("group-3-firing")
    ingest(store, first)
    stored = new_alerts_of_the_group(first, "k")
    ingest(store, stored)
    [inc] = incidents_by_group(store).values()
    mixed = new_alerts_of_the_group(first, "m")
    mixed["alerts"][0] = copy.deepcopy(stored["alerts"][0])  # already stored, firing
    store.new_streak = STORM_STREAK
    result = ingest(store, mixed)
    assert (result.changed, result.duplicates, result.all_new) == (2, 1, False)
    refire = new_alerts_of_the_group(first, "r")
    refire["alerts"][0] = copy.deepcopy(mixed["alerts"][1])
    refire["alerts"][0]["startsAt"] = "2026-11-22T05:00:00Z"  # its older instance fires
    store.new_streak = STORM_STREAK
    result = ingest(store, refire)
    assert (result.changed, result.duplicates, result.all_new) == (4, 0, True)
    detail = incidents_by_group(store)[inc["group_key"]]
    assert len(detail["alerts"]) == 3 + 3 + 2 + 3
    states = {(a["fingerprint"], a["starts_at"]): a["status"] for a in detail["alerts"]}
    older = (mixed["alerts"][1]["fingerprint"], "2026-11-22T04:35:25.660000Z")
    assert states[older] == "resolved"
    firing = [(e["fingerprint"], e["starts_at"]) for e in detail["timeline"]
              if e["kind"] == "alert_firing"]
    assert len(firing) == len(set(firing)) == 11  # each alert's history once
    assert count(store, "events", "kind = 'alert_resolved'") == 1
    assert count(store, "incident_changes", f"incident_id = {inc['id']}") == 4


def test_a_storm_post_above_the_incidents_severity_raises_it_through_the_hooks(store):
    """A storm post that would raise the open incident's severity is not left to the
    storm statement: the ingest raises it, and the hooks see it."""
    from receiver.store.store import STORM_STREAK

    seen = []
    store.add_hook(lambda conn, event: seen.append((event.kind, event.severity)))
    first = payload("group-3-firing")  # warning
    ingest(store, first)
    critical = new_alerts_of_the_group(first, "c")
    critical["alerts"][1]["labels"]["severity"] = "critical"
    store.new_streak = STORM_STREAK
    result = ingest(store, critical)
    assert (result.changed, result.all_new) == (3, True)
    [inc] = incidents_by_group(store).values()
    assert inc["severity"] == "critical" and len(inc["alerts"]) == 6
    assert seen[-1] == ("severity_raised", "critical")
    quieter = new_alerts_of_the_group(first, "q")  # warning again: joins quietly
    ingest(store, quieter)
    assert incidents_by_group(store)[inc["group_key"]]["severity"] == "critical"
    assert seen[-1] == ("severity_raised", "critical")  # no hook ran for it


def test_a_storm_post_of_alerts_older_than_an_ended_episode_joins_that_episode(store):
    """Alerts that started before an episode Alertmanager ended belong to it, not to
    the group's open incident, also when they arrive in a storm."""
    from receiver.store.store import STORM_STREAK

    first = payload("group-3-firing")
    ingest(store, first)
    ingest(store, payload("group-3-resolved"))  # the episode ends at 04:35:36.66
    later = new_alerts_of_the_group(first, "b")
    for alert in later["alerts"]:
        alert["startsAt"] = "2026-11-22T05:00:00Z"
    ingest(store, later)  # the next episode
    store.new_streak = STORM_STREAK
    ingest(store, new_alerts_of_the_group(first, "l"))  # started at 04:35:25.66
    rows, _ = store.read(queries.list_incidents, "*", queries.IncidentFilter(), 10)
    ended, current = sorted(rows, key=lambda r: r["id"])
    late = {f"l{i:015x}" for i in range(3)}
    assert late <= {a["fingerprint"] for a in
                    store.read(queries.get_incident, "*", ended["id"])["alerts"]}
    assert not late & {a["fingerprint"] for a in
                       store.read(queries.get_incident, "*", current["id"])["alerts"]}


def test_two_instances_of_one_fingerprint_in_one_post_end_the_older(store):
    """The upsert's own probe cannot see an instance posted alongside: still ended."""
    body = copy.deepcopy(payload("group-3-firing"))
    later = copy.deepcopy(body["alerts"][0])
    later["startsAt"] = "2026-11-22T05:00:00Z"
    body["alerts"].append(later)
    result = ingest(store, body)
    assert result.changed == 5  # four inserted, one of them ended by the other
    [inc] = incidents_by_group(store).values()
    states = {(a["fingerprint"], a["starts_at"]): a["status"] for a in inc["alerts"]}
    fp = later["fingerprint"]
    assert states[(fp, "2026-11-22T05:00:00Z")] == "firing"
    assert states[(fp, "2026-11-22T04:35:25.660000Z")] == "resolved"


def test_a_new_connection_prepares_the_write_statements_again(postgres_url):
    """Prepared statements belong to a session: after PostgreSQL ends the store's
    sessions (a restart, a pooler), the next post prepares them on its new connection
    instead of failing on statements that no longer exist."""
    from receiver.store import Store, migrate

    migrate.upgrade(postgres_url)
    store = Store(postgres_url)
    try:
        first = payload("group-3-firing")
        ingest(store, first)
        admin = sa.create_engine(postgres_url, poolclass=sa.pool.NullPool)
        with admin.connect() as other:  # a session of its own, not one of the store's
            ended = other.execute(sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'ticketmon-receiver' "
                "AND datname = current_database()")).scalar()  # not other tests' sessions
        admin.dispose()
        assert ended == 2  # the autocommit session (probe, storm) and the write session
        raised = new_alerts_of_the_group(first, "r")  # step by step: a severity raise
        raised["alerts"][0]["labels"]["severity"] = "critical"
        with statements(store) as seen:
            result = ingest(store, new_alerts_of_the_group(first, "b"))
            assert (result.changed, result.opened) == (3, [])
            result = ingest(store, raised)
            assert (result.changed, result.opened) == (3, [])
        prepared = [s.split()[1] for s in seen if s.startswith("PREPARE")]
        assert prepared[0] == "ticketmon_storm", seen
        assert {"ticketmon_lock_open_incident", "ticketmon_upsert_alerts"} <= set(prepared[1:])
        [inc] = incidents_by_group(store).values()
        assert len(inc["alerts"]) == 9 and inc["severity"] == "critical"
    finally:
        store.dispose()


def test_database_errors_under_a_prepared_statement_are_the_stores_own(postgres_url):
    """In a storm the first statement of a post is the prepared storm statement (its
    first step the incident lock), run on the DBAPI cursor: its errors must still become
    StoreUnavailable (a 503 Alertmanager retries) and a session PostgreSQL ended must
    still be replaced, as for any other statement. Here the incident is held locked
    past the store's timeout, then the store's sessions are ended."""
    from receiver.store import Store, StoreUnavailable, migrate
    from receiver.store.store import STORM_STREAK

    migrate.upgrade(postgres_url)
    store = Store(postgres_url, timeout=1)
    admin = sa.create_engine(postgres_url, poolclass=sa.pool.NullPool)
    try:
        first = payload("group-3-firing")
        ingest(store, first)
        store.new_streak = STORM_STREAK  # no probe: the lock is the first statement's
        with admin.begin() as other:
            other.execute(sa.text("SELECT id FROM incidents FOR UPDATE"))
            with pytest.raises(StoreUnavailable, match="timeout"):
                ingest(store, new_alerts_of_the_group(first, "c"))
        with admin.connect() as other:
            other.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = 'ticketmon-receiver' "
                "AND datname = current_database()"))
        store.new_streak = STORM_STREAK
        with statements(store) as seen:
            result = ingest(store, new_alerts_of_the_group(first, "c"))
        assert (result.changed, result.opened) == (3, [])
        locks = [s for s in seen if s.startswith("EXECUTE ticketmon_storm")]
        assert len(locks) == 2, seen  # failed on the ended session, then run again
        store.dispose()  # the write pool's session was ended too; the storm never used it
        [inc] = incidents_by_group(store).values()
        assert len(inc["alerts"]) == 6
    finally:
        admin.dispose()
        store.dispose()
