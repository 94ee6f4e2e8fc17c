"""GET /openapi.json: an OpenAPI 3 description of every endpoint (tested against the routes)."""

from __future__ import annotations

from flask import Blueprint, jsonify

bp = Blueprint("openapi", __name__)

ERROR = {"$ref": "#/components/schemas/Error"}


def _errors(*codes: int, **override: str) -> dict:
    text = {400: "bad input (the body names the field)", 401: "no or wrong credentials",
            403: "role or tenant not allowed", 404: "not found in your tenant scope",
            409: "invalid state transition", 413: "body over max_body_bytes",
            415: "not application/json", 503: "store unavailable: retry"}
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


def _path(name: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "integer"}}


PAGE = [_query("limit", "page size (bounded by page_limit_max)", {"type": "integer"}),
        _query("cursor", "next_cursor of the previous page")]
OBJ = {"type": "object"}
CHANGE_BODY = {"required": False, "content": {"application/json": {"schema": {
    "type": "object", "additionalProperties": False,
    "properties": {"comment": {"type": "string", "maxLength": 2000}}}}}}


def _change(verb: str) -> dict:
    return {"post": {
        "summary": f"{verb.capitalize()} an incident (operator); repeating is harmless",
        "tags": ["incidents"], "parameters": [_path("incident_id")],
        "requestBody": CHANGE_BODY,
        "responses": {**_ok(f"{verb}d (or already so)", OBJ),
                      **_errors(400, 401, 403, 404, 409, 415, 503)}}}


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
                "schema": {"type": "object", "required": ["version", "groupKey", "status",
                                                          "alerts"]}}}},
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
                _query("status", "open, acknowledged, resolved", multiple=True),
                _query("severity", "e.g. critical", multiple=True),
                _query("service", "service label", multiple=True),
                _query("tenant", "within your scope", multiple=True),
                _query("group_key", "Alertmanager groupKey"), *PAGE],
            "responses": {**_ok("{incidents: [...], next_cursor}", OBJ),
                          **_errors(400, 401, 403, 503)}}},
        "/api/v1/incidents/{incident_id}": {"get": {
            "summary": "One incident with its alerts and timeline (viewer)",
            "tags": ["incidents"], "parameters": [_path("incident_id")],
            "responses": {**_ok("{incident: {..., alerts, timeline, anomaly_scores}}", OBJ),
                          **_errors(401, 403, 404, 503)}}},
        "/api/v1/incidents/{incident_id}/acknowledge": _change("acknowledge"),
        "/api/v1/incidents/{incident_id}/resolve": _change("resolve"),
        "/api/v1/incidents/{incident_id}/silence": {
            "post": {
                "summary": "Silence the incident's group in Alertmanager for a bounded time "
                           "(operator); acknowledging never silences",
                "tags": ["incidents"], "parameters": [_path("incident_id")],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "additionalProperties": False, "required": ["duration"],
                    "properties": {
                        "duration": {"oneOf": [{"type": "string", "example": "4h"},
                                               {"type": "number", "minimum": 60}]},
                        "comment": {"type": "string", "maxLength": 2000, "nullable": True}}}}}},
                "responses": {**_ok("{incident, changed}", OBJ),
                              **_errors(400, 401, 403, 404, 409, 415, 503)}},
            "delete": {
                "summary": "Lift the incident's silence now (operator)", "tags": ["incidents"],
                "parameters": [_path("incident_id")],
                "responses": {**_ok("{incident, changed}", OBJ),
                              **_errors(400, 401, 403, 404, 415, 503)}}},
        "/api/v1/alerts": {"get": {
            "summary": "List alert instances, active and past (viewer)", "tags": ["alerts"],
            "parameters": [_query("status", "firing (active) or resolved", multiple=True),
                           _query("label", "name=value", multiple=True),
                           _query("fingerprint", "Alertmanager fingerprint"), *PAGE],
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
                                    "properties": {"name": {"type": "string"},
                                                   "role": {"enum": ["viewer", "operator",
                                                                     "admin"]},
                                                   "tenant": {"type": "string"}}}}}},
                     "responses": {**_ok("created", OBJ, 201),
                                   **_errors(400, 401, 403, 415, 503)}}},
        "/api/v1/tokens/{token_id}": {"delete": {
            "summary": "Revoke an API token (admin)", "tags": ["admin"],
            "parameters": [_path("token_id")],
            "responses": {**_ok("revoked", code=204), **_errors(401, 403, 404, 503)}}},
        "/api/v1/audit": {"get": {
            "summary": "Audit log of acknowledge/resolve (admin)", "tags": ["admin"],
            "parameters": PAGE,
            "responses": {**_ok("{audit: [...], next_cursor}", OBJ),
                          **_errors(400, 401, 403, 503)}}},
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


@bp.get("/openapi.json")
def openapi():
    return jsonify({**DOCUMENT, "paths": {**DOCUMENT["paths"], **EXTRA_PATHS}})
