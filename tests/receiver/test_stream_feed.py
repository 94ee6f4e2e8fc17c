"""The change feed under the streams, on SQLite and PostgreSQL: every way an incident
changes writes its change in the same transaction; positions are given after commit,
in order, without gaps; retention never drops the newest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from support.receiver import payload, tenant_payload

from receiver.payload import WebhookPayload
from receiver.stream import feed


def ingest(store, body: dict):
    return store.ingest(WebhookPayload.model_validate(body))


def numbered(store) -> list[tuple[str, str, str]]:
    """Number what committed, then (change, status, actor) of every change in order."""
    with store.transaction() as conn:
        feed.sequence(conn)
        rows = conn.execute(sa.select(feed.c.change, feed.c.status, feed.c.actor)
                            .order_by(feed.c.position))
        return [tuple(r) for r in rows]


def test_every_change_of_an_incident_is_in_the_feed(store):
    [incident] = ingest(store, payload("group-3-firing")).opened
    ingest(store, payload("group-3-firing"))  # a replay changes nothing
    ingest(store, payload("group-3-partly-resolved"))  # an alert resolved: an update
    store.escalate_incident(incident, "carol", "*")
    store.change_incident(incident, "acknowledge", "alice", "*")
    store.change_incident(incident, "acknowledge", "alice", "*")  # already: no change
    store.silence_incident(incident, 3600, "alice", "*")
    store.silence_incident(incident, None, "alice", "*")
    store.change_incident(incident, "resolve", "bob", "*")
    assert numbered(store) == [
        ("opened", "open", "alertmanager"), ("updated", "open", "alertmanager"),
        ("escalated", "open", "carol"), ("acknowledged", "acknowledged", "alice"),
        ("silenced", "acknowledged", "alice"), ("unsilenced", "acknowledged", "alice"),
        ("resolved", "resolved", "bob")]


def test_a_change_that_rolls_back_leaves_no_trace(store):
    with pytest.raises(RuntimeError), store.transaction() as conn:
        feed.record(conn, [feed.change_row({"id": 1, "tenant": "acme", "status": "open",
                                            "severity": "warning"}, "opened", "x",
                                           datetime.now(UTC))])
        raise RuntimeError("the change failed")
    assert numbered(store) == []


def test_positions_follow_commits_and_only_numbered_rows_are_read(store):
    ingest(store, tenant_payload("acme"))
    with store.engine.connect() as conn:
        assert feed.read_after(conn, 0, 10) == []  # committed, not yet numbered
    numbered(store)
    ingest(store, tenant_payload("globex"))
    ingest(store, tenant_payload("initech"))
    with store.transaction() as conn:
        assert feed.sequence(conn) == 2
        assert feed.sequence(conn) == 0
        everything = feed.read_after(conn, 0, 10)
        assert [c.position for c in everything] == [1, 2, 3]
        assert [c.tenant for c in feed.read_after(conn, 1, 10)] == ["globex", "initech"]
        assert [c.position for c in feed.read_after(conn, 0, 10, "globex")] == [2]
    assert everything[0].text.startswith("id: 1\nevent: incident\ndata: {")
    assert everything[0].text.endswith("}\n\n") and everything[0].text.count("\n") == 4


def test_retention_drops_old_changes_but_never_the_newest(store):
    old = datetime.now(UTC) - timedelta(days=3)
    with store.transaction() as conn:
        feed.record(conn, [feed.change_row({"id": i, "tenant": "acme", "status": "open",
                                            "severity": "warning"}, "updated", "x", old)
                           for i in range(5)])
        feed.sequence(conn)
        assert feed.prune(conn, datetime.now(UTC) - timedelta(days=1), 1000) == 4
        assert (feed.oldest(conn), feed.head(conn)) == (5, 5)
    ingest(store, tenant_payload("acme"))
    with store.transaction() as conn:
        feed.sequence(conn)
        assert feed.head(conn) == 6  # positions go on from the kept row
        assert feed.prune(conn, old - timedelta(days=1), 1) == 1  # over max_rows
        assert feed.oldest(conn) == 6


def test_an_unknown_change_is_refused():
    with pytest.raises(ValueError, match="unknown change"):
        feed.change_row({"id": 1, "tenant": "t", "status": "open", "severity": "x"},
                        "deleted", None, datetime.now(UTC))
