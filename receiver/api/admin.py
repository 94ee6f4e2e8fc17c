"""Admin-only: API tokens (create, list, revoke) and the audit log."""

from __future__ import annotations

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
    body = json_object({"name": str, "role": str, "tenant": str}, required=("name", "role"))
    if body["role"] not in ROLES:
        raise ApiError(400, "invalid_field", f"role must be one of {', '.join(ROLES)}", "role")
    tenant = body.get("tenant") or principal.tenant
    if len(tenant) > 100 or len(body["name"]) > 100:
        raise ApiError(400, "invalid_field", "name and tenant are at most 100 characters")
    scope_tenants(principal, [tenant])
    try:
        token_id, token = receiver().store.create_token(body["name"], body["role"], tenant)
    except ValueError as exc:  # tenant '*' for a viewer or operator
        raise ApiError(400, "invalid_field", str(exc), "tenant") from None
    return jsonify(id=token_id, name=body["name"], role=body["role"], tenant=tenant,
                   token=token), 201


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
