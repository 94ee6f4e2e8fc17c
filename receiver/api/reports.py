"""Report history: which scheduled report went out for which period, and its file."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from flask import Blueprint, jsonify, request, send_file

from receiver.api.common import ApiError, caller, limit_param, only_params, receiver
from receiver.store.store import NotFound
from ticketmon.core.auth import ALL_TENANTS
from ticketmon.reports.history import report_runs

bp = Blueprint("reports", __name__)
STATES = ("running", "retry", "delivered", "failed")
COLUMNS = ("id", "report", "tenant", "period_start", "period_end", "state", "attempts",
           "created_at", "finished_at", "next_attempt_at", "detail", "format", "recipients")


def _visible(tenant: str):
    """Tenant rules as elsewhere: a scoped caller sees only its tenant's reports."""
    return sa.true() if tenant == ALL_TENANTS else report_runs.c.tenant == tenant


def _list(conn, tenant: str, report: str | None, state: str | None, limit: int) -> list:
    r = report_runs.c
    query = sa.select(*(getattr(r, c) for c in COLUMNS), r.file).where(_visible(tenant))
    if report:
        query = query.where(r.report == report)
    if state:
        query = query.where(r.state == state)
    rows = conn.execute(query.order_by(r.id.desc()).limit(limit)).mappings().all()
    out = []
    for row in rows:
        item = {k: (v.isoformat() if hasattr(v, "isoformat") else v)
                for k, v in row.items() if k != "file"}
        item["has_file"] = bool(row["file"])
        out.append(item)
    return out


def _file(conn, tenant: str, run_id: int) -> tuple[str | None, str] | None:
    r = report_runs.c
    row = conn.execute(sa.select(r.file, r.format).where(r.id == run_id, _visible(tenant))
                       ).first()
    return None if row is None else (row.file, row.format)


@bp.get("/api/v1/reports")
def list_reports():
    principal = caller("viewer")
    only_params("report", "state", "limit")
    state = request.args.get("state") or None
    if state is not None and state not in STATES:
        raise ApiError(400, "invalid_parameter", f"state must be one of {', '.join(STATES)}",
                       "state")
    rows = receiver().store.read(_list, principal.tenant, request.args.get("report") or None,
                                 state, limit_param())
    return jsonify(reports=rows)


@bp.get("/api/v1/reports/<int:run_id>/file")
def report_file(run_id: int):
    principal = caller("viewer")
    only_params()
    found = receiver().store.read(_file, principal.tenant, run_id)
    if found is None:
        raise NotFound(f"report run {run_id} not found")
    path, fmt = found
    if not path or not Path(path).is_file():
        raise NotFound(f"report run {run_id} has no file (not built, or removed)")
    mimetype = {"html": "text/html", "md": "text/markdown", "json": "application/json"}[fmt]
    return send_file(Path(path).resolve(), mimetype=mimetype)


def _openapi() -> None:
    from receiver.api.openapi import (
        OBJ,
        PAGE,
        _errors,
        _ok,
        _path,
        _query,
        register_paths,
        text,
    )

    register_paths({
        "/api/v1/reports": {"get": {
            "summary": "Scheduled report runs, newest first; a tenant's callers see its "
                       "reports (viewer)", "tags": ["reports"],
            "parameters": [_query("report", "report name (reports/NAME.yaml)", text(100)),
                           _query("state", "running, retry, delivered or failed",
                                  {"type": "string", "enum": list(STATES)}),
                           PAGE[0]],
            "responses": {**_ok("{reports: [...]}", OBJ), **_errors(400, 401, 403, 503)}}},
        "/api/v1/reports/{run_id}/file": {"get": {
            "summary": "The rendered report of one run (HTML, Markdown or JSON) (viewer)",
            "tags": ["reports"], "parameters": [_path("run_id")],
            "responses": {"200": {"description": "the report file"},
                          **_errors(401, 403, 404, 503)}}},
    })


_openapi()
