"""POST /api/v1/alertmanager: Alertmanager's webhook (payload version 4).

2xx only after commit; 503 when the store is unavailable so Alertmanager retries (it
retries only 5xx, so this endpoint never answers 429).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, json, request

from receiver.api.common import ApiError, receiver
from receiver.payload import parse
from ticketmon.core.auth import check_webhook_token

log = logging.getLogger("receiver.webhook")
bp = Blueprint("webhook", __name__)


@bp.post("/api/v1/alertmanager")
def alertmanager() -> Response:
    ctx = receiver()
    if not ctx.settings.dev:
        check_webhook_token(ctx.settings.webhook_token.get_secret_value(),
                            request.headers.get("Authorization"))
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type",
                       "Alertmanager posts application/json; got "
                       f"{request.mimetype or 'no Content-Type'}")
    payload = parse(request.get_data(cache=False))
    result = ctx.store.ingest(payload)
    m = ctx.metrics
    for status, count in result.received.items():
        if count:
            m.alerts_received.labels(status).inc(count)
    if result.duplicates:
        m.alerts_duplicate.inc(result.duplicates)
    if result.opened or result.resolved:
        log.info("incidents changed", extra={"group_key": payload.groupKey,
                                             "opened": result.opened,
                                             "resolved": result.resolved})
    body = {"status": "ok", "alerts": len(payload.alerts), "changed": result.changed,
            "duplicates": result.duplicates, "incidents_opened": result.opened,
            "incidents_resolved": result.resolved}
    return Response(json.dumps(body), status=200, mimetype="application/json")
