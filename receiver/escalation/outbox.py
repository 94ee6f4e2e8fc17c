"""Database side of the worker: advance due timers, claim outbox rows, record outcomes.

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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

from receiver.escalation.hooks import insert_outbox, outbox_row
from receiver.escalation.policy import PolicySet
from receiver.escalation.tables import escalations, notifications
from receiver.store.tables import incidents

n = notifications.c


def incident_labels(incident: dict) -> dict[str, str]:
    labels = {**(incident.get("group_labels") or {}), **(incident.get("common_labels") or {})}
    for key in ("severity", "tenant", "service"):
        if incident.get(key):
            labels[key] = incident[key]
    return {k: str(v) for k, v in labels.items()}


def _unnest(name: str, columns: list[sa.Column]) -> sa.TableValuedAlias:
    """Rows passed as one array per column (PostgreSQL): one statement whatever their
    number, and always the same text, so SQLAlchemy compiles it once."""
    arrays = [sa.bindparam(f"{name}_{c.name}", type_=ARRAY(c.type)) for c in columns]
    return sa.func.unnest(*arrays).table_valued(
        *[sa.column(c.name, c.type) for c in columns], name=name).render_derived()


def _arrays(name: str, columns: list[sa.Column], rows: list[tuple]) -> dict[str, list]:
    return {f"{name}_{c.name}": list(values)
            for c, values in zip(columns, zip(*rows, strict=True), strict=True)}


def _move_timers(conn: Connection, updates: list[dict]) -> None:
    """Write a batch's timers. On PostgreSQL in one UPDATE: under load every round trip
    waits for a CPU, and executemany would make one per row."""
    e = escalations.c
    if conn.dialect.name != "postgresql":
        conn.execute(escalations.update().where(e.incident_id == sa.bindparam("b_incident_id")),
                     updates)
        return
    columns = [e.incident_id, e.policy, e.state, e.step, e.round, e.due_at, e.updated_at]
    moved = _unnest("moved", columns)
    m = moved.c
    conn.execute(
        escalations.update().where(e.incident_id == m.incident_id).values(
            policy=m.policy, state=m.state, step=m.step, round=m.round,
            due_at=sa.cast(m.due_at, e.due_at.type), updated_at=m.updated_at),
        _arrays("moved", columns, [
            (u["b_incident_id"], u["policy"], u["state"], u["step"], u["round"], u["due_at"],
             u["updated_at"]) for u in updates]))


@dataclass
class StepBatch:
    """What one step transaction did: escalation rows taken, and the due time of every
    step it carried out (for the lateness histogram, observed after the commit)."""

    taken: int = 0
    fired: list[datetime] = field(default_factory=list)


def advance_escalations(conn: Connection, policies: PolicySet, now: datetime,
                        limit: int = 100) -> StepBatch:
    """Turn every due step of up to `limit` timers into outbox rows and move the timers
    on: one batched update and one batched insert, committed with the caller's
    transaction. Rows another worker holds are skipped (PostgreSQL)."""
    e = escalations.c
    i = incidents.c
    # the incident's labels come with the timer, for matching a policy: one round trip
    matched_on = [i.id, i.group_labels, i.common_labels, i.severity, i.tenant, i.service]
    query = (sa.select(escalations, *[c.label(f"i_{c.name}") for c in matched_on])
             .outerjoin(incidents, i.id == e.incident_id)
             .where(e.state == "active", e.due_at <= now).order_by(e.due_at).limit(limit))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=escalations)
    rows = conn.execute(query).mappings().all()
    batch = StepBatch(taken=len(rows))
    if not rows:
        return batch
    by_id = {r["incident_id"]: {c.name: r[f"i_{c.name}"] for c in matched_on}
             for r in rows if r["i_id"] is not None}
    updates, outbox = [], []
    for row in rows:
        incident = by_id.get(row["incident_id"])
        policy = policies.by_name.get(row["policy"] or "")
        if policy is None and incident is not None:
            policy = policies.match(incident_labels(incident))
        timer = {"b_incident_id": row["incident_id"], "updated_at": now, "policy": row["policy"],
                 "state": "unmatched", "step": row["step"], "round": row["round"],
                 "due_at": None}
        updates.append(timer)
        if policy is None:
            continue
        step, round_ = row["step"], row["round"]
        position: tuple[int, int] | None = (step, round_)
        due_at = None
        while position is not None:
            step, round_ = position
            offset = policy.due_offset(step, round_)
            due_at = row["started_at"] + timedelta(seconds=offset)
            if due_at > now:
                break
            batch.fired.append(due_at)
            for channel in policy.steps[step].channels:
                outbox.append(outbox_row(row["incident_id"], row["tenant"], row["episode"],
                                         round_, step, channel, "trigger", due_at))
            position = policy.next_position(step, round_)
        timer["policy"] = policy.name
        if position is None:
            timer["state"] = "exhausted"
        else:
            timer.update(state="active", step=position[0], round=position[1], due_at=due_at)
    _move_timers(conn, updates)
    written = datetime.now(UTC)  # the step is carried out when its rows are written
    for item in outbox:
        item["created_at"] = written
    insert_outbox(conn, outbox)
    return batch


@dataclass
class Claimed:
    row: dict
    incident: dict | None
    silence_id: str | None


def claim(conn: Connection, owner: str, now: datetime, lease: float,
          slots: Mapping[str | None, int]) -> list[Claimed]:
    """Take due notifications (and ones whose lease ran out), oldest first, at most
    `slots[channel]` per channel (key None: any channel not named), so a backlog on one
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
    ready = sa.or_(
        sa.and_(n.state == "pending", n.next_attempt_at <= now),
        sa.and_(n.state == "delivering", n.lease_until < now),
    )
    named = [channel for channel in slots if channel is not None]
    lanes = []
    for index, (channel, limit) in enumerate(slots.items()):
        if limit <= 0:
            continue
        lane = n.channel == channel if channel is not None else n.channel.not_in(named)
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
        d = _unnest("done", columns).c
        written = set(conn.execute(
            notifications.update().where(n.id == d.id, fence).values(
                state=d.state, finished_at=sa.cast(d.finished_at, n.finished_at.type),
                last_error=sa.cast(d.last_error, n.last_error.type),
                next_attempt_at=sa.func.coalesce(
                    sa.cast(d.next_attempt_at, n.next_attempt_at.type), n.next_attempt_at),
                **released).returning(n.id),
            _arrays("done", columns, [
                (o.row["id"], o.values["state"], o.values.get("finished_at"),
                 o.values.get("last_error"), o.values.get("next_attempt_at"))
                for o in outcomes])).scalars())
    else:
        written = {o.row["id"] for o in outcomes if conn.execute(
            notifications.update().where(n.id == o.row["id"], fence)
            .values(**o.values, **released)).rowcount == 1}
    states: list[str | None] = []
    for o in outcomes:
        if o.row["id"] not in written:
            states.append(None)
            continue
        states.append(o.values["state"])
        delivered = o.values["state"] == "delivered"
        if o.silence_id is not None or (o.row["action"] == "unsilence" and delivered):
            conn.execute(escalations.update()
                         .where(escalations.c.incident_id == o.row["incident_id"])
                         .values(silence_id=o.silence_id, updated_at=o.values.get(
                             "finished_at") or datetime.now(UTC)))
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
    return [dict(r) for r in conn.execute(query).mappings().all()]


def state_counts(conn: Connection) -> list[tuple[str, str, int]]:
    """(channel, state, count) for pending and dead rows: the gauges on /metrics."""
    query = (sa.select(n.channel, n.state, sa.func.count())
             .where(n.state.in_(("pending", "delivering", "dead")))
             .group_by(n.channel, n.state))
    return [(c, s, int(k)) for c, s, k in conn.execute(query).all()]
