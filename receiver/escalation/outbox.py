"""The notification outbox: claim due rows, record delivery outcomes, retry dead letters.

Each function runs in one short transaction of the caller. Rows are claimed with
`FOR UPDATE SKIP LOCKED` on PostgreSQL, so any number of workers share the work and
each timer step or notification is taken by exactly one of them; on SQLite one worker
runs at a time (see worker.single_worker_lock). A claimed notification carries a lease
and the claimer's id: the outcome is written only while the lease is still ours
(fencing), and a worker that dies mid-delivery leaves a lease that expires, after
which another worker delivers the row again with the same delivery id.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from receiver.escalation.tables import escalations, notifications
from receiver.store.bulk import arrays, unnest
from receiver.store.tables import incidents
from receiver.stream import feed
from ticketmon.core import redact

n = notifications.c


def is_prefix(lane: str) -> bool:
    """A lane named 'sms:' takes every channel that starts so (one per person)."""
    return lane.endswith(":")


@dataclass
class Claimed:
    row: dict
    incident: dict | None
    silence_id: str | None


def _ready(now: datetime):
    return sa.or_(
        sa.and_(n.state == "pending", n.next_attempt_at <= now),
        sa.and_(n.state == "delivering", n.lease_until < now),
    )


def any_ready(conn: Connection, now: datetime) -> bool:
    """Whether a claim could take anything: a plain read, so an idle worker's looks
    never take SQLite's write lock from the receiver committing a webhook."""
    return conn.execute(sa.select(n.id).where(_ready(now)).limit(1)).first() is not None


def claim(conn: Connection, owner: str, now: datetime, lease: float,
          slots: Mapping[str | None, int]) -> list[Claimed]:
    """Take due notifications (and ones whose lease ran out), oldest first, at most
    `slots[channel]` per channel (key None: any channel not named; a key ending in ':'
    every channel with that prefix: the people paged by one method), so a backlog on one
    channel never fills another's share. Per (incident, channel) they go in order: a
    resolve never overtakes the trigger it follows."""
    older = notifications.alias("older")
    # first in line of its (incident, channel). A correlated scalar subquery, not NOT
    # EXISTS: PostgreSQL runs it per candidate through the (incident_id, channel, id)
    # index, where an anti-join planned on stale statistics (a table that was empty at
    # its last ANALYZE, as after a burst) compares every row with every other
    first_in_line = n.id == (
        sa.select(sa.func.min(older.c.id))
        .where(older.c.incident_id == n.incident_id, older.c.channel == n.channel,
               older.c.state.in_(("pending", "delivering")))
        .scalar_subquery())
    ready = _ready(now)
    named = [channel for channel in slots if channel is not None and not is_prefix(channel)]
    prefixes = [channel for channel in slots if channel is not None and is_prefix(channel)]
    lanes = []
    for index, (channel, limit) in enumerate(slots.items()):
        if limit <= 0:
            continue
        if channel is None:
            lane = sa.and_(n.channel.not_in(named),
                           *[~n.channel.startswith(p, autoescape=True) for p in prefixes])
        elif is_prefix(channel):
            lane = n.channel.startswith(channel, autoescape=True)
        else:
            lane = n.channel == channel
        pick = (sa.select(n.id).where(lane, ready, first_in_line)
                .order_by(n.next_attempt_at, n.id).limit(limit))
        if conn.dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True, of=notifications)
        lanes.append(sa.select(pick.cte(f"lane_{index}").c.id))
    if not lanes:
        return []
    until = now + timedelta(seconds=lease)
    # every lane in one statement: a round trip costs more than the work on a busy host
    taken = conn.execute(
        notifications.update()
        .where(n.id.in_(sa.union_all(*lanes) if len(lanes) > 1 else lanes[0]))
        .values(state="delivering", lease_owner=owner, lease_until=until,
                attempts=n.attempts + 1)
        .returning(*notifications.c))
    rows = sorted((dict(r) for r in taken.mappings()),
                  key=lambda r: (r["next_attempt_at"], r["id"]))
    if not rows:
        return []
    found = conn.execute(
        sa.select(incidents, escalations.c.silence_id)
        .outerjoin(escalations, escalations.c.incident_id == incidents.c.id)
        .where(incidents.c.id.in_({r["incident_id"] for r in rows})))
    by_id, silences = {}, {}
    for found_row in found.mappings().all():
        incident = dict(found_row)
        silences[incident["id"]] = incident.pop("silence_id")
        by_id[incident["id"]] = incident
    return [Claimed(r, by_id.get(r["incident_id"]), silences.get(r["incident_id"]))
            for r in rows]


