"""GET /docs: the OpenAPI document in Swagger UI, served from the swagger-ui-bundle
package's files (no CDN: the console and its docs work on an air-gapped network).

The page is public like /openapi.json; "Try it out" calls the API with the token the
reader enters under Authorize, so it can do only what that token may. The validator
badge is off: it would send the document to validator.swagger.io.
"""

from __future__ import annotations

import secrets

from flask import Blueprint, Response, abort, g, send_from_directory
from swagger_ui_bundle import swagger_ui_path

bp = Blueprint("docs", __name__)
ASSETS = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png",
                    "favicon-16x16.png"})
ASSET_MAX_AGE = 86400  # the files change only with the package's version


def _csp(nonce: str) -> str:
    # Swagger UI draws its icons as data: SVGs and fetches the document and the API
    return (f"default-src 'none'; script-src 'self' 'nonce-{nonce}'; "
            f"style-src 'self' 'nonce-{nonce}'; img-src 'self' data:; connect-src 'self'; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")


@bp.get("/docs")
def docs() -> Response:
    g.csp_nonce = nonce = secrets.token_urlsafe(16)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ticketmon receiver API</title>
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<style nonce="{nonce}">body {{ margin: 0; }}</style>
</head><body>
<noscript>This page needs JavaScript; the document itself is at
<a href="/openapi.json">/openapi.json</a>.</noscript>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script nonce="{nonce}">
window.ui = SwaggerUIBundle({{url: "/openapi.json", dom_id: "#swagger-ui",
  deepLinking: true, validatorUrl: null, persistAuthorization: false}});
</script>
</body></html>"""
    response = Response(page, mimetype="text/html")
    response.headers["Content-Security-Policy"] = _csp(nonce)
    return response


@bp.get("/docs/assets/<name>")
def asset(name: str) -> Response:
    if name not in ASSETS:
        abort(404)
    return send_from_directory(swagger_ui_path, name, max_age=ASSET_MAX_AGE)
