"""gunicorn settings for the receiver: `gunicorn -c python:receiver.gunicorn_conf …`.

Gives prometheus_client a multiprocess directory (so /metrics sums every worker's
counters) and tells it when a worker exits; writes an access line per request only with
TICKETMON_RECEIVER_ACCESS_LOG=1 (what the API's users did is in the audit log, what the
webhook did in its own lines and metrics). Command-line flags still win.
"""

import gc
import os
import shutil
import tempfile

from prometheus_client import multiprocess

from ticketmon.core import logs
from ticketmon.core.gunicorn_access import OptInAccessLogger

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _dir = tempfile.mkdtemp(prefix="ticketmon-receiver-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _dir
else:  # left over from a previous run: stale counters would be summed in
    _dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    shutil.rmtree(_dir, ignore_errors=True)
    os.makedirs(_dir, exist_ok=True)

bind = os.environ.get("TICKETMON_RECEIVER_BIND", "127.0.0.1:10190")
workers = int(os.environ.get("TICKETMON_RECEIVER_WORKERS", "2"))
# sync, like the baselines: on 2 cores bench/webhook_ingest.py --threads 4 (gthread) cost
# more CPU per post (1.59x the raw-psycopg2 baseline's, against 1.42x) and gave less
# throughput (66 % of the baseline's, against 72 %): a post waits on PostgreSQL too
# briefly for threads to pay for their switching
worker_class = "sync"
control_socket_disable = True
accesslog = None


class Logger(OptInAccessLogger):
    env = "TICKETMON_RECEIVER_ACCESS_LOG"


logger_class = Logger
# gunicorn's own log lines (worker crashes, "Error handling request" tracebacks) go
# through the redacting JSON formatter like the app's
logconfig_dict = logs.gunicorn_logconfig()


def post_worker_init(worker) -> None:  # noqa: ARG001 - gunicorn's hook signature
    """The app is loaded and lives as long as the worker: keep its objects out of the
    garbage collector's passes, which otherwise walk them all every few thousand posts."""
    gc.freeze()


def child_exit(server, worker) -> None:  # noqa: ARG001
    multiprocess.mark_process_dead(worker.pid)
