"""GET /openapi.json of the fraud check service: every route and every error answer.

The check's body schema is generated from the pydantic model that parses it
(exporters.fraud.request.CheckRequest), so the document cannot drift from the parser;
OpenAPI 3.1 because that is the JSON Schema dialect pydantic writes.
"""

from __future__ import annotations

from exporters.fraud.metrics import LEVELS
from exporters.fraud.request import CheckRequest
from exporters.fraud.settings import FraudSettings

ERROR = {"type": "object", "required": ["error"], "properties": {
    "error": {"type": "string"},
    "fields": {"type": "array", "items": {
        "type": "object", "required": ["field", "message"],
        "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}}}}
TEXTS = {400: "bad input (`fields` names each field)", 401: "no or wrong credentials",
         403: "the token's role is not allowed here", 404: "no such route",
         413: "body over 64 KiB"}


def _errors(*codes: int) -> dict:
    return {str(c): {"description": TEXTS[c], "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Error"}}}} for c in codes}


def _time(name: str, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": "number", "minimum": 0}}


RESULT = {"type": "object", "required": ["check_id", "risk_score", "risk_level", "decision",
                                         "patterns", "outlier_score", "confidence"],
          "properties": {
              "check_id": {"type": "string"},
              "risk_score": {"type": "integer", "minimum": 0, "maximum": 100},
              "risk_level": {"type": "string", "enum": list(LEVELS)},
              "decision": {"type": "string", "enum": ["allow", "review", "block"]},
              "patterns": {"type": "array", "items": {"type": "object"}},
              "outlier_score": {"type": ["number", "null"]},
              "confidence": {"type": ["number", "null"]}}}
ANNOTATION = {"type": "object", "required": ["time", "title", "text", "tags"], "properties": {
    "time": {"type": "integer"}, "title": {"type": "string"}, "text": {"type": "string"},
    "tags": {"type": "array", "items": {"type": "string"}}}}


def document(settings: FraudSettings) -> dict:
    """The document for these settings: the roles named are the configured ones."""
    body = CheckRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas = {"Error": ERROR, **body.pop("$defs", {}), "CheckRequest": body}
    check_role, events_role = settings.auth.check_role, settings.auth.events_role
    return {
        "openapi": "3.1.0",
        "info": {"title": "ticketmon fraud check", "version": "1",
                 "description": "Scores purchase attempts; lists high-risk ones for Grafana."},
        "components": {"schemas": schemas, "securitySchemes": {"bearer": {
            "type": "http", "scheme": "bearer",
            "description": "API token from the config file or a platform JWT"}}},
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/fraud/check": {"post": {
                "summary": f"Score one purchase attempt ({check_role})", "tags": ["fraud"],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/CheckRequest"}}}},
                "responses": {"200": {"description": "the score and its reasons",
                                      "content": {"application/json": {"schema": RESULT}}},
                              **_errors(400, 401, 403, 413)}}},
            "/api/v1/fraud/events": {"get": {
                "summary": f"Recent high-risk checks as Grafana annotations ({events_role})",
                "tags": ["fraud"],
                "parameters": [
                    _time("since", "unix seconds or ms (default: 6 hours ago)"),
                    _time("until", "unix seconds or ms (default: now)"),
                    _time("from", "Grafana's name for since"),
                    _time("to", "Grafana's name for until"),
                    {"name": "limit", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": 1000}},
                    {"name": "min_level", "in": "query", "required": False,
                     "schema": {"type": "string", "enum": list(LEVELS)}},
                    {"name": "tenant", "in": "query", "required": False,
                     "description": "default: the caller's; another tenant, or '*' for "
                                    "every tenant, needs an all-tenant admin",
                     "schema": {"type": "string", "minLength": 1, "maxLength": 100,
                                "pattern": "^[^\\u0000]*$"}}],
                "responses": {"200": {"description": "annotations, newest first",
                                      "content": {"application/json": {"schema": {
                                          "type": "array", "items": ANNOTATION}}}},
                              **_errors(400, 401, 403)}}},
            "/metrics": {"get": {
                "summary": "Prometheus metrics (optionally basic auth and an IP allowlist)",
                "tags": ["ops"], "security": [],
                "responses": {"200": {"description": "text format",
                                      "content": {"text/plain": {}}}}}},
            "/healthz": {"get": {"summary": "Alive, with the outlier model's state",
                                 "tags": ["ops"], "security": [],
                                 "responses": {"200": {"description": "alive", "content": {
                                     "application/json": {"schema": {"type": "object"}}}}}}},
            "/openapi.json": {"get": {"summary": "This document", "tags": ["ops"],
                                      "security": [],
                                      "responses": {"200": {"description": "OpenAPI 3.1",
                                                            "content": {"application/json": {
                                                                "schema": {
                                                                    "type": "object"}}}}}}},
        },
    }
