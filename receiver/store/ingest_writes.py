"""A post's links and history rows, held back and written together at its end.

In a storm every post brings new alerts: their links cannot exist yet, so nothing in
the post needs them written early, and on PostgreSQL the links and the history go out
in one statement (a data-modifying CTE over one array per column) instead of two.
Whatever reads incident_alerts, or may (a hook), flushes the links first.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy.engine import Connection

from receiver.store.bulk import dialect_insert
from receiver.store.prepared import Prepared
from receiver.store.tables import events, incident_alerts
from receiver.stream import feed

LINK_COLUMNS = ("group_key", "fingerprint", "starts_at", "incident_id")
EVENT_COLUMNS = ("at", "incident_id", "fingerprint", "starts_at", "kind", "actor", "detail")
# PostgreSQL: links and history of a post in one round trip, always the same text
LINKS_AND_EVENTS = """
WITH linked AS (
    INSERT INTO incident_alerts (group_key, fingerprint, starts_at, incident_id)
    SELECT * FROM unnest(%(l_group_key)s::text[], %(l_fingerprint)s::text[],
                         %(l_starts_at)s::timestamp[], %(l_incident_id)s::bigint[])
    ON CONFLICT DO NOTHING
)
INSERT INTO events (at, incident_id, fingerprint, starts_at, kind, actor, detail)
SELECT * FROM unnest(%(e_at)s::timestamp[], %(e_incident_id)s::bigint[],
                     %(e_fingerprint)s::text[], %(e_starts_at)s::timestamp[],
                     %(e_kind)s::text[], %(e_actor)s::text[], %(e_detail)s::jsonb[])
"""
LINKS_AND_EVENTS_TYPES = {
    "l_group_key": "text[]", "l_fingerprint": "text[]", "l_starts_at": "timestamp[]",
    "l_incident_id": "bigint[]", "e_at": "timestamp[]", "e_incident_id": "bigint[]",
    "e_fingerprint": "text[]", "e_starts_at": "timestamp[]", "e_kind": "text[]",
    "e_actor": "text[]", "e_detail": "jsonb[]"}
links_and_events = Prepared("ticketmon_links_and_events", LINKS_AND_EVENTS,
                            LINKS_AND_EVENTS_TYPES)
CHANGE_COLUMNS = ("at", "incident_id", "tenant", "change", "status", "severity", "actor")
# ... and the post's live-feed changes in the same round trip (receiver/stream/feed.py)
WITH_CHANGES = LINKS_AND_EVENTS.replace("WITH linked AS (", """WITH changed AS (
    INSERT INTO incident_changes (at, incident_id, tenant, change, status, severity, actor)
    SELECT * FROM unnest(%(c_at)s::timestamp[], %(c_incident_id)s::bigint[],
                         %(c_tenant)s::text[], %(c_change)s::text[], %(c_status)s::text[],
                         %(c_severity)s::text[], %(c_actor)s::text[])
), linked AS (""")
links_events_and_changes = Prepared(
    "ticketmon_links_events_changes", WITH_CHANGES,
    {**LINKS_AND_EVENTS_TYPES, "c_at": "timestamp[]", "c_incident_id": "bigint[]",
     "c_tenant": "text[]", "c_change": "text[]", "c_status": "text[]",
     "c_severity": "text[]", "c_actor": "text[]"})


def _naive_utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC).replace(tzinfo=None)


def _arrays(prefix: str, columns: tuple[str, ...], rows: list[dict]) -> dict[str, list]:
    out: dict[str, list] = {}
    for column in columns:
        values = [row[column] for row in rows]
        if column in ("at", "starts_at"):
            values = [_naive_utc(v) for v in values]
        elif column == "detail":
            values = [json.dumps(v) for v in values]  # None too: JSON null, as sa.JSON does
        out[f"{prefix}_{column}"] = values
    return out


class Writes:
    """Links (rows known to be new), history rows and live-feed changes, in the order
    they were made."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.links: list[dict] = []
        self.events: list[dict] = []
        self.changes: list[dict] = []

    def flush_links(self) -> None:
        """Before anything reads incident_alerts: a query, a resolution, a hook."""
        if self.links:
            self.conn.execute(dialect_insert(self.conn, incident_alerts)
                              .on_conflict_do_nothing(), self.links)
            self.links.clear()

    def flush(self) -> None:
        if self.links and self.events and self.conn.dialect.name == "postgresql":
            params = {**_arrays("l", LINK_COLUMNS, self.links),
                      **_arrays("e", EVENT_COLUMNS, self.events)}
            if self.changes:
                params.update(_arrays("c", CHANGE_COLUMNS, self.changes))
                links_events_and_changes(self.conn, params)
            else:
                links_and_events(self.conn, params)
            self.links.clear()
            self.events.clear()
            self.changes.clear()
            return
        feed.record(self.conn, self.changes)
        self.changes.clear()
        self.flush_links()
        if self.events:
            self.conn.execute(events.insert(), self.events)
            self.events.clear()
