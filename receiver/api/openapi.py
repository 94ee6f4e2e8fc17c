"""GET /openapi.json: an OpenAPI 3 description of every endpoint (tested against the routes)."""

from __future__ import annotations

import copy

from flask import Blueprint, jsonify

from receiver.api.common import receiver

bp = Blueprint("openapi", __name__)

ERROR = {"$ref": "#/components/schemas/Error"}


def _errors(*codes: int, **override: str) -> dict:
    text = {400: "bad input (the body names the field)", 401: "no or wrong credentials",
            403: "role or tenant not allowed", 404: "not found in your tenant scope",
            409: "invalid state transition", 413: "body over max_body_bytes",
            415: "not application/json", 429: "over this token's request rate: retry after "
            "the Retry-After header's seconds", 503: "store unavailable: retry"}
    text.update({int(k[1:]): v for k, v in override.items()})
    return {str(c): {"description": text[c],
                     "content": {"application/json": {"schema": ERROR}}} for c in codes}


def _ok(description: str, schema: dict | None = None, code: int = 200) -> dict:
    body = {"description": description}
    if schema:
        body["content"] = {"application/json": {"schema": schema}}
    return {str(code): body}


def _query(name: str, description: str, schema: dict | None = None,
           multiple: bool = False) -> dict:
    schema = schema or {"type": "string"}
    if multiple:
        schema = {"type": "array", "items": schema}
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema, "explode": True}


ROW_ID_MAX = 10**18 - 1  # receiver.app.RowId: a longer id is no route


def _path(name: str) -> dict:
    return {"name": name, "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": ROW_ID_MAX}}


# what the database can store (receiver.api.common.storable): no NUL. Lone surrogates are
# refused too, but a JSON Schema pattern cannot name them portably.
NO_NUL = "^[^\\u0000]*$"


def text(max_length: int, **extra) -> dict:
    """A string the API accepts: bounded and without NUL."""
    return {"type": "string", "maxLength": max_length, "pattern": NO_NUL, **extra}


PAGE = [_query("limit", "page size, 1 to page_limit_max",
               {"type": "integer", "minimum": 1, "maximum": 500}),
        _query("cursor", "next_cursor of the previous page",
               {"type": "string", "pattern": "^[0-9]{0,18}$"})]
OBJ = {"type": "object"}
COMMENT = {**text(2000), "nullable": True}
CHANGE_BODY = {"required": False, "content": {"application/json": {"schema": {
    "type": "object", "additionalProperties": False, "properties": {"comment": COMMENT}}}}}


def _change(verb: str) -> dict:
    return {"post": {
        "summary": f"{verb.capitalize()} an incident (operator); repeating is harmless",
        "tags": ["incidents"], "parameters": [_path("incident_id")],
        "requestBody": CHANGE_BODY,
        "responses": {**_ok(f"{verb}d (or already so)", OBJ),
                      **_errors(400, 401, 403, 404, 409, 415, 503)}}}


STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
FIRING = {"type": "string", "enum": ["firing", "resolved"]}
WEBHOOK_PAYLOAD = {  # receiver.payload.WebhookPayload; unknown fields are kept
    "type": "object", "required": ["version", "groupKey", "status", "alerts"],
    "properties": {
        "version": {"type": "string", "enum": ["4"]},
        "groupKey": {"type": "string", "minLength": 1},
        "status": FIRING, "receiver": {"type": "string"},
        "truncatedAlerts": {"type": "integer", "minimum": 0},
        "groupLabels": STRINGS, "commonLabels": STRINGS, "commonAnnotations": STRINGS,
        "externalURL": {"type": "string", "nullable": True},
        "alerts": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["status", "labels", "startsAt", "fingerprint"],
            "properties": {
                "status": FIRING, "labels": STRINGS, "annotations": STRINGS,
                "startsAt": {"type": "string", "format": "date-time"},
                "endsAt": {"type": "string", "format": "date-time", "nullable": True},
                "generatorURL": {"type": "string", "nullable": True},
                "fingerprint": {"type": "string", "pattern": "^[0-9A-Za-z]{1,64}$"}}}}}}
