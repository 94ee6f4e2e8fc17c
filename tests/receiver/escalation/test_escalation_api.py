"""Dead letters and notifications through the API, one-click ack links, receiver /metrics."""

from __future__ import annotations

import json
import subprocess

import escalation_helpers
import pytest
from escalation_helpers import write_policies
from test_escalation_flow import SECRET, drain, make_worker, open_incident

from receiver.app import create_app
from receiver.settings import ReceiverSettings
from receiver.store import migrate

sink = escalation_helpers.sink
VIEWER, OPERATOR = "viewer-token-0123456789abcdef", "operator-token-0123456789abcdef"
ACK_SECRET = "a" * 32  # make_worker signs with this


@pytest.fixture
def app_and_worker(sqlite_url, sink, tmp_path, monkeypatch):
    monkeypatch.setenv("TICKETMON_ACK_LINK_SECRET", ACK_SECRET)
    migrate.upgrade(sqlite_url)
    app = create_app(ReceiverSettings(
        database_url=sqlite_url, webhook_token="w" * 32,
        api_tokens=[{"name": "v", "role": "viewer", "token": VIEWER},
                    {"name": "o", "role": "operator", "token": OPERATOR}]))
    store = app.extensions["ticketmon_receiver"].store
    worker = make_worker(store, sink, write_policies(tmp_path / "p.yaml", [("0s", ["chat"])]))
    yield app, store, worker
    store.dispose()


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_dead_letters_are_listed_retried_and_counted(app_and_worker, sink):
    app, store, worker = app_and_worker
    client = app.test_client()
    incident = open_incident(store)
    sink.fail_next(410)
    drain(worker)
    resp = client.get("/api/v1/dead-letters", headers=auth(VIEWER))
    assert resp.status_code == 200
    [dead] = resp.json["notifications"]
    assert (dead["incident_id"], dead["channel"], dead["last_error"]) == (incident, "chat",
                                                                          "HTTP 410")
    assert SECRET not in resp.get_data(as_text=True)
    notifications = client.get(f"/api/v1/incidents/{incident}/notifications?state=dead",
                               headers=auth(VIEWER)).json["notifications"]
    assert [n["id"] for n in notifications] == [dead["id"]]

    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'ticketmon_receiver_dead_letters{channel="chat"} 1.0' in metrics
    check = subprocess.run(["promtool", "check", "metrics"], input=metrics, text=True,
                           capture_output=True)
    assert check.returncode == 0 and check.stdout + check.stderr == "", check.stderr

    assert client.post(f"/api/v1/dead-letters/{dead['id']}/retry",
                       headers=auth(VIEWER)).status_code == 403
    assert client.post("/api/v1/dead-letters/999999/retry",
                       headers=auth(OPERATOR)).status_code == 404
    assert client.post(f"/api/v1/dead-letters/{dead['id']}/retry",
                       headers=auth(OPERATOR)).status_code == 200
    drain(worker)
    assert len(sink.received("/chat")) == 1
    assert client.get("/api/v1/dead-letters", headers=auth(VIEWER)).json["notifications"] == []


@pytest.mark.parametrize("query", ["?limit=0", "?limit=x", "?cursor=abc", "?colour=red"])
def test_bad_query_strings_are_400_naming_the_parameter(app_and_worker, query):
    app, _, _ = app_and_worker
    resp = app.test_client().get(f"/api/v1/dead-letters{query}", headers=auth(VIEWER))
    assert resp.status_code == 400 and resp.json["error"]["field"] in query


def test_no_token_no_dead_letters(app_and_worker):
    app, _, _ = app_and_worker
    assert app.test_client().get("/api/v1/dead-letters").status_code == 401


def test_one_click_ack_link(app_and_worker, sink):
    app, store, worker = app_and_worker
    client = app.test_client()
    incident = open_incident(store)
    drain(worker)
    link = sink.received("/chat")[0].json()["links"]["ack"]
    path = link.removeprefix("http://127.0.0.1:10190")
    page = client.get(path)
    assert page.status_code == 200 and b"<form id='ack' method='post'" in page.data
    # a GET alone (a chat preview fetching the link) changes nothing
    assert client.get(f"/api/v1/incidents/{incident}", headers=auth(VIEWER)) \
        .json["incident"]["status"] == "open"
    done = client.post(path, headers={"Accept": "application/json"})
    assert done.json == {"incident_id": incident, "status": "acknowledged", "changed": True}
    got = client.get(f"/api/v1/incidents/{incident}", headers=auth(VIEWER)).json["incident"]
    assert got["acknowledged_by"] == "ack-link:chat"
    again = client.post(path, headers={"Accept": "application/json"})
    assert again.json["changed"] is False
    forged = path[:-3] + ("xyz" if not path.endswith("xyz") else "abc")
    assert client.post(forged).status_code == 400
    assert client.get("/ack/" + "x" * 600).status_code == 400
    drain(worker)
    ack = [m.json() for m in sink.received("/chat") if m.json()["action"] == "acknowledge"]
    assert ack and ack[0]["actor"] == "ack-link:chat"


def test_ack_links_off_without_a_secret(app_and_worker, monkeypatch):
    app, _, _ = app_and_worker
    monkeypatch.delenv("TICKETMON_ACK_LINK_SECRET")
    resp = app.test_client().get("/ack/anything")
    assert resp.status_code == 404 and json.loads(resp.data)["error"]["code"] == "not_found"
