"""GET /api/v1/overview: one call for a status page or a frontend (viewer)."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, current_app, jsonify

from receiver.api.common import caller, only_params, receiver
from receiver.overview import PlatformView
from receiver.store import queries
from ticketmon.core.auth import ALL_TENANTS

bp = Blueprint("overview", __name__)


@bp.get("/api/v1/overview")
def overview():
    principal = caller("viewer")
    only_params()
    platform: PlatformView = current_app.extensions["ticketmon_overview"]
    view = dict(platform.get())
    if principal.tenant != ALL_TENANTS and view["figures"] is not None:
        # the business figures are the whole platform's (revenue of every tenant)
        view["figures"] = None
        view["figures_note"] = "platform-wide business figures need an all-tenant token"
    incidents = receiver().store.read_as(principal.tenant, queries.unresolved_summary,
                                         principal.tenant)
    return jsonify(generated_at=datetime.now(UTC).isoformat(), tenant=principal.tenant,
                   incidents=incidents, **view)
