"""On-call API: schedules, who is on call, the final schedule, iCalendar feeds,
overrides (with an audit trail), and the Slack Acknowledge button.

Reads need the viewer role, overrides the operator role. The .ics feeds take the same
bearer token (calendar apps that cannot send one subscribe through a proxy, or the
export is fetched by a job). /api/v1/slack/actions authenticates by Slack's request
signature instead of a token (receiver.oncall.slack_signature).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, g, jsonify, request

from receiver.api.common import ApiError, caller, json_object, only_params
from receiver.api.common import receiver as context
from receiver.oncall import answers
from receiver.oncall import overrides as store
from receiver.oncall.service import OnCall
from receiver.oncall.slack_signature import SignatureError, verify
from receiver.store.store import Conflict, NotFound

bp = Blueprint("oncall", __name__)


def oncall() -> OnCall:
    found: OnCall = current_app.extensions["ticketmon_oncall"]
    found.start_background()  # reloads and calendar refreshes, off the request path
    return found


def _schedule(name: str):
    schedule = oncall().schedule(name)
    if schedule is None:
        raise NotFound(f"schedule {name!r} not found")
    return schedule


def _time(value: str | None, name: str = "at") -> datetime:
    try:
        return answers.parse_time(value, name)
    except answers.BadTime as exc:
        raise ApiError(400, "invalid_parameter", str(exc), name) from None


def _period() -> tuple[datetime, datetime]:
    try:
        return answers.period(request.args.get("from"), request.args.get("to"))
    except answers.BadTime as exc:
        raise ApiError(400, "invalid_parameter", str(exc), "from") from None


@bp.get("/api/v1/schedules")
def schedules():
    caller("viewer")
    only_params("at")
    at = _time(request.args.get("at"))
    found = oncall()
    with context().store.transaction(readonly=True) as conn:
        items = [answers.summary(found, conn, s, at) for s in found.schedules]
    return jsonify(schedules=items, at=answers.iso(at), config_error=found.last_error)


@bp.get("/api/v1/schedules/<name>/oncall")
def who(name: str):
    caller("viewer")
    only_params("at")
    schedule, at = _schedule(name), _time(request.args.get("at"))
    with context().store.transaction(readonly=True) as conn:
        return jsonify(answers.who(oncall(), conn, schedule, at))


@bp.get("/api/v1/schedules/<name>/shifts")
def shifts(name: str):
    caller("viewer")
    only_params("from", "to")
    schedule = _schedule(name)
    start, end = _period()
    with context().store.transaction(readonly=True) as conn:
        return jsonify(answers.shifts_json(oncall(), conn, schedule, start, end))


def _ics(body: bytes, name: str) -> Response:
    response = Response(body, mimetype="text/calendar")
    response.headers["Content-Disposition"] = f'inline; filename="{name}.ics"'
    return response


@bp.get("/api/v1/schedules/<name>.ics")
def schedule_ics(name: str):
    caller("viewer")
    only_params("from", "to")
    schedule = _schedule(name)
    start, end = _period()
    with context().store.transaction(readonly=True) as conn:
        return _ics(answers.schedule_ics(oncall(), conn, schedule, start, end), name)


@bp.get("/api/v1/users/<name>.ics")
def user_ics(name: str):
    caller("viewer")
    only_params("from", "to")
    if name not in oncall().people.users:
        raise NotFound(f"user {name!r} not found")
    start, end = _period()
    with context().store.transaction(readonly=True) as conn:
        return _ics(answers.user_ics(oncall(), conn, name, start, end), name)


def _public(item) -> dict:
    return {"id": item.id, "schedule": item.schedule, "user": item.user,
            "start": answers.iso(item.start), "end": answers.iso(item.end),
            "reason": item.reason, "created_by": item.created_by}


@bp.get("/api/v1/schedules/<name>/overrides")
def list_overrides(name: str):
    caller("viewer")
    only_params("from", "to")
    _schedule(name)
    start, end = _period()
    with context().store.transaction(readonly=True) as conn:
        found = store.active(conn, start, end, name)
        trail = store.audit_trail(conn, name, limit=50)
    return jsonify(overrides=[_public(o) for o in found], audit=trail)


@bp.post("/api/v1/schedules/<name>/overrides")
def add_override(name: str):
    principal = caller("operator")
    only_params()
    _schedule(name)
    body = json_object({"user": str, "start": str, "end": str, "reason": str},
                       required=("user", "start", "end"))
    if body["user"] not in oncall().people.users:
        raise ApiError(400, "unknown_user", f"user {body['user']!r} is not in people.yaml",
                       "user")
    start, end = _time(body["start"], "start"), _time(body["end"], "end")
    if end <= start:
        raise ApiError(400, "invalid_field", "end must be after start", "end")
    if (end - start).days > 366:
        raise ApiError(400, "invalid_field", "an override lasts at most 366 days", "end")
    try:
        with context().store.transaction() as conn:
            created = store.add(conn, name, body["user"], start, end, principal.name,
                                datetime.now(UTC), body.get("reason") or "")
    except store.Overlap as exc:
        raise ApiError(409, "overlapping_override", str(exc), "start") from None
    return jsonify(_public(created)), 201


@bp.delete("/api/v1/schedules/<name>/overrides/<int:override_id>")
def delete_override(name: str, override_id: int):
    principal = caller("operator")
    only_params()
    _schedule(name)
    with context().store.transaction() as conn:
        gone = store.remove(conn, name, override_id, principal.name, datetime.now(UTC))
    if gone is None:
        raise NotFound(f"override {override_id} of {name!r} not found")
    return jsonify(_public(gone))


@bp.post("/api/v1/slack/actions")
def slack_actions():
    """Slack's interactive request: the Acknowledge button of a direct message."""
    secret = oncall().settings.slack_signing_secret
    if secret is None:
        raise ApiError(404, "not_found", "Slack actions are not enabled "
                       "(oncall.slack_signing_secret)")
    raw = request.get_data(cache=True)
    try:
        verify(secret.get_secret_value(), request.headers.get("X-Slack-Request-Timestamp"),
               request.headers.get("X-Slack-Signature"), raw)
    except SignatureError as exc:
        raise ApiError(401, "invalid_signature", str(exc)) from None
    try:
        payload = json.loads(request.form.get("payload", ""))
        action = payload["actions"][0]
        slack_user = str(payload["user"]["id"])
    except (ValueError, KeyError, IndexError, TypeError):
        raise ApiError(400, "invalid_payload", "not a Slack block_actions payload") from None
    if action.get("action_id") != "ticketmon_ack" or not str(action.get("value")).isdigit():
        return jsonify(text="nothing to do")
    person = oncall().people.by_slack_id.get(slack_user)
    actor = f"slack:{person.name if person else slack_user}"[:200]
    try:
        incident, changed = context().store.change_incident(
            int(action["value"]), "acknowledge", actor, "*", request_id=g.get("request_id"))
    except Conflict:
        return jsonify(response_type="ephemeral", text="Already resolved.")
    word = "Acknowledged" if changed else f"Already {incident['status']}"
    return jsonify(response_type="ephemeral",
                   text=f"{word}: incident {incident['id']} ({actor}).")


