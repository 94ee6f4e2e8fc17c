"""The console's test helpers: tokens of each role, signing in a test client, forms."""

from __future__ import annotations

import re

VIEWER = "viewer-token-for-console-0123456789"
OPERATOR = "operator-token-for-console-0123456789"
ADMIN = "admin-token-for-console-0123456789"
OTHER_OPERATOR = "globex-operator-token-0123456789"
TOKENS = [
    {"name": "vera", "role": "viewer", "tenant": "acme", "token": VIEWER},
    {"name": "otto", "role": "operator", "tenant": "acme", "token": OPERATOR},
    {"name": "ada", "role": "admin", "tenant": "*", "token": ADMIN},
    {"name": "gina", "role": "operator", "tenant": "globex", "token": OTHER_OPERATOR},
]
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf(html: str) -> str:
    """The CSRF token of the page's first form."""
    found = _CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in(client, token: str) -> str:
    """Sign a Flask test client in through the form; returns the session's CSRF token."""
    page = client.get("/ui/signin")
    resp = client.post("/ui/signin", data={"token": token, "csrf_token": csrf(page.text)})
    assert resp.status_code == 303, resp.text
    return csrf(client.get("/ui/").text)


def alert_text(html: str) -> str:
    """The text of the page's role=alert message (what went wrong)."""
    found = re.search(r'role="alert"[^>]*>([^<]*)<', html)
    assert found, "no error message on the page"
    return found.group(1).strip()
