"""POST /api/v1/alertmanager: Alertmanager's webhook (payload version 4).

2xx only after commit; 503 when the store is unavailable so Alertmanager retries (it
retries only 5xx, so this endpoint never answers 429). A 4xx is never retried: the post
is lost, so only a body that is not an Alertmanager payload is refused (see
receiver/payload.py), and every refusal is logged with its size, group key (when it can
be read) and reason, and counted in ticketmon_receiver_webhook_refused_total.

Answered as plain WSGI in front of Flask (why: ticketmon/core/plain_wsgi.py), with what
the app's request hooks and error handler give every other route: an X-Request-Id (also
in each log line), the security headers, ticketmon_receiver_http_requests_total, JSON
errors from receiver/api/errors.py.

Memory: a body of N bytes costs about 3N at peak. werkzeug's `get_data()` reads
through its LimitedStream into a growing bytearray (reallocated as it grows) and then
copies it into bytes, and `get_json()` would add a dict tree plus a re-serialisation to
validate. Here the body is read in 1 MiB steps (gunicorn's sync worker buffers about
one step) and joined once into bytes (2N for that instant, before anything is parsed), and
pydantic validates those bytes as they stand (`model_validate_json`: no dict tree, no
re-serialisation; a bytearray would be copied by pydantic-core, bytes are not). The
parsed alerts weigh about as much again for label-heavy posts; the body is dropped
before the store serialises the rows.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterable

from flask import Blueprint
from pydantic_core import to_json
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.wsgi import get_content_length, get_input_stream

from receiver.api import errors
from receiver.api.common import ApiError, Receiver, request_id
from receiver.payload import PayloadError, parse
from ticketmon.core import logs
from ticketmon.core.auth import AuthError, check_webhook_token
from ticketmon.core.http_security import json_headers
from ticketmon.core.plain_wsgi import add_rule, answer_json

log = logging.getLogger("receiver.webhook")
PATH = "/api/v1/alertmanager"
# the route without a view: WebhookRoute answers its POST (see create_app)
bp = Blueprint("webhook", __name__)
bp.record_once(lambda state: add_rule(state.app, PATH, "webhook.alertmanager"))

STEP = 1 << 20  # bytes read from the WSGI input per call
# an oversized body is still read (and dropped), up to this many times the limit (at
# least DRAIN_MIN bytes), to name its group in the log and to let Alertmanager read the
# 413 instead of a connection reset
DRAIN_FACTOR = 4
DRAIN_MIN = 64 << 20
TAIL = 256 * 1024  # Alertmanager writes groupKey after the alerts: near the end
LOGGED_GROUP_KEY = 1000  # characters of a group key written to a log line


class BodyTooLarge(Exception):
    """The body is over max_body_bytes; `size` is None when it came without a length."""

    def __init__(self, size: int | None, group_key: str | None) -> None:
        super().__init__(size)
        self.size = size
        self.group_key = group_key


def read_body(environ: dict, limit: int) -> bytes:
    """The request body as one bytes object; BodyTooLarge over `limit` bytes."""
    length = get_content_length(environ)
    if length is None:
        return _read_unsized(environ, limit)
    stream = environ["wsgi.input"]  # bounded here by Content-Length, never read past it
    if length > limit:
        raise BodyTooLarge(length, _drain_for_group_key(stream, length, limit))
    chunks = []
    left = length
    while left > 0:
        chunk = stream.read(min(STEP, left))
        if not chunk:  # the client went away: what came is not a whole payload
            break
        chunks.append(chunk)
        left -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _read_unsized(environ: dict, limit: int) -> bytes:
    """A chunked body: werkzeug's stream stops it at `limit` when the server ends the
    input, as gunicorn does (without that, werkzeug reads no body: none can be trusted)."""
    stream = get_input_stream(environ, max_content_length=limit)
    chunks = []
    try:
        while chunk := stream.read(STEP):
            chunks.append(chunk)
    except RequestEntityTooLarge:
        raise BodyTooLarge(None, None) from None
    return b"".join(chunks)


def _drain_for_group_key(stream, length: int, limit: int) -> str | None:
    if length > max(DRAIN_FACTOR * limit, DRAIN_MIN):
        return None
    tail = b""
    left = length
    while left > 0:
        chunk = stream.read(min(STEP, left))
        if not chunk:
            break
        left -= len(chunk)
        tail = (tail + chunk)[-TAIL:]
    return group_key_hint(tail)


_GROUP_KEY = re.compile(rb'"groupKey"\s*:\s*("(?:[^"\\]|\\.){0,65536}")')


def group_key_hint(data: bytes | bytearray) -> str | None:
    """The groupKey of a body that could not be parsed, if it can be found, for the log.

    The last `"groupKey"` not inside a string (a quote inside a string is escaped)."""
    end = len(data)
    for _ in range(10):
        pos = data.rfind(b'"groupKey"', 0, end)
        if pos < 0:
            return None
        before = bytes(data[max(0, pos - 64):pos])
        backslashes = len(before) - len(before.rstrip(b"\\"))
        match = _GROUP_KEY.match(data, pos) if backslashes % 2 == 0 else None
        if match:
            try:
                value = json.loads(match.group(1))
            except ValueError:
                return None
            return value if isinstance(value, str) else None
        end = pos
    return None


def _refused(ctx: Receiver, status: int, reason: str, message: str, size: int | None,
             group_key: str | None = None, field: str | None = None) -> None:
    """Alertmanager drops a 4xx post for good: say so in the log and in a metric."""
    ctx.metrics.webhook_refused.labels(reason).inc()
    if group_key is not None and len(group_key) > LOGGED_GROUP_KEY:
        group_key = group_key[:LOGGED_GROUP_KEY] + "…"
    log.warning("webhook post refused (Alertmanager will not retry it): %s", message,
                extra={"status": status, "reason": reason, "size_bytes": size,
                       "group_key": group_key, "field": field})


class WebhookRoute:
    """WSGI middleware: Alertmanager's POST here, anything else to `app`."""

    def __init__(self, app: Callable, ctx: Receiver) -> None:
        self.app = app
        self.ctx = ctx

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        started = time.perf_counter()
        rid = request_id(environ.get("HTTP_X_REQUEST_ID", ""))
        logs.request_id.set(rid)
        try:
            status, body, headers = 200, alertmanager(self.ctx, environ, started), {}
        except Exception as exc:  # as the app's error handler would: the worker keeps serving
            status, body, headers = errors.answer(exc, self.ctx.metrics)
        self.ctx.metrics.http_requests.labels(PATH, str(status)).inc()
        if log.isEnabledFor(logging.DEBUG):
            log.debug("request", extra={"method": "POST", "route": PATH, "code": status,
                                        "ms": round(1000 * (time.perf_counter() - started), 2)})
        hsts = self.ctx.settings.hsts
        return answer_json(start_response, status, to_json(body), [
            *headers.items(), ("X-Request-Id", rid),
            *json_headers(https=environ.get("wsgi.url_scheme") == "https", hsts=hsts)])


