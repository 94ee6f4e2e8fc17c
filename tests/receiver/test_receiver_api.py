"""The HTTP API: every bad input, the auth matrix (role x endpoint), tenant isolation,
pagination, the OpenAPI document and /metrics."""

from __future__ import annotations

import copy
import json
import logging
import re
import subprocess
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from support.receiver import (
    WEBHOOK_TOKEN,
    bearer,
    count,
    payload,
    payload_bytes,
    post_webhook,
    tenant_payload,
)

from receiver.api.openapi import DOCUMENT

HS_SECRET = "a-shared-secret-of-at-least-32-chars!"


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


def store_of(app):
    return app.extensions["ticketmon_receiver"].store


token = bearer


# -- webhook: bad input --------------------------------------------------------------
GOOD = payload_bytes("group-3-firing")


def _broken(mutate) -> bytes:
    body = copy.deepcopy(payload("group-3-firing"))
    mutate(body)
    return json.dumps(body).encode()


SCHEMA_ERRORS = {
    "version": (lambda b: b.update(version="3"), "version"),
    "no-alerts": (lambda b: b.pop("alerts"), "alerts"),
    "empty-alerts": (lambda b: b.update(alerts=[]), "alerts"),
    "alerts-not-list": (lambda b: b.update(alerts={"a": 1}), "alerts"),
    "status": (lambda b: b["alerts"][1].update(status="pending"), "alerts.1.status"),
    "fingerprint": (lambda b: b["alerts"][2].pop("fingerprint"), "alerts.2.fingerprint"),
    "fingerprint-chars": (lambda b: b["alerts"][0].update(fingerprint="x y"),
                          "alerts.0.fingerprint"),
    "startsAt": (lambda b: b["alerts"][0].update(startsAt="yesterday"), "alerts.0.startsAt"),
    "label-type": (lambda b: b["alerts"][0]["labels"].update(severity=3),
                   "alerts.0.labels.severity"),
    "labels-missing": (lambda b: b["alerts"][0].pop("labels"), "alerts.0.labels"),
    "groupKey": (lambda b: b.pop("groupKey"), "groupKey"),
    "truncated-negative": (lambda b: b.update(truncatedAlerts=-1), "truncatedAlerts"),
    "alert-not-object": (lambda b: b["alerts"].__setitem__(1, "x"), "alerts.1"),
    "startsAt-missing": (lambda b: b["alerts"][0].pop("startsAt"), "alerts.0.startsAt"),
    "group-status": (lambda b: b.update(status="pending"), "status"),
}  # NUL, long values, long group keys are repaired: test_receiver_webhook_repairs.py


@pytest.mark.parametrize("case", sorted(SCHEMA_ERRORS))
def test_schema_errors_are_400_naming_the_field_and_write_nothing(app, client, case):
    mutate, field = SCHEMA_ERRORS[case]
    resp = post_webhook(client, _broken(mutate))
    assert resp.status_code == 400, resp.json
    assert resp.json["error"]["field"] == field
    assert field in resp.json["error"]["message"]
    assert count(store_of(app), "alerts") == 0 and count(store_of(app), "incidents") == 0


@pytest.mark.parametrize("body,code", [
    (b"not json at all", "invalid_json"),
    (b'{"version": "4",', "invalid_json"),
    (b"[1, 2]", "invalid_payload"),
    (b"", "invalid_json"),
    (b"\xff\xfe", "invalid_json"),
])
def test_bodies_that_are_not_a_json_object_are_400(app, client, body, code):
    resp = post_webhook(client, body)
    assert resp.status_code == 400 and resp.json["error"]["code"] == code
    assert count(store_of(app), "alerts") == 0


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_wrong_content_type_is_415(client, content_type):
    headers = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
    if content_type:
        headers["Content-Type"] = content_type
    resp = client.post("/api/v1/alertmanager", data=GOOD, headers=headers)
    assert resp.status_code == 415 and resp.json["error"]["code"] == "unsupported_media_type"


def test_json_with_charset_is_accepted(client):
    assert post_webhook(client, GOOD, **{"Content-Type": "application/json; charset=utf-8"}
                        ).status_code == 200


