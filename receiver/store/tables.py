"""The receiver's tables (SQLAlchemy Core). Migrations 0001 and 0004 create exactly these.

alerts          one row per Alertmanager alert instance: fingerprint + startsAt
incident_alerts which incident of a group an alert belongs to (one per group)
incidents       one row per Alertmanager group episode
events          append-only history: alert status changes and incident timeline
audit_log       who acknowledged or resolved what, and when
api_tokens      hashed API tokens with a role and a tenant scope
installation    one row: this installation's id, drawn by migration 0004
"""

from __future__ import annotations

import sqlalchemy as sa

from receiver.store.types import Json, UTCDateTime

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("ends_at", UTCDateTime),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("alertname", sa.String(200), nullable=False),
    sa.Column("severity", sa.String(64), nullable=False),
    sa.Column("labels", Json, nullable=False),
    sa.Column("annotations", Json, nullable=False),
    sa.Column("generator_url", sa.Text),
    sa.Column("extra", Json),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("fingerprint", "starts_at"),
    sa.Index(None, "tenant", "status", "id"),
)

incidents = sa.Table(
    "incidents",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("group_key", sa.Text, nullable=False),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("severity", sa.String(64), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("service", sa.String(200)),
    sa.Column("receiver", sa.String(200)),
    sa.Column("group_labels", Json, nullable=False),
    sa.Column("common_labels", Json, nullable=False),
    sa.Column("external_url", sa.Text),
    sa.Column("extra", Json),
    # the newest post's truncatedAlerts, and that post's alert time (see ingest.py)
    sa.Column("truncated_alerts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("truncated_as_of", UTCDateTime),
    sa.Column("opened_at", UTCDateTime, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("acknowledged_at", UTCDateTime),
    sa.Column("acknowledged_by", sa.String(200)),
    sa.Column("resolved_at", UTCDateTime),
    sa.Column("resolved_by", sa.String(200)),
    # an explicit Alertmanager silence over the group (never implied by acknowledge)
    sa.Column("silenced_until", UTCDateTime),
    sa.Column("silenced_by", sa.String(200)),
    sa.Index(None, "tenant", "status", "id"),
    sa.Index(None, "status", "id"),
    # At most one unresolved incident per Alertmanager group: concurrent receivers that
    # race to open it meet here, and the loser joins the winner's incident.
    sa.Index(
        "uq_incidents_open_group_key",
        "group_key",
        unique=True,
        sqlite_where=sa.text("status != 'resolved'"),
        postgresql_where=sa.text("status != 'resolved'"),
    ),
    sa.Index(None, "group_key", "id"),
)

incident_alerts = sa.Table(
    "incident_alerts",
    metadata,
    sa.Column("group_key", sa.Text, primary_key=True),
    sa.Column("fingerprint", sa.String(64), primary_key=True),
    sa.Column("starts_at", UTCDateTime, primary_key=True),
    sa.Column(
        "incident_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False,
    ),
    sa.Index(None, "incident_id"),
    sa.Index(None, "fingerprint", "starts_at"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("incident_id", sa.BigInteger().with_variant(sa.Integer, "sqlite")),
    sa.Column("fingerprint", sa.String(64)),
    sa.Column("starts_at", UTCDateTime),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(200)),
    sa.Column("detail", Json),
    sa.Index(None, "incident_id", "id"),
    sa.Index(None, "fingerprint", "starts_at"),
    sa.Index(None, "at"),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("actor_tenant", sa.String(100), nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("incident_id", sa.BigInteger().with_variant(sa.Integer, "sqlite")),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("comment", sa.Text),
    sa.Column("request_id", sa.String(64)),
    sa.Index(None, "incident_id"),
    sa.Index(None, "at"),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime),
    sa.Column("expires_at", UTCDateTime),  # None: never (migration 0006)
)

installation = sa.Table(
    "installation",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
)
