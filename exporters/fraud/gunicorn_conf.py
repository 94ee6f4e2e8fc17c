"""gunicorn settings of the fraud service: multiprocess metrics bookkeeping per worker."""

from prometheus_client import multiprocess


def child_exit(server, worker) -> None:  # noqa: ARG001 - gunicorn's hook signature
    """Fold a dead worker's live gauges out of /metrics (its counters stay summed)."""
    multiprocess.mark_process_dead(worker.pid)
