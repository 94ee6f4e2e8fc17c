"""The in-transaction incident hook: escalation timers and outbox rows.

Registered in the receiver as `receiver.escalation.timers:on_incident_event` (setting
`incident_hooks`), it runs inside the transaction that opens, acknowledges, silences or
resolves an incident, so the timer and the notifications commit or roll back with the
change. Opening only starts a timer due at once; the worker picks the policy and writes
the step's notifications when it claims the timer. Acknowledge and resolve stop the
timer, cancel what has not gone out, and queue an acknowledge/resolve for every channel
that was (or is being) notified. Acknowledging never silences: Alertmanager sends
nothing for silenced alerts, not even their resolution, so a silence is its own
explicit action here (queued for the worker), and resolving expires it.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from receiver.escalation.tables import escalations, notifications
from receiver.store.bulk import dialect_insert
from receiver.store.incident_events import IncidentEvent
from receiver.store.tables import incidents

ALERTMANAGER = "alertmanager"  # pseudo-channel for silences
NOTIFIED = ("delivered", "delivering")


def on_incident_event(conn: Connection, event: IncidentEvent) -> None:
    if event.kind == "opened":
        start(conn, event.incident_id, event.tenant, event.at)
    elif event.kind == "severity_raised":
        start(conn, event.incident_id, event.tenant, event.at, restart=True, only_active=True)
    elif event.kind == "acknowledged":
        stop(conn, event, "acknowledged", "acknowledge")
    elif event.kind == "resolved":
        stop(conn, event, "resolved", "resolve")
    elif event.kind == "escalated":
        hurry(conn, event.incident_id, event.at)
    elif event.kind in ("silenced", "unsilenced"):
        row = _row(conn, event.incident_id)
        action = "silence" if event.kind == "silenced" else "unsilence"
        insert_outbox(conn, [_outbox(event, row, ALERTMANAGER, action, detail=event.detail,
                                     once=False)])


def _row(conn: Connection, incident_id: int) -> dict | None:
    query = sa.select(escalations).where(escalations.c.incident_id == incident_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    return dict(row) if row else None


def start(conn: Connection, incident_id: int, tenant: str, at: datetime,
          restart: bool = False, only_active: bool = False) -> None:
    """A timer due now at step 0; on restart a new episode, so every step goes out again."""
    row = _row(conn, incident_id)
    values = {"state": "active", "policy": None, "started_at": at, "step": 0, "round": 0,
              "due_at": at, "updated_at": at}
    if row is None:
        conn.execute(escalations.insert().values(incident_id=incident_id, tenant=tenant,
                                                 episode=0, **values))
    elif restart and (not only_active or row["state"] == "active"):
        conn.execute(escalations.update().where(escalations.c.incident_id == incident_id)
                     .values(episode=row["episode"] + 1, **values))


def hurry(conn: Connection, incident_id: int, at: datetime) -> None:
    """Escalate now: move the policy's clock on by the time left until the next step, so
    that step is due at once and the steps after it keep their spacing."""
    row = _row(conn, incident_id)
    if row is None or row["state"] != "active" or row["due_at"] is None or row["due_at"] <= at:
        return
    conn.execute(escalations.update().where(escalations.c.incident_id == incident_id)
                 .values(started_at=row["started_at"] - (row["due_at"] - at), due_at=at,
                         updated_at=at))


def stop(conn: Connection, event: IncidentEvent, state: str, action: str) -> None:
    row = _row(conn, event.incident_id)
    if row is None or row["state"] == state or row["state"] == "resolved":
        return
    at = event.at
    conn.execute(escalations.update().where(escalations.c.incident_id == event.incident_id)
                 .values(state=state, due_at=None, updated_at=at))
    n = notifications.c
    # what has not gone out yet will not: the incident is handled
    conn.execute(notifications.update().where(
        n.incident_id == event.incident_id, n.state == "pending",
        n.action.in_(("trigger", "silence") if action == "resolve" else ("trigger",)),
    ).values(state="cancelled", finished_at=at, last_error=f"incident {state}"))
    notified = conn.execute(
        sa.select(n.channel).distinct().where(
            n.incident_id == event.incident_id, n.action == "trigger", n.state.in_(NOTIFIED))
    ).scalars().all()
    rows = [_outbox(event, row, channel, action) for channel in sorted(notified)]
    if action == "resolve":
        silenced = conn.execute(sa.select(n.id).where(
            n.incident_id == event.incident_id, n.action == "silence", n.state.in_(NOTIFIED),
        ).limit(1)).first()
        if silenced or row["silence_id"]:
            rows.append(_outbox(event, row, ALERTMANAGER, "unsilence", once=False))
        # the incident shows the silence ended with it
        conn.execute(incidents.update().where(
            incidents.c.id == event.incident_id, incidents.c.silenced_until > at,
        ).values(silenced_until=at))
    insert_outbox(conn, rows)


def _outbox(event: IncidentEvent, row: dict | None, channel: str, action: str,
            detail: dict | None = None, once: bool = True) -> dict:
    episode = row["episode"] if row else 0
    return outbox_row(event.incident_id, event.tenant, episode, 0, 0, channel, action,
                      event.at, actor=event.actor, detail=detail,
                      suffix=None if once else event.at.isoformat())


def outbox_row(incident_id: int, tenant: str, episode: int, round_: int, step: int,
               channel: str, action: str, due_at: datetime, actor: str | None = None,
               now: datetime | None = None, detail: dict | None = None,
               suffix: str | None = None) -> dict:
    """One outbox row; its key makes writing the same notification twice a no-op.

    `suffix` makes the key unique per request, for actions a person may repeat in one
    episode (silence, extend it, lift it)."""
    where = f"{round_}.{step}" if action == "trigger" else action
    key = f"{incident_id}/{episode}/{where}/{channel}/{action}"
    return {
        "incident_id": incident_id, "tenant": tenant, "episode": episode, "round": round_,
        "step": step, "channel": channel, "action": action, "actor": actor,
        "key": f"{key}@{suffix}" if suffix else key, "detail": detail,
        "state": "pending", "attempts": 0, "due_at": due_at, "next_attempt_at": due_at,
        "created_at": now or due_at,
    }


def insert_outbox(conn: Connection, rows: list[dict]) -> None:
    if not rows:
        return
    # RETURNING lets SQLAlchemy send one multi-row INSERT ("insertmanyvalues") instead
    # of a round trip per row
    conn.execute(dialect_insert(conn, notifications).on_conflict_do_nothing(
        index_elements=["key"]).returning(notifications.c.id), rows)
