"""Admin-only: API tokens (create, list, rotate, revoke) and the audit log."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, jsonify

from receiver.api.common import (
    ApiError,
    caller,
    cursor_param,
    json_object,
    limit_param,
    only_params,
    receiver,
    scope_tenants,
)
from receiver.store import queries
from receiver.store.store import NotFound
from ticketmon.core.auth import ROLES

bp = Blueprint("admin", __name__)
# bounds of a token's lifetime and of a rotation's grace period, in seconds
LIFETIME = (60, 10 * 366 * 86400)
GRACE_MAX = 7 * 86400


def _seconds(body: dict, name: str, low: int, high: int) -> timedelta | None:
    """An optional whole number of seconds within bounds (a bool is not a number)."""
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(400, "invalid_field",
                       f"{name} must be a whole number of seconds from {low} to {high}", name)
    return timedelta(seconds=value) if value else None


@bp.get("/api/v1/tokens")
def list_tokens():
    principal = caller("admin")
    only_params()
    return jsonify(tokens=receiver().store.read_as(principal.tenant, queries.list_tokens,
                                                  principal.tenant))


@bp.post("/api/v1/tokens")
def create_token():
    principal = caller("admin")
    only_params()
    body = json_object({"name": str, "role": str, "tenant": str, "expires_in": int},
                       required=("name", "role"))
    if body["role"] not in ROLES:
        raise ApiError(400, "invalid_field", f"role must be one of {', '.join(ROLES)}", "role")
    tenant = body.get("tenant") or principal.tenant
    if len(tenant) > 100 or len(body["name"]) > 100:
        raise ApiError(400, "invalid_field", "name and tenant are at most 100 characters")
    scope_tenants(principal, [tenant])
    expires_in = _seconds(body, "expires_in", *LIFETIME)
    try:
        token_id, token = receiver().store.create_token(body["name"], body["role"], tenant,
                                                        expires_in)
    except ValueError as exc:  # tenant '*' for a viewer or operator
        raise ApiError(400, "invalid_field", str(exc), "tenant") from None
    created = next(t for t in receiver().store.read(queries.list_tokens, tenant)
                   if t["id"] == token_id)
    return jsonify(id=token_id, name=body["name"], role=body["role"], tenant=tenant,
                   expires_at=created["expires_at"], token=token), 201


@bp.post("/api/v1/tokens/<int:token_id>/rotate")
def rotate_token(token_id: int):
    """A new secret for the same name, role and tenant; the old one is revoked now or,
    with `grace` seconds, expires then so its clients can switch over."""
    principal = caller("admin")
    only_params()
    body = json_object({"grace": int, "expires_in": int}, optional_body=True)
    rotated = receiver().store.rotate_token(token_id, principal.tenant,
                                            grace=_seconds(body, "grace", 0, GRACE_MAX),
                                            expires_in=_seconds(body, "expires_in", *LIFETIME))
    if rotated is None:
        raise NotFound(f"token {token_id} not found")
    return jsonify(rotated), 201


@bp.delete("/api/v1/tokens/<int:token_id>")
def revoke_token(token_id: int):
    principal = caller("admin")
    only_params()
    if not receiver().store.revoke_token(token_id, principal.tenant):
        raise NotFound(f"token {token_id} not found")
    return "", 204


@bp.get("/api/v1/audit")
def audit():
    principal = caller("admin")
    only_params("limit", "cursor")
    rows, cursor = receiver().store.read_as(principal.tenant, queries.list_audit,
                                            principal.tenant, limit_param(), cursor_param())
    return jsonify(audit=rows, next_cursor=cursor)
