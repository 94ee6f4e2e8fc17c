"""Tenancy matrix: every read and write endpoint x caller (role @ tenant), aimed at
tenant acme's objects, on SQLite and on PostgreSQL as an ordinary role (row-level
security on). One parametrised test; a failing cell is named in the test id, e.g.
`test_cell[postgresql-GET /incidents/{id}/notifications-viewer@globex]`.

Expected answers: too small a role is 403; an object outside the caller's scope is
404 (never an empty 200); a list holds only the caller's tenants (acme's rows iff the
caller may see acme); naming another tenant when creating is 403.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from support.receiver import WEBHOOK_TOKEN, post_webhook, tenant_payload

from exporters.fraud.app import create_app as create_fraud_app
from exporters.fraud.settings import FraudSettings
from receiver.app import create_app
from receiver.escalation.tables import notifications
from receiver.settings import ReceiverSettings
from receiver.store import migrate
from receiver.store.tables import alerts, api_tokens, incidents

ROLES = ("viewer", "operator", "admin")
CALLERS = ("viewer@acme", "operator@acme", "admin@acme", "viewer@globex", "operator@globex",
           "admin@*")

# name: (method, path, body, least role, kind, list key)
# kind: list (200, rows filtered), item (200 in scope / 404), create (201 / 403 out of scope)
RECEIVER = {
    "GET /incidents": ("GET", "/api/v1/incidents", None, "viewer", "list", "incidents"),
    "GET /incidents/{id}": ("GET", "/api/v1/incidents/{incident}", None, "viewer", "item", None),
    "GET /incidents/{id}/notifications": ("GET", "/api/v1/incidents/{incident}/notifications",
                                          None, "viewer", "item", None),
    "GET /alerts": ("GET", "/api/v1/alerts", None, "viewer", "list", "alerts"),
    "GET /alerts/{id}": ("GET", "/api/v1/alerts/{alert}", None, "viewer", "item", None),
    "GET /dead-letters": ("GET", "/api/v1/dead-letters", None, "viewer", "list",
                          "notifications"),
    "GET /audit": ("GET", "/api/v1/audit", None, "admin", "list", "audit"),
    "GET /tokens": ("GET", "/api/v1/tokens", None, "admin", "list", "tokens"),
    "POST /incidents/{id}/acknowledge": ("POST", "/api/v1/incidents/{incident}/acknowledge",
                                         None, "operator", "item", None),
    "POST /incidents/{id}/silence": ("POST", "/api/v1/incidents/{incident}/silence",
                                     {"duration": "1h"}, "operator", "item", None),
    "DELETE /incidents/{id}/silence": ("DELETE", "/api/v1/incidents/{incident}/silence",
                                       None, "operator", "item", None),
    "POST /incidents/{id}/resolve": ("POST", "/api/v1/incidents/{resolvable}/resolve", None,
                                     "operator", "item", None),
    "POST /dead-letters/{id}/retry": ("POST", "/api/v1/dead-letters/{dead}/retry", None,
                                      "operator", "item", None),
    "POST /tokens": ("POST", "/api/v1/tokens", {"name": "n", "role": "viewer",
                                                "tenant": "acme"}, "admin", "create", None),
    "DELETE /tokens/{id}": ("DELETE", "/api/v1/tokens/{token}", None, "admin", "item", None),
}
FRAUD = {
    "GET /fraud/events": ("GET", "/api/v1/fraud/events?min_level=low", None, "viewer", "list",
                          None),
    "GET /fraud/events?tenant=acme": ("GET", "/api/v1/fraud/events?tenant=acme&min_level=low",
                                      None, "viewer", "named", None),
    "POST /fraud/check (tenant acme)": ("POST", "/api/v1/fraud/check",
                                        {"tenant": "acme", "user_id": "u", "event_id": "e",
                                         "quantity": 1}, "operator", "create", None),
}
LIST_TENANT = {"incidents": "tenant", "alerts": "tenant", "notifications": "tenant",
               "audit": "actor_tenant", "tokens": "tenant"}


def _secret(caller: str) -> str:
    return "tm_matrix_" + caller.replace("@", "_at_").replace("*", "all") + "_0123456789"


def _tokens() -> list[dict]:
    return [{"name": c, "role": c.split("@")[0], "tenant": c.split("@")[1],
             "token": _secret(c)} for c in CALLERS]


def _role_db(postgres_cluster) -> str:
    """A database owned by an ordinary role: row-level security binds it."""
    return postgres_cluster.create_database(f"tm_matrix_{id(postgres_cluster) % 100000}",
                                            owned_by_ordinary_role=True)


class World:
    """Two tenants' incidents, alerts, dead letters, audit rows and tokens."""

    def __init__(self, url: str) -> None:
        migrate.upgrade(url)
        self.app = create_app(ReceiverSettings(database_url=url, webhook_token=WEBHOOK_TOKEN,
                                               api_tokens=_tokens()))
        self.store = self.app.extensions["ticketmon_receiver"].store
        self.client = self.app.test_client()
        for tenant in ("acme", "globex"):
            for suffix in ("", "/resolvable"):
                body = tenant_payload(tenant)
                body["groupKey"] += suffix
                if suffix:
                    for alert in body["alerts"]:
                        alert["fingerprint"] = alert["fingerprint"][:-2] + "ff"
                assert post_webhook(self.client, body).status_code == 200
        now = datetime.now(UTC)
        with self.store.transaction() as conn:
            rows = conn.execute(sa.select(incidents.c.id, incidents.c.tenant,
                                          incidents.c.group_key)).all()
            for row in rows:
                conn.execute(notifications.insert().values(
                    incident_id=row.id, tenant=row.tenant, key=f"k{row.id}", channel="chat",
                    action="trigger", state="dead", attempts=1, due_at=now,
                    next_attempt_at=now, created_at=now))
            acme = [r for r in rows if r.tenant == "acme"]
            self.ids = {
                "incident": next(r.id for r in acme if "/resolvable" not in r.group_key),
                "resolvable": next(r.id for r in acme if "/resolvable" in r.group_key),
                "alert": conn.execute(sa.select(sa.func.min(alerts.c.id))
                                      .where(alerts.c.tenant == "acme")).scalar(),
                "dead": conn.execute(sa.select(notifications.c.id).where(
                    notifications.c.tenant == "acme").limit(1)).scalar(),
            }
        for row in rows:  # one audit row per tenant
            self.store.change_incident(row.id, "acknowledge", "seed", row.tenant)

    def before(self, name: str) -> None:
        """Make each write cell start from the same state."""
        with self.store.transaction() as conn:
            conn.execute(notifications.update().values(state="dead"))
            conn.execute(incidents.update().where(incidents.c.id == self.ids["resolvable"])
                         .values(status="open", resolved_at=None))
        if name == "DELETE /tokens/{id}":
            self.ids["token"], _ = self.store.create_token("victim", "viewer", "acme")


