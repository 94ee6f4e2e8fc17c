"""The incident change feed: one row per change, written in the changing transaction.

Live streams (GET /api/v1/stream) read this table, never a process's memory, so any
receiver, worker or stream server replica over one database sees every change.

Why two ids. A writer draws `id` from a sequence when it inserts, but transactions
commit in another order: a reader that remembered "up to id 11" would miss row 10
committing after 11. So the feed's order is `position`, given after the commit by
`sequence()`: one sequencer at a time (an advisory lock on PostgreSQL, SQLite's write
lock), numbering every committed row without one, in id order, after the highest
position. A reader that has seen position P has seen every row numbered up to P,
so a client resuming after P (Last-Event-ID) misses nothing. Writers pay one INSERT;
on PostgreSQL its statement trigger (migration 0010) NOTIFYs the stream servers.

`change` is one of CHANGES. Retention (`prune`) keeps the newest row whatever its age,
so positions never restart.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from receiver.store.tables import incidents
from receiver.store.types import UTCDateTime, iso

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
CHANNEL = "ticketmon_incident_changes"  # PostgreSQL NOTIFY channel (migration 0010)
SEQUENCER_LOCK = 0x7469636B65746D6E  # pg_advisory_xact_lock key: "ticketmn"
# reopened: a resolved incident open again; no code path does that today (a re-fire
# opens a new episode), but clients of the contract already handle the word
CHANGES = ("opened", "updated", "acknowledged", "resolved", "silenced", "unsilenced",
           "escalated", "notified", "reopened", "corrected")

metadata = sa.MetaData()  # its own, like escalation's: migration 0001 stays the core

incident_changes = sa.Table(
    "incident_changes",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("position", ID),  # NULL until sequenced; then the SSE event id
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("incident_id", ID, nullable=False),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("change", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # as of the change
    sa.Column("severity", sa.String(64), nullable=False),
    sa.Column("actor", sa.String(200)),
    sa.Index("uq_incident_changes_position", "position", unique=True),
    sa.Index("ix_incident_changes_unsequenced", "id",
             sqlite_where=sa.text("position IS NULL"),
             postgresql_where=sa.text("position IS NULL")),
    sqlite_autoincrement=True,  # ids are never reused, even after pruning
)
c = incident_changes.c

# an ingest's kinds of incident events, and the reconciler's, in the feed's words
_BY_KIND = {"opened": "opened", "acknowledged": "acknowledged", "resolved": "resolved",
            "silenced": "silenced", "unsilenced": "unsilenced", "escalated": "escalated",
            "reopened": "reopened"}


def change_of(kind: str, actor: str | None) -> str:
    """The feed's word for an incident event: a reconciler's adjustment is a correction,
    any other change that is not a status of its own (severity raised, truncation) an
    update."""
    if kind in _BY_KIND:
        return _BY_KIND[kind]
    return "corrected" if actor == "reconciler" else "updated"


def change_row(incident: dict, change: str, actor: str | None, at: datetime) -> dict:
    if change not in CHANGES:
        raise ValueError(f"unknown change {change!r}")
    return {"at": at, "incident_id": incident["id"], "tenant": incident["tenant"],
            "change": change, "status": incident["status"], "severity": incident["severity"],
            "actor": (actor or "")[:200] or None}


def record(conn: Connection, rows: list[dict]) -> None:
    """Append changes (change_row) in the caller's transaction."""
    if rows:
        conn.execute(incident_changes.insert(), rows)


def record_ids(conn: Connection, incident_ids: Iterable[int], change: str, actor: str,
               at: datetime) -> None:
    """Append one change per incident, reading tenant, status and severity in the same
    statement: for the worker, which changes notifications and timers, not incidents."""
    ids = sorted(set(incident_ids))
    if not ids:
        return
    if change not in CHANGES:
        raise ValueError(f"unknown change {change!r}")
    i = incidents.c
    source = sa.select(sa.literal(at, UTCDateTime), i.id, i.tenant, sa.literal(change),
                       i.status, i.severity, sa.literal(actor[:200])).where(i.id.in_(ids))
    conn.execute(incident_changes.insert().from_select(
        ["at", "incident_id", "tenant", "change", "status", "severity", "actor"], source))


# -- the sequencer -----------------------------------------------------------------------
_NUMBER = sa.text(
    "UPDATE incident_changes SET position = n.pos FROM ("
    " SELECT id, (SELECT coalesce(max(position), 0) FROM incident_changes)"
    "  + row_number() OVER (ORDER BY id) AS pos"
    " FROM incident_changes WHERE position IS NULL ORDER BY id LIMIT :batch) AS n"
    " WHERE incident_changes.id = n.id")


def unsequenced(conn: Connection) -> bool:
    """Is there a committed row without a position? (a partial index answers)"""
    return conn.execute(sa.select(c.id).where(c.position.is_(None)).limit(1)).first() is not None


def sequence(conn: Connection, batch: int = 5000) -> int:
    """Number committed rows without a position; returns how many. Runs in a write
    transaction of its own; only one sequencer numbers at a time."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEQUENCER_LOCK})
    numbered = conn.execute(_NUMBER, {"batch": batch}).rowcount
    if numbered and conn.dialect.name == "postgresql":  # wake every stream server
        conn.execute(sa.text("SELECT pg_notify(:channel, 'sequenced')"), {"channel": CHANNEL})
    return numbered


# -- readers ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    position: int
    tenant: str
    text: str  # the Server-Sent Event, formatted once for every stream that sends it


def _event(position: int, data: dict) -> str:
    return (f"id: {position}\nevent: incident\n"
            f"data: {json.dumps(data, separators=(',', ':'))}\n\n")


def head(conn: Connection) -> int:
    """The highest position given so far (0: none yet)."""
    return conn.execute(sa.select(sa.func.coalesce(sa.func.max(c.position), 0))).scalar_one()


def oldest(conn: Connection) -> int | None:
    return conn.execute(sa.select(sa.func.min(c.position))).scalar()


def read_after(conn: Connection, position: int, limit: int,
               tenant: str | None = None) -> list[Change]:
    """Changes after `position`, in order; only `tenant`'s unless None (every tenant).
    Title and service come from the incident as it is now (they do not change)."""
    i = incidents.c
    query = (sa.select(c.position, c.incident_id, c.tenant, c.change, c.status, c.severity,
                       c.actor, c.at, i.title, i.service)
             .outerjoin(incidents, i.id == c.incident_id)
             .where(c.position > position).order_by(c.position).limit(limit))
    if tenant is not None:
        query = query.where(c.tenant == tenant)
    return [Change(r.position, r.tenant, _event(r.position, {
        "id": r.incident_id, "tenant": r.tenant, "status": r.status, "severity": r.severity,
        "change": r.change, "at": iso(r.at), "actor": r.actor, "title": r.title,
        "service": r.service})) for r in conn.execute(query)]


def prune(conn: Connection, cutoff: datetime, max_rows: int) -> int:
    """Delete changes older than `cutoff` or beyond the newest `max_rows`; the newest
    row always stays (positions continue from it)."""
    top = head(conn)
    if not top:
        return 0
    old = sa.or_(c.at < cutoff, c.position <= top - max_rows)
    return conn.execute(incident_changes.delete().where(c.position < top, old)).rowcount
