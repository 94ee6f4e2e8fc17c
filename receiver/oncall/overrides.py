"""Overrides in the database (migration 0007): add, list, remove, each with an audit row.

An override puts one person on call for a period in place of a schedule's layers
("I take Saturday for Bob"). Two overrides of one schedule may not overlap: which one
would win is a question the API refuses to guess (409, naming the one in the way).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from receiver.oncall.schedules import Override
from receiver.store.types import Json, UTCDateTime

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
metadata = sa.MetaData()  # apart from the core's metadata, like the escalation tables

overrides = sa.Table(
    "oncall_overrides", metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("schedule", sa.String(100), nullable=False),
    sa.Column("user_name", sa.String(100), nullable=False),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("ends_at", UTCDateTime, nullable=False),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

audit = sa.Table(
    "oncall_audit", metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(50), nullable=False),
    sa.Column("schedule", sa.String(100), nullable=False),
    sa.Column("override_id", ID),
    sa.Column("detail", Json),
)

o = overrides.c


class Overlap(Exception):
    """The new override overlaps an existing one of the same schedule."""

    def __init__(self, existing: Override) -> None:
        super().__init__(
            f"overlaps override {existing.id} ({existing.user}, {existing.start.isoformat()} "
            f"to {existing.end.isoformat()}); change or delete that one first")
        self.existing = existing


def _override(row) -> Override:
    return Override(row["id"], row["schedule"], row["user_name"], row["starts_at"],
                    row["ends_at"], row["reason"], row["created_by"])


def active(conn: Connection, start: datetime, end: datetime,
           schedule: str | None = None) -> list[Override]:
    """Overrides that overlap [start, end), of one schedule or all."""
    query = sa.select(overrides).where(o.ends_at > start, o.starts_at < end)
    if schedule is not None:
        query = query.where(o.schedule == schedule)
    return [_override(r) for r in conn.execute(query.order_by(o.starts_at)).mappings()]


def add(conn: Connection, schedule: str, user: str, start: datetime, end: datetime,
        actor: str, now: datetime, reason: str = "") -> Override:
    """Insert an override and its audit row; raises Overlap."""
    if conn.dialect.name == "postgresql":  # two people adding at once: one waits
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                     {"k": f"oncall-overrides/{schedule}"})
    clash = active(conn, start, end, schedule)
    if clash:
        raise Overlap(clash[0])
    new_id = conn.execute(overrides.insert().values(
        schedule=schedule, user_name=user, starts_at=start, ends_at=end, reason=reason,
        created_by=actor, created_at=now).returning(o.id)).scalar_one()
    created = Override(new_id, schedule, user, start, end, reason, actor)
    _audit(conn, now, actor, "override_created", created)
    return created


def remove(conn: Connection, schedule: str, override_id: int, actor: str,
           now: datetime) -> Override | None:
    row = conn.execute(sa.select(overrides).where(
        o.id == override_id, o.schedule == schedule)).mappings().first()
    if row is None:
        return None
    gone = _override(row)
    conn.execute(overrides.delete().where(o.id == override_id))
    _audit(conn, now, actor, "override_deleted", gone)
    return gone


def _audit(conn: Connection, now: datetime, actor: str, action: str, item: Override) -> None:
    conn.execute(audit.insert().values(
        at=now, actor=actor, action=action, schedule=item.schedule, override_id=item.id,
        detail={"user": item.user, "start": item.start.isoformat(),
                "end": item.end.isoformat(), "reason": item.reason}))


def audit_trail(conn: Connection, schedule: str, limit: int = 100) -> list[dict]:
    a = audit.c
    rows = conn.execute(sa.select(audit).where(a.schedule == schedule)
                        .order_by(a.id.desc()).limit(limit)).mappings()
    return [{**dict(r), "at": r["at"].isoformat()} for r in rows]
