"""How the API answers a failure: one mapping, used by the Flask app's error handler and
by the webhook's plain-WSGI route (receiver/api/webhook.py), so both answer alike.

Errors are machine-readable ({"error": {"code", "message", "field"}}, see common.py);
a 5xx is logged here, a 4xx is the caller's to read.
"""

from __future__ import annotations

import logging

from werkzeug.exceptions import HTTPException

from receiver.api.common import ApiError, error_body
from receiver.metrics import ReceiverMetrics
from receiver.payload import PayloadError
from receiver.store import StoreUnavailable
from receiver.store.store import Conflict, NotFound
from ticketmon.core.auth import AuthError, Forbidden

log = logging.getLogger("receiver")
Answer = tuple[int, dict, dict[str, str]]


def answer(exc: Exception, metrics: ReceiverMetrics) -> Answer:
    """(status, body, extra headers) for `exc`; counts auth failures."""
    if isinstance(exc, ApiError):
        return exc.status, error_body(exc.code, exc.message, exc.field), exc.headers
    if isinstance(exc, PayloadError):
        return 400, error_body(exc.code, exc.message, exc.field), {}
    if isinstance(exc, AuthError):
        metrics.auth_failures.labels(exc.reason).inc()
        return 401, error_body("unauthorized", str(exc)), {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, Forbidden):
        metrics.auth_failures.labels("forbidden").inc()
        return 403, error_body("forbidden", str(exc)), {}
    if isinstance(exc, NotFound):
        return 404, error_body("not_found", str(exc)), {}
    if isinstance(exc, Conflict):
        return 409, error_body("conflict", str(exc)), {}
    if isinstance(exc, StoreUnavailable):
        log.error("store unavailable: %s", exc)
        return (503, error_body("store_unavailable", "the database is unavailable; retry later"),
                {"Retry-After": "5"})
    if isinstance(exc, HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        # keep the exception's own headers: a 405 must say which methods are Allow-ed
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        return exc.code or 500, error_body(code, exc.description or exc.name), headers
    log.error("unhandled error", exc_info=exc)
    return 500, error_body("internal_error", "internal error; see the receiver's log"), {}
