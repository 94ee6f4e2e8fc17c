"""gunicorn settings of the stream server: threads, not processes, hold the streams.

gthread gives each open stream a thread of one process (a mostly idle thread costs
little; a process each would cost a sync worker's memory), `stream.max_streams` of them
plus spares for /healthz, /metrics and the 503 of one stream too many. A stopping worker
ends its streams at once (clients reconnect elsewhere with Last-Event-ID) instead of
waiting out the graceful timeout. Metrics and logs are set up as for the receiver
(receiver.gunicorn_conf); give this server its own PROMETHEUS_MULTIPROC_DIR.
"""

import os
import signal

from receiver.gunicorn_conf import (
    accesslog,
    child_exit,
    control_socket_disable,
    logconfig_dict,
    logger_class,
)
from receiver.settings import ReceiverSettings
from receiver.stream.hub import SHUTDOWN
from ticketmon.core.config import load

SPARE_THREADS = 16

bind = os.environ.get("TICKETMON_STREAM_BIND", "127.0.0.1:10199")
workers = int(os.environ.get("TICKETMON_STREAM_WORKERS", "1"))
worker_class = "gthread"
threads = load(ReceiverSettings).stream.max_streams + SPARE_THREADS
worker_connections = threads + 100
graceful_timeout = 5

__all__ = ["accesslog", "child_exit", "control_socket_disable", "logconfig_dict", "logger_class",
           "post_worker_init"]


def post_worker_init(worker) -> None:
    def stop(sig, frame) -> None:
        SHUTDOWN.set()  # every stream of this worker ends now
        worker.handle_exit(sig, frame)

    signal.signal(signal.SIGTERM, stop)
