"""Incidents: list (filters, cursor pages), one with its alerts and timeline, and what a
person does about one: acknowledge, resolve, escalate now, silence in Alertmanager (or
lift it)."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from receiver.api.common import (
    ApiError,
    caller,
    cursor_param,
    json_object,
    limit_param,
    multi,
    only_params,
    receiver,
    scope_tenants,
)
from receiver.payload import stored_group_key
from receiver.store import queries
from receiver.store.store import NotFound
from ticketmon.core.durations import parse_duration

bp = Blueprint("incidents", __name__)
STATUSES = ("open", "acknowledged", "resolved")


@bp.get("/api/v1/incidents")
def list_incidents():
    principal = caller("viewer")
    only_params("status", "severity", "service", "tenant", "group_key", "limit", "cursor")
    flt = queries.IncidentFilter(status=multi("status", STATUSES), severity=multi("severity"),
                                 service=multi("service"), tenant=multi("tenant", max_len=100))
    group_key = request.args.get("group_key")
    flt.group_key = stored_group_key(group_key) if group_key else None
    scope_tenants(principal, flt.tenant)
    rows, cursor = receiver().store.read_as(principal.tenant, queries.list_incidents,
                                            principal.tenant, flt,
                                         limit_param(), cursor_param())
    return jsonify(incidents=rows, next_cursor=cursor)


@bp.get("/api/v1/incidents/<int:incident_id>")
def get_incident(incident_id: int):
    principal = caller("viewer")
    only_params()
    incident = receiver().store.read_as(principal.tenant, queries.get_incident,
                                        principal.tenant, incident_id)
    if incident is None:
        raise NotFound(f"incident {incident_id} not found")
    return jsonify(incident=incident)


def _act(apply, fields: dict | None = None, required: tuple[str, ...] = ()):
    """A person's action on one incident (operator): parse the body, apply, answer.

    `apply(body, principal, request_id)` returns (incident, changed)."""
    principal = caller("operator")
    only_params()
    body = json_object({"comment": str, **(fields or {})}, required=required,
                       optional_body=not required)
    incident, changed = apply(body, principal, g.get("request_id"))
    return jsonify(incident=incident, changed=changed)


def _change(incident_id: int, action: str):
    return _act(lambda body, who, rid: receiver().store.change_incident(
        incident_id, action, who.name, who.tenant, comment=body.get("comment"),
        request_id=rid))


@bp.post("/api/v1/incidents/<int:incident_id>/acknowledge")
def acknowledge(incident_id: int):
    return _change(incident_id, "acknowledge")


@bp.post("/api/v1/incidents/<int:incident_id>/resolve")
def resolve(incident_id: int):
    return _change(incident_id, "resolve")


@bp.post("/api/v1/incidents/<int:incident_id>/escalate")
def escalate(incident_id: int):
    return _act(lambda body, who, rid: receiver().store.escalate_incident(
        incident_id, who.name, who.tenant, comment=body.get("comment"), request_id=rid))


MIN_SILENCE = 60.0


def silence_seconds(raw, longest: float) -> float:
    """A silence's length from a request ('2h', '30m' or seconds), within its bounds."""
    try:
        seconds = parse_duration(raw)
    except ValueError as exc:
        raise ApiError(400, "invalid_field", f"duration: {exc}", "duration") from None
    if not MIN_SILENCE <= seconds <= longest:
        raise ApiError(400, "invalid_field", f"duration must be between {MIN_SILENCE:g}s and "
                       f"{longest:g}s (setting silence_max)", "duration")
    return seconds


@bp.post("/api/v1/incidents/<int:incident_id>/silence")
def silence(incident_id: int):
    """Silence the incident's group in Alertmanager. Explicit, bounded, and never part of
    acknowledge: while it lasts Alertmanager sends nothing for the group, not even the
    resolve, so only reconciliation with Alertmanager ends the incident meanwhile."""
    def apply(body, who, rid):
        seconds = silence_seconds(body["duration"], receiver().settings.silence_max)
        return receiver().store.silence_incident(
            incident_id, seconds, who.name, who.tenant, comment=body.get("comment"),
            request_id=rid)

    return _act(apply, {"duration": (str, int, float)}, required=("duration",))


@bp.delete("/api/v1/incidents/<int:incident_id>/silence")
def unsilence(incident_id: int):
    return _act(lambda body, who, rid: receiver().store.silence_incident(
        incident_id, None, who.name, who.tenant, comment=body.get("comment"),
        request_id=rid))
