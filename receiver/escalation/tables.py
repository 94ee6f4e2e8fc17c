"""Escalation timers and the notification outbox (SQLAlchemy Core). Migration 0002.

escalations    one row per incident: which policy, the next (step, round) and when it is
               due. The timer lives here, never in a worker's memory.
notifications  the outbox: one row per (incident, episode, round, step, channel, action),
               written in the transaction of the state change that causes it, then
               claimed, delivered and marked by a worker. Rows that will never go out
               stay as state 'dead': the dead letters the API and /metrics show.
"""

from __future__ import annotations

import sqlalchemy as sa

from receiver.store.types import Json, UTCDateTime

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

# Kept apart from receiver.store.tables.metadata so migration 0001 stays exactly the core.
metadata = sa.MetaData()

escalations = sa.Table(
    "escalations",
    metadata,
    sa.Column("incident_id", ID, primary_key=True),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # active acknowledged resolved exhausted…
    sa.Column("policy", sa.String(200)),
    sa.Column("episode", sa.Integer, nullable=False, default=0),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("step", sa.Integer, nullable=False, default=0),
    sa.Column("round", sa.Integer, nullable=False, default=0),
    sa.Column("due_at", UTCDateTime),
    sa.Column("silence_id", sa.String(100)),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_escalations_state_due_at", "state", "due_at"),
)

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("incident_id", ID, nullable=False),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("key", sa.String(400), nullable=False, unique=True),
    sa.Column("channel", sa.String(100), nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # trigger acknowledge resolve (un)silence
    sa.Column("episode", sa.Integer, nullable=False, default=0),
    sa.Column("step", sa.Integer, nullable=False, default=0),
    sa.Column("round", sa.Integer, nullable=False, default=0),
    sa.Column("actor", sa.String(200)),
    sa.Column("state", sa.String(16), nullable=False),  # pending delivering delivered dead …
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("due_at", UTCDateTime, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("lease_owner", sa.String(100)),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("detail", Json),
    sa.Index("ix_notifications_state_next_attempt_at", "state", "next_attempt_at"),
    sa.Index("ix_notifications_incident_id_channel_id", "incident_id", "channel", "id"),
)
