"""`ticketmon receiver worker`: run the escalation worker with its /metrics endpoint.

/metrics sits behind the same guard as every component's (basic auth, allowlist, when
configured: `metrics_guard`); /healthz stays open for container health checks.
"""

from __future__ import annotations

import json
import signal
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from receiver.escalation.settings import WorkerSettings
from receiver.escalation.worker import Worker
from receiver.store import worker_lock
from ticketmon.core import ports


def main(args) -> int:
    from prometheus_client import CollectorRegistry

    from receiver.store import migrate
    from ticketmon.core import config, logs

    settings = config.load(WorkerSettings, getattr(args, "config", None))
    logs.setup(settings.log_level)
    if not settings.channels:
        raise config.ConfigError("channels: none configured: pass --config FILE with a "
                                 "channels: section (see deploy/ticketmon/worker.yaml)")
    registry = CollectorRegistry()
    worker = Worker(settings, registry)  # refuses bad settings before the database is touched
    migrate.ensure_present(settings, creatable=True)
    lock = worker_lock.single_worker_lock(settings.database_url)  # noqa: F841 - kept open until exit
    migrate.require(settings, upgrade_sqlite=True)
    if settings.metrics_port:
        serve_metrics(settings, registry)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stop())
    worker.run()
    return 0


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        pass


def metrics_app(settings: WorkerSettings, registry):
    """/metrics (guarded) and /healthz (open) as one WSGI app."""
    from prometheus_client import make_wsgi_app

    from ticketmon.core.metrics_guard import Guard

    metrics = make_wsgi_app(registry)

    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            body = json.dumps({"status": "ok"}).encode()
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(body)))])
            return [body]
        if path.startswith("/metrics") or path == "/":
            return metrics(environ, start_response)
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [b'{"error": "not found"}']

    return Guard(app, settings.metrics_guard,
                 protected=lambda path: path.startswith("/metrics") or path == "/")


def serve_metrics(settings: WorkerSettings, registry) -> WSGIServer:
    with ports.listening(settings.metrics_host, settings.metrics_port, "metrics_port"):
        server = make_server(settings.metrics_host, settings.metrics_port,
                             metrics_app(settings, registry), server_class=_Server,
                             handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True).start()
    return server


def register(subparsers) -> None:
    """Adds `worker` to the `ticketmon receiver` group."""
    parser = subparsers.add_parser("worker", help="escalate incidents and deliver notifications")
    parser.add_argument("--config", help="YAML settings (default $TICKETMON_CONFIG)")
    parser.set_defaults(func=main)
