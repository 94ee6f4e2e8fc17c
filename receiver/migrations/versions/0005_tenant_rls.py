"""Row-level security: PostgreSQL itself keeps each tenant's rows to that tenant.

The application filters every query by the caller's tenant; these policies are the
second wall, for the query that forgets. Each transaction of a scoped caller sets
`ticketmon.tenant` (Store.transaction: `set_config(..., true)`, i.e. SET LOCAL); the
webhook, the worker, the CLI and admins use '*', which the policies let through. A session
that set nothing sees nothing (fail closed).

FORCE ROW LEVEL SECURITY binds the tables' owner too, so the application may own its
tables; it must still connect as a role that is neither superuser nor BYPASSRLS (those
skip every policy), which the docs' Security section explains. SQLite: nothing to do.

Tables without a tenant column follow their parent: incident_alerts through its
incident, events through its incident or its alert. api_tokens, installation and the
anomaly tables hold no tenant's data and stay application-scoped.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-14
"""

import logging

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

log = logging.getLogger("ticketmon.receiver.migrations")

POLICY = "ticketmon_tenant"
SCOPE = "coalesce(current_setting('ticketmon.tenant', true), '')"
ALL = f"{SCOPE} = '*'"

# table -> the rows a scoped transaction may see and write
RULES = {
    "incidents": f"{ALL} OR tenant = {SCOPE}",
    "alerts": f"{ALL} OR tenant = {SCOPE}",
    "notifications": f"{ALL} OR tenant = {SCOPE}",
    "escalations": f"{ALL} OR tenant = {SCOPE}",
    "audit_log": f"{ALL} OR actor_tenant = {SCOPE}",
    # subqueries are themselves under the incidents' and alerts' policies; correlated
    # EXISTS, so each row costs one primary-key or unique-index probe
    "incident_alerts": (f"{ALL} OR EXISTS (SELECT 1 FROM incidents i "
                        "WHERE i.id = incident_alerts.incident_id)"),
    "events": (f"{ALL} OR EXISTS (SELECT 1 FROM incidents i WHERE i.id = events.incident_id)"
               " OR EXISTS (SELECT 1 FROM alerts a WHERE a.fingerprint = events.fingerprint "
               "AND a.starts_at = events.starts_at)"),
}


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table, rule in RULES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY {POLICY} ON {table} USING ({rule}) WITH CHECK ({rule})")
    bypass = bind.execute(sa.text(
        "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")).scalar()
    if bypass:
        log.warning("row-level security is on, but this role (%s) is a superuser or has "
                    "BYPASSRLS and so skips it: run the receiver as an ordinary role",
                    bind.execute(sa.text("SELECT current_user")).scalar())


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in RULES:
        op.execute(f"DROP POLICY IF EXISTS {POLICY} ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
