"""Fraud checks: tenant of each check, scoped events, retention, IP storage, the schema
upgrade of an older table, row-level security, and what the checkout's credentials allow."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time

import jwt
import pytest
import sqlalchemy as sa

from exporters.fraud import recorder as recorder_mod
from exporters.fraud.main import run as run_fraud
from exporters.fraud.privacy import ip_transform, truncate_ip
from exporters.fraud.settings import FraudSettings
from ticketmon.core.auth import Authenticator, AuthError
from ticketmon.stack.fraud_keys import fraud_credentials

ADMIN = "tm_fraud_admin_token_0123456789"
GLOBEX = "tm_globex_checkout_0123456789"
HS_SECRET = "the-checkouts-shared-secret-0123456789"
BOT = {"user_id": "scalper", "event_id": "e1", "quantity": 50, "user_agent": "curl/8.1",
       "ip": "203.0.113.77"}


def _auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


TOKENS = [{"name": "checkout", "role": "operator", "tenant": "acme",
           "token": "tm_checkout_token_0123456789"},
          {"name": "grafana", "role": "viewer", "tenant": "acme",
           "token": "tm_grafana_viewer_0123456789"},
          {"name": "globex", "role": "operator", "tenant": "globex", "token": GLOBEX},
          {"name": "admin", "role": "admin", "tenant": "*", "token": ADMIN}]


@pytest.fixture
def app(make_fraud_app):
    return make_fraud_app(auth={"tokens": TOKENS})


def _rows(app) -> list[dict]:
    service = app.extensions["fraud"]
    service.recorder.flush()
    with service.recorder.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            sa.select(recorder_mod.checks).order_by(recorder_mod.checks.c.id))]


def test_each_check_carries_its_callers_tenant(app):
    c = app.test_client()
    acme = _auth("tm_checkout_token_0123456789")
    assert c.post("/api/v1/fraud/check", json=BOT, headers=acme).status_code == 200
    assert c.post("/api/v1/fraud/check", json={**BOT, "tenant": "acme"},
                  headers=acme).status_code == 200
    other = c.post("/api/v1/fraud/check", json={**BOT, "tenant": "globex"}, headers=acme)
    assert other.status_code == 403 and "outside your scope" in other.json["error"]
    assert c.post("/api/v1/fraud/check", json={**BOT, "tenant": "initech"},
                  headers=_auth(ADMIN)).status_code == 200
    assert c.post("/api/v1/fraud/check", json=BOT, headers=_auth(ADMIN)).status_code == 200
    for bad in ("*", "", "a b", "x" * 101):
        resp = c.post("/api/v1/fraud/check", json={**BOT, "tenant": bad}, headers=_auth(ADMIN))
        assert resp.status_code == 400 and resp.json["fields"][0]["field"] == "tenant", bad
    assert [r["tenant"] for r in _rows(app)] == ["acme", "acme", "initech", "default"]


def test_events_are_scoped_and_every_tenant_needs_admin(app):
    c = app.test_client()
    c.post("/api/v1/fraud/check", json=BOT, headers=_auth("tm_checkout_token_0123456789"))
    c.post("/api/v1/fraud/check", json=BOT, headers=_auth(GLOBEX))
    app.extensions["fraud"].recorder.flush()
    viewer = _auth("tm_grafana_viewer_0123456789")
    events = c.get("/api/v1/fraud/events", headers=viewer).json
    assert [e["tenant"] for e in events] == ["acme"]
    assert c.get("/api/v1/fraud/events?tenant=globex", headers=viewer).status_code == 403
    assert c.get("/api/v1/fraud/events?tenant=*", headers=viewer).status_code == 403
    assert c.get("/api/v1/fraud/events?tenant=acme", headers=viewer).status_code == 200
    every = c.get("/api/v1/fraud/events", headers=_auth(ADMIN)).json
    assert sorted(e["tenant"] for e in every) == ["acme", "globex"]
    only = c.get("/api/v1/fraud/events?tenant=globex", headers=_auth(ADMIN)).json
    assert [e["tenant"] for e in only] == ["globex"]


def test_ip_addresses_are_truncated_by_default_or_hashed_with_a_key(make_fraud_app, app):
    c = app.test_client()
    acme = _auth("tm_checkout_token_0123456789")
    c.post("/api/v1/fraud/check", json=BOT, headers=acme)
    c.post("/api/v1/fraud/check", json={**BOT, "ip": "2001:db8:aa:bb::9"}, headers=acme)
    c.post("/api/v1/fraud/check", json={k: v for k, v in BOT.items() if k != "ip"},
           headers=acme)
    assert [r["ip"] for r in _rows(app)] == ["203.0.113.0/24", "2001:db8:aa::/48", None]
    assert truncate_ip("10.1.2.3") == "10.1.2.0/24"

    hashed = ip_transform("hmac", b"k" * 32)
    assert hashed("203.0.113.77") == hashed("203.0.113.77") != hashed("203.0.113.78")
    assert "203.0.113" not in hashed("203.0.113.77") and len(hashed("::1")) <= 45
    assert ip_transform("hmac", b"j" * 32)("203.0.113.77") != hashed("203.0.113.77")
    assert ip_transform("drop")("203.0.113.77") is None
    with pytest.raises(ValueError, match="ip_hmac_key"):
        FraudSettings.model_validate({"auth": {"disabled": True}, "ip_storage": "hmac"})


def test_checks_past_retention_are_pruned_by_the_service_and_by_the_command(
        make_fraud_app, sqlite_url, clock, tmp_path, capsys):
    app = make_fraud_app(retention_days=1, prune_interval_seconds=3600,
                         auth={"tokens": TOKENS})
    c = app.test_client()
    acme = _auth("tm_checkout_token_0123456789")
    c.post("/api/v1/fraud/check", json=BOT, headers=acme)
    recorder = app.extensions["fraud"].recorder
    recorder.flush()
    assert recorder_mod.prune(recorder.engine, clock.now - 86400) == 0
    clock.advance(2 * 86400)
    c.post("/api/v1/fraud/check", json=BOT, headers=acme)
    recorder.flush()
    assert len(_rows(app)) == 2
    recorder._next_prune = 0  # the writer's next pass is due now
    recorder._prune_when_due()
    assert len(_rows(app)) == 1

    clock.advance(2 * 86400)  # the command prunes with the wall clock: age the row
    with recorder.engine.begin() as conn:
        conn.execute(recorder_mod.checks.update().values(checked_at=time.time() - 3 * 86400))
    cfg = tmp_path / "fraud.yaml"
    cfg.write_text(f"database_url: '{sqlite_url}'\nauth: {{disabled: true}}\nretention_days: 1\n")
    assert run_fraud(str(cfg), prune=True) == 0
    assert "fraud_checks=1" in capsys.readouterr().out
    assert _rows(app) == []


OLD_TABLE = """CREATE TABLE fraud_checks (
    id {id}, check_id VARCHAR(32) NOT NULL UNIQUE, checked_at FLOAT NOT NULL,
    user_id VARCHAR(128) NOT NULL, event_id VARCHAR(128) NOT NULL, quantity INTEGER NOT NULL,
    risk_score INTEGER NOT NULL, risk_level VARCHAR(16) NOT NULL,
    decision VARCHAR(16) NOT NULL, patterns {json} NOT NULL, outlier_score FLOAT,
    confidence FLOAT NOT NULL, ip VARCHAR(45))"""


def test_a_table_from_before_tenancy_gets_its_column_and_keeps_its_rows(
        make_fraud_app, database_url, clock):
    engine = sa.create_engine(database_url)
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        conn.execute(sa.text(OLD_TABLE.format(
            id="BIGSERIAL PRIMARY KEY" if postgres else "INTEGER PRIMARY KEY",
            json="JSON" if postgres else "TEXT")))
        conn.execute(sa.text(
            "INSERT INTO fraud_checks (check_id, checked_at, user_id, event_id, quantity, "
            "risk_score, risk_level, decision, patterns, confidence, ip) VALUES "
            f"('old1', {clock.now - 60}, 'u', 'e', 1, 90, 'critical', 'block', '[]', 1, "
            "'203.0.113.9')"))
    engine.dispose()
    app = make_fraud_app(database_url=database_url, auth={"tokens": TOKENS})
    make_fraud_app(database_url=database_url)  # a second worker starting: nothing to do
    c = app.test_client()
    c.post("/api/v1/fraud/check", json=BOT, headers=_auth(ADMIN))
    assert [r["tenant"] for r in _rows(app)] == ["default", "default"]
    assert c.get("/api/v1/fraud/events",
                 headers=_auth("tm_grafana_viewer_0123456789")).json == []
    assert len(c.get("/api/v1/fraud/events", headers=_auth(ADMIN)).json) == 2


def test_row_security_keeps_fraud_events_to_the_tenant_on_postgresql(
        make_fraud_app, postgres_cluster):
    """As an ordinary role owning the table, a transaction scoped to acme that asks for
    every row (the application filter skipped) still gets acme's only."""
    url = postgres_cluster.create_database(f"tm_fraud_{os.getpid()}",
                                           owned_by_ordinary_role=True)
    app = make_fraud_app(database_url=url, auth={"tokens": TOKENS})
    c = app.test_client()
    c.post("/api/v1/fraud/check", json=BOT, headers=_auth("tm_checkout_token_0123456789"))
    c.post("/api/v1/fraud/check", json=BOT, headers=_auth(GLOBEX))
    recorder = app.extensions["fraud"].recorder
    recorder.flush()
    assert recorder.written == 2
    every = recorder.events(0, 1e12, "low", 100, "*")
    assert sorted(r["tenant"] for r in every) == ["acme", "globex"]
    with recorder.engine.begin() as conn:
        conn.execute(recorder_mod.SET_TENANT, {"tenant": "acme"})
        seen = conn.execute(sa.text("SELECT DISTINCT tenant FROM fraud_checks")).scalars().all()
    assert seen == ["acme"]
    with recorder.engine.connect() as conn:  # no tenant set at all: nothing
        assert conn.execute(sa.text("SELECT count(*) FROM fraud_checks")).scalar() == 0


