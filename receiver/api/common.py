"""What every blueprint shares: the app's context, errors, auth and parameter parsing.

Errors are machine-readable: {"error": {"code", "message", "field"}}; bad input is a 4xx
naming the parameter or field, never a 500.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import dataclass, field

from flask import current_app, g, request

from receiver.metrics import ReceiverMetrics
from receiver.ratelimit import TokenBuckets
from receiver.settings import ReceiverSettings
from receiver.store import Store
from ticketmon.core import redact
from ticketmon.core.auth import DEV_PRINCIPAL, Authenticator, Forbidden, Principal


@dataclass
class Receiver:
    """Everything a request handler needs, built once by create_app()."""

    settings: ReceiverSettings
    store: Store
    auth: Authenticator
    metrics: ReceiverMetrics
    limiter: TokenBuckets = field(default_factory=lambda: TokenBuckets(0, 1))


def receiver() -> Receiver:
    return current_app.extensions["ticketmon_receiver"]


def request_id(header: str) -> str:
    """The caller's X-Request-Id when it is a plain token (it goes into logs), else a new one."""
    if 0 < len(header) <= 64 and header.replace("-", "").isalnum():
        return header
    return uuid.uuid4().hex


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}


def error_body(code: str, message: str, field: str | None = None) -> dict:
    """The API's error shape; the message may quote an exception, so it is redacted."""
    return {"error": {"code": code, "message": redact.text(message), "field": field}}


def caller(role: str, principal: Principal | None = None) -> Principal:
    """Authenticate the request, hold it to its token's request rate, and require at
    least `role`. Every REST API handler starts here (the webhook does not); one that
    knows its caller another way (the stream: the console's session) passes it."""
    ctx = receiver()
    if ctx.settings.dev:
        principal = DEV_PRINCIPAL
    elif principal is None:
        principal = ctx.auth.authenticate(request.headers.get("Authorization"))
    wait = ctx.limiter.take(f"{principal.via}:{principal.name}")
    if wait:
        ctx.metrics.rate_limited.labels(principal.via).inc()
        raise ApiError(429, "rate_limited",
                       f"over this token's rate of {ctx.limiter.rate:g} requests a second "
                       f"(burst {ctx.limiter.burst:g}); retry after {wait:.2f}s",
                       headers={"Retry-After": str(max(1, math.ceil(wait)))})
    if not principal.has_role(role):
        raise Forbidden(f"this needs the {role} role; {principal.name} has {principal.role}")
    g.principal = principal
    return principal


# -- text the database can store ------------------------------------------------------
# PostgreSQL text cannot hold NUL, and a lone surrogate (from a JSON "\ud800" escape)
# cannot be encoded as UTF-8: either reaching the driver is a 500, so both are a 400 here
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(name: str, value: str, code: str = "invalid_parameter") -> str:
    """`value` unchanged, or a 400 naming `name` if the database could not store it."""
    if _UNSTORABLE.search(value):
        raise ApiError(400, code, f"{name} must not contain NUL or lone surrogate characters",
                       name)
    return value


# -- query string ----------------------------------------------------------------------
def only_params(*allowed: str) -> None:
    """A misspelt filter silently matching everything is worse than an error; every value
    is checked here too, so no handler can pass a NUL on to the database."""
    for name in request.args:
        if name not in allowed:
            raise ApiError(400, "unknown_parameter",
                           f"unknown query parameter {name!r}; allowed: {', '.join(allowed)}",
                           name)
        for value in request.args.getlist(name):
            storable(name, value)


def multi(name: str, choices: tuple[str, ...] | None = None, max_len: int = 200) -> list[str]:
    """A filter given repeatedly or comma-separated: ?status=open,acknowledged."""
    values = [v.strip() for raw in request.args.getlist(name) for v in raw.split(",")]
    values = [v for v in values if v]
    for value in values:
        if len(value) > max_len:
            raise ApiError(400, "invalid_parameter", f"{name} values are at most {max_len} "
                           "characters", name)
        if choices and value not in choices:
            raise ApiError(400, "invalid_parameter",
                           f"{name} must be one of {', '.join(choices)}, not {value!r}", name)
    return values


def limit_param() -> int:
    settings = receiver().settings
    raw = request.args.get("limit")
    if raw is None:
        return settings.page_limit_default
    # isdigit() alone accepts '²', which int() refuses: ASCII digits only
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= settings.page_limit_max:
        raise ApiError(400, "invalid_parameter",
                       f"limit must be an integer from 1 to {settings.page_limit_max}", "limit")
    return int(raw)


def cursor_param() -> int | None:
    raw = request.args.get("cursor")
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise ApiError(400, "invalid_parameter",
                       "cursor must be the next_cursor value of a previous page", "cursor")
    return int(raw)


# -- JSON bodies -----------------------------------------------------------------------
def json_object(allowed: dict[str, type | tuple[type, ...]], required: tuple[str, ...] = (),
                optional_body: bool = False) -> dict:
    """A small JSON object body, checked field by field."""
    raw = request.get_data(cache=True)
    if not raw.strip() and optional_body:
        return {}
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_payload", "body must be a JSON object")
    for name, value in body.items():
        if name not in allowed:
            raise ApiError(400, "unknown_field", f"unknown field {name!r}", name)
        if value is not None and not isinstance(value, allowed[name]):
            kinds = allowed[name] if isinstance(allowed[name], tuple) else (allowed[name],)
            words = {"str": "string", "int": "number", "float": "number"}
            expected = " or ".join(dict.fromkeys(words.get(k.__name__, k.__name__)
                                                 for k in kinds))
            raise ApiError(400, "invalid_field", f"{name} must be a {expected}", name)
        if isinstance(value, str):
            if len(value) > 2000:
                raise ApiError(400, "invalid_field", f"{name} must be at most 2000 characters",
                               name)
            storable(name, value, "invalid_field")
    for name in required:
        if body.get(name) in (None, ""):
            raise ApiError(400, "missing_field", f"{name} is required", name)
    return body


def scope_tenants(principal: Principal, requested: list[str]) -> None:
    for tenant in requested:
        if not principal.may_see(tenant):
            raise Forbidden(f"tenant {tenant!r} is outside your scope ({principal.tenant})")
