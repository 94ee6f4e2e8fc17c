"""Dead letters and notifications through the API, one-click ack links, receiver /metrics."""

from __future__ import annotations

import json
import subprocess

import escalation_helpers
import pytest
import sqlalchemy as sa
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
        api_tokens=[{"name": "v", "role": "viewer", "tenant": "acme", "token": VIEWER},
                    {"name": "o", "role": "operator", "tenant": "acme", "token": OPERATOR}]))
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
    assert done.json == {"incident_id": incident, "status": "acknowledged", "changed": True,
                         "silenced_until": None}  # acknowledging never silences
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


def test_ack_page_offers_a_silence_after_acknowledging(app_and_worker, sink):
    app, store, worker = app_and_worker
    client = app.test_client()
    incident = open_incident(store)
    drain(worker)
    path = sink.received("/chat")[0].json()["links"]["ack"].removeprefix(
        "http://127.0.0.1:10190")
    page = client.post(path)
    assert b"Acknowledged" in page.data and b"name='silence'" in page.data
    done = client.post(path, data={"silence": "4h"}, headers={"Accept": "application/json"})
    assert done.status_code == 200 and done.json["silenced_until"]
    assert client.post(path, data={"silence": "3y"}).status_code == 400
    got = client.get(f"/api/v1/incidents/{incident}", headers=auth(VIEWER)).json["incident"]
    assert got["status"] == "acknowledged" and got["silenced_by"] == "ack-link:chat"
    assert [e["kind"] for e in got["timeline"]][-2:] == ["acknowledged", "silenced"]


@pytest.mark.parametrize("body, field", [
    ({}, "duration"), ({"duration": "soon"}, "duration"), ({"duration": 10}, "duration"),
    ({"duration": "48h"}, "duration"), ({"duration": True}, "duration"),
    ({"duration": "1h", "colour": "red"}, "colour"), ({"duration": [1]}, "duration"),
])
def test_silence_api_refuses_bad_durations(app_and_worker, body, field):
    app, store, _ = app_and_worker
    incident = open_incident(store)
    resp = app.test_client().post(f"/api/v1/incidents/{incident}/silence", json=body,
                                  headers=auth(OPERATOR))
    assert resp.status_code == 400 and resp.json["error"]["field"] == field


def test_silence_api_roles_and_audit(app_and_worker):
    app, store, _ = app_and_worker
    client = app.test_client()
    incident = open_incident(store)
    url = f"/api/v1/incidents/{incident}/silence"
    assert client.post(url, json={"duration": "1h"}, headers=auth(VIEWER)).status_code == 403
    done = client.post(url, json={"duration": "90m", "comment": "db failover"},
                       headers=auth(OPERATOR))
    assert done.status_code == 200 and done.json["changed"] is True
    assert done.json["incident"]["silenced_until"]
    lifted = client.delete(url, headers=auth(OPERATOR))
    assert lifted.status_code == 200 and lifted.json["changed"] is True
    assert client.post("/api/v1/incidents/999999/silence", json={"duration": "1h"},
                       headers=auth(OPERATOR)).status_code == 404
    with store.engine.connect() as conn:
        audit = conn.execute(sa.text("SELECT action, outcome, comment FROM audit_log "
                                     "ORDER BY id")).all()
    assert [tuple(a) for a in audit][-2:] == [("silence", "changed", "db failover"),
                                               ("unsilence", "changed", None)]
