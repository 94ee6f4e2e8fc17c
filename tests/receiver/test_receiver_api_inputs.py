"""Faults the fuzzer found (issue #12), one regression test each: text the database
cannot store, ids past BIGINT, the document disagreeing with the server, a sub-resource
of a missing incident, and 405 without Allow. On SQLite and PostgreSQL where the
database is involved."""

from __future__ import annotations

import copy

import pytest
from support.receiver import payload, post_webhook

from receiver.api.openapi import document


def _token(app, role: str = "admin", tenant: str = "*") -> dict:
    store = app.extensions["ticketmon_receiver"].store
    _, secret = store.create_token(f"{role}-{tenant}", role, tenant)
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def db_app(make_app, database_url):
    """An app with one incident of tenant acme, on each backend."""
    app = make_app(database_url=database_url)
    body = copy.deepcopy(payload("group-3-firing"))
    body["commonLabels"]["tenant"] = "acme"
    for alert in body["alerts"]:
        alert["labels"]["tenant"] = "acme"
    assert post_webhook(app.test_client(), body).status_code == 200
    return app


# every read filter reaches the database: a NUL there was a 500 on PostgreSQL
NUL_QUERIES = [
    ("/api/v1/incidents", "service=a%00b", "service"),
    ("/api/v1/incidents", "group_key=%00", "group_key"),
    ("/api/v1/incidents", "tenant=%00", "tenant"),
    ("/api/v1/incidents", "severity=%00", "severity"),
    ("/api/v1/alerts", "label=a%3D%00", "label"),
    ("/api/v1/alerts", "label=%00%3Db", "label"),
    ("/api/v1/incidents", "cursor=%00", "cursor"),
    ("/api/v1/dead-letters", "limit=%00", "limit"),
    ("/api/v1/incidents", "limit=%C2%B2", "limit"),  # '²' is isdigit() but not int()
    ("/api/v1/audit", "cursor=%D9%A1", "cursor"),  # Arabic-Indic one: ASCII digits only
    ("/api/v1/alerts", "fingerprint=%C3%A9", "fingerprint"),
]


@pytest.mark.parametrize("path,query,field", NUL_QUERIES)
def test_text_the_database_cannot_store_is_400_naming_the_parameter(db_app, path, query,
                                                                     field):
    resp = db_app.test_client().get(f"{path}?{query}", headers=_token(db_app))
    assert resp.status_code == 400, resp.json
    assert resp.json["error"]["field"] == field


@pytest.mark.parametrize("path,body,field", [
    ("/api/v1/incidents/1/acknowledge", '{"comment": "a\\u0000b"}', "comment"),
    ("/api/v1/incidents/1/resolve", '{"comment": "\\ud800"}', "comment"),
    ("/api/v1/incidents/1/silence", '{"duration": "1h", "comment": "\\udfff x"}', "comment"),
    ("/api/v1/tokens", '{"name": "a\\u0000", "role": "viewer"}', "name"),
    ("/api/v1/tokens", '{"name": "n", "role": "viewer", "tenant": "\\ud83d"}', "tenant"),
])
def test_bodies_with_nul_or_lone_surrogates_are_400_naming_the_field(db_app, path, body,
                                                                     field):
    resp = db_app.test_client().post(path, data=body, content_type="application/json",
                                     headers=_token(db_app))
    assert resp.status_code == 400, resp.json
    assert resp.json["error"]["field"] == field
    # nothing was written: the incident is still open and no token was added
    incident = db_app.test_client().get("/api/v1/incidents/1", headers=_token(db_app))
    assert incident.json["incident"]["status"] == "open"


@pytest.mark.parametrize("path", ["/api/v1/incidents/99999999999999999999",
                                  "/api/v1/alerts/9223372036854775808",
                                  "/api/v1/incidents/1000000000000000000/notifications"])
def test_ids_past_bigint_are_404_not_an_overflow(db_app, path):
    resp = db_app.test_client().get(path, headers=_token(db_app))
    assert resp.status_code == 404, resp.json
    assert db_app.test_client().post(path + "/acknowledge",
                                     headers=_token(db_app)).status_code == 404


def test_notifications_of_a_missing_or_out_of_scope_incident_are_404(db_app):
    client = db_app.test_client()
    acme, globex = _token(db_app, "viewer", "acme"), _token(db_app, "viewer", "globex")
    assert client.get("/api/v1/incidents/1/notifications", headers=acme).status_code == 200
    for headers, path in ((globex, "/api/v1/incidents/1/notifications"),
                          (acme, "/api/v1/incidents/424242/notifications")):
        resp = client.get(path, headers=headers)
        assert resp.status_code == 404, resp.json
        assert resp.json["error"]["code"] == "not_found"
    # the same as the incident itself answers
    assert client.get("/api/v1/incidents/1", headers=globex).status_code == 404


def test_405_says_which_methods_are_allowed(make_app):
    client = make_app().test_client()
    resp = client.get("/api/v1/alertmanager")
    assert resp.status_code == 405 and resp.json["error"]["code"] == "method_not_allowed"
    assert "POST" in resp.headers["Allow"].split(", ")
    resp = client.put("/api/v1/tokens")
    assert set(resp.headers["Allow"].split(", ")) >= {"GET", "POST"}


def _param(doc: dict, path: str, method: str, name: str) -> dict:
    [param] = [p for p in doc["paths"][path][method]["parameters"] if p["name"] == name]
    return param["schema"]


def test_document_and_server_agree_on_what_the_fuzzer_found(make_app):
    """Each pair: the document's word, then the server's answer to the same request."""
    app = make_app(page_limit_max=300)
    client, admin = app.test_client(), _token(app)
    post_webhook(client, payload("group-3-firing"))
    doc = client.get("/openapi.json").json
    limit = _param(doc, "/api/v1/incidents", "get", "limit")
    assert (limit["minimum"], limit["maximum"]) == (1, 300)  # the settings, not a constant
    assert client.get("/api/v1/incidents?limit=0", headers=admin).status_code == 400
    assert client.get("/api/v1/incidents?limit=300", headers=admin).status_code == 200
    assert client.get("/api/v1/incidents?limit=301", headers=admin).status_code == 400

    name = doc["paths"]["/api/v1/tokens"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]["properties"]["name"]
    assert name["minLength"] == 1
    assert client.post("/api/v1/tokens", json={"name": "", "role": "viewer"},
                       headers=admin).status_code == 400

    label = _param(doc, "/api/v1/alerts", "get", "label")["items"]
    assert label["pattern"].startswith("^[^=")  # `label=` alone does not match
    assert client.get("/api/v1/alerts?label=", headers=admin).status_code == 400

    comment = doc["paths"]["/api/v1/incidents/{incident_id}/resolve"]["post"][
        "requestBody"]["content"]["application/json"]["schema"]["properties"]["comment"]
    assert comment["nullable"] is True
    resolved = client.post("/api/v1/incidents/1/resolve", json={"comment": None},
                           headers=admin)
    assert resolved.status_code == 200, resolved.json


def test_every_api_operation_documents_the_shared_error_answers():
    for path, item in document()["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            if path.startswith("/api/v1/") and path != "/api/v1/alertmanager":
                assert {"400", "401", "403", "429", "503"} <= codes, (method, path)
            if "{" in path and path.startswith("/api/"):
                assert "404" in codes, (method, path)
