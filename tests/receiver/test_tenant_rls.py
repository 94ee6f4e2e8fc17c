"""PostgreSQL row-level security (migration 0005): the second wall between tenants.

Every test here runs as an ordinary role that owns its tables (no superuser, no
BYPASSRLS) and skips the application's filter on purpose, to show that the database
alone keeps a scoped transaction to its tenant.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from support.receiver import tenant_payload

from receiver.escalation.tables import escalations, notifications
from receiver.payload import WebhookPayload
from receiver.store import Store, migrate, queries
from receiver.store.store import StoreUnavailable
from receiver.store.tables import incidents

SCOPED_TABLES = ("incidents", "alerts", "incident_alerts", "events", "notifications",
                 "escalations", "audit_log")


@pytest.fixture
def rls_store(app_role_url: str):
    """Two tenants' incidents, alerts, history, outbox rows and audit in a database the
    application's own role owns; written through the system scope ('*')."""
    migrate.upgrade(app_role_url)
    store = Store(app_role_url)
    now = datetime.now(UTC)
    for tenant in ("acme", "globex"):
        store.ingest(WebhookPayload.model_validate(tenant_payload(tenant)))
    with store.transaction() as conn:
        rows = conn.execute(sa.select(incidents.c.id, incidents.c.tenant)).all()
        for row in rows:
            conn.execute(escalations.insert().values(
                incident_id=row.id, tenant=row.tenant, state="active", episode=0,
                started_at=now, step=0, round=0, updated_at=now))
            conn.execute(notifications.insert().values(
                incident_id=row.id, tenant=row.tenant, key=f"k{row.id}", channel="chat",
                action="trigger", state="dead", attempts=1, due_at=now, next_attempt_at=now,
                created_at=now))
    for row in rows:
        store.change_incident(row.id, "acknowledge", f"op-{row.tenant}", row.tenant)
    yield store
    store.dispose()


def _tenants(conn, table: str) -> set:
    column = "actor_tenant" if table == "audit_log" else "tenant"
    if table in ("incident_alerts", "events"):  # no tenant column: follow the incident
        return set(conn.execute(sa.text(
            f"SELECT DISTINCT i.tenant FROM {table} t JOIN incidents i ON i.id = t.incident_id"
        )).scalars()) | ({"?"} if conn.execute(sa.text(
            f"SELECT count(*) FROM {table} t WHERE NOT EXISTS "
            "(SELECT 1 FROM incidents i WHERE i.id = t.incident_id)")).scalar() else set())
    return set(conn.execute(sa.text(f"SELECT DISTINCT {column} FROM {table}")).scalars())


def test_the_role_really_is_subject_to_row_security(rls_store):
    with rls_store.transaction(readonly=True) as conn:
        role = conn.execute(sa.text("SELECT rolsuper, rolbypassrls FROM pg_roles "
                                    "WHERE rolname = current_user")).one()
        forced = dict(conn.execute(sa.text(
            "SELECT relname, relforcerowsecurity FROM pg_class WHERE relname = ANY(:t)"),
            {"t": list(SCOPED_TABLES)}).all())
    assert tuple(role) == (False, False)
    assert forced == dict.fromkeys(SCOPED_TABLES, True)


@pytest.mark.parametrize("table", SCOPED_TABLES)
def test_raw_sql_in_a_scoped_transaction_sees_only_its_tenant(rls_store, table):
    with rls_store.transaction(readonly=True) as conn:
        everyone = _tenants(conn, table)
    with rls_store.transaction(readonly=True, tenant="acme") as conn:
        acme = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()
        seen = _tenants(conn, table)
    assert everyone == {"acme", "globex"} or (table == "events" and "?" in everyone)
    assert acme > 0 and seen == {"acme"}, (table, seen)


def test_queries_asked_for_every_tenant_still_get_one(rls_store):
    """The application filter is bypassed (scope '*'), the transaction's scope is acme."""
    flt = queries.IncidentFilter()
    both, _ = rls_store.read(queries.list_incidents, "*", flt, 100)
    acme, _ = rls_store.read_as("acme", queries.list_incidents, "*", flt, 100)
    assert {i["tenant"] for i in both} == {"acme", "globex"}
    assert {i["tenant"] for i in acme} == {"acme"}
    globex_id = next(i["id"] for i in both if i["tenant"] == "globex")
    assert rls_store.read_as("acme", queries.get_incident, "*", globex_id) is None
    alerts, _ = rls_store.read_as("acme", queries.list_alerts, "*", queries.AlertFilter(), 100)
    assert {a["tenant"] for a in alerts} == {"acme"}
    audit, _ = rls_store.read_as("acme", queries.list_audit, "*", 100)
    assert {a["actor_tenant"] for a in audit} == {"acme"}


def test_a_scoped_transaction_cannot_write_another_tenants_rows(rls_store):
    with rls_store.transaction(readonly=True) as conn:
        globex_id = conn.execute(sa.select(incidents.c.id)
                                 .where(incidents.c.tenant == "globex")).scalar_one()
    with rls_store.transaction(tenant="acme") as conn:
        changed = conn.execute(incidents.update().where(incidents.c.id == globex_id)
                               .values(title="hijacked")).rowcount
        gone = conn.execute(sa.text("DELETE FROM notifications WHERE tenant = 'globex'")).rowcount
    assert (changed, gone) == (0, 0)
    with pytest.raises(StoreUnavailable, match="row-level security"):
        with rls_store.transaction(tenant="acme") as conn:
            conn.execute(sa.text("UPDATE incidents SET tenant = 'globex' WHERE tenant = 'acme'"))


def test_a_session_that_sets_no_tenant_sees_nothing(rls_store):
    """Fail closed: the application's role, connecting without ticketmon's engines (psql,
    a report tool), gets no tenant's rows."""
    engine = sa.create_engine(rls_store.url)
    with engine.connect() as conn:
        counts = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar()
                  for t in SCOPED_TABLES}
    engine.dispose()
    assert counts == dict.fromkeys(SCOPED_TABLES, 0)


def test_the_scope_ends_with_its_transaction(rls_store):
    """SET LOCAL: a pooled connection back from a scoped transaction is system again."""
    with rls_store.transaction(readonly=True, tenant="acme") as conn:
        assert _tenants(conn, "incidents") == {"acme"}
    for _ in range(3):  # whichever pooled connection comes next
        with rls_store.transaction(readonly=True) as conn:
            assert _tenants(conn, "incidents") == {"acme", "globex"}


def test_webhook_and_system_scope_still_work_for_every_tenant(rls_store):
    """Ingest (with its autocommit replay probe) and '*' transactions act for all."""
    again = rls_store.ingest(WebhookPayload.model_validate(tenant_payload("globex")))
    assert again is not None
    rls_store.ingest(WebhookPayload.model_validate(tenant_payload("initech")))
    with rls_store.transaction(readonly=True) as conn:
        assert _tenants(conn, "incidents") == {"acme", "globex", "initech"}


def test_scope_must_be_named(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    for bad in ({"tenant": ""}, {"tenant": "acme", "autocommit": True}):
        with pytest.raises(ValueError):
            with store.transaction(**bad):
                pass
    store.dispose()