class FraudWorld:
    def __init__(self, url: str) -> None:
        self.app = create_fraud_app(FraudSettings.model_validate({
            "database_url": url, "auth": {"tokens": _tokens()},
            "recorder": {"flush_seconds": 0.02}, "outlier": {"refit_seconds": 3600}}))
        self.client = self.app.test_client()
        for tenant in ("acme", "globex"):
            assert self.client.post("/api/v1/fraud/check", headers=_auth("admin@*"), json={
                "tenant": tenant, "user_id": "u", "event_id": "e", "quantity": 1,
            }).status_code == 200
        self.app.extensions["fraud"].recorder.flush()


def _auth(caller: str) -> dict:
    return {"Authorization": f"Bearer {_secret(caller)}"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def worlds(request, tmp_path_factory):
    if request.param == "sqlite":
        base = tmp_path_factory.mktemp("matrix")
        receiver_url = f"sqlite:///{base / 'receiver.db'}"
        fraud_url = f"sqlite:///{base / 'fraud.db'}"
    else:
        receiver_url = fraud_url = _role_db(request.getfixturevalue("postgres_cluster"))
    receiver, fraud = World(receiver_url), FraudWorld(fraud_url)
    yield request.param, receiver, fraud
    fraud.app.extensions["fraud"].stop()
    receiver.store.dispose()


def _may_see(caller: str, tenant: str) -> bool:
    role, scope = caller.split("@")
    return scope == tenant or (scope == "*" and role == "admin")


def _expected(caller: str, least: str, kind: str) -> int:
    role, _ = caller.split("@")
    if ROLES.index(role) < ROLES.index(least):
        return 403
    if kind == "list":
        return 200
    in_scope = _may_see(caller, "acme")
    if kind == "create":
        return (201 if least == "admin" else 200) if in_scope else 403
    if kind == "named":
        return 200 if in_scope else 403
    return 200 if in_scope else 404


CELLS = [(name, caller) for name in [*RECEIVER, *FRAUD] for caller in CALLERS]


@pytest.mark.parametrize("name,caller", CELLS, ids=[f"{n}-{c}" for n, c in CELLS])
def test_cell(worlds, name, caller):
    backend, world, fraud = worlds
    fraud_cell = name in FRAUD
    method, path, body, least, kind, key = (FRAUD if fraud_cell else RECEIVER)[name]
    client = fraud.client if fraud_cell else world.client
    if not fraud_cell:
        world.before(name)
        path = path.format(**world.ids)
    resp = client.open(path, method=method, headers=_auth(caller),
                       **({"json": body} if body is not None else {}))
    expected = _expected(caller, least, kind)
    if expected == 200 and name == "DELETE /tokens/{id}":
        expected = 204
    assert resp.status_code == expected, (f"{backend}: {name} as {caller}: expected "
                                          f"{expected}, got {resp.status_code} {resp.json}")
    if kind != "list" or expected != 200:
        return
    rows = resp.json if fraud_cell else resp.json[key]
    field = "tenant" if fraud_cell else LIST_TENANT[key]
    tenants = {r[field] for r in rows}
    scope = caller.split("@")[1]
    assert tenants <= ({"acme", "globex"} if scope == "*" else {scope}), (name, caller, tenants)
    if key != "tokens":  # tokens: the matrix's own are configured, not listed
        assert ("acme" in tenants) == _may_see(caller, "acme"), (name, caller, tenants)


# -- creating all-tenant credentials -------------------------------------------------
def test_token_creation_refuses_every_tenant_for_non_admins(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    world = World(url)
    for role in ("viewer", "operator"):
        with pytest.raises(ValueError, match="needs the admin role"):
            world.store.create_token("x", role, "*")
        resp = world.client.post("/api/v1/tokens", headers=_auth("admin@*"),
                                 json={"name": "x", "role": role})  # '*' from the caller
        assert resp.status_code == 400 and resp.json["error"]["field"] == "tenant"
        assert "needs the admin role" in resp.json["error"]["message"]
    assert world.client.post("/api/v1/tokens", headers=_auth("admin@*"),
                             json={"name": "x", "role": "admin"}).status_code == 201
    with world.store.transaction() as conn:
        stored = conn.execute(sa.select(api_tokens.c.role, api_tokens.c.tenant)).all()
    assert [tuple(r) for r in stored] == [("admin", "*")]
    cfg = tmp_path / "r.yaml"
    cfg.write_text(f"database_url: '{url}'\nwebhook_token: {WEBHOOK_TOKEN}\n")
    cli = [sys.executable, "-m", "ticketmon", "receiver", "token", "create", "--config",
           str(cfg), "--name", "ci"]
    refused = subprocess.run([*cli, "--role", "viewer"], capture_output=True, text=True)
    assert refused.returncode == 2 and "--tenant is required" in refused.stderr
    refused = subprocess.run([*cli, "--role", "viewer", "--tenant", "*"], capture_output=True,
                             text=True)
    assert refused.returncode == 2 and "needs the admin role" in refused.stderr
    made = subprocess.run([*cli, "--role", "viewer", "--tenant", "acme"], capture_output=True,
                          text=True)
    assert made.returncode == 0 and made.stdout.startswith("tm_"), made.stderr
    world.store.dispose()
