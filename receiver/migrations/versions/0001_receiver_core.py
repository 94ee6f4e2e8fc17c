"""Receiver core: alerts, incidents and their links, events, audit log, API tokens.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
JSON = sa.JSON().with_variant(JSONB(), "postgresql")
UNRESOLVED = sa.text("status != 'resolved'")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", ID, primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("alertname", sa.String(200), nullable=False),
        sa.Column("severity", sa.String(64), nullable=False),
        sa.Column("labels", JSON, nullable=False),
        sa.Column("annotations", JSON, nullable=False),
        sa.Column("generator_url", sa.Text()),
        sa.Column("extra", JSON),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        sa.UniqueConstraint("fingerprint", "starts_at", name="uq_alerts_fingerprint_starts_at"),
    )
    op.create_index("ix_alerts_tenant_status_id", "alerts", ["tenant", "status", "id"])

    op.create_table(
        "incidents",
        sa.Column("id", ID, primary_key=True),
        sa.Column("group_key", sa.Text(), nullable=False),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(64), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("service", sa.String(200)),
        sa.Column("receiver", sa.String(200)),
        sa.Column("group_labels", JSON, nullable=False),
        sa.Column("common_labels", JSON, nullable=False),
        sa.Column("external_url", sa.Text()),
        sa.Column("extra", JSON),
        sa.Column("truncated_alerts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("opened_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime()),
        sa.Column("acknowledged_by", sa.String(200)),
        sa.Column("resolved_at", sa.DateTime()),
        sa.Column("resolved_by", sa.String(200)),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
    )
    op.create_index("ix_incidents_tenant_status_id", "incidents", ["tenant", "status", "id"])
    op.create_index("ix_incidents_status_id", "incidents", ["status", "id"])
    op.create_index("ix_incidents_group_key_id", "incidents", ["group_key", "id"])
    op.create_index("uq_incidents_open_group_key", "incidents", ["group_key"], unique=True,
                    sqlite_where=UNRESOLVED, postgresql_where=UNRESOLVED)

    op.create_table(
        "incident_alerts",
        sa.Column("group_key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("incident_id", ID, nullable=False),
        sa.PrimaryKeyConstraint("group_key", "fingerprint", "starts_at",
                                name="pk_incident_alerts"),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE",
                                name="fk_incident_alerts_incident_id_incidents"),
    )
    op.create_index("ix_incident_alerts_incident_id", "incident_alerts", ["incident_id"])
    op.create_index("ix_incident_alerts_fingerprint_starts_at", "incident_alerts",
                    ["fingerprint", "starts_at"])

    op.create_table(
        "events",
        sa.Column("id", ID, primary_key=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("incident_id", ID),
        sa.Column("fingerprint", sa.String(64)),
        sa.Column("starts_at", sa.DateTime()),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(200)),
        sa.Column("detail", JSON),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_incident_id_id", "events", ["incident_id", "id"])
    op.create_index("ix_events_fingerprint_starts_at", "events", ["fingerprint", "starts_at"])
    op.create_index("ix_events_at", "events", ["at"])

    op.create_table(
        "audit_log",
        sa.Column("id", ID, primary_key=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("actor_tenant", sa.String(100), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("incident_id", ID),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("comment", sa.Text()),
        sa.Column("request_id", sa.String(64)),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_incident_id", "audit_log", ["incident_id"])
    op.create_index("ix_audit_log_at", "audit_log", ["at"])

    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("sha256", name="uq_api_tokens_sha256"),
    )


def downgrade() -> None:
    for table in ("api_tokens", "audit_log", "events", "incident_alerts", "incidents",
                  "alerts"):
        op.drop_table(table)
