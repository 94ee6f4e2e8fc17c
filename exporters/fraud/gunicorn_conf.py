"""gunicorn settings of the fraud service: multiprocess metrics bookkeeping per worker."""

import os
import shutil
import sys

from prometheus_client import multiprocess


def post_fork(server, worker) -> None:  # noqa: ARG001
    """A short GIL switch interval: the request thread must not wait 5 ms behind the
    background writer or refit thread each time it comes back from a socket call."""
    sys.setswitchinterval(0.0005)


def child_exit(server, worker) -> None:  # noqa: ARG001 - gunicorn's hook signature
    """Fold a dead worker's live gauges out of /metrics (its counters stay summed)."""
    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:  # noqa: ARG001
    """Remove the metrics directory the launcher made for this run."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path and os.environ.get("TICKETMON_FRAUD_REMOVE_METRICS_DIR") == "1":
        shutil.rmtree(path, ignore_errors=True)
