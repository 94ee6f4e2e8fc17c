"""Operations endpoints: liveness, readiness (store reachable and migrated), metrics."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST

from receiver.api.common import error_body, receiver
from receiver.store import StoreUnavailable
from receiver.store.migrate import head

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    try:
        revision = receiver().store.schema_revision()
    except StoreUnavailable as exc:
        return jsonify(error_body("store_unavailable", str(exc))), 503
    expected = head()
    if revision != expected:
        return jsonify(error_body(
            "schema_outdated",
            f"database schema is at {revision or 'nothing'}, the code needs {expected}: "
            "run `ticketmon receiver db upgrade`")), 503
    return jsonify(status="ready", schema=revision)


@bp.get("/metrics")
def metrics():
    return Response(receiver().metrics.exposition(), mimetype=None,
                    content_type=CONTENT_TYPE_LATEST)