def test_body_over_the_limit_is_413(make_app):
    app = make_app(max_body_bytes=2048)
    body = _broken(lambda b: b["alerts"][0]["annotations"].update(description="x" * 4000))
    resp = post_webhook(app.test_client(), body)
    assert resp.status_code == 413 and resp.json["error"]["code"] == "request_entity_too_large"
    assert count(store_of(app), "alerts") == 0
    assert post_webhook(app.test_client(), payload_bytes("firing")).status_code == 200


@pytest.mark.parametrize("auth", [None, "Bearer wrong-token-0123456789", "Basic dXNlcjpwYXNz",
                                  f"Token {WEBHOOK_TOKEN}", "Bearer "])
def test_webhook_without_the_right_bearer_token_is_401(app, client, auth):
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = auth
    resp = client.post("/api/v1/alertmanager", data=GOOD, headers=headers)
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"] == "Bearer"
    assert count(store_of(app), "alerts") == 0


def test_api_tokens_do_not_open_the_webhook(app, client):
    admin = token(app, "admin")
    resp = client.post("/api/v1/alertmanager", data=GOOD,
                       headers={**admin, "Content-Type": "application/json"})
    assert resp.status_code == 401


def test_webhook_answers_with_what_it_stored(client):
    first = post_webhook(client, GOOD)
    assert first.status_code == 200
    assert first.json == {"status": "ok", "alerts": 3, "changed": 3, "duplicates": 0,
                          "incidents_opened": [1], "incidents_resolved": []}
    assert post_webhook(client, GOOD).json["duplicates"] == 3


def test_store_unavailable_is_503_so_alertmanager_retries(make_app):
    from ticketmon.servers.process import free_port

    down = f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/nothing"
    app = make_app(database_url=down, migrated=False, store_timeout_seconds=1)
    client = app.test_client()
    resp = post_webhook(client, GOOD)
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "5"
    assert resp.json["error"]["code"] == "store_unavailable"
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200


def test_unmigrated_store_is_503_and_not_ready(make_app, tmp_path):
    app = make_app(database_url=f"sqlite:///{tmp_path / 'empty.db'}", migrated=False)
    client = app.test_client()
    assert post_webhook(client, GOOD).status_code == 503
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "db upgrade" in ready.json["error"]["message"]


# -- auth matrix ---------------------------------------------------------------------
# (method, path, body, least role)
ENDPOINTS = [
    ("GET", "/api/v1/incidents", None, "viewer"),
    ("GET", "/api/v1/incidents/1", None, "viewer"),
    ("GET", "/api/v1/alerts", None, "viewer"),
    ("GET", "/api/v1/alerts/1", None, "viewer"),
    ("POST", "/api/v1/incidents/1/acknowledge", {"comment": "on it"}, "operator"),
    ("POST", "/api/v1/incidents/1/resolve", None, "operator"),
    ("GET", "/api/v1/tokens", None, "admin"),
    ("POST", "/api/v1/tokens", {"name": "ci", "role": "viewer", "tenant": "acme"}, "admin"),
    ("DELETE", "/api/v1/tokens/999", None, "admin"),
    ("GET", "/api/v1/audit", None, "admin"),
]
ROLES = ["viewer", "operator", "admin"]


def _call(client, method, path, body, headers):
    kwargs = {"headers": dict(headers)}
    if body is not None:
        kwargs["json"] = body
    return client.open(path, method=method, **kwargs)


@pytest.mark.parametrize("role", ROLES)
def test_auth_matrix(app, client, role):
    post_webhook(client, GOOD)
    headers = token(app, role)
    for method, path, body, least in ENDPOINTS:
        resp = _call(client, method, path, body, headers)
        allowed = ROLES.index(role) >= ROLES.index(least)
        if allowed:
            assert resp.status_code in (200, 201, 204, 404), (method, path, resp.json)
            if path != "/api/v1/tokens/999":
                assert resp.status_code != 404, (method, path)
        else:
            assert resp.status_code == 403, (method, path, role, resp.status_code)
            assert resp.json["error"]["code"] == "forbidden"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer tm_not-a-real-token"},
                                     {"Authorization": "Basic YWRtaW46YWRtaW4="},
                                     {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}])
def test_every_api_endpoint_needs_valid_credentials(client, headers):
    for method, path, body, _ in ENDPOINTS:
        resp = _call(client, method, path, body, headers)
        assert resp.status_code == 401, (method, path)


