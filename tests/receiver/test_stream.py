"""GET /api/v1/stream on real servers: the receiver (gunicorn sync, 2 workers) takes the
webhook and the actions, the stream server (gunicorn gthread) streams; nothing is shared
between them but the database, on SQLite and on PostgreSQL (an ordinary role, so
row-level security binds the feed too)."""

from __future__ import annotations

import importlib.machinery
import socket
import sys
import time
import types
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import yaml
from support.promtool import promtool_check_metrics
from support.receiver import WEBHOOK_TOKEN, tenant_payload
from support.sse import SseClient
from support.waiting import wait_for

from receiver.store import Store, migrate
from receiver.stream import feed
from receiver.stream.api import SESSION_MODULE
from ticketmon.core.auth import Principal
from ticketmon.servers.process import ManagedProcess, free_port

GUNICORN = str(Path(sys.executable).parent / "gunicorn")
TOKENS = {  # name: (role, tenant)
    "admin": ("admin", "*"), "viewer-acme": ("viewer", "acme"),
    "operator-acme": ("operator", "acme"), "viewer-globex": ("viewer", "globex")}
LIVE = 5.0  # seconds a change may take to reach a client here ("a couple of seconds",
# with room for a loaded CI box; bench/stream_latency.py measures the real figure)


def auth(name: str) -> dict:
    return {"Authorization": f"Bearer tm_test_{name}_0123456789abcdef"}


@dataclass
class Servers:
    receiver: str
    stream: str
    store: Store

    def post(self, body: dict) -> dict:
        answer = requests.post(f"{self.receiver}/api/v1/alertmanager", json=body, timeout=30,
                               headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"})
        assert answer.status_code == 200, answer.text
        return answer.json()

    def act(self, incident: int, action: str, who: str = "operator-acme") -> None:
        answer = requests.post(f"{self.receiver}/api/v1/incidents/{incident}/{action}",
                               headers=auth(who), timeout=30)
        assert answer.status_code == 200, answer.text

    def open(self, who: str = "admin", query: str = "", **headers) -> SseClient:
        return SseClient(f"{self.stream}/api/v1/stream{query}", {**auth(who), **headers})

    def metric(self, line: str) -> float:
        text = requests.get(f"{self.stream}/metrics", timeout=10).text
        values = dict(row.rsplit(" ", 1) for row in text.splitlines()
                      if row and not row.startswith("#"))
        return float(values.get(line, "nan"))


@pytest.fixture(params=["sqlite", "postgresql"])
def backend_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'receiver.db'}"
    return request.getfixturevalue("app_role_url")


