"""Incidents: list (filters, cursor pages), one with its alerts and timeline, ack/resolve."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from receiver.api.common import (
    caller,
    cursor_param,
    json_object,
    limit_param,
    multi,
    only_params,
    receiver,
    scope_tenants,
)
from receiver.store import queries
from receiver.store.store import NotFound

bp = Blueprint("incidents", __name__)
STATUSES = ("open", "acknowledged", "resolved")


@bp.get("/api/v1/incidents")
def list_incidents():
    principal = caller("viewer")
    only_params("status", "severity", "service", "tenant", "group_key", "limit", "cursor")
    flt = queries.IncidentFilter(status=multi("status", STATUSES), severity=multi("severity"),
                                 service=multi("service"), tenant=multi("tenant", max_len=100))
    flt.group_key = request.args.get("group_key") or None
    scope_tenants(principal, flt.tenant)
    rows, cursor = receiver().store.read(queries.list_incidents, principal.tenant, flt,
                                         limit_param(), cursor_param())
    return jsonify(incidents=rows, next_cursor=cursor)


@bp.get("/api/v1/incidents/<int:incident_id>")
def get_incident(incident_id: int):
    principal = caller("viewer")
    only_params()
    incident = receiver().store.read(queries.get_incident, principal.tenant, incident_id)
    if incident is None:
        raise NotFound(f"incident {incident_id} not found")
    return jsonify(incident=incident)


def _change(incident_id: int, action: str):
    principal = caller("operator")
    only_params()
    body = json_object({"comment": str}, optional_body=True)
    incident, changed = receiver().store.change_incident(
        incident_id, action, principal.name, principal.tenant, comment=body.get("comment"),
        request_id=g.get("request_id"))
    return jsonify(incident=incident, changed=changed)


@bp.post("/api/v1/incidents/<int:incident_id>/acknowledge")
def acknowledge(incident_id: int):
    return _change(incident_id, "acknowledge")


@bp.post("/api/v1/incidents/<int:incident_id>/resolve")
def resolve(incident_id: int):
    return _change(incident_id, "resolve")
