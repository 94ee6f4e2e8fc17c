"""Report history: one row per (report, period), also the claim that sends it once.

Revision ID: 0009
Revises: 0008
merged after migrations 0005-0008.
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "report_runs",
        sa.Column("id", ID, primary_key=True),
        sa.Column("report", sa.String(100), nullable=False),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("period_start", sa.DateTime(), nullable=False),
        sa.Column("period_end", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(200)),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("lease_until", sa.DateTime()),
        sa.Column("next_attempt_at", sa.DateTime()),
        sa.Column("finished_at", sa.DateTime()),
        sa.Column("detail", sa.Text()),
        sa.Column("file", sa.Text()),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("recipients", JSON, nullable=False),
        sa.UniqueConstraint("report", "period_start", "period_end",
                            name="uq_report_runs_report_period"),
    )
    op.create_index("ix_report_runs_tenant_id", "report_runs", ["tenant", "id"])
    op.create_index("ix_report_runs_state_next_attempt_at", "report_runs",
                    ["state", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("report_runs")
