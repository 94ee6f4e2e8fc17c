"""POST /api/v1/fraud/check as plain WSGI, in front of the Flask application.

Flask's dispatch of one request (application and request contexts, URL matching, the
Request and Response objects, header proxies, the context-local lookups) cost about
half a check's CPU in process, yet the check reads one header and the body and answers
JSON: so its POST is answered here, with the same answers, headers and refusals as
the Flask route it was (tests/exporters/fraud hold them), and every other request goes
on to Flask. The route stays in Flask's URL map (`add_rule`), so the OpenAPI test sees
it and Flask answers its other methods (405 naming POST, OPTIONS) as before.
bench/fraud_check.py --in-process measures what each request costs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from flask import Flask
from pydantic_core import to_json
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import get_input_stream

from ticketmon.core import redact
from ticketmon.core.auth import DEV_PRINCIPAL, Authenticator, AuthError, Principal

log = logging.getLogger("ticketmon.fraud")

PATH = "/api/v1/fraud/check"
MAX_BODY = 64 * 1024
# status lines as werkzeug writes them
STATUS = {code: f"{code} {phrase.upper()}" for code, phrase in HTTP_STATUS_CODES.items()}
Answer = tuple[object, int]


def error(status: int, message: str, **extra: object) -> Answer:
    return {"error": redact.text(message), **extra}, status  # may quote an exception


def authorize(auth: Authenticator | None, header: str | None, role: str
              ) -> Principal | Answer:
    """The caller, or the answer refusing it (401: who; 403: the role)."""
    if auth is None:
        return DEV_PRINCIPAL
    try:
        principal = auth.authenticate(header)
    except AuthError as exc:
        return error(401, str(exc))
    if not principal.has_role(role):
        return error(403, f"role {role} required")
    return principal


def body(environ: dict) -> bytes | None:
    """The request body, read as Flask would (werkzeug's safe input stream); None when
    over MAX_BODY."""
    try:  # one byte over the limit may be read: that is how a long stream shows itself
        data = get_input_stream(environ, max_content_length=MAX_BODY + 1).read()
    except RequestEntityTooLarge:  # Content-Length said so
        return None
    return data if len(data) <= MAX_BODY else None


class CheckRoute:
    """WSGI middleware: the check route here, anything else to `app`."""

    def __init__(self, app: Callable, check: Callable[[bytes, Principal], Answer],
                 auth: Authenticator | None, role: str) -> None:
        self.app = app
        self.check = check
        self.auth = auth
        self.role = role

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        principal = authorize(self.auth, environ.get("HTTP_AUTHORIZATION"), self.role)
        if not isinstance(principal, Principal):
            return self._answer(start_response, principal)
        data = body(environ)
        if data is None:
            return self._answer(start_response, error(413, f"body larger than {MAX_BODY} bytes"))
        try:
            answer = self.check(data, principal)
        except Exception:  # as Flask would: logged, a 500, the worker keeps serving
            log.exception("fraud check failed")
            answer = error(500, "internal error")
        return self._answer(start_response, answer)

    @staticmethod
    def _answer(start_response: Callable, answer: Answer) -> list[bytes]:
        doc, status = answer
        payload = to_json(doc)
        start_response(STATUS[status], [("Content-Type", "application/json"),
                                         ("Content-Length", str(len(payload)))])
        return [payload]


def add_rule(app: Flask) -> None:
    """The route in Flask's URL map without a view: its POST never reaches Flask."""
    rule = app.url_rule_class(PATH, endpoint="fraud_check", methods=["POST", "OPTIONS"])
    rule.provide_automatic_options = True  # OPTIONS answered by Flask, as for a view
    app.url_map.add(rule)
