"""The fraud check service: Flask app factory, routes and the check itself.

POST /api/v1/fraud/check    score one purchase attempt (token with the check role)
GET  /api/v1/fraud/events   recent high-risk checks, for Grafana annotations (viewer)

Tenancy: a check belongs to the caller's tenant. A caller scoped to one tenant may name
it in the body (`tenant`) or leave it out; naming another is a 403. An all-tenant caller
(admin, or auth disabled) names the tenant in the body, "default" when it does not.
Events answer the caller's tenant only; every tenant (or `?tenant=` of another) needs
admin with scope '*'.
GET  /metrics               Prometheus metrics (guarded by basic auth / allowlist if set)
GET  /healthz               liveness and readiness
GET  /openapi.json          OpenAPI 3.1 description of all of these

The request path does only in-memory work: validate, look up the user's history,
evaluate the patterns, score against the last fitted outlier model, queue the record.
The check route is plain WSGI in front of Flask (exporters.fraud.check_route): Flask's
dispatch cost about as much as the check.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import threading
import time
from collections.abc import Callable

from flask import Flask, Response, request
from pydantic import ValidationError
from pydantic_core import to_json

from exporters.fraud import patterns as patterns_mod
from exporters.fraud.check_route import MAX_BODY, PATH, CheckRoute, authorize, error
from exporters.fraud.history import UserHistory
from exporters.fraud.metrics import LEVELS, FraudMetrics
from exporters.fraud.openapi import document
from exporters.fraud.outlier import OutlierModel
from exporters.fraud.recorder import DEFAULT_TENANT, Recorder
from exporters.fraud.request import describe, parse
from exporters.fraud.settings import FraudSettings
from ticketmon.core import config
from ticketmon.core.auth import ALL_TENANTS, DEV_PRINCIPAL, Authenticator, Principal
from ticketmon.core.metrics_guard import Guard
from ticketmon.core.plain_wsgi import add_rule

log = logging.getLogger("ticketmon.fraud")

MAX_EVENTS = 1000
EVENTS_PARAMS = {"since", "until", "from", "to", "limit", "min_level", "tenant"}


def _json(doc: object, status: int = 200) -> Response:
    """Compact JSON from pydantic-core's encoder, a few times quicker than the json module's
    on every answer (UTF-8 rather than \\u escapes; the same values)."""
    return Response(to_json(doc), status, mimetype="application/json")


def _error(status: int, message: str, **extra: object) -> Response:
    return _json(*error(status, message, **extra))


class CheckIds:
    """Unique check ids without a random draw per check (os.urandom is a system call):
    64 random bits per process, drawn again in a forked child, then a counter."""

    def __init__(self) -> None:
        self._draw()
        os.register_at_fork(after_in_child=self._draw)

    def _draw(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._count = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._count):016x}"


check_ids = CheckIds()  # one per process; a forked child draws its own prefix


class FraudService:
    """Everything a worker keeps between requests; background threads start per process."""

    TICK_SECONDS = 1.0  # metrics fold-in and history gauge

    def __init__(self, settings: FraudSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        names = list(type(settings.patterns).model_fields)
        self.metrics = FraudMetrics(names)
        self.history = UserHistory(settings.history.max_users, settings.history.ttl_seconds)
        o = settings.outlier
        self.outlier = OutlierModel(o.detector, o.window, len(patterns_mod.FEATURES),
                                    o.min_samples, o.refit_seconds)
        r = settings.recorder
        key = settings.ip_hmac_key.get_secret_value().encode() if settings.ip_hmac_key else None
        self.recorder = Recorder(settings.database_url, r.queue_size, r.batch_size,
                                 r.flush_seconds, on_drop=self.metrics.record_dropped,
                                 ip_storage=settings.ip_storage, ip_key=key,
                                 retention_seconds=settings.retention_days * 86400,
                                 prune_interval=settings.prune_interval_seconds, clock=clock)
        self.auth = None if settings.auth.disabled else Authenticator(
            settings.auth.jwt, settings.auth.tokens)
        self._pid: int | None = None
        self._stop = threading.Event()
        # (level, decision) of every score 0..100, looked up per check
        self.verdicts = [(self.level(score), self.decision(score)) for score in range(101)]

    def ensure_started(self) -> None:
        """Start the background threads once per process (gunicorn forks after import)."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._stop.clear()
            self.outlier.start()
            self.recorder.start()
            threading.Thread(target=self._tick, name="fraud-metrics", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        self.outlier.stop()
        self.recorder.stop()

    def _tick(self) -> None:
        while not self._stop.wait(self.TICK_SECONDS):
            self.metrics.flush()
            self.metrics.history_users.set(len(self.history))

    def level(self, score: int) -> str:
        lv = self.settings.levels
        if score >= lv.critical_from:
            return "critical"
        if score >= lv.high_from:
            return "high"
        if score >= lv.medium_from:
            return "medium"
        return "low"

    def decision(self, score: int) -> str:
        lv = self.settings.levels
        if score >= lv.block_from:
            return "block"
        return "review" if score >= lv.review_from else "allow"

    def check(self, body: bytes, principal: Principal = DEV_PRINCIPAL) -> tuple[dict, int]:
        started = time.perf_counter()
        try:
            req = parse(body)
        except ValidationError as exc:
            self.metrics.record_rejected()
            return {"error": "invalid check request", "fields": describe(exc)}, 400
        if principal.all_tenants:
            tenant = req.tenant or DEFAULT_TENANT
        elif req.tenant is None or req.tenant == principal.tenant:
            tenant = principal.tenant
        else:
            return {"error": f"tenant {req.tenant!r} is outside your scope "
                             f"({principal.tenant})", "field": "tenant"}, 403
        now = self.clock()
        user = req.user_id
        geo = (req.geo.lat, req.geo.lon) if req.geo is not None else None
        earlier, previous = self.history.record(user, now, geo)
        ev = patterns_mod.evaluate(req, self.settings.patterns, now, earlier, previous)
        outlier = self.outlier.score(ev.features)
        patterns_mod.add_outlier(ev, outlier, self.settings.outlier)
        score = min(100, sum(f.contribution for f in ev.fired))
        self.outlier.add(ev.features)
        level, decision = self.verdicts[score]
        check_id = check_ids.next()
        fired = [{"pattern": f.name, "contribution": f.contribution, "detail": f.detail}
                 for f in ev.fired]
        self.recorder.put({
            "check_id": check_id, "checked_at": now, "user_id": user,
            "event_id": req.event_id, "quantity": req.quantity,
            "risk_score": score, "risk_level": level, "decision": decision,
            "patterns": fired, "outlier_score": outlier, "confidence": ev.confidence,
            "ip": req.ip, "tenant": tenant,
        })
        self.metrics.record(level, decision, [f.name for f in ev.fired], score, outlier,
                            time.perf_counter() - started)
        return {"check_id": check_id, "risk_score": score, "risk_level": level,
                "decision": decision, "patterns": fired, "outlier_score": outlier,
                "confidence": ev.confidence}, 200

    def events(self, args: dict, principal: Principal = DEV_PRINCIPAL) -> tuple[object, int]:
        tenant = args.get("tenant") or (ALL_TENANTS if principal.all_tenants
                                        else principal.tenant)
        if len(tenant) > 100:
            return {"error": "tenant is at most 100 characters"}, 400
        if not principal.may_see(tenant):  # '*' included: only an all-tenant admin
            return {"error": f"tenant {tenant!r} is outside your scope ({principal.tenant})"}, 403
        now = self.clock()
        unknown = sorted(set(args) - EVENTS_PARAMS)
        if unknown:  # a misspelt filter silently matching everything is worse than a 400
            return {"error": f"unknown query parameter {unknown[0][:40]!r}; allowed: "
                    f"{', '.join(sorted(EVENTS_PARAMS))}"}, 400
        try:
            for name in ("since", "from", "until", "to"):  # an alias given too is checked
                _time_arg(args.get(name), 0.0)
            since = _time_arg(args.get("since") or args.get("from"), now - 6 * 3600)
            until = _time_arg(args.get("until") or args.get("to"), now)
            limit = int(args.get("limit", 100))
        except ValueError as exc:
            return {"error": str(exc)}, 400
        if not 1 <= limit <= MAX_EVENTS:
            return {"error": f"limit must be between 1 and {MAX_EVENTS}"}, 400
        min_level = args.get("min_level", self.settings.events_min_level)
        if min_level not in LEVELS:
            return {"error": f"min_level must be one of {', '.join(LEVELS)}"}, 400
        rows = self.recorder.events(since, until, min_level, limit, tenant)
        return [_annotation(r) for r in rows], 200


def _time_arg(raw: str | None, default: float) -> float:
    """Unix seconds or milliseconds (Grafana sends ms); anything else is a 400."""
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"time {raw[:40]!r} is not a number of seconds or ms") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"time {raw[:40]!r} is out of range")
    return value / 1000 if value > 1e11 else value