def test_revoked_token_stops_working(app, client):
    admin = token(app, "admin")
    created = client.post("/api/v1/tokens",
                          json={"name": "temp", "role": "viewer", "tenant": "acme"},
                          headers=admin)
    assert created.status_code == 201
    viewer = {"Authorization": f"Bearer {created.json['token']}"}
    assert client.get("/api/v1/incidents", headers=viewer).status_code == 200
    listed = client.get("/api/v1/tokens", headers=admin).json["tokens"]
    assert all("sha256" not in t and "token" not in t for t in listed)
    assert client.delete(f"/api/v1/tokens/{created.json['id']}", headers=admin).status_code == 204
    assert client.get("/api/v1/incidents", headers=viewer).status_code == 401


def test_tokens_are_stored_hashed(app):
    import sqlalchemy as sa

    headers = token(app, "viewer")
    secret = headers["Authorization"].split()[1]
    with store_of(app).engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT * FROM api_tokens")).all()
    assert secret not in repr(stored)


def test_configured_bootstrap_token(make_app):
    app = make_app(api_tokens=[{"name": "stack-admin", "role": "admin",
                                "token": "bootstrap-admin-token-123"}])
    client = app.test_client()
    ok = client.get("/api/v1/tokens", headers={"Authorization": "Bearer bootstrap-admin-token-123"})
    assert ok.status_code == 200


def _rsa_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


def test_jwts_hs256_and_rs256_with_role_and_tenant_claims(make_app, tmp_path):
    private, public = _rsa_pair()
    key_file = tmp_path / "auth.pub"
    key_file.write_text(public)
    app = make_app(jwt={"hs256_secret": HS_SECRET, "rs256_public_key": str(key_file),
                        "audience": "ticketmon"})
    client = app.test_client()
    post_webhook(client, GOOD)
    exp = int(time.time()) + 300

    def call(tok, path="/api/v1/incidents", method="GET"):
        return client.open(path, method=method, headers={"Authorization": f"Bearer {tok}"})

    claims = {"sub": "alice", "role": "operator", "tenant": "acme", "exp": exp,
              "aud": "ticketmon"}
    hs = jwt.encode(claims, HS_SECRET, algorithm="HS256")
    rs = jwt.encode(claims, private, algorithm="RS256")
    assert call(hs).status_code == 200 and call(rs).status_code == 200
    assert call(rs, "/api/v1/incidents/1/acknowledge", "POST").status_code == 200
    audit_actor = client.get("/api/v1/audit", headers={"Authorization": "Bearer " + jwt.encode(
        {**claims, "role": "admin"}, HS_SECRET, algorithm="HS256")}).json["audit"][0]["actor"]
    assert audit_actor == "alice"

    bad = {
        "expired": jwt.encode({**claims, "exp": int(time.time()) - 3600}, HS_SECRET, "HS256"),
        "no-exp": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, HS_SECRET,
                             "HS256"),
        "wrong-secret": jwt.encode(claims, "another-secret-of-at-least-32-chars!!", "HS256"),
        "wrong-audience": jwt.encode({**claims, "aud": "other"}, HS_SECRET, "HS256"),
        "bad-role": jwt.encode({**claims, "role": "root"}, HS_SECRET, "HS256"),
        "no-tenant": jwt.encode({k: v for k, v in claims.items() if k != "tenant"},
                                HS_SECRET, "HS256"),
        "alg-none": jwt.encode(claims, None, algorithm="none"),
        "garbage": "a.b.c",
    }
    # the classic confusion: an HS256 token "signed" with the RS256 public key as secret
    header = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT"}')
    body = jwt.utils.base64url_encode(json.dumps(claims).encode())
    import hashlib
    import hmac as hmac_mod

    sig = hmac_mod.new(public.encode(), header + b"." + body, hashlib.sha256).digest()
    bad["alg-confusion"] = (header + b"." + body + b"." + jwt.utils.base64url_encode(sig)).decode()
    for name, tok in bad.items():
        assert call(tok).status_code == 401, name


