"""Alerts: active and past instances, filtered by status and labels; one with its history."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from receiver.api.common import (
    ApiError,
    caller,
    cursor_param,
    limit_param,
    multi,
    only_params,
    receiver,
)
from receiver.store import queries
from receiver.store.store import NotFound

bp = Blueprint("alerts", __name__)


def label_filters() -> dict[str, str]:
    """?label=service=checkout&label=severity=critical"""
    labels = {}
    for raw in request.args.getlist("label"):
        name, sep, value = raw.partition("=")
        if not sep or not name or len(raw) > 500:
            raise ApiError(400, "invalid_parameter", "label must look like name=value", "label")
        labels[name] = value
    return labels


@bp.get("/api/v1/alerts")
def list_alerts():
    principal = caller("viewer")
    only_params("status", "label", "fingerprint", "limit", "cursor")
    fingerprint = request.args.get("fingerprint") or None
    if fingerprint is not None and (len(fingerprint) > 64 or not fingerprint.isascii()
                                    or not fingerprint.isalnum()):
        raise ApiError(400, "invalid_parameter", "fingerprint must be hexadecimal",
                       "fingerprint")
    flt = queries.AlertFilter(status=multi("status", ("firing", "resolved")),
                              labels=label_filters(), fingerprint=fingerprint)
    rows, cursor = receiver().store.read_as(principal.tenant, queries.list_alerts,
                                            principal.tenant, flt,
                                         limit_param(), cursor_param())
    return jsonify(alerts=rows, next_cursor=cursor)


@bp.get("/api/v1/alerts/<int:alert_id>")
def get_alert(alert_id: int):
    principal = caller("viewer")
    only_params()
    alert = receiver().store.read_as(principal.tenant, queries.get_alert,
                                     principal.tenant, alert_id)
    if alert is None:
        raise NotFound(f"alert {alert_id} not found")
    return jsonify(alert=alert)
