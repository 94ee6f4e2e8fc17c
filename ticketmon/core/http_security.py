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


def html_csp(nonce: str | None) -> str:
    source = f"'nonce-{nonce}'" if nonce else "'none'"
    return (f"default-src 'none'; script-src {source}; style-src {source}; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


def add_security_headers(response: Response, *, https: bool = False, hsts: bool = False,
                         nonce: str | None = None) -> Response:
    """Set the headers a handler has not set itself; returns `response`."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "no-referrer")
    html = response.mimetype == "text/html"
    headers.setdefault("Content-Security-Policy", html_csp(nonce) if html else JSON_CSP)
    if html or response.mimetype == "application/json":
        headers.setdefault("Cache-Control", "no-store")
    if https or hsts:
        headers.setdefault("Strict-Transport-Security", HSTS)
    return response