def test_what_the_checkout_holds_cannot_get_admin_or_every_tenant(make_fraud_app):
    """Production: the checkout signs with the shared HS256 secret, so tokens signed with
    it are capped at the check role; the demo: the checkout holds only an RS256 token."""
    app = make_fraud_app(auth={"jwt": {"hs256_secret": HS_SECRET}})
    c = app.test_client()
    exp = int(time.time()) + 300

    def minted(role: str, tenant: str) -> dict:
        return _auth(jwt.encode({"sub": "checkout", "role": role, "tenant": tenant,
                                 "exp": exp}, HS_SECRET, algorithm="HS256"))

    assert c.post("/api/v1/fraud/check", json=BOT,
                  headers=minted("operator", "acme")).status_code == 200
    for role, tenant in (("admin", "*"), ("admin", "acme"), ("operator", "*"),
                         ("viewer", "*")):
        assert c.get("/api/v1/fraud/events", headers=minted(role, tenant)).status_code == 401
    assert c.get("/api/v1/fraud/events?tenant=globex",
                 headers=minted("operator", "acme")).status_code == 403
    # an operator explicitly trusted to mint admin stays possible, but must say so
    assert FraudSettings.model_validate({"auth": {"jwt": {
        "hs256_secret": HS_SECRET, "hs256_max_role": "admin"}}}).auth.jwt.hs256_max_role \
        == "admin"

    creds = fraud_credentials("demo")
    settings = FraudSettings.model_validate({"auth": {"jwt": creds.jwt_settings}})
    assert "PRIVATE" not in repr(creds.jwt_settings) and settings.auth.jwt.hs256_secret is None
    auth = Authenticator(settings.auth.jwt, settings.auth.tokens)
    principal = auth.authenticate(f"Bearer {creds.checkout_token}")
    assert (principal.role, principal.tenant, principal.all_tenants) == ("operator", "demo",
                                                                          False)
    # the only secret-looking things the checkout has: its token and the public key
    claims = {"sub": "x", "role": "admin", "tenant": "*", "exp": exp,
              "iss": creds.jwt_settings["issuer"]}
    header = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT"}')
    body = jwt.utils.base64url_encode(json.dumps(claims).encode())
    for secret in (creds.checkout_token, creds.jwt_settings["rs256_public_key"]):
        sig = hmac.new(secret.encode(), header + b"." + body, hashlib.sha256).digest()
        token = (header + b"." + body + b"." + jwt.utils.base64url_encode(sig)).decode()
        with pytest.raises(AuthError, match="HS256"):
            auth.authenticate(f"Bearer {token}")