def test_dev_mode_turns_auth_off_loudly(make_app, caplog):
    with caplog.at_level(logging.WARNING, logger="receiver"):
        app = make_app(dev=True, webhook_token=None)
    assert any("DEV MODE" in r.getMessage() for r in caplog.records)
    client = app.test_client()
    assert client.post("/api/v1/alertmanager", data=GOOD,
                       content_type="application/json").status_code == 200
    assert client.get("/api/v1/tokens").status_code == 200


def test_production_without_a_webhook_token_refuses_to_start(make_app):
    from ticketmon.core.config import ConfigError

    with pytest.raises(ConfigError, match="webhook_token"):
        make_app(webhook_token=None)


# -- tenant isolation ----------------------------------------------------------------
@pytest.fixture
def two_tenants(make_app, database_url):
    app = make_app(database_url=database_url)
    client = app.test_client()
    for tenant in ("acme", "globex"):
        assert post_webhook(client, tenant_payload(tenant)).status_code == 200
    return app, client


def _ids(client, path, key, headers, **params):
    resp = client.get(path, headers=headers, query_string=params)
    assert resp.status_code == 200, resp.json
    return resp.json[key]


def test_tenant_isolation(two_tenants):
    app, client = two_tenants
    acme, globex, everyone = token(app, "operator", "acme"), token(app, "operator", "globex"), \
        token(app, "admin", "*")
    acme_incidents = _ids(client, "/api/v1/incidents", "incidents", acme)
    assert {i["tenant"] for i in acme_incidents} == {"acme"}
    assert {i["tenant"] for i in _ids(client, "/api/v1/incidents", "incidents", everyone)} == {
        "acme", "globex"}
    assert {a["tenant"] for a in _ids(client, "/api/v1/alerts", "alerts", acme)} == {"acme"}
    [globex_incident] = _ids(client, "/api/v1/incidents", "incidents", globex)
    gid = globex_incident["id"]
    assert client.get(f"/api/v1/incidents/{gid}", headers=acme).status_code == 404
    assert client.post(f"/api/v1/incidents/{gid}/acknowledge", headers=acme).status_code == 404
    assert client.post(f"/api/v1/incidents/{gid}/resolve", headers=acme).status_code == 404
    globex_alert = _ids(client, "/api/v1/alerts", "alerts", globex)[0]["id"]
    assert client.get(f"/api/v1/alerts/{globex_alert}", headers=acme).status_code == 404
    assert client.get("/api/v1/incidents", headers=acme,
                      query_string={"tenant": "globex"}).status_code == 403
    assert client.get(f"/api/v1/incidents/{gid}", headers=globex).json["incident"][
        "status"] == "open"
    acme_admin = token(app, "admin", "acme")
    assert client.post("/api/v1/tokens", headers=acme_admin,
                       json={"name": "x", "role": "viewer", "tenant": "globex"}).status_code == 403
    created = client.post("/api/v1/tokens", headers=acme_admin,
                          json={"name": "x", "role": "viewer"})
    assert created.json["tenant"] == "acme"


# -- incidents API -------------------------------------------------------------------
def test_acknowledge_resolve_and_invalid_transition(app, client):
    post_webhook(client, GOOD)
    op = token(app, "operator")
    ack = client.post("/api/v1/incidents/1/acknowledge", json={"comment": "looking"}, headers=op)
    assert ack.status_code == 200 and ack.json["changed"] is True
    assert ack.json["incident"]["acknowledged_by"] == "operator-acme"
    again = client.post("/api/v1/incidents/1/acknowledge", headers=op)
    assert again.status_code == 200 and again.json["changed"] is False
    assert client.post("/api/v1/incidents/1/resolve", headers=op).json["changed"] is True
    assert client.post("/api/v1/incidents/1/resolve", headers=op).json["changed"] is False
    conflict = client.post("/api/v1/incidents/1/acknowledge", headers=op)
    assert conflict.status_code == 409 and conflict.json["error"]["code"] == "conflict"
    assert client.post("/api/v1/incidents/99/resolve", headers=op).status_code == 404
    timeline = client.get("/api/v1/incidents/1", headers=op).json["incident"]["timeline"]
    assert [e["kind"] for e in timeline][-2:] == ["acknowledged", "resolved"]
    assert timeline[-2]["detail"] == {"comment": "looking"}
    audit = client.get("/api/v1/audit", headers=token(app, "admin")).json["audit"]
    assert len(audit) == 5 and audit[0]["outcome"] == "conflict"


