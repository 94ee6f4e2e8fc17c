"""On-call overrides (a person for a period, set through the API) and their audit trail.

Schedules, rotations and people are configuration as code (rules/oncall/); only what
people change at run time lives here. Every change to an override writes an audit row
in the same transaction.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-20
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "oncall_overrides",
        sa.Column("id", ID, nullable=False, autoincrement=True),
        sa.Column("schedule", sa.String(100), nullable=False),
        sa.Column("user_name", sa.String(100), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_oncall_overrides"),
        sa.CheckConstraint("ends_at > starts_at", name="ck_oncall_overrides_period"),
    )
    op.create_index("ix_oncall_overrides_schedule_ends_at", "oncall_overrides",
                    ["schedule", "ends_at"])
    op.create_table(
        "oncall_audit",
        sa.Column("id", ID, nullable=False, autoincrement=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("schedule", sa.String(100), nullable=False),
        sa.Column("override_id", ID),
        sa.Column("detail", JSON),
        sa.PrimaryKeyConstraint("id", name="pk_oncall_audit"),
    )
    op.create_index("ix_oncall_audit_schedule_at", "oncall_audit", ["schedule", "at"])


def downgrade() -> None:
    op.drop_table("oncall_audit")
    op.drop_table("oncall_overrides")
