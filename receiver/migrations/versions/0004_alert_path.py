"""This installation's id, explicit silences shown on the incident, and how new the post
was that set an incident's truncation count.

The id is drawn once, when this migration runs on an empty database: PagerDuty dedup
keys and email thread ids carry it, so two installations (or one database reset) that
share a routing key or a mailbox never merge incidents.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    installation = op.create_table(
        "installation",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_installation"),
    )
    op.bulk_insert(installation, [{"id": str(uuid.uuid4()),
                                   "created_at": datetime.now(UTC).replace(tzinfo=None)}])
    with op.batch_alter_table("incidents") as batch:
        batch.add_column(sa.Column("silenced_until", sa.DateTime()))
        batch.add_column(sa.Column("silenced_by", sa.String(200)))
        batch.add_column(sa.Column("truncated_as_of", sa.DateTime()))


def downgrade() -> None:
    with op.batch_alter_table("incidents") as batch:
        batch.drop_column("truncated_as_of")
        batch.drop_column("silenced_by")
        batch.drop_column("silenced_until")
    op.drop_table("installation")
