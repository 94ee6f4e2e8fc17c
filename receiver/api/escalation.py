"""Escalation API: dead letters (list, retry), an incident's notifications, ack links.

`/ack/<token>` is the one-click acknowledge link carried by every message. GET shows a
page whose form posts back at once (a person's click acknowledges; a chat preview bot
fetching the URL does not); POST acknowledges as `ack-link:<channel>`. The token's
secret comes from TICKETMON_ACK_LINK_SECRET, the same value the worker signs with.
Rows carry channel names and our own error summaries, never channel credentials.
"""

from __future__ import annotations

import html
import os
import secrets
from datetime import UTC, datetime

from flask import Blueprint, Response, g, jsonify, request

from receiver.api.common import ApiError, caller, cursor_param, limit_param, multi, only_params
from receiver.api.common import receiver as context
from receiver.api.incidents import silence_seconds
from receiver.escalation.ack_links import AckLinks, AckTokenError
from receiver.escalation.listings import list_notifications
from receiver.escalation.outbox import retry_dead
from receiver.store import queries
from receiver.store.store import Conflict, NotFound
from receiver.store.types import iso

bp = Blueprint("escalation", __name__)
STATES = ("pending", "delivering", "delivered", "dead", "cancelled")
SECRET_ENV = "TICKETMON_ACK_LINK_SECRET"
TTL_ENV = "TICKETMON_ACK_LINK_TTL"


def _public(row: dict) -> dict:
    return {k: iso(v) if isinstance(v, datetime) else v for k, v in row.items()}


def _page(rows: list[dict], limit: int):
    cursor = str(rows[-1]["id"]) if len(rows) == limit else None
    return jsonify(notifications=[_public(r) for r in rows], next_cursor=cursor)


@bp.get("/api/v1/dead-letters")
def dead_letters():
    principal = caller("viewer")
    only_params("limit", "cursor")
    limit = limit_param()
    rows = context().store.read_as(principal.tenant, list_notifications, state="dead",
                                   tenant=principal.tenant, limit=limit,
                                   before_id=cursor_param())
    return _page(rows, limit)


@bp.post("/api/v1/dead-letters/<int:notification_id>/retry")
def retry_dead_letter(notification_id: int):
    principal = caller("operator")
    only_params()
    with context().store.transaction(tenant=principal.tenant) as conn:
        done = retry_dead(conn, notification_id, datetime.now(UTC), principal.tenant)
    if not done:
        raise NotFound(f"dead letter {notification_id} not found")
    return jsonify(id=notification_id, state="pending")


@bp.get("/api/v1/incidents/<int:incident_id>/notifications")
def incident_notifications(incident_id: int):
    principal = caller("viewer")
    only_params("state", "limit", "cursor")
    states = multi("state", STATES)
    limit = limit_param()
    rows = context().store.read_as(principal.tenant, _notifications_in_scope, incident_id,
                                   principal.tenant, states or None, limit, cursor_param())
    if rows is None:  # out of scope looks exactly like missing, never like "no rows"
        raise NotFound(f"incident {incident_id} not found")
    return _page(rows, limit)


def _notifications_in_scope(conn, incident_id: int, tenant: str, states: list[str] | None,
                            limit: int, before_id: int | None) -> list[dict] | None:
    """An incident's notifications, or None when the incident is not in the scope."""
    if not queries.incident_in_scope(conn, tenant, incident_id):
        return None
    return list_notifications(conn, state=states, incident_id=incident_id, tenant=tenant,
                              limit=limit, before_id=before_id)


def _links() -> AckLinks:
    secret = os.environ.get(SECRET_ENV, "")
    if not secret:
        raise ApiError(404, "not_found", "acknowledge links are not enabled")
    try:
        ttl = float(os.environ.get(TTL_ENV, "86400"))
    except ValueError:
        ttl = 86400.0
    return AckLinks(secret, request.host_url, ttl)


def _claim(token: str):
    if len(token) > 500:
        raise ApiError(400, "invalid_token", "acknowledge link is not valid")
    try:
        return _links().verify(token)
    except AckTokenError as exc:
        raise ApiError(400, "invalid_token", str(exc)) from None


def _head() -> str:
    """The page's start; its style (and script) carry a nonce the answer's
    Content-Security-Policy allows, and nothing else may run (ticketmon.core.http_security)."""
    g.csp_nonce = secrets.token_urlsafe(16)
    return (f"<!doctype html><html><head><style nonce='{g.csp_nonce}'>"
            "body{font-family:sans-serif}</style></head><body>")