@pytest.mark.parametrize("body,content_type,status,field", [
    (b"{", "application/json", 400, None),
    (b"[]", "application/json", 400, None),
    (b'{"comment": 5}', "application/json", 400, "comment"),
    (b'{"by": "mallory"}', "application/json", 400, "by"),
    (b'{"comment": "' + b"x" * 2001 + b'"}', "application/json", 400, "comment"),
    (b"comment=x", "application/x-www-form-urlencoded", 415, None),
])
def test_bad_acknowledge_bodies(app, client, body, content_type, status, field):
    post_webhook(client, GOOD)
    resp = client.post("/api/v1/incidents/1/acknowledge", data=body, content_type=content_type,
                       headers=token(app, "operator"))
    assert resp.status_code == status and resp.json["error"]["field"] == field
    assert count(store_of(app), "incidents", "status = 'open'") == 1


def test_filters_and_cursor_pagination(app, client):
    for i in range(5):
        body = tenant_payload(f"t{i}", "firing")
        body["commonLabels"]["service"] = "payments" if i % 2 else "checkout"
        body["alerts"][0]["labels"]["severity"] = "critical" if i < 2 else "warning"
        assert post_webhook(client, body).status_code == 200
    viewer = token(app, "admin")  # five tenants: only an admin reads them all
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        resp = client.get("/api/v1/incidents", headers=viewer, query_string=params).json
        seen += [i["id"] for i in resp["incidents"]]
        pages += 1
        cursor = resp["next_cursor"]
        if not cursor:
            break
    assert seen == [5, 4, 3, 2, 1] and pages == 3
    assert [i["id"] for i in _ids(client, "/api/v1/incidents", "incidents", viewer,
                                  service="payments")] == [4, 2]
    assert len(_ids(client, "/api/v1/incidents", "incidents", viewer,
                    severity="critical", status="open,acknowledged")) == 2
    assert _ids(client, "/api/v1/incidents", "incidents", viewer, status="resolved") == []
    alerts = _ids(client, "/api/v1/alerts", "alerts", viewer, label="tenant=t3")
    assert [a["labels"]["tenant"] for a in alerts] == ["t3"]
    assert _ids(client, "/api/v1/alerts", "alerts", viewer, status="resolved") == []
    one = client.get(f"/api/v1/alerts/{alerts[0]['id']}", headers=viewer).json["alert"]
    assert [h["kind"] for h in one["history"]] == ["alert_firing"] and one["incidents"] == [4]
    for ts in (one["starts_at"], one["received_at"]):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", ts)


@pytest.mark.parametrize("path,params,field", [
    ("/api/v1/incidents", {"limit": "0"}, "limit"),
    ("/api/v1/incidents", {"limit": "100000"}, "limit"),
    ("/api/v1/incidents", {"limit": "ten"}, "limit"),
    ("/api/v1/incidents", {"cursor": "abc"}, "cursor"),
    ("/api/v1/incidents", {"status": "bogus"}, "status"),
    ("/api/v1/incidents", {"stauts": "open"}, "stauts"),
    ("/api/v1/alerts", {"status": "pending"}, "status"),
    ("/api/v1/alerts", {"label": "novalue"}, "label"),
    ("/api/v1/alerts", {"fingerprint": "'; drop table alerts"}, "fingerprint"),
    ("/api/v1/audit", {"cursor": "-1"}, "cursor"),
])
def test_bad_query_strings_are_400_naming_the_parameter(app, client, path, params, field):
    resp = client.get(path, query_string=params, headers=token(app, "admin"))
    assert resp.status_code == 400 and resp.json["error"]["field"] == field


def test_unknown_routes_and_methods_answer_json(app, client):
    missing = client.get("/api/v1/nothing")
    assert missing.status_code == 404 and missing.json["error"]["code"] == "not_found"
    wrong = client.get("/api/v1/alertmanager")
    assert wrong.status_code == 405 and "error" in wrong.json
    assert client.get("/api/v1/incidents/abc", headers=token(app, "viewer")).status_code == 404


