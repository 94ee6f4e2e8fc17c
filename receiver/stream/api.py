"""GET /api/v1/stream: incident changes as Server-Sent Events (viewer).

The wire format (what the console relies on):

    retry: 3000                       once, first: how long to wait before reconnecting
    id: 41                            on a fresh stream: where a reconnect resumes
    id: 42                            one block per change, id increasing
    event: incident
    data: {"id": 7, "tenant": "acme", "status": "acknowledged", "severity": "critical",
           "change": "acknowledged", "at": "…Z", "actor": "alice", "title": "…",
           "service": "checkout"}     (one line)
    : keepalive                       every `stream.heartbeat` seconds

A client resumes after the last id it saw with the `Last-Event-ID` header (browsers
send it by themselves on reconnect) or `?last_event_id=` (the header wins): the changes
after it are replayed from the database, then the stream goes live. When that point is
gone from the feed (retention) or ahead of it (another database), an `event: reset`
says so and the client should reload what it shows.

A stream holds a thread for its whole life, so it is served only by a server made for
that: the stream server (`ticketmon receiver stream`, gunicorn gthread) or the threaded
development server. A sync gunicorn worker, the receiver's production shape, answers
503 naming `stream_url`: a stream there would starve the Alertmanager webhook.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import queue
import threading
import time

from flask import Blueprint, Flask, Response, current_app, request

from receiver.api.common import ApiError, Receiver, caller, only_params, receiver
from receiver.stream import feed
from receiver.stream.hub import PAGE, Hub, Subscriber
from receiver.stream.metrics import StreamMetrics
from ticketmon.core.auth import AuthError, Principal

bp = Blueprint("stream", __name__)
SESSION_MODULE = "receiver.console.session"  # the console's signed session cookie
DRAIN = 50  # batches written to a client at once
_METRICS_LOCK = threading.Lock()


def session_principal() -> Principal | None:
    """Auth hook: the console's session cookie (`receiver.console.session`, when that
    module is installed), so a browser's EventSource, which cannot send an
    Authorization header, streams as the person signed in."""
    try:
        if importlib.util.find_spec(SESSION_MODULE) is None:
            return None
    except ModuleNotFoundError as exc:  # no console package at all
        if exc.name not in ("receiver.console", SESSION_MODULE):
            raise
        return None
    return importlib.import_module(SESSION_MODULE).current_principal()


def stream_caller() -> Principal:
    """A bearer token or JWT when the request has one, else the console's session."""
    if request.headers.get("Authorization"):
        return caller("viewer")
    principal = session_principal()
    if principal is None:
        raise AuthError("missing credentials: send Authorization: Bearer <token>, or sign "
                        "in to the console", "missing")
    return caller("viewer", principal)


def last_event_id() -> int | None:
    header = request.headers.get("Last-Event-ID")
    raw, name = (header, "Last-Event-ID") if header else (
        request.args.get("last_event_id"), "last_event_id")
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
        raise ApiError(400, "invalid_parameter", f"{name} must be the id of an event this "
                       f"stream sent (an integer of up to 18 digits), not {raw[:40]!r}", name)
    return int(raw)


def install(app: Flask, ctx: Receiver, stream_server: bool) -> None:
    """This process's hub (its thread starts with the first stream) and, on the stream
    server, its metrics from the start. The receiver's app makes them only when it
    streams (the development server): under gunicorn sync it never does, and its
    /metrics keeps to the receiver's families."""
    hub = Hub(ctx.store.engine, ctx.settings.stream)
    metrics = StreamMetrics(ctx.metrics.registry) if stream_server else None
    app.extensions["ticketmon_stream"] = [hub, metrics]


def stream_parts() -> tuple[Hub, StreamMetrics]:
    parts = current_app.extensions["ticketmon_stream"]
    with _METRICS_LOCK:  # two first streams at once must not register them twice
        if parts[1] is None:
            parts[1] = StreamMetrics(receiver().metrics.registry)
    return parts[0], parts[1]