@bp.get("/ack/<token>")
def ack_page(token: str):
    claim = _claim(token)
    safe = html.escape(token, quote=True)
    page = (
        _head() +
        f"<h1>Acknowledge incident {html.escape(claim.incident_id)}</h1>"
        f"<form id='ack' method='post' action='/ack/{safe}'>"
        "<button type='submit'>Acknowledge</button></form>"
        f"<script nonce='{g.csp_nonce}'>document.getElementById('ack').submit()</script>"
        "</body></html>"
    )
    return Response(page, mimetype="text/html")


SILENCE_CHOICES = ("1h", "4h", "8h", "24h")


@bp.post("/ack/<token>")
def ack(token: str):
    """Acknowledge; with the form field `silence` (e.g. 4h), also silence the group in
    Alertmanager for that long: the option the page offers after acknowledging."""
    claim = _claim(token)
    if not claim.incident_id.isdigit():
        raise ApiError(400, "invalid_token", "acknowledge link is not valid")
    actor = f"ack-link:{claim.channel}"[:200]
    store, incident_id = context().store, int(claim.incident_id)
    silence = request.form.get("silence") or request.args.get("silence")
    seconds = silence_seconds(silence, context().settings.silence_max) if silence else None
    try:
        incident, changed = store.change_incident(
            incident_id, "acknowledge", actor, "*", request_id=g.get("request_id"))
        if seconds is not None:
            incident, _ = store.silence_incident(incident_id, seconds, actor, "*",
                                                 request_id=g.get("request_id"))
    except Conflict:
        incident, changed = {"id": incident_id, "status": "resolved"}, False
    if request.accept_mimetypes.best == "application/json":
        return jsonify(incident_id=incident["id"], status=incident["status"], changed=changed,
                       silenced_until=incident.get("silenced_until"))
    word = "Acknowledged" if changed else f"Already {incident['status']}"
    page = f"{_head()}<p>{word}: incident {incident['id']}.</p>"
    if incident.get("silenced_until"):
        page += f"<p>Silenced in Alertmanager until {html.escape(incident['silenced_until'])}.</p>"
    elif incident["status"] != "resolved":
        safe = html.escape(token, quote=True)
        options = "".join(f"<option>{c}</option>" for c in SILENCE_CHOICES)
        page += (f"<form method='post' action='/ack/{safe}'><label>Also silence in "
                 f"Alertmanager for <select name='silence'>{options}</select></label> "
                 "<button type='submit'>Silence</button></form><p><small>While silenced, "
                 "Alertmanager sends nothing for this group, not even its resolution; "
                 "ticketmon learns of it from its reconciliation with Alertmanager."
                 "</small></p>")
    return Response(page + "</body></html>", mimetype="text/html")


def _openapi() -> None:
    from receiver.api.openapi import OBJ, PAGE, _errors, _ok, _path, _query, register_paths

    token = {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
    register_paths({
        "/api/v1/dead-letters": {"get": {
            "summary": "Notifications that will not be delivered (viewer)",
            "tags": ["escalation"], "parameters": PAGE,
            "responses": {**_ok("a page of dead letters", OBJ), **_errors(400, 401, 403, 503)}}},
        "/api/v1/dead-letters/{notification_id}/retry": {"post": {
            "summary": "Queue a dead letter again (operator)", "tags": ["escalation"],
            "parameters": [_path("notification_id")],
            "responses": {**_ok("queued", OBJ), **_errors(401, 403, 404, 503)}}},
        "/api/v1/incidents/{incident_id}/notifications": {"get": {
            "summary": "An incident's notifications and their delivery state (viewer)",
            "tags": ["escalation"],
            "parameters": [_path("incident_id"),
                           _query("state", "filter by state",
                                  {"type": "string", "enum": list(STATES)}, multiple=True),
                           *PAGE],
            "responses": {**_ok("a page of notifications", OBJ),
                          **_errors(400, 401, 403, 404, 503)}}},
        "/ack/{token}": {
            "get": {"summary": "One-click acknowledge page (signed, expiring link)",
                    "tags": ["escalation"], "security": [], "parameters": [token],
                    "responses": {"200": {"description": "HTML page",
                                          "content": {"text/html": {}}},
                                  **_errors(400, 404)}},
            "post": {"summary": "Acknowledge through a signed link; form field `silence` "
                                "(e.g. 4h) also silences the group in Alertmanager",
                     "tags": ["escalation"], "security": [], "parameters": [token],
                     "responses": {**_ok("acknowledged (or already so)", OBJ),
                                   **_errors(400, 404, 503)}}},
    })


_openapi()
