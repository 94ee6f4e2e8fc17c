"""Escalation timers: carry out every due step of a policy and move the timer on.

The step loop of the worker calls advance_escalations in one short transaction per
batch. Timers are rows, claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so several
workers share them and each step is carried out once; a step becomes outbox rows that
the dispatcher delivers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from receiver.escalation.policy import PolicySet
from receiver.escalation.tables import escalations
from receiver.escalation.timers import insert_outbox, outbox_row
from receiver.store.bulk import arrays, unnest
from receiver.store.tables import incidents
from receiver.stream import feed


def incident_labels(incident: dict) -> dict[str, str]:
    labels = {**(incident.get("group_labels") or {}), **(incident.get("common_labels") or {})}
    for key in ("severity", "tenant", "service"):
        if incident.get(key):
            labels[key] = incident[key]
    return {k: str(v) for k, v in labels.items()}


def _move_timers(conn: Connection, updates: list[dict]) -> None:
    """Write a batch's timers. On PostgreSQL in one UPDATE: under load every round trip
    waits for a CPU, and executemany would make one per row."""
    e = escalations.c
    if conn.dialect.name != "postgresql":
        conn.execute(escalations.update().where(e.incident_id == sa.bindparam("b_incident_id")),
                     updates)
        return
    columns = [e.incident_id, e.policy, e.state, e.step, e.round, e.due_at, e.updated_at]
    moved = unnest("moved", columns)
    m = moved.c
    conn.execute(
        escalations.update().where(e.incident_id == m.incident_id).values(
            policy=m.policy, state=m.state, step=m.step, round=m.round,
            due_at=sa.cast(m.due_at, e.due_at.type), updated_at=m.updated_at),
        arrays("moved", columns, [
            (u["b_incident_id"], u["policy"], u["state"], u["step"], u["round"], u["due_at"],
             u["updated_at"]) for u in updates]))


@dataclass
class StepBatch:
    """What one step transaction did: escalation rows taken, and the due time of every
    step it carried out (for the lateness histogram, observed after the commit)."""

    taken: int = 0
    fired: list[datetime] = field(default_factory=list)


def advance_escalations(conn: Connection, policies: PolicySet, now: datetime,
                        limit: int = 100, router: Callable | None = None) -> StepBatch:
    """Turn every due step of up to `limit` timers into outbox rows and move the timers
    on: one batched update and one batched insert, committed with the caller's
    transaction. Rows another worker holds are skipped (PostgreSQL). `router(conn, now)`
    makes the expander of person targets (receiver.oncall.routing.Router)."""
    expand = None
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
            people = policy.steps[step].person_targets()
            if people and router is not None:
                expand = expand or router(conn, now)
                for page in expand.expand(people, due_at):
                    at = due_at + timedelta(seconds=page.after)
                    outbox.append(outbox_row(row["incident_id"], row["tenant"], row["episode"],
                                             round_, step, page.channel, "trigger", at,
                                             detail=page.detail, suffix=page.suffix))
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
    feed.record_ids(conn, {item["incident_id"] for item in outbox}, "escalated", "worker",
                    written)
    return batch