EXPIRES_IN = {"type": "integer", "minimum": 60, "maximum": 10 * 366 * 86400,
              "nullable": True, "description": "seconds until the token stops working "
                                                "(default: never)"}
DURATION = "^(?:[0-9]+h)?(?:[0-9]+m)?(?:[0-9]+(?:\\.[0-9]+)?s)?$"

DOCUMENT = {
    "openapi": "3.0.3",
    "info": {"title": "ticketmon receiver", "version": "1",
             "description": "Alertmanager webhook to durable alerts and incidents."},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                       "description": "API token (tm_…) or platform JWT"},
                            "webhookToken": {"type": "http", "scheme": "bearer",
                                             "description": "the webhook's own token"}},
        "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {
            "error": {"type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string"}, "message": {"type": "string"},
                "field": {"type": "string", "nullable": True}}}}}},
    },
    "security": [{"bearer": []}],
    "paths": {
        "/api/v1/alertmanager": {"post": {
            "summary": "Alertmanager webhook, payload version 4", "tags": ["webhook"],
            "security": [{"webhookToken": []}],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": WEBHOOK_PAYLOAD}}},
            "description": "Any post a real Alertmanager sends is kept whole: strings the "
                           "store cannot hold as sent are repaired, not refused (names over "
                           "200 and values over 10,000 characters cut with a marker "
                           "'…[truncated by ticketmon: N chars, sha256:…]', NUL and lone "
                           "surrogates replaced by U+FFFD, a group key over 1,024 bytes "
                           "shortened to a prefix and a digest); each repair is listed in "
                           "the alert's extra.ticketmon_repairs. Alertmanager does not "
                           "retry a 4xx, so every refusal is logged and counted.",
            "responses": {**_ok("stored (committed)", OBJ),
                          **_errors(400, 401, 413, 415, 503, e400=(
                              "not an Alertmanager payload (not JSON, not an object, "
                              "version not 4, no alerts, an alert without fingerprint, "
                              "startsAt, status or labels); the body names the field"))}}},
        "/api/v1/incidents": {"get": {
            "summary": "List incidents, newest first (viewer)", "tags": ["incidents"],
            "parameters": [
                _query("status", "open, acknowledged, resolved",
                       {"type": "string", "enum": ["open", "acknowledged", "resolved"]},
                       multiple=True),
                _query("severity", "e.g. critical", text(200), multiple=True),
                _query("service", "service label", text(200), multiple=True),
                _query("tenant", "within your scope", text(100), multiple=True),
                _query("group_key", "Alertmanager groupKey, as posted",
                       {"type": "string", "pattern": NO_NUL}), *PAGE],
            "responses": {**_ok("{incidents: [...], next_cursor}", OBJ),
                          **_errors(400, 401, 403, 503)}}},
        "/api/v1/incidents/{incident_id}": {"get": {
            "summary": "One incident with its alerts and timeline (viewer)",
            "tags": ["incidents"], "parameters": [_path("incident_id")],
            "responses": {**_ok("{incident: {..., alerts, timeline, anomaly_scores}}", OBJ),
                          **_errors(401, 403, 404, 503)}}},
        "/api/v1/incidents/{incident_id}/acknowledge": _change("acknowledge"),
        "/api/v1/incidents/{incident_id}/resolve": _change("resolve"),
        "/api/v1/incidents/{incident_id}/escalate": {"post": {
            "summary": "Escalate an open incident now: its policy's next step is paged at "
                       "once instead of at its time (operator)",
            "tags": ["incidents"], "parameters": [_path("incident_id")],
            "requestBody": CHANGE_BODY,
            "responses": {**_ok("{incident, changed}", OBJ),
                          **_errors(400, 401, 403, 404, 409, 415, 503)}}},
        "/api/v1/incidents/{incident_id}/silence": {
            "post": {
                "summary": "Silence the incident's group in Alertmanager for a bounded time "
                           "(operator); acknowledging never silences",
                "tags": ["incidents"], "parameters": [_path("incident_id")],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "additionalProperties": False, "required": ["duration"],
                    "properties": {
                        "duration": {
                            "description": "'4h', '30m', '1h30m', '90s' or seconds, from 60 "
                                           "seconds to the setting silence_max",
                            "oneOf": [{"type": "string", "pattern": DURATION, "minLength": 2,
                                       "example": "4h"},
                                      {"type": "number", "minimum": 60, "maximum": 86400}]},
                        "comment": COMMENT}}}}},
                "responses": {**_ok("{incident, changed}", OBJ),
                              **_errors(400, 401, 403, 404, 409, 415, 503)}},
            "delete": {
                "summary": "Lift the incident's silence now (operator)", "tags": ["incidents"],
                "parameters": [_path("incident_id")],
                "responses": {**_ok("{incident, changed}", OBJ),
                              **_errors(400, 401, 403, 404, 415, 503)}}},
        "/api/v1/alerts": {"get": {
            "summary": "List alert instances, active and past (viewer)", "tags": ["alerts"],
            "parameters": [_query("status", "firing (active) or resolved", FIRING,
                                  multiple=True),
                           _query("label", "name=value",
                                  {"type": "string", "maxLength": 500,
                                   "pattern": "^[^=\\u0000]+=[^\\u0000]*$"}, multiple=True),
                           _query("fingerprint", "Alertmanager fingerprint",
                                  {"type": "string", "pattern": "^[0-9A-Za-z]{0,64}$"}),
                           *PAGE],
            "responses": {**_ok("{alerts: [...], next_cursor}", OBJ),
                          **_errors(400, 401, 403, 503)}}},
        "/api/v1/alerts/{alert_id}": {"get": {
            "summary": "One alert instance with its status history (viewer)",
            "tags": ["alerts"], "parameters": [_path("alert_id")],
            "responses": {**_ok("{alert: {..., history}}", OBJ),
                          **_errors(401, 403, 404, 503)}}},
        "/api/v1/tokens": {
            "get": {"summary": "List API tokens (admin)", "tags": ["admin"],
                    "responses": {**_ok("{tokens: [...]}", OBJ), **_errors(401, 403, 503)}},
            "post": {"summary": "Create an API token (admin); the token is shown once",
                     "tags": ["admin"],
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": {"type": "object", "required": ["name", "role"],
                                    "additionalProperties": False,
                                    "properties": {"name": text(100, minLength=1),
                                                   "role": {"type": "string",
                                                            "enum": ["viewer", "operator",
                                                                     "admin"]},
                                                   "tenant": {**text(100), "nullable": True,
                                                              "description": "default: "
                                                              "yours"},
                                                   "expires_in": EXPIRES_IN},
                                    # '*' (every tenant) is admin-only: below admin, name
                                    # one tenant (an all-tenant caller has no default)
                                    "anyOf": [
                                        {"properties": {"role": {"enum": ["admin"]}}},
                                        {"required": ["tenant"], "properties": {"tenant": {
                                            "type": "string", "minLength": 1,
                                            "not": {"enum": ["*"]}}}}]}}}},
                     "responses": {**_ok("created", OBJ, 201),
                                   **_errors(400, 401, 403, 415, 503)}}},
        "/api/v1/tokens/{token_id}/rotate": {"post": {
            "summary": "Rotate an API token (admin): a new secret for the same name, role "
                       "and tenant, shown once; the old token is revoked, or expires after "
                       "`grace` seconds",
            "tags": ["admin"], "parameters": [_path("token_id")],
            "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": False, "properties": {
                    "grace": {"type": "integer", "minimum": 0, "maximum": 7 * 86400,
                              "nullable": True,
                              "description": "seconds the old token still works"},
                    "expires_in": {**EXPIRES_IN, "description": "lifetime of the new token "
                                   "(default: as long as the old one was given)"}}}}}},
            "responses": {**_ok("the new token (shown once) and what became of the old",
                                OBJ, 201), **_errors(400, 401, 403, 404, 503)}}},
        "/api/v1/tokens/{token_id}": {"delete": {
            "summary": "Revoke an API token (admin)", "tags": ["admin"],
            "parameters": [_path("token_id")],
            "responses": {**_ok("revoked", code=204), **_errors(401, 403, 404, 503)}}},
        "/api/v1/audit": {"get": {
            "summary": "Audit log of acknowledge/resolve (admin)", "tags": ["admin"],
            "parameters": PAGE,
            "responses": {**_ok("{audit: [...], next_cursor}", OBJ),
                          **_errors(400, 401, 403, 503)}}},
        "/api/v1/overview": {"get": {
            "summary": "Services, unresolved incidents, SLOs and the last hour's key figures "
                       "in one call, for a status page (viewer)",
            "tags": ["ops"],
            "description": "Incidents are the caller's tenant's, read fresh. Services, SLOs "
                           "and figures come from Prometheus, are the whole platform's, are "
                           "cached for overview.cache_seconds, and are null with "
                           "prometheus.status 'unavailable' and its error while Prometheus "
                           "does not answer (or 'not_configured'). The business figures "
                           "(revenue, sales) need an all-tenant token.",
            "responses": {**_ok("{generated_at, tenant, incidents, prometheus, services, "
                                "slos, figures}", OBJ), **_errors(401, 403, 503)}}},
        "/docs": {"get": {"summary": "This document in Swagger UI (served from package "
                                     "files, no CDN)", "tags": ["ops"], "security": [],
                          "responses": {"200": {"description": "HTML page",
                                                "content": {"text/html": {}}}}}},
        "/docs/assets/{name}": {"get": {
            "summary": "Swagger UI's script, style and icons", "tags": ["ops"],
            "security": [], "parameters": [{"name": "name", "in": "path", "required": True,
                                            "schema": {"type": "string"}}],
            "responses": {"200": {"description": "the file"},
                          "404": {"description": "no such asset",
                                  "content": {"application/json": {"schema": ERROR}}}}}},
        "/healthz": {"get": {"summary": "Alive", "tags": ["ops"], "security": [],
                             "responses": _ok("alive", OBJ)}},
        "/readyz": {"get": {"summary": "Store reachable and migrated", "tags": ["ops"],
                            "security": [],
                            "responses": {**_ok("ready", OBJ), **_errors(503)}}},
        "/metrics": {"get": {"summary": "Prometheus metrics (optionally basic auth and an "
                                        "IP allowlist)", "tags": ["ops"], "security": [],
                             "responses": {"200": {"description": "text format",
                                                   "content": {"text/plain": {}}}}}},
        "/openapi.json": {"get": {"summary": "This document", "tags": ["ops"], "security": [],
                                  "responses": _ok("OpenAPI 3", OBJ)}},
    },
}


