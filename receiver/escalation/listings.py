"""Reads of the notification outbox for the API and the gauges on /metrics."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from receiver.escalation.tables import notifications
from ticketmon.core import redact

n = notifications.c


def list_notifications(conn: Connection, state: str | list[str] | None = None,
                       incident_id: int | None = None, tenant: str = "*",
                       limit: int = 100, before_id: int | None = None) -> list[dict]:
    query = sa.select(
        n.id, n.incident_id, n.tenant, n.channel, n.action, n.episode, n.round, n.step,
        n.state, n.attempts, n.due_at, n.created_at, n.next_attempt_at, n.finished_at,
        n.last_error, n.actor,
    ).order_by(n.id.desc()).limit(limit)
    if state:
        query = query.where(n.state.in_([state] if isinstance(state, str) else state))
    if incident_id is not None:
        query = query.where(n.incident_id == incident_id)
    if tenant != "*":
        query = query.where(n.tenant == tenant)
    if before_id is not None:
        query = query.where(n.id < before_id)
    rows = [dict(r) for r in conn.execute(query).mappings().all()]
    for row in rows:  # rows written before last_error was redacted at the source
        row["last_error"] = redact.text(row["last_error"]) if row["last_error"] else None
    return rows


def state_counts(conn: Connection) -> list[tuple[str, str, int]]:
    """(channel, state, count) for pending and dead rows: the gauges on /metrics."""
    query = (sa.select(n.channel, n.state, sa.func.count())
             .where(n.state.in_(("pending", "delivering", "dead")))
             .group_by(n.channel, n.state))
    return [(c, s, int(k)) for c, s, k in conn.execute(query).all()]
