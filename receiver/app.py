"""The receiver's Flask app factory: one place that wires settings, store, auth and API."""

from __future__ import annotations

import importlib
import logging
import time

from flask import Flask, Response, g, jsonify, request
from werkzeug.routing import IntegerConverter

from receiver.anomaly.scores import anomaly_gauges
from receiver.api import (
    admin,
    alerts,
    docs,
    errors,
    escalation,
    incidents,
    oncall,
    openapi,
    ops,
    overview,
    reports,
    webhook,
)
from receiver.api.common import Receiver, request_id
from receiver.console import session as console_session
from receiver.console import views as console
from receiver.escalation.metrics import outbox_gauges
from receiver.metrics import ReceiverMetrics
from receiver.overview import PlatformView
from receiver.ratelimit import TokenBuckets
from receiver.settings import ReceiverSettings
from receiver.store import Store, queries
from receiver.stream import api as stream
from ticketmon.core import logs
from ticketmon.core.auth import Authenticator
from ticketmon.core.config import ConfigError, load
from ticketmon.core.http_security import add_security_headers
from ticketmon.core.metrics_guard import Guard

log = logging.getLogger("receiver")
BLUEPRINTS = (webhook.bp, incidents.bp, alerts.bp, admin.bp, ops.bp, openapi.bp,
              escalation.bp, oncall.bp, reports.bp, overview.bp, docs.bp,
              console.bp, stream.bp)
# the stream server (receiver/stream/wsgi.py): the live stream and the ops endpoints
STREAM_BLUEPRINTS = (stream.bp, ops.bp)


def _load_hook(spec: str):
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"incident_hooks: cannot load {spec!r}: {exc}") from exc


class RowId(IntegerConverter):
    """`<int:…>` in every route: a row id the databases can compare (BIGINT). A longer
    number is no route (404) rather than an overflow in the driver (500); a regex, not
    `max`, because werkzeug answers 405 when only the conversion fails."""

    regex = r"\d{1,18}"


def _oncall(settings: ReceiverSettings):
    """People and schedules (rules/oncall/); a bad file refuses to start, like the rules."""
    from receiver.oncall.service import OnCall

    return OnCall(settings.oncall)  # its refresh thread starts with the first request


def create_app(settings: ReceiverSettings | None = None,
               blueprints: tuple = BLUEPRINTS) -> Flask:
    """Build the app from settings (default: $TICKETMON_CONFIG + TICKETMON_* overrides),
    with every blueprint, or only some (the stream server's)."""
    settings = settings or load(ReceiverSettings)
    if settings.dev:
        log.warning("DEV MODE: authentication is OFF for the API and the webhook; "
                    "never run like this outside a laptop")
    elif settings.webhook_token is None:
        raise ConfigError("set TICKETMON_WEBHOOK_TOKEN (or webhook_token in --config FILE) "
                          "to the webhook's shared token, or pass --dev on a laptop")
    store = Store(settings.database_url, pool_size=settings.pool_size,
                  timeout=settings.store_timeout_seconds)
    for spec in settings.incident_hooks:
        store.add_hook(_load_hook(spec))
    metrics = ReceiverMetrics(store, store_gauges=webhook.bp in blueprints)
    metrics.store_collector.add(outbox_gauges)  # dead letters and pending, from the DB
    metrics.store_collector.add(anomaly_gauges)  # latest scores written by the anomaly job
    store.observe = metrics.store_duration.observe
    auth = Authenticator(settings.jwt, settings.api_tokens,
                         lookup=lambda digest: store.read(queries.find_token, digest))

    app = Flask("receiver")
    app.url_map.converters["int"] = RowId  # before any blueprint adds its routes
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    limiter = TokenBuckets(settings.rate_limit.requests_per_second, settings.rate_limit.burst)
    ctx = Receiver(settings, store, auth, metrics, limiter)
    app.extensions["ticketmon_receiver"] = ctx
    app.extensions["ticketmon_oncall"] = _oncall(settings)
    app.extensions["ticketmon_overview"] = PlatformView(settings.overview)
    for bp in blueprints:
        app.register_blueprint(bp)
    if stream.bp in blueprints:
        stream.install(app, ctx, stream_server=webhook.bp not in blueprints)
    _install_request_hooks(app, settings, metrics)
    _install_error_handler(app, metrics)
    if webhook.bp in blueprints:
        app.wsgi_app = webhook.WebhookRoute(app.wsgi_app, ctx)
    app.wsgi_app = Guard(app.wsgi_app, settings.metrics_guard)
    console_session.configure(app)  # the console's cookie: any app reading it (the stream)
    return app


def _install_request_hooks(app: Flask, settings: ReceiverSettings,
                           metrics: ReceiverMetrics) -> None:
    @app.before_request
    def _start() -> None:
        rid = request_id(request.headers.get("X-Request-Id", ""))
        g.request_id = rid
        g.started = time.perf_counter()
        logs.request_id.set(rid)

    @app.after_request
    def _finish(response: Response) -> Response:
        route = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.http_requests.labels(route, str(response.status_code)).inc()
        response.headers["X-Request-Id"] = g.get("request_id", "")
        add_security_headers(response, https=request.is_secure, hsts=settings.hsts,
                             nonce=g.get("csp_nonce"))
        if log.isEnabledFor(logging.DEBUG):
            log.debug("request", extra={"method": request.method, "route": route,
                                        "code": response.status_code,
                                        "ms": round(1000 * (time.perf_counter()
                                                            - g.get("started", 0)), 2)})
        return response


def _install_error_handler(app: Flask, metrics: ReceiverMetrics) -> None:
    """Every exception a view raises (HTTPException included) is answered as JSON by
    receiver/api/errors.py; blueprints may answer their own first (the console)."""
    @app.errorhandler(Exception)
    def _answer(exc: Exception) -> Response:
        status, body, headers = errors.answer(exc, metrics)
        response = jsonify(body)
        response.status_code = status
        response.headers.update(headers)
        return response
