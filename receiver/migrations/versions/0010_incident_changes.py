"""The incident change feed that live streams read (receiver/stream/feed.py).

`id` is drawn at insert, `position` given after commit by the feed's sequencer (see
feed.py for why). On PostgreSQL a statement trigger NOTIFYs `ticketmon_incident_changes`
at the writer's commit, so stream servers wake at once instead of polling, and
row-level security keeps each tenant's changes to that tenant, as migration 0005 does
for the other tables. SQLite: no trigger (stream servers poll), no policies.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")
POLICY = "ticketmon_tenant"
SCOPE = "coalesce(current_setting('ticketmon.tenant', true), '')"
RULE = f"{SCOPE} = '*' OR tenant = {SCOPE}"
NOTIFY_FUNCTION = """
CREATE FUNCTION ticketmon_incident_changes_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ticketmon_incident_changes', 'written');
    RETURN NULL;
END
$$"""


def upgrade() -> None:
    op.create_table(
        "incident_changes",
        sa.Column("id", ID, primary_key=True),
        sa.Column("position", ID),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("incident_id", ID, nullable=False),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("change", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(200)),
        sqlite_autoincrement=True,
    )
    op.create_index("uq_incident_changes_position", "incident_changes", ["position"],
                    unique=True)
    op.create_index("ix_incident_changes_unsequenced", "incident_changes", ["id"],
                    sqlite_where=sa.text("position IS NULL"),
                    postgresql_where=sa.text("position IS NULL"))
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(NOTIFY_FUNCTION)
    op.execute("CREATE TRIGGER incident_changes_notify AFTER INSERT ON incident_changes "
               "FOR EACH STATEMENT EXECUTE FUNCTION ticketmon_incident_changes_notify()")
    op.execute("ALTER TABLE incident_changes ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE incident_changes FORCE ROW LEVEL SECURITY")
    op.execute(f"CREATE POLICY {POLICY} ON incident_changes USING ({RULE}) "
               f"WITH CHECK ({RULE})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS incident_changes_notify ON incident_changes")
        op.execute("DROP FUNCTION IF EXISTS ticketmon_incident_changes_notify()")
    op.drop_table("incident_changes")
