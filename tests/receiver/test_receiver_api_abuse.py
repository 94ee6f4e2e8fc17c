"""API abuse (issue #12): requests per token (429 + Retry-After, never the webhook),
auth failures counted by reason, expiring and rotating tokens, security headers."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from support.receiver import WEBHOOK_TOKEN, payload, payload_bytes, post_webhook

from receiver.escalation.ack_links import AckLinks
from receiver.store import migrate
from receiver.store.tables import api_tokens
from ticketmon.cli import main as ticketmon


def _ctx(app):
    return app.extensions["ticketmon_receiver"]


def _bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def _token(app, role: str = "admin", tenant: str | None = None,
           name: str | None = None) -> dict:
    tenant = tenant or ("*" if role == "admin" else "acme")  # '*' is admin-only
    return _bearer(_ctx(app).store.create_token(name or f"{role}-{tenant}", role, tenant)[1])


def _sample(app, name: str, **labels) -> float:
    text = app.test_client().get("/metrics").data.decode()
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{want}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- requests per token ----------------------------------------------------------------
@pytest.fixture
def limited(make_app):
    app = make_app(rate_limit={"requests_per_second": 2, "burst": 3})
    clock = Clock()
    _ctx(app).limiter.clock = clock
    return app, clock


def test_a_token_over_its_rate_gets_429_with_retry_after_and_recovers(limited):
    app, clock = limited
    client, viewer, other = app.test_client(), _token(app, "viewer"), _token(app, "operator")
    for _ in range(3):  # the burst
        assert client.get("/api/v1/incidents", headers=viewer).status_code == 200
    over = client.get("/api/v1/incidents", headers=viewer)
    assert over.status_code == 429 and over.json["error"]["code"] == "rate_limited"
    assert over.headers["Retry-After"] == "1"  # 0.5 s to the next token, rounded up
    assert client.get("/api/v1/alerts", headers=viewer).status_code == 429  # per token
    assert client.get("/api/v1/incidents", headers=other).status_code == 200  # not others
    assert _sample(app, "ticketmon_receiver_rate_limited_total", via="token") == 2
    clock.now += 0.5
    assert client.get("/api/v1/incidents", headers=viewer).status_code == 200
    assert client.get("/api/v1/incidents", headers=viewer).status_code == 429
    clock.now += 10  # refills to the burst, no further
    assert [client.get("/api/v1/incidents", headers=viewer).status_code
            for _ in range(4)] == [200, 200, 200, 429]


def test_the_webhook_metrics_and_health_are_never_rate_limited(limited):
    app, _ = limited
    client = app.test_client()
    for _ in range(10):
        assert post_webhook(client, payload_bytes("group-3-firing")).status_code == 200
        assert client.get("/healthz").status_code == 200
        assert client.get("/metrics").status_code == 200
        assert client.get("/openapi.json").status_code == 200


def test_zero_turns_the_limit_off(make_app):
    app = make_app(rate_limit={"requests_per_second": 0})
    client, viewer = app.test_client(), _token(app, "viewer")
    assert all(client.get("/api/v1/incidents", headers=viewer).status_code == 200
               for _ in range(400))


def test_default_limit_lets_a_dashboard_poll():
    from receiver.settings import ReceiverSettings

    limit = ReceiverSettings(webhook_token=WEBHOOK_TOKEN).rate_limit
    assert limit.requests_per_second >= 20 and limit.burst >= 100


# -- auth failures, expiry, rotation ---------------------------------------------------
def test_auth_failures_are_counted_by_reason(make_app):
    app = make_app(jwt={"hs256_secret": "a-shared-secret-of-at-least-32-chars!"})
    client, store = app.test_client(), _ctx(app).store
    token_id, secret = store.create_token("gone", "viewer", "acme")
    store.revoke_token(token_id, "*")
    calls = {
        "missing": {},
        "malformed": {"Authorization": "Basic YWRtaW46YWRtaW4="},
        "unknown_token": _bearer("tm_not-a-real-token-000"),
        "revoked": _bearer(secret),
        "bad_jwt": _bearer("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"),
        "forbidden": _token(app, "viewer"),
    }
    for reason, headers in calls.items():
        resp = client.get("/api/v1/tokens", headers=headers)
        assert resp.status_code == (403 if reason == "forbidden" else 401), reason
        assert _sample(app, "ticketmon_receiver_auth_failures_total", reason=reason) == 1
    assert _sample(app, "ticketmon_receiver_auth_failures_total", reason="expired") == 0
    post_webhook(client, payload("firing"), token="wrong-webhook-token-0000")
    assert _sample(app, "ticketmon_receiver_auth_failures_total", reason="unknown_token") == 2


def test_an_expired_token_is_refused_and_counted(make_app, database_url):
    app = make_app(database_url=database_url)
    client, admin = app.test_client(), _token(app)
    created = client.post("/api/v1/tokens", headers=admin,
                          json={"name": "grafana", "role": "viewer", "tenant": "acme",
                                "expires_in": 3600})
    assert created.status_code == 201, created.json
    expires = datetime.fromisoformat(created.json["expires_at"])
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    viewer = _bearer(created.json["token"])
    assert client.get("/api/v1/incidents", headers=viewer).status_code == 200
    listed = {t["id"]: t for t in client.get("/api/v1/tokens", headers=admin).json["tokens"]}
    assert listed[created.json["id"]]["expires_at"] == created.json["expires_at"]
    _ctx(app).auth.clock = lambda: expires + timedelta(seconds=1)
    refused = client.get("/api/v1/incidents", headers=viewer)
    assert refused.status_code == 401 and "expired" in refused.json["error"]["message"]
    assert _sample(app, "ticketmon_receiver_auth_failures_total", reason="expired") == 1


@pytest.mark.parametrize("expires_in", [0, 59, -5, 10**10, True, 3.5, "90d"])
def test_token_lifetimes_out_of_bounds_are_400(make_app, expires_in):
    app = make_app()
    resp = app.test_client().post("/api/v1/tokens", headers=_token(app), json={
        "name": "x", "role": "viewer", "tenant": "acme", "expires_in": expires_in})
    assert resp.status_code == 400 and resp.json["error"]["field"] == "expires_in"


def test_rotate_issues_a_new_secret_and_refuses_the_old(make_app, database_url):
    app = make_app(database_url=database_url)
    client, admin = app.test_client(), _token(app)
    old = client.post("/api/v1/tokens", headers=admin, json={
        "name": "grafana", "role": "operator", "tenant": "acme", "expires_in": 86400}).json
    rotated = client.post(f"/api/v1/tokens/{old['id']}/rotate", headers=admin)
    assert rotated.status_code == 201, rotated.json
    new = rotated.json
    assert (new["name"], new["role"], new["tenant"]) == ("grafana", "operator", "acme")
    assert new["replaces"] == old["id"] and new["token"] != old["token"]
    assert new["replaced_revoked_at"] and new["expires_at"] > old["expires_at"]  # same span
    refused = client.get("/api/v1/incidents", headers=_bearer(old["token"]))
    assert refused.status_code == 401 and "revoked" in refused.json["error"]["message"]
    assert client.get("/api/v1/incidents", headers=_bearer(new["token"])).status_code == 200
    ids = [t["id"] for t in client.get("/api/v1/tokens", headers=admin).json["tokens"]]
    assert new["id"] in ids and old["id"] not in ids
    # a revoked token cannot be rotated again, nor one outside the admin's tenant
    assert client.post(f"/api/v1/tokens/{old['id']}/rotate", headers=admin).status_code == 404
    globex_admin = _token(app, "admin", "globex")
    assert client.post(f"/api/v1/tokens/{new['id']}/rotate",
                       headers=globex_admin).status_code == 404


def test_rotate_with_a_grace_period_keeps_the_old_token_until_then(make_app):
    app = make_app()
    client, admin = app.test_client(), _token(app)
    old = client.post("/api/v1/tokens", headers=admin,
                      json={"name": "ci", "role": "viewer", "tenant": "acme"}).json
    new = client.post(f"/api/v1/tokens/{old['id']}/rotate", headers=admin,
                      json={"grace": 600}).json
    assert new["expires_at"] is None and new["replaced_revoked_at"] is None
    assert client.get("/api/v1/alerts", headers=_bearer(old["token"])).status_code == 200
    until = datetime.fromisoformat(new["replaced_expires_at"])
    _ctx(app).auth.clock = lambda: until + timedelta(seconds=1)
    assert client.get("/api/v1/alerts", headers=_bearer(old["token"])).status_code == 401
    assert client.get("/api/v1/alerts", headers=_bearer(new["token"])).status_code == 200
    for bad in ({"grace": -1}, {"grace": 8 * 86400}, {"grace": "1h"}, {"other": 1}):
        resp = client.post(f"/api/v1/tokens/{new['id']}/rotate", headers=admin, json=bad)
        assert resp.status_code == 400, bad


def test_cli_creates_expiring_tokens_and_rotates_them(make_app, monkeypatch, capsys):
    app = make_app()
    url = str(_ctx(app).store.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("TICKETMON_DATABASE_URL", url)
    monkeypatch.setenv("TICKETMON_WEBHOOK_TOKEN", WEBHOOK_TOKEN)
    assert ticketmon(["receiver", "token", "create", "--name", "dash", "--role", "viewer",
                      "--tenant", "acme", "--expires-in", "90d"]) == 0
    out = capsys.readouterr()
    first = out.out.strip()
    token_id = int(re.search(r"created token (\d+)", out.err).group(1))
    assert "expires" in out.err
    client = app.test_client()
    assert client.get("/api/v1/incidents", headers=_bearer(first)).status_code == 200
    row = _ctx(app).store.read(lambda c: c.execute(
        sa.select(api_tokens.c.expires_at, api_tokens.c.created_at)
        .where(api_tokens.c.id == token_id)).one())
    assert row[0] - row[1] == timedelta(days=90)
    assert ticketmon(["receiver", "token", "rotate", str(token_id), "--grace", "1h"]) == 0
    second = capsys.readouterr().out.strip()
    assert second.startswith("tm_") and second != first
    assert client.get("/api/v1/incidents", headers=_bearer(second)).status_code == 200
    assert client.get("/api/v1/incidents", headers=_bearer(first)).status_code == 200  # grace
    assert ticketmon(["receiver", "token", "rotate", "999"]) == 1
    with pytest.raises(SystemExit):  # a date past year 9999 would be a crash
        ticketmon(["receiver", "token", "create", "--name", "x", "--role", "viewer",
                   "--tenant", "acme", "--expires-in", "999999w"])


def test_migration_0006_goes_up_and_down(database_url):
    migrate.upgrade(database_url)
    engine = sa.create_engine(database_url)
    try:
        assert "expires_at" in {c["name"] for c in sa.inspect(engine).get_columns("api_tokens")}
        migrate.upgrade(database_url, "0006")
        from alembic import command

        from receiver.store.migrate import _config
        with engine.connect() as conn:
            cfg = _config()
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0004")
            conn.commit()
        assert "expires_at" not in {c["name"]
                                    for c in sa.inspect(engine).get_columns("api_tokens")}
    finally:
        engine.dispose()
    migrate.upgrade(database_url)


# -- security headers ------------------------------------------------------------------
def test_json_answers_carry_security_headers_and_no_hsts_over_http(make_app):
    app = make_app()
    client = app.test_client()
    for resp in (client.get("/api/v1/incidents", headers=_token(app, "viewer")),
                 client.get("/api/v1/incidents"), client.get("/healthz"),
                 client.get("/nothing"), post_webhook(client, payload("firing"))):
        h = resp.headers
        assert h["X-Content-Type-Options"] == "nosniff" and h["X-Frame-Options"] == "DENY"
        assert h["Referrer-Policy"] == "no-referrer" and h["Cache-Control"] == "no-store"
        assert h["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert "Strict-Transport-Security" not in h
    assert client.get("/metrics").headers["X-Content-Type-Options"] == "nosniff"


def test_hsts_over_https_or_when_configured(make_app):
    app = make_app()
    resp = app.test_client().get("/healthz", base_url="https://receiver.example")
    assert resp.headers["Strict-Transport-Security"] == "max-age=31536000"
    on = make_app(hsts=True).test_client().get("/healthz")
    assert on.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_the_ack_page_runs_only_its_own_nonced_script(make_app, monkeypatch):
    monkeypatch.setenv("TICKETMON_ACK_LINK_SECRET", "ack-secret-for-tests-0123456789")
    app = make_app()
    client = app.test_client()
    post_webhook(client, payload("firing"))
    link = AckLinks("ack-secret-for-tests-0123456789", "http://localhost/").token("1", "chat")
    page = client.get(f"/ack/{link}")
    assert page.status_code == 200 and page.mimetype == "text/html"
    csp = page.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert f"<script nonce='{nonce}'>" in page.text and f"<style nonce='{nonce}'>" in page.text
    assert "style=" not in page.text  # an inline style attribute would be blocked
    for part in ("default-src 'none'", "form-action 'self'", "frame-ancestors 'none'",
                 "base-uri 'none'"):
        assert part in csp
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "no-referrer"  # the URL holds the token
    again = client.get(f"/ack/{link}")
    assert re.search(r"'nonce-([^']+)'", again.headers["Content-Security-Policy"]).group(
        1) != nonce
    done = client.post(f"/ack/{link}")
    assert "'nonce-" in done.headers["Content-Security-Policy"] and "style=" not in done.text