# -- OpenAPI and metrics -------------------------------------------------------------
def test_openapi_describes_every_route_and_nothing_else(app, client):
    doc = client.get("/openapi.json").json
    assert doc["openapi"].startswith("3.") and doc["paths"].keys() >= DOCUMENT["paths"].keys()
    routes = {}
    for rule in app.url_map.iter_rules():
        # the console's pages (/ui/) are HTML for people, not part of the API
        if rule.endpoint == "static" or rule.endpoint.startswith("console."):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        routes.setdefault(path, set()).update(
            m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    documented = {path: set(ops) for path, ops in doc["paths"].items()}
    assert routes == documented


def _sample(text: str, name: str, **labels) -> float:
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            if line.split("{")[0].split(" ")[0] == name:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_alerts_duplicates_and_open_incidents(app, client):
    post_webhook(client, GOOD)
    post_webhook(client, GOOD)
    post_webhook(client, payload_bytes("firing"), token="wrong-token-0123456789")
    text = client.get("/metrics").data.decode()
    assert _sample(text, "ticketmon_receiver_alerts_received_total", status="firing") == 6
    assert _sample(text, "ticketmon_receiver_alerts_duplicate_total") == 3
    assert _sample(text, "ticketmon_receiver_http_requests_total",
                   route="/api/v1/alertmanager", code="200") == 2
    assert _sample(text, "ticketmon_receiver_http_requests_total",
                   route="/api/v1/alertmanager", code="401") == 1
    assert _sample(text, "ticketmon_receiver_incidents_open", severity="warning",
                   tenant="acme") == 1
    assert _sample(text, "ticketmon_receiver_store_duration_seconds_count") >= 2
    # the two accepted posts, arrival to commit (the refused one never reaches the store)
    assert _sample(text, "ticketmon_receiver_webhook_ingest_duration_seconds_count") == 2
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True)
    assert check.returncode == 0 and check.stdout + check.stderr == "", check.stdout


def test_metrics_can_be_guarded(make_app):
    app = make_app(metrics_guard={"basic_auth_username": "prom",
                                  "basic_auth_password": "scrape-secret"})
    client = app.test_client()
    assert client.get("/metrics").status_code == 401
    ok = client.get("/metrics", headers={"Authorization": "Basic cHJvbTpzY3JhcGUtc2VjcmV0"})
    assert ok.status_code == 200 and b"ticketmon_receiver_http_requests_total" in ok.data


def test_request_id_is_echoed_and_generated(client):
    assert client.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers[
        "X-Request-Id"] == "abc-123"
    assert len(client.get("/healthz").headers["X-Request-Id"]) == 32


def test_the_webhook_answers_like_every_other_route(make_app):
    """Its POST is plain WSGI in front of Flask (receiver/api/webhook.py): the same request
    id, HSTS over https, request and auth-failure counts, OPTIONS, and a 500 as JSON."""
    app = make_app()
    client = app.test_client()
    ok = post_webhook(client, payload("firing"), **{"X-Request-Id": "am-7"})
    assert ok.status_code == 200 and ok.headers["X-Request-Id"] == "am-7"
    assert len(post_webhook(client, payload("firing"), **{"X-Request-Id": "a b"}).headers[
        "X-Request-Id"]) == 32
    https = client.post("/api/v1/alertmanager", data=payload_bytes("firing"),
                        base_url="https://receiver.example", headers={
                            "Content-Type": "application/json",
                            "Authorization": f"Bearer {WEBHOOK_TOKEN}"})
    assert https.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert post_webhook(client, payload("firing"), token="wrong-0123456789").status_code == 401
    options = client.options("/api/v1/alertmanager")
    assert options.status_code == 200 and "POST" in options.headers["Allow"]
    store = store_of(app)
    store.ingest = lambda _payload: 1 / 0
    broken = post_webhook(client, payload("firing"))
    assert broken.status_code == 500 and broken.json["error"]["code"] == "internal_error"
    metrics = client.get("/metrics").text
    for code, answered in (("200", 4), ("401", 1), ("500", 1)):
        assert (f'ticketmon_receiver_http_requests_total{{code="{code}",'
                f'route="/api/v1/alertmanager"}} {answered}.0') in metrics
    assert 'ticketmon_receiver_auth_failures_total{reason="unknown_token"} 1.0' in metrics