def _openapi() -> None:
    from receiver.api.openapi import OBJ, _errors, _ok, _query, register_paths

    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    oid = {"name": "override_id", "in": "path", "required": True,
           "schema": {"type": "integer"}}
    when = {"type": "string", "format": "date-time"}
    span = [_query("from", "ISO 8601 start (default now)", when),
            _query("to", "ISO 8601 end (default from + 28 days)", when)]
    at = _query("at", "ISO 8601 time (default now)", when)
    ics = {"200": {"description": "iCalendar, one event per shift",
                   "content": {"text/calendar": {}}}}
    tag = ["oncall"]
    register_paths({
        "/api/v1/schedules": {"get": {
            "summary": "Schedules and who is on call in each (viewer)", "tags": tag,
            "parameters": [at], "responses": {**_ok("schedules", OBJ),
                                              **_errors(400, 401, 403, 503)}}},
        "/api/v1/schedules/{name}/oncall": {"get": {
            "summary": "Who is on call at a time: `users`, each with its name (viewer)",
            "tags": tag, "parameters": [name, at],
            "responses": {**_ok("the people on call", OBJ), **_errors(400, 401, 403, 404)}}},
        "/api/v1/schedules/{name}/shifts": {"get": {
            "summary": "The final schedule for a period: layers and overrides resolved (viewer)",
            "tags": tag, "parameters": [name, *span],
            "responses": {**_ok("shifts", OBJ), **_errors(400, 401, 403, 404)}}},
        "/api/v1/schedules/{name}.ics": {"get": {
            "summary": "The final schedule as iCalendar (viewer)", "tags": tag,
            "parameters": [name, *span], "responses": {**ics, **_errors(400, 401, 403, 404)}}},
        "/api/v1/users/{name}.ics": {"get": {
            "summary": "A person's shifts over every schedule as iCalendar (viewer)",
            "tags": tag, "parameters": [name, *span],
            "responses": {**ics, **_errors(400, 401, 403, 404)}}},
        "/api/v1/schedules/{name}/overrides": {
            "get": {"summary": "Overrides in a period and the audit trail (viewer)",
                    "tags": tag, "parameters": [name, *span],
                    "responses": {**_ok("overrides", OBJ), **_errors(400, 401, 403, 404)}},
            "post": {"summary": "Put a person on call for a period (operator); 409 when it "
                                "overlaps another override", "tags": tag,
                     "parameters": [name],
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": {"type": "object", "required": ["user", "start", "end"],
                                    "properties": {k: {"type": "string"} for k in (
                                        "user", "start", "end", "reason")}}}}},
                     "responses": {**_ok("created", OBJ, 201),
                                   **_errors(400, 401, 403, 404, 409, 415)}}},
        "/api/v1/schedules/{name}/overrides/{override_id}": {"delete": {
            "summary": "Remove an override, audited (operator)", "tags": tag,
            "parameters": [name, oid],
            "responses": {**_ok("removed", OBJ), **_errors(401, 403, 404)}}},
        "/api/v1/slack/actions": {"post": {
            "summary": "Slack interactive requests (the Acknowledge button); verified by "
                       "Slack's v0 request signature, refused when older than 5 minutes",
            "tags": tag, "security": [],
            "responses": {**_ok("handled", OBJ), **_errors(400, 401, 404)}}},
    })


_openapi()
