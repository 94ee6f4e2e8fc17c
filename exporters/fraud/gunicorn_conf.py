"""gunicorn settings of the fraud service: worker model, the shared refitter, metrics files,
access log, garbage collection.

Threaded workers with keep-alive: the checkout calls from a pool of persistent
connections, and a sync worker closes the connection after every answer, so each check
would pay a new TCP connection (bench/fraud_check.py measures both; gthread wins).
`--worker-class`/`--threads` on the command line override these.
"""

import gc
import os
import shutil

from prometheus_client import multiprocess

from exporters.fraud import refitter
from ticketmon.core import logs
from ticketmon.core.gunicorn_access import OptInAccessLogger


class Logger(OptInAccessLogger):
    """An access line per check only with TICKETMON_FRAUD_ACCESS_LOG set."""

    env = "TICKETMON_FRAUD_ACCESS_LOG"


logger_class = Logger
worker_class = "gthread"
threads = 4
keepalive = 30  # seconds an idle pooled connection stays open (gunicorn's default is 2)
logconfig_dict = logs.gunicorn_logconfig()  # gunicorn's and the app's lines: JSON, redacted


def when_ready(server) -> None:
    """Start the one outlier refitter of this service before the workers fork, so every
    worker inherits its address (TICKETMON_FRAUD_REFITTER=off: none, e.g. for the
    bench's null app; the fraud app would then start one per worker)."""
    if os.environ.get("TICKETMON_FRAUD_REFITTER", "shared") != "off":
        refitter.shared = refitter.Refitter().start(supervise=True)
        server.log.info("fraud outlier refitter started at %s", refitter.shared.address)


def post_fork(server, worker) -> None:  # noqa: ARG001 - gunicorn's hook signature
    if refitter.shared is not None:
        refitter.shared.forget()


def post_worker_init(worker) -> None:  # noqa: ARG001
    """The application is loaded: its objects (modules, models, settings) live as long as
    the worker, so keep them out of the garbage collector's passes, which otherwise walk
    them all again every few thousand requests and stall the requests meanwhile."""
    gc.freeze()


def child_exit(server, worker) -> None:  # noqa: ARG001
    """Fold a dead worker's live gauges out of /metrics (its counters stay summed)."""
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:  # noqa: ARG001
    """Stop the refitter; remove the metrics directory the launcher made for this run."""
    if refitter.shared is not None:
        refitter.shared.stop()
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path and os.environ.get("TICKETMON_FRAUD_REMOVE_METRICS_DIR") == "1":
        shutil.rmtree(path, ignore_errors=True)