@dataclass(frozen=True)
class RetryPolicy:
    base: float = 2.0
    cap: float = 300.0
    max_age: float = 6 * 3600.0
    max_attempts: int = 25

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        """Exponential backoff with full jitter; a server's Retry-After is a floor."""
        ceiling = min(self.cap, self.base * 2 ** max(0, attempts - 1))
        delay = random.uniform(self.base / 2, max(self.base / 2, ceiling))
        return max(delay, retry_after or 0.0)


def outcome_values(row: dict, now: datetime, outcome: str, detail: str,
                   retry: RetryPolicy, retry_after: float | None = None) -> dict:
    """The row's new columns after a delivery attempt ended with `outcome`."""
    detail = redact.text(detail)  # last_error is served by the API: no credential in it
    if outcome == "delivered":
        return {"state": "delivered", "finished_at": now, "last_error": None}
    if outcome == "retry":
        age = (now - row["created_at"]).total_seconds()
        if age >= retry.max_age or row["attempts"] >= retry.max_attempts:
            return {"state": "dead", "finished_at": now,
                    "last_error": f"gave up after {row['attempts']} attempts: {detail}"}
        wait = retry.delay(row["attempts"], retry_after)
        return {"state": "pending", "last_error": detail,
                "next_attempt_at": now + timedelta(seconds=wait)}
    if outcome == "cancelled":
        return {"state": "cancelled", "finished_at": now, "last_error": detail}
    return {"state": "dead", "finished_at": now, "last_error": detail}


@dataclass
class Finished:
    """A finished attempt to write: the claimed row, its new columns, a new silence id."""

    row: dict
    values: dict
    silence_id: str | None = None


def finish(conn: Connection, row: dict, owner: str, now: datetime, outcome: str,
           detail: str, retry: RetryPolicy, retry_after: float | None = None,
           silence_id: str | None = None) -> str | None:
    """Record a delivery outcome if the lease is still ours; returns the row's new state
    (delivered, pending, dead) or None when another worker had taken the row over."""
    values = outcome_values(row, now, outcome, detail, retry, retry_after)
    return finish_all(conn, owner, [Finished(row, values, silence_id)])[0]


def finish_all(conn: Connection, owner: str, outcomes: list[Finished]) -> list[str | None]:
    """Record many outcomes, each only if its lease is still ours (fencing); returns each
    row's new state, or None where another worker had taken the row over. On PostgreSQL
    one UPDATE ... FROM (VALUES ...) RETURNING, whatever the number of rows."""
    fence = sa.and_(n.lease_owner == owner, n.state == "delivering")
    released = {"lease_owner": None, "lease_until": None}
    if conn.dialect.name == "postgresql" and len(outcomes) > 1:
        columns = [n.id, n.state, n.finished_at, n.last_error, n.next_attempt_at]
        d = unnest("done", columns).c
        written = set(conn.execute(
            notifications.update().where(n.id == d.id, fence).values(
                state=d.state, finished_at=sa.cast(d.finished_at, n.finished_at.type),
                last_error=sa.cast(d.last_error, n.last_error.type),
                next_attempt_at=sa.func.coalesce(
                    sa.cast(d.next_attempt_at, n.next_attempt_at.type), n.next_attempt_at),
                **released).returning(n.id),
            arrays("done", columns, [
                (o.row["id"], o.values["state"], o.values.get("finished_at"),
                 o.values.get("last_error"), o.values.get("next_attempt_at"))
                for o in outcomes])).scalars())
    else:
        written = {o.row["id"] for o in outcomes if conn.execute(
            notifications.update().where(n.id == o.row["id"], fence)
            .values(**o.values, **released)).rowcount == 1}
    states: list[str | None] = []
    notified: set[int] = set()  # incidents with a notification gone out or given up
    for o in outcomes:
        if o.row["id"] not in written:
            states.append(None)
            continue
        states.append(o.values["state"])
        if o.values["state"] in ("delivered", "dead"):
            notified.add(o.row["incident_id"])
        delivered = o.values["state"] == "delivered"
        if o.silence_id is not None or (o.row["action"] == "unsilence" and delivered):
            conn.execute(escalations.update()
                         .where(escalations.c.incident_id == o.row["incident_id"])
                         .values(silence_id=o.silence_id, updated_at=o.values.get(
                             "finished_at") or datetime.now(UTC)))
    feed.record_ids(conn, notified, "notified", "worker", datetime.now(UTC))
    return states


def retry_dead(conn: Connection, notification_id: int, now: datetime,
               tenant: str = "*") -> bool:
    """Put a dead letter back in the queue (an operator fixed the channel)."""
    query = notifications.update().where(n.id == notification_id, n.state == "dead")
    if tenant != "*":
        query = query.where(n.tenant == tenant)
    return conn.execute(query.values(
        state="pending", attempts=0, next_attempt_at=now, created_at=now, finished_at=None,
    )).rowcount == 1
