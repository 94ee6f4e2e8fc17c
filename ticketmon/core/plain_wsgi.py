"""Hot POST routes answered as plain WSGI, in front of a Flask app.

Flask's dispatch of one request (application and request contexts, URL matching, the
Request and Response objects, header proxies, context-local lookups, request hooks)
costs about as much CPU as the work of the fraud check or of a replayed Alertmanager
post. So those two POSTs are answered by middleware (exporters/fraud/check_route.py,
receiver/api/webhook.py) with the same answers and headers, and every other request goes
on to Flask. The route stays in Flask's URL map (`add_rule`), so the OpenAPI documents
and tests see it and Flask answers its other methods (405 naming POST, OPTIONS) as before.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from werkzeug.http import HTTP_STATUS_CODES

# status lines as werkzeug writes them
STATUS = {code: f"{code} {phrase.upper()}" for code, phrase in HTTP_STATUS_CODES.items()}


def add_rule(app: Flask, path: str, endpoint: str) -> None:
    """The POST route in Flask's URL map without a view: it never reaches Flask."""
    rule = app.url_rule_class(path, endpoint=endpoint, methods=["POST", "OPTIONS"])
    rule.provide_automatic_options = True  # OPTIONS answered by Flask, as for a view
    app.url_map.add(rule)


def answer_json(start_response: Callable, status: int, payload: bytes,
                headers: list[tuple[str, str]] | None = None) -> list[bytes]:
    start_response(STATUS[status], [("Content-Type", "application/json"),
                                     ("Content-Length", str(len(payload))), *(headers or ())])
    return [payload]
