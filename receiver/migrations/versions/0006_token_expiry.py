"""API tokens can expire: `expires_at` (NULL: never), set at creation and by rotation.

A rotated token's predecessor is revoked, or given a short expiry (the grace period) so
its clients can switch over; the authenticator refuses a token after its expiry.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime()))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("expires_at")
