"""POST /api/v1/fraud/check as plain WSGI, in front of the Flask application
(why: ticketmon/core/plain_wsgi.py), with the same answers, headers and refusals as the
Flask route it was (tests/exporters/fraud hold them). bench/fraud_check.py --in-process
measures what each request costs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from pydantic_core import to_json
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wsgi import get_input_stream

from ticketmon.core import redact
from ticketmon.core.auth import DEV_PRINCIPAL, Authenticator, AuthError, Principal
from ticketmon.core.plain_wsgi import answer_json

log = logging.getLogger("ticketmon.fraud")

PATH = "/api/v1/fraud/check"
MAX_BODY = 64 * 1024
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
        return answer_json(start_response, status, to_json(doc))
