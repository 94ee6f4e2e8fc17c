"""Security headers every HTTP answer of ours carries (the receiver and the fraud check).

JSON answers are never cached nor rendered (nosniff, a CSP allowing nothing); HTML pages
(the acknowledge page) may run only the script and style carrying this answer's nonce,
may post only back to us, and are never framed (clickjacking) nor leak their URL, which
holds a signed token, in a Referer. HSTS only when the request came over https or the
operator says clients always use https (a TLS proxy in front): sent over plain http on
a laptop it would pin the browser to https for a year.
"""

from __future__ import annotations

from werkzeug.wrappers import Response

HSTS = "max-age=31536000"
JSON_CSP = "default-src 'none'; frame-ancestors 'none'"
ALWAYS = (("X-Content-Type-Options", "nosniff"), ("X-Frame-Options", "DENY"),
          ("Referrer-Policy", "no-referrer"))


def html_csp(nonce: str | None) -> str:
    source = f"'nonce-{nonce}'" if nonce else "'none'"
    return (f"default-src 'none'; script-src {source}; style-src {source}; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


def add_security_headers(response: Response, *, https: bool = False, hsts: bool = False,
                         nonce: str | None = None) -> Response:
    """Set the headers a handler has not set itself; returns `response`."""
    headers = response.headers
    for name, value in ALWAYS:
        headers.setdefault(name, value)
    html = response.mimetype == "text/html"
    headers.setdefault("Content-Security-Policy", html_csp(nonce) if html else JSON_CSP)
    if html or response.mimetype == "application/json":
        headers.setdefault("Cache-Control", "no-store")
    if https or hsts:
        headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def json_headers(*, https: bool = False, hsts: bool = False) -> list[tuple[str, str]]:
    """What add_security_headers gives a JSON answer, for one written as plain WSGI."""
    headers = [*ALWAYS, ("Content-Security-Policy", JSON_CSP), ("Cache-Control", "no-store")]
    if https or hsts:
        headers.append(("Strict-Transport-Security", HSTS))
    return headers
