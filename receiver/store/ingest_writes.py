"""A post's links and history rows, held back and written together at its end.

In a storm every post brings new alerts: their links cannot exist yet, so nothing in
the post needs them written early, and on PostgreSQL the links and the history go out
in one statement (a data-modifying CTE over one JSON array per table) instead of two.
Whatever reads incident_alerts, or may (a hook), flushes the links first.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.engine import Connection

from receiver.store.bulk import dialect_insert
from receiver.store.prepared import Prepared
from receiver.store.tables import events, incident_alerts
from receiver.store.types import json_text
from receiver.stream import feed

# PostgreSQL: links and history of a post in one round trip, always the same text, each
# table's rows as one JSON array (see UPSERT_ALERTS in ingest_statements.py); a None
# detail is stored as JSON null, as sa.JSON stores it on SQLite
LINKS_AND_EVENTS = """
WITH linked AS (
    INSERT INTO incident_alerts (group_key, fingerprint, starts_at, incident_id)
    SELECT * FROM json_to_recordset(%(links)s)
                  AS (group_key text, fingerprint text, starts_at timestamp,
                      incident_id bigint)
    ON CONFLICT DO NOTHING
)
INSERT INTO events (at, incident_id, fingerprint, starts_at, kind, actor, detail)
SELECT at, incident_id, fingerprint, starts_at, kind, actor, coalesce(detail, 'null')
FROM json_to_recordset(%(events)s)
     AS (at timestamp, incident_id bigint, fingerprint text, starts_at timestamp,
         kind text, actor text, detail jsonb)
"""
links_and_events = Prepared("ticketmon_links_and_events", LINKS_AND_EVENTS,
                            {"links": "json", "events": "json"})
# ... and the post's live-feed changes in the same round trip (receiver/stream/feed.py)
WITH_CHANGES = LINKS_AND_EVENTS.replace("WITH linked AS (", """WITH changed AS (
    INSERT INTO incident_changes (at, incident_id, tenant, change, status, severity, actor)
    SELECT * FROM json_to_recordset(%(changes)s)
                  AS (at timestamp, incident_id bigint, tenant text, change text,
                      status text, severity text, actor text)
), linked AS (""")
links_events_and_changes = Prepared("ticketmon_links_events_changes", WITH_CHANGES,
                                    {"links": "json", "events": "json", "changes": "json"})


def _naive_utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC).replace(tzinfo=None)


def _json_rows(rows: list[dict], times: tuple[str, ...]) -> str:
    """Rows as one JSON array, their times naive UTC (the columns' `timestamp`)."""
    return json_text([{**row, **{t: _naive_utc(row[t]) for t in times}} for row in rows])


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
            params = {"links": _json_rows(self.links, ("starts_at",)),
                      "events": _json_rows(self.events, ("at", "starts_at"))}
            if self.changes:
                params["changes"] = _json_rows(self.changes, ("at",))
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