def alertmanager(ctx: Receiver, environ: dict, arrived: float) -> dict:
    """Store one post; the answer's body, or the exception that refuses it."""
    size = get_content_length(environ)
    if not ctx.settings.dev:
        try:
            check_webhook_token(ctx.settings.webhook_token.get_secret_value(),
                                environ.get("HTTP_AUTHORIZATION"))
        except AuthError as exc:
            _refused(ctx, 401, "unauthorized", str(exc), size)
            raise
    mimetype = parse_options_header(environ.get("CONTENT_TYPE", ""))[0].lower()
    if mimetype != "application/json":
        error = ApiError(415, "unsupported_media_type",
                         "Alertmanager posts application/json; got "
                         f"{mimetype or 'no Content-Type'}")
        _refused(ctx, 415, "unsupported_media_type", error.message, size)
        raise error
    limit = ctx.settings.max_body_bytes
    try:
        body = read_body(environ, limit)
    except BodyTooLarge as exc:
        message = (f"body of {exc.size if exc.size is not None else 'more than ' + str(limit)}"
                   f" bytes is over max_body_bytes ({limit})")
        _refused(ctx, 413, "body_too_large", message, exc.size, exc.group_key)
        raise ApiError(413, "request_entity_too_large", message) from None
    try:
        payload = parse(body)
    except PayloadError as exc:
        _refused(ctx, 400, exc.code, exc.message, len(body), group_key_hint(body), exc.field)
        raise
    size = len(body)
    del body  # the parsed payload is all that is needed from here on
    result = ctx.store.ingest(payload)
    m = ctx.metrics
    m.webhook_ingest.observe(time.perf_counter() - arrived)
    for status, count in result.received.items():
        if count:
            m.alerts_received.labels(status).inc(count)
    if result.duplicates:
        m.alerts_duplicate.inc(result.duplicates)
    if payload.repairs:  # counted once committed: a 503 is posted again
        for kind, count in payload.repairs.items():
            m.payload_repairs.labels(kind).inc(count)
        log.info("webhook post repaired to fit the store", extra={
            "group_key": payload.groupKey, "repairs": dict(payload.repairs),
            "size_bytes": size})
    if result.opened or result.resolved:
        log.info("incidents changed", extra={"group_key": payload.groupKey,
                                             "opened": result.opened,
                                             "resolved": result.resolved})
    return {"status": "ok", "alerts": len(payload.alerts), "changed": result.changed,
            "duplicates": result.duplicates, "incidents_opened": result.opened,
            "incidents_resolved": result.resolved}