@pytest.fixture
def servers(tmp_path):
    """Factory: the receiver and the stream server over one database."""
    procs: list[ManagedProcess] = []
    stores: list[Store] = []

    def start(url: str | None = None, **stream) -> Servers:
        url = url or f"sqlite:///{tmp_path / 'receiver.db'}"
        migrate.upgrade(url)
        ports = free_port(), free_port()
        config = tmp_path / f"receiver-{ports[0]}.yaml"
        config.write_text(yaml.safe_dump({
            "database_url": url, "webhook_token": WEBHOOK_TOKEN, "log_level": "warning",
            "stream_url": f"http://127.0.0.1:{ports[1]}/api/v1/stream",
            "api_tokens": [{"name": n, "role": r, "tenant": t, "token": auth(n)[
                "Authorization"][7:]} for n, (r, t) in TOKENS.items()],
            "rate_limit": {"requests_per_second": 0}, "stream": stream}))
        for name, app, conf, port in (
                ("receiver", "receiver.wsgi:app", "receiver.gunicorn_conf", ports[0]),
                ("stream", "receiver.stream.wsgi:app", "receiver.stream.gunicorn_conf",
                 ports[1])):
            proc = ManagedProcess(
                name, [GUNICORN, "-c", f"python:{conf}", "-b", f"127.0.0.1:{port}",
                       "--no-control-socket", app], tmp_path / f"{name}-{port}.log",
                env={"TICKETMON_CONFIG": str(config),
                     "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / f"metrics-{port}")})
            procs.append(proc)
            proc.wait_http(f"http://127.0.0.1:{port}/readyz")
        stores.append(Store(url))
        return Servers(f"http://127.0.0.1:{ports[0]}", f"http://127.0.0.1:{ports[1]}",
                       stores[-1])

    yield start
    for proc in procs:
        proc.stop()
    for store in stores:
        store.dispose()


def fresh(client: SseClient) -> int:
    """A fresh stream starts with the retry hint and the id a reconnect resumes from."""
    retry = client.next_block(LIVE)
    assert retry.fields == {"retry": "3000"}
    start = client.next_block(LIVE)
    assert set(start.fields) == {"id"} and start.event is None
    return start.id


def test_a_change_made_by_another_process_reaches_the_client_live(servers, backend_url):
    s = servers(backend_url)
    client = s.open()
    assert client.status == 200
    assert client.response.getheader("Content-Type") == "text/event-stream"
    assert client.response.getheader("Cache-Control") == "no-store"
    start = fresh(client)

    [opened] = s.post(tenant_payload("acme"))["incidents_opened"]
    [event] = client.events(1, LIVE)
    assert event.data["id"] == opened and event.id > start
    assert {k: event.data[k] for k in ("tenant", "status", "severity", "change")} == {
        "tenant": "acme", "status": "open", "severity": "warning", "change": "opened"}

    s.act(opened, "acknowledge")
    [acked] = client.events(1, LIVE)
    assert acked.id > event.id
    assert (acked.data["change"], acked.data["status"], acked.data["actor"]) == (
        "acknowledged", "acknowledged", "operator-acme")
    client.close()

    # the receiver's sync workers never hold a stream: they name the stream server
    answer = requests.get(f"{s.receiver}/api/v1/stream", headers=auth("admin"), timeout=10)
    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "streams_not_served_here"
    assert s.stream in answer.json()["error"]["message"]


def test_each_tenant_sees_only_its_own_incidents(servers, backend_url):
    s = servers(backend_url)
    clients = {who: s.open(who) for who in ("viewer-acme", "viewer-globex", "admin")}
    for client in clients.values():
        fresh(client)
    [acme] = s.post(tenant_payload("acme"))["incidents_opened"]
    [globex] = s.post(tenant_payload("globex"))["incidents_opened"]

    assert {e.data["id"] for e in clients["admin"].events(2, LIVE)} == {acme, globex}
    assert [e.data["id"] for e in clients["viewer-acme"].events(1, LIVE)] == [acme]
    assert [e.data["id"] for e in clients["viewer-globex"].events(1, LIVE)] == [globex]
    assert clients["viewer-acme"].quiet(1.0) and clients["viewer-globex"].quiet(0.1)

    # and a replay keeps to the tenant too
    replay = s.open("viewer-globex", **{"Last-Event-ID": "0"})
    assert [e.data["id"] for e in replay.events(1, LIVE)] == [globex]
    assert replay.quiet(1.0)


def positions_after(store: Store, after: int) -> list[int]:
    with store.engine.connect() as conn:
        return [c.position for c in feed.read_after(conn, after, 1000)]


def test_last_event_id_replays_exactly_what_was_missed(servers, backend_url):
    s = servers(backend_url)
    client = s.open()
    fresh(client)
    [first] = s.post(tenant_payload("acme"))["incidents_opened"]
    [seen] = client.events(1, LIVE)
    client.close()

    [second] = s.post(tenant_payload("globex"))["incidents_opened"]  # missed meanwhile
    s.act(first, "acknowledge")
    s.act(first, "resolve")
    missed = wait_for(lambda: len(positions_after(s.store, seen.id)) == 3 and
                      positions_after(s.store, seen.id), LIVE, "the three changes numbered")

    for resumed in (s.open(**{"Last-Event-ID": str(seen.id)}),
                    s.open(query=f"?last_event_id={seen.id}"),
                    # a browser reconnecting keeps the URL it started with: the header wins
                    s.open(query="?last_event_id=0", **{"Last-Event-ID": str(seen.id)})):
        assert resumed.next_block(LIVE).fields == {"retry": "3000"}
        events = resumed.events(3, LIVE)
        assert [e.id for e in events] == missed
        assert [(e.data["id"], e.data["change"]) for e in events] == [
            (second, "opened"), (first, "acknowledged"), (first, "resolved")]
        assert resumed.quiet(1.0)  # exactly those: nothing twice, nothing more
        resumed.close()


def test_a_resume_point_the_feed_no_longer_holds_says_reset(servers):
    s = servers()
    s.post(tenant_payload("acme"))
    client = s.open(**{"Last-Event-ID": "999999"})
    client.next_block(LIVE)
    reset = client.next_block(LIVE)
    assert reset.event == "reset" and "ahead of this feed" in reset.data["reason"]
    assert reset.id == reset.data["head"]


def test_heartbeats_keep_an_idle_stream_open(servers):
    s = servers(heartbeat="1s")
    client = s.open("viewer-acme")
    fresh(client)
    beats = [client.next_block(3.0) for _ in range(2)]
    assert all(b.comments == ["keepalive"] and not b.fields for b in beats)


def test_a_client_that_stops_reading_is_dropped_and_others_keep_up(servers):
    """One client reads everything; one never reads (a tiny receive window). Once the
    kernel's buffers hold what they can, the server's queue for the stalled client fills
    and it is dropped; the other gets every change, in order, with no gap."""
    s = servers(buffer=2000, write_timeout="1s")
    reader = s.open()
    start = fresh(reader)
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", int(s.stream.rsplit(":", 1)[1])))
    token = auth("admin")["Authorization"]
    stalled.sendall(f"GET /api/v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
                    "\r\n".encode())
    wait_for(lambda: s.metric("ticketmon_receiver_streams_open") == 2, LIVE, "two streams")

    total, at = 40_000, datetime.now(UTC)
    for batch in range(total // 100):
        with s.store.transaction() as conn:
            feed.record(conn, [feed.change_row(
                {"id": batch * 100 + i, "tenant": "acme", "status": "open",
                 "severity": "warning"}, "updated", "test", at) for i in range(100)])
        time.sleep(0.005)

    events = reader.events(total, 120.0)
    assert [e.id for e in events] == list(range(start + 1, start + total + 1))
    wait_for(lambda: s.metric('ticketmon_receiver_streams_closed_total{reason="slow"}') == 1,
             30.0, "the stalled client dropped")
    assert s.metric("ticketmon_receiver_streams_open") == 1
    stalled.settimeout(30)
    received = b""
    while chunk := stalled.recv(1 << 20):  # what the kernel held, then the end
        received += chunk
    assert 0 < received.count(b"event: incident") < total
    stalled.close()


def test_streams_beyond_max_streams_are_refused_with_503(servers):
    s = servers(max_streams=2, heartbeat="1s")
    first, second = s.open(), s.open("viewer-acme")
    fresh(first)
    fresh(second)
    third = s.open("viewer-globex")
    assert third.status == 503
    assert third.response.getheader("Retry-After") == "4"
    error = third.json()["error"]
    assert error["code"] == "too_many_streams" and "stream.max_streams" in error["message"]
    assert s.metric('ticketmon_receiver_streams_closed_total{reason="refused"}') == 1
    first.close()  # its slot comes back once the server notices (next heartbeat)

    def reopened():
        client = s.open("viewer-globex")
        return client if client.status == 200 else None

    fresh(wait_for(reopened, 10.0, "a slot given back", every=0.5))
    exposition = requests.get(f"{s.stream}/metrics", timeout=10).text
    assert promtool_check_metrics(exposition) == ""
    assert "ticketmon_receiver_incidents_open" not in exposition  # the receiver's to serve


@pytest.mark.parametrize("query,headers,field", [
    ("", {"Last-Event-ID": "abc"}, "Last-Event-ID"),
    ("", {"Last-Event-ID": "12345678901234567890"}, "Last-Event-ID"),
    ("?last_event_id=-1", {}, "last_event_id"),
    ("?last_event_id=%EF%BC%91", {}, "last_event_id"),  # a fullwidth digit one
    ("?since=3", {}, "since"),
])
def test_a_bad_resume_point_or_parameter_is_a_clear_400(servers, query, headers, field):
    s = servers()
    client = s.open(query=query, **headers)
    assert client.status == 400
    error = client.json()["error"]
    assert error["field"] == field and field in error["message"]


def test_without_credentials_the_stream_is_401(servers):
    s = servers()
    for headers in ({}, {"Authorization": "Bearer tm_unknown_token_0000000000"}):
        answer = requests.get(f"{s.stream}/api/v1/stream", headers=headers, timeout=10)
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert answer.json()["error"]["code"] == "unauthorized"
    answer = requests.get(f"{s.stream}/api/v1/stream", timeout=10)
    assert "sign in to the console" in answer.json()["error"]["message"]


def test_a_console_on_another_origin_may_read_with_credentials(servers):
    s = servers(allowed_origins=["http://console.test:10190"])
    client = s.open(Origin="http://console.test:10190")
    assert client.response.getheader("Access-Control-Allow-Origin") == \
        "http://console.test:10190"
    assert client.response.getheader("Access-Control-Allow-Credentials") == "true"
    other = requests.get(f"{s.stream}/api/v1/stream", timeout=10,
                         headers={"Origin": "http://evil.test"})
    assert "Access-Control-Allow-Origin" not in other.headers
    preflight = requests.options(f"{s.stream}/api/v1/stream", timeout=10, headers={
        "Origin": "http://console.test:10190", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "last-event-id"})
    assert preflight.status_code == 200
    assert "Last-Event-ID" in preflight.headers["Access-Control-Allow-Headers"]


def test_the_consoles_session_stands_in_for_a_token(make_app, monkeypatch):
    """The hook asks receiver.console.session (the console's signed cookie) when there is
    no Authorization header; without that module, or without a session, it is a 401."""
    app = make_app()
    client = app.test_client()
    threaded = {"wsgi.multithread": True}  # as the stream server's gthread workers say
    assert client.get("/api/v1/stream", environ_overrides=threaded).status_code == 401

    session = types.ModuleType(SESSION_MODULE)
    session.__spec__ = importlib.machinery.ModuleSpec(SESSION_MODULE, None)
    signed_in: list[Principal | None] = [None]
    session.current_principal = lambda: signed_in[0]
    monkeypatch.setitem(sys.modules, SESSION_MODULE, session)
    assert client.get("/api/v1/stream", environ_overrides=threaded).status_code == 401

    signed_in[0] = Principal(name="alice", role="viewer", tenant="acme", via="session")
    answer = client.get("/api/v1/stream", environ_overrides=threaded, buffered=False)
    assert answer.status_code == 200 and answer.content_type == "text/event-stream"
    body = iter(answer.response)
    assert next(body) == b"retry: 3000\n\n"
    assert next(body).startswith(b"id: ")
    answer.close()
