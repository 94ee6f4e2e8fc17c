"""`ticketmon receiver worker`: run the escalation worker with its /metrics endpoint."""

from __future__ import annotations

import signal

from receiver.escalation.settings import WorkerSettings
from receiver.escalation.worker import Worker
from receiver.store import worker_lock


def main(args) -> int:
    from prometheus_client import CollectorRegistry, start_http_server

    from receiver.store import migrate
    from ticketmon.core import config, logs

    settings = config.load(WorkerSettings, getattr(args, "config", None))
    logs.setup(settings.log_level)
    lock = worker_lock.single_worker_lock(settings.database_url)  # noqa: F841 - kept open until exit
    if settings.database_url.startswith("sqlite"):
        migrate.upgrade(settings.database_url)
    registry = CollectorRegistry()
    worker = Worker(settings, registry)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, settings.metrics_host, registry=registry)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stopping.set())
    worker.run()
    return 0


def register(subparsers) -> None:
    """Adds `worker` to the `ticketmon receiver` group."""
    parser = subparsers.add_parser("worker", help="escalate incidents and deliver notifications")
    parser.add_argument("--config", help="YAML settings (default $TICKETMON_CONFIG)")
    parser.set_defaults(func=main)