EXTRA_PATHS: dict[str, dict] = {}


def register_paths(paths: dict[str, dict]) -> None:
    """Blueprints of other receiver packages (escalation, anomaly) describe their routes."""
    EXTRA_PATHS.update(paths)


API_ERRORS = (400, 401, 403, 429, 503)  # every /api/v1 operation but the webhook


def document(page_limit_max: int = 500, silence_max: float = 86400.0) -> dict:
    """The whole document for these settings, with the error answers every operation
    shares filled in: unknown query parameters (400), credentials (401/403), the rate
    limit (429), the store (503), a body (413/415) and a path id (404)."""
    doc = copy.deepcopy({**DOCUMENT, "paths": {**DOCUMENT["paths"], **EXTRA_PATHS}})
    for path, item in doc["paths"].items():
        for operation in item.values():
            if path.startswith("/api/v1/") and path != "/api/v1/alertmanager":
                codes = set(API_ERRORS)
                if "requestBody" in operation:
                    codes |= {413, 415}
                if "{" in path:
                    codes.add(404)
                missing = sorted(c for c in codes if str(c) not in operation["responses"])
                operation["responses"].update(_errors(*missing))
            for param in operation.get("parameters", ()):
                if param["name"] == "limit":
                    param["schema"]["maximum"] = page_limit_max
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            duration = body and body["schema"].get("properties", {}).get("duration")
            if duration:
                duration["oneOf"][1]["maximum"] = silence_max
    return doc


@bp.get("/openapi.json")
def openapi():
    settings = receiver().settings
    return jsonify(document(settings.page_limit_max, settings.silence_max))
