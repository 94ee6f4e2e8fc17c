"""Anomaly claims (several workers share the series) and explanations of flags.

Developed on branch `anomaly` on top of 0004: when it merges after the on-call
migration 0007, down_revision becomes "0007".

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "anomaly_claims",
        sa.Column("series", sa.String(100), nullable=False),
        sa.Column("worker", sa.String(100), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("series", name="pk_anomaly_claims"),
    )
    op.create_table(
        "anomaly_workers",
        sa.Column("worker", sa.String(100), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("worker", name="pk_anomaly_workers"),
    )
    with op.batch_alter_table("anomaly_scores") as batch:
        batch.add_column(sa.Column("explanation", JSON))
    with op.batch_alter_table("incident_anomaly_scores") as batch:
        batch.add_column(sa.Column("explanation", JSON))


def downgrade() -> None:
    with op.batch_alter_table("incident_anomaly_scores") as batch:
        batch.drop_column("explanation")
    with op.batch_alter_table("anomaly_scores") as batch:
        batch.drop_column("explanation")
    op.drop_table("anomaly_workers")
    op.drop_table("anomaly_claims")
