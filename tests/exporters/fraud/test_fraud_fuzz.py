"""The fraud check service fuzzed against its own OpenAPI document (issue #12), on a
real database; the document lists every route, and each operation its credentials."""

from __future__ import annotations

import re

from support.fuzz import documented_methods, fuzz, route_methods

TOKEN = "tm_checkout_token_0123456789"  # conftest's operator and viewer tokens
VIEWER = "tm_grafana_viewer_0123456789"


def test_fuzz_every_operation(fraud_app):
    report = fuzz(fraud_app, lambda path: {"Authorization": f"Bearer {TOKEN}"},
                  max_examples=40, budget_seconds=120)
    print(f"fraud service: {report}")
    assert not report.failures, "\n\n".join(report.failures)
    assert not report.skipped


def test_the_document_lists_every_route_and_nothing_else(fraud_app):
    doc = fraud_app.test_client().get("/openapi.json").json
    assert doc["openapi"] == "3.1.0"
    assert route_methods(fraud_app) == documented_methods(doc)


def test_every_operation_refuses_missing_wrong_and_underprivileged_credentials(fraud_app):
    client = fraud_app.test_client()
    doc = client.get("/openapi.json").json
    secured = [(method, path, re.findall(r"\((viewer|operator|admin)\)", op["summary"]))
               for path, item in doc["paths"].items() for method, op in item.items()
               if op.get("security", doc["security"])]
    assert {path for _, path, _ in secured} == {"/api/v1/fraud/check", "/api/v1/fraud/events"}
    for method, path, [least] in secured:
        for headers in ({}, {"Authorization": "Bearer tm_unknown-token-000000"},
                        {"Authorization": "Basic YWRtaW46YWRtaW4="}):
            resp = client.open(path, method=method.upper(), headers=headers, json={})
            assert resp.status_code == 401, (method, path, headers)
        viewer = {"Authorization": f"Bearer {VIEWER}"}
        resp = client.open(path, method=method.upper(), headers=viewer, json={})
        assert resp.status_code == (403 if least != "viewer" else 200), (method, path)


def test_405_says_which_methods_are_allowed(fraud_app):
    resp = fraud_app.test_client().get("/api/v1/fraud/check")
    assert resp.status_code == 405 and "POST" in resp.headers["Allow"].split(", ")


def test_nul_in_ids_is_refused_before_the_recorder(client, fraud_app):
    """One NUL would fail the recorder's whole batch on PostgreSQL."""
    for field in ("user_id", "event_id", "user_agent"):
        body = {"user_id": "u1", "event_id": "e1", "quantity": 1, field: "a\x00b"}
        resp = client.post("/api/v1/fraud/check", json=body)
        assert resp.status_code == 400
        assert [f["field"] for f in resp.json["fields"]] == [field]
    fraud_app.extensions["fraud"].recorder.flush()
    assert fraud_app.extensions["fraud"].recorder.written == 0


def test_events_refuse_unknown_parameters_and_bad_aliases(client):
    assert client.get("/api/v1/fraud/events?min_levle=low").status_code == 400
    assert client.get("/api/v1/fraud/events?since=1&from=-5").status_code == 400
    assert client.get("/api/v1/fraud/events?from=1&to=2").status_code == 200