@bp.get("/api/v1/stream")
def stream():
    principal = stream_caller()
    only_params("last_event_id")
    after = last_event_id()
    settings = receiver().settings
    if not request.environ.get("wsgi.multithread"):
        raise ApiError(503, "streams_not_served_here",
                       "this server runs one request per worker (gunicorn sync), so it holds "
                       f"no streams: open them at {settings.stream_url} (the stream server, "
                       "`ticketmon receiver stream`)")
    hub, metrics = stream_parts()
    if not hub.reserve():
        metrics.closed.labels("refused").inc()
        raise ApiError(503, "too_many_streams",
                       f"this stream server holds its maximum of {settings.stream.max_streams} "
                       "open streams (setting stream.max_streams); retry later",
                       headers={"Retry-After": str(int(settings.stream.retry) + 1)})
    metrics.open.inc()
    body = EventStream(hub, metrics, principal, after,
                       request.environ.get("gunicorn.socket")
                       or request.environ.get("werkzeug.socket"))
    return Response(body, content_type="text/event-stream",
                    headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@bp.after_request
def _cors(response: Response) -> Response:
    """A console on another origin (stream.allowed_origins) may read streams with its
    cookie; Flask answers the preflight OPTIONS itself, these headers complete it."""
    origin = request.headers.get("Origin")
    if origin and origin in receiver().settings.stream.allowed_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Access-Control-Allow-Methods"] = "GET"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Last-Event-ID"
        response.headers["Access-Control-Max-Age"] = "600"
    response.headers.add("Vary", "Origin")
    return response


class EventStream:
    """The body of one stream: replay after `after`, then live changes and heartbeats.

    An iterable with close(), so the slot and the subscription are given back however
    the response ends (the WSGI server calls close, even if iteration never began)."""

    def __init__(self, hub: Hub, metrics: StreamMetrics, principal: Principal,
                 after: int | None, sock) -> None:
        ctx = receiver()
        self.hub, self.metrics, self.after = hub, metrics, after
        self.settings = ctx.settings.stream
        self.store = ctx.store
        self.scope = principal.tenant  # row-level security scope of the replay
        self.tenant = None if principal.all_tenants else principal.tenant
        self.sock = sock
        self.sub: Subscriber | None = None
        self.reason: str | None = None
        self._events = None
        self._closed = False

    def __iter__(self):
        self._events = self.events()
        return self._events

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._events is not None:
            self._events.close()
        if self.sub is not None:
            self.hub.unsubscribe(self.sub)
            self.reason = self.reason or self.sub.ended
        if self.reason:
            self.metrics.closed.labels(self.reason).inc()
        self.metrics.open.dec()
        self.hub.release()

    def replay(self, after: int):
        """Changes after `after` from the database, page by page; sets self.sent."""
        self.sent = after
        while True:
            page = self.store.read_as(self.scope, feed.read_after, self.sent, PAGE, self.tenant)
            if page:
                self.sent = page[-1].position
                self.metrics.events_sent.inc(len(page))
                yield "".join(change.text for change in page)
            if len(page) < PAGE:
                return

    def events(self):
        if self.sock is not None:  # a client that stops reading is dropped, not waited for
            self.sock.settimeout(self.settings.write_timeout)
        yield f"retry: {int(self.settings.retry * 1000)}\n\n"
        if self.after is None:
            self.sub, self.sent = self.hub.subscribe(self.tenant)
            yield f"id: {self.sent}\n\n"
        else:
            yield from self.reset_if_lost(self.after)
            yield from self.replay(self.after)
            self.sub, _ = self.hub.subscribe(self.tenant)
            yield from self.replay(self.sent)  # what committed while we replayed
        yield from self.live()

    def reset_if_lost(self, after: int):
        def bounds(conn):
            return feed.oldest(conn), feed.head(conn)

        oldest, head = self.store.read(bounds)
        if after > head or (oldest is not None and after < oldest - 1):
            why = ("ahead of this feed" if after > head else
                   "older than the feed keeps (stream.retention)")
            self.after = min(after, head)
            data = json.dumps({"reason": f"Last-Event-ID {after} is {why}: reload",
                               "oldest": oldest or 0, "head": head})
            yield f"id: {self.after}\nevent: reset\ndata: {data}\n\n"

    def live(self):
        beat = self.settings.heartbeat
        clock = time.monotonic
        ends = clock() + self.settings.max_age
        next_beat = clock() + beat
        while True:
            if self.sub.ended:
                return
            now = clock()
            if now >= ends:
                self.reason = "max_age"
                return
            if now >= next_beat:
                next_beat = now + beat
                yield ": keepalive\n\n"
                continue
            try:
                batches = [self.sub.queue.get(timeout=min(next_beat, ends) - now)]
            except queue.Empty:
                continue
            while len(batches) < DRAIN:
                try:
                    batches.append(self.sub.queue.get_nowait())
                except queue.Empty:
                    break
            texts, count = [], 0
            for batch in batches:
                if batch is None:
                    continue
                self.sub.taken(batch)
                if batch.last > self.sent:
                    text, n = batch.after(self.sent)
                    texts.append(text)
                    count += n
                    self.sent = batch.last
            if texts and not self.sub.ended:
                self.metrics.events_sent.inc(count)
                yield "".join(texts)


def _describe() -> None:
    from receiver.api.openapi import _errors, register_paths

    register_paths({"/api/v1/stream": {"get": {
        "summary": "Live incident changes as Server-Sent Events, for the caller's tenant "
                   "(viewer)",
        "tags": ["incidents"],
        "description": "A never-ending text/event-stream: `retry:`, then per change "
                       "`id: <position>`, `event: incident`, `data: <one-line JSON: id, "
                       "tenant, status, severity, change, at, actor, title, service>`; "
                       "a `: keepalive` comment every stream.heartbeat. change is one of "
                       + ", ".join(feed.CHANGES) + ". Resume with Last-Event-ID (or "
                       "last_event_id): what came after it is replayed. Also accepts the "
                       "console's session cookie. Served by the stream server "
                       "(`stream_url`); a sync gunicorn worker answers 503.",
        "parameters": [
            {"name": "last_event_id", "in": "query", "required": False,
             "description": "resume after this event id (the Last-Event-ID header wins)",
             "schema": {"type": "string", "pattern": "^[0-9]{0,18}$"}},
            {"name": "Last-Event-ID", "in": "header", "required": False,
             "description": "resume after this event id; browsers send it on reconnect",
             "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"}}],
        "responses": {
            "200": {"description": "the event stream",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}}},
            **_errors(400, 401, 403, 503, e400="Last-Event-ID or last_event_id is not an "
                      "event id", e503="too many open streams (Retry-After), a server "
                      "that does not hold streams (use stream_url), or the store is "
                      "unavailable")}}}})


_describe()
