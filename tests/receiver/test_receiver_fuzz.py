"""The receiver fuzzed against its own OpenAPI document (issue #12), on a real database
with incidents in it; the document lists every route and every operation enforces its
credentials and role."""

from __future__ import annotations

import re

import pytest
from support.fuzz import documented_methods, fuzz, route_methods
from support.receiver import WEBHOOK_TOKEN, payload, post_webhook

from receiver.api.openapi import document

# the silence duration "…h" is valid in form but over silence_max in value
SEMANTIC = ("POST /api/v1/incidents/{incident_id}/silence",)
ROLES = ("viewer", "operator", "admin")
UNFUZZED = {"GET /api/v1/stream": (
    "a never-ending text/event-stream, served only by threaded servers (in process it is "
    "the documented 503 of a sync worker); tests/receiver/test_stream.py drives it on "
    "real servers: bad Last-Event-ID, unknown parameters, credentials, limits")}


def _app(make_app, database_url: str | None = None):
    app = make_app(database_url=database_url, rate_limit={"requests_per_second": 0})
    client = app.test_client()
    for name in ("group-3-firing", "two-groups-payments", "two-groups-inventory"):
        assert post_webhook(client, payload(name)).status_code == 200
    store = app.extensions["ticketmon_receiver"].store
    _, secret = store.create_token("fuzz", "admin", "*")
    return app, {"Authorization": f"Bearer {secret}"}


def _headers(admin: dict):
    webhook = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
    return lambda path: webhook if path == "/api/v1/alertmanager" else admin


def test_fuzz_every_operation_on_sqlite(make_app):
    app, admin = _app(make_app)
    report = fuzz(app, _headers(admin), max_examples=25, budget_seconds=240,
                  semantic_bounds=SEMANTIC, unfuzzed=UNFUZZED)
    print(f"receiver on SQLite: {report}")
    assert not report.failures, "\n\n".join(report.failures)
    assert report.operations == sum(len(m) for m in document()["paths"].values()) - 1
    assert not [s for s in report.skipped if "[positive]" in s], report.skipped


def test_fuzz_a_smaller_run_on_postgresql(make_app, postgres_url):
    app, admin = _app(make_app, postgres_url)
    report = fuzz(app, _headers(admin), max_examples=6, budget_seconds=120,
                  semantic_bounds=SEMANTIC, unfuzzed=UNFUZZED)
    print(f"receiver on PostgreSQL: {report}")
    assert not report.failures, "\n\n".join(report.failures)


def test_the_document_lists_every_route_and_nothing_else(make_app):
    app = make_app()
    assert route_methods(app) == documented_methods(app.test_client().get("/openapi.json").json)


def _secured(doc: dict):
    """(method, path, least role) of every operation that needs credentials."""
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if op.get("security", doc["security"]) and path != "/api/v1/alertmanager":
                roles = re.findall(r"\((viewer|operator|admin)\)", op["summary"])
                assert len(roles) == 1, f"{method} {path}: name the role in the summary"
                yield method, re.sub(r"\{\w+\}", "1", path), roles[0]


def test_every_operation_refuses_missing_wrong_and_underprivileged_credentials(make_app):
    app, _ = _app(make_app)
    client = app.test_client()
    store = app.extensions["ticketmon_receiver"].store
    scope = {role: "*" if role == "admin" else "acme" for role in ROLES}  # '*' is admin-only
    tokens = {role: {"Authorization": f"Bearer {store.create_token(role, role, scope[role])[1]}"}
              for role in ROLES}
    operations = list(_secured(client.get("/openapi.json").json))
    assert len(operations) >= 15
    for method, path, least in operations:
        for headers in ({}, {"Authorization": "Bearer tm_unknown-token-000000"},
                        {"Authorization": "Basic YWRtaW46YWRtaW4="},
                        {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}):
            resp = client.open(path, method=method.upper(), headers=headers, json={})
            assert resp.status_code == 401, (method, path, headers, resp.json)
            assert resp.headers["WWW-Authenticate"] == "Bearer"
        for role in ROLES[:ROLES.index(least)]:
            resp = client.open(path, method=method.upper(), headers=tokens[role], json={})
            assert resp.status_code == 403, (method, path, role, resp.json)
    # the webhook takes only its own token
    for headers in ({}, tokens["admin"]):
        resp = client.post("/api/v1/alertmanager", headers=headers, json=payload("firing"))
        assert resp.status_code == 401


@pytest.fixture(autouse=True)
def _quiet_webhook_refusals(caplog):
    """Negative webhook posts are refused and logged by design; keep the output short."""
    caplog.set_level("ERROR", logger="receiver.webhook")