def _annotation(row: dict) -> dict:
    names = [p["pattern"] for p in row["patterns"]]
    return {
        "time": int(row["checked_at"] * 1000),
        "title": f"{row['decision']} ({row['risk_level']}, score {row['risk_score']})",
        "text": f"user {row['user_id']} event {row['event_id']} x{row['quantity']}: "
                + (", ".join(names) or "outlier"),
        "tags": ["fraud", row["risk_level"], row["decision"], *names],
        "check_id": row["check_id"], "tenant": row["tenant"], "user_id": row["user_id"],
        "event_id": row["event_id"],
        "risk_score": row["risk_score"], "outlier_score": row["outlier_score"],
    }


def create_app(settings: FraudSettings | None = None,
               clock: Callable[[], float] = time.time) -> Flask:
    settings = settings or config.load(FraudSettings)
    service = FraudService(settings, clock)
    app = Flask("exporters.fraud")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.extensions["fraud"] = service
    if settings.auth.disabled:
        log.warning("fraud API authentication is DISABLED (auth.disabled): development only")

    @app.get("/api/v1/fraud/events")
    def events() -> Response:
        principal = authorize(service.auth, request.headers.get("Authorization"),
                              settings.auth.events_role)
        if not isinstance(principal, Principal):
            return _json(*principal)
        doc, status = service.events(request.args, principal)
        return _json(doc, status)

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(service.metrics.exposition(),
                        mimetype="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/healthz")
    def healthz() -> Response:
        return _json({"status": "ok", "outlier_model_fits": service.outlier.fits,
                      "outlier_refit_failures": service.outlier.failures,
                      "history_users": len(service.history)})

    @app.get("/openapi.json")
    def openapi() -> Response:
        return _json(document(settings))

    @app.errorhandler(404)
    def not_found(_exc) -> Response:
        return _error(404, "not found")

    @app.errorhandler(405)
    def not_allowed(exc) -> Response:
        answer = _error(405, "method not allowed")
        answer.headers["Allow"] = ", ".join(sorted(exc.valid_methods or ()))
        return answer

    @app.errorhandler(413)
    def too_large(_exc) -> Response:
        return _error(413, f"body larger than {MAX_BODY} bytes")

    # POST /api/v1/fraud/check is answered in front of Flask (see check_route)
    add_rule(app, PATH, "fraud_check")
    flask_app = CheckRoute(app.wsgi_app, service.check, service.auth, settings.auth.check_role)

    def started_app(environ: dict, start_response: Callable) -> object:
        """The background threads start with this process's first request (gunicorn forks
        after import); checked here rather than in a Flask before_request hook, which
        costs more on every request."""
        service.ensure_started()
        return flask_app(environ, start_response)

    app.wsgi_app = Guard(started_app, settings.metrics)  # type: ignore[method-assign]
    return app
