"""Anomaly scores: latest per series, skip counts, and snapshots on incidents.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "anomaly_scores",
        sa.Column("series", sa.String(100), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("anomalous", sa.Boolean(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("relates_to", JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("series", name="pk_anomaly_scores"),
    )
    op.create_table(
        "anomaly_skips",
        sa.Column("series", sa.String(100), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("last_at", sa.DateTime(), nullable=False),
        sa.Column("detail", sa.Text()),
        sa.PrimaryKeyConstraint("series", "reason", name="pk_anomaly_skips"),
    )
    op.create_table(
        "incident_anomaly_scores",
        sa.Column("incident_id", ID, nullable=False),
        sa.Column("series", sa.String(100), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("anomalous", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("incident_id", "series", name="pk_incident_anomaly_scores"),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE",
                                name="fk_incident_anomaly_scores_incident_id_incidents"),
    )


def downgrade() -> None:
    op.drop_table("incident_anomaly_scores")
    op.drop_table("anomaly_skips")
    op.drop_table("anomaly_scores")
