"""`ticketmon exporter fraud --config FILE`: the fraud check API under gunicorn.

`--prune` deletes checks past `retention_days` once and exits (the running service also
does it every `prune_interval_seconds`).

Runs `gunicorn exporters.fraud.wsgi:app` with the configured host, port and workers
(threaded workers, keep-alive, the shared outlier refitter and the access log, off
unless TICKETMON_FRAUD_ACCESS_LOG is set, come from exporters/fraud/gunicorn_conf.py),
a fresh PROMETHEUS_MULTIPROC_DIR (so /metrics sums every worker) and no control socket.
The settings are validated here first, so a bad file fails before gunicorn starts, with
the key named.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from exporters.fraud.settings import FraudSettings
from ticketmon.core import config, ports


def gunicorn_argv(settings: FraudSettings) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn",
        "--bind", f"{settings.host}:{settings.port}",
        "--workers", str(settings.workers),
        "--no-control-socket",
        "--config", f"python:{__package__}.gunicorn_conf",
        "--graceful-timeout", "10",
        "exporters.fraud.wsgi:app",
    ]


def run(config_path: str | None, check: bool = False, prune: bool = False) -> int:
    settings = config.load(FraudSettings, config_path)
    if prune:  # the service prunes by itself too; this is the operator's one command
        import time

        from exporters.fraud.recorder import ensure_schema
        from exporters.fraud.recorder import prune as prune_checks
        from ticketmon.core.database import make_engine

        engine = make_engine(settings.database_url, pool_size=1)
        ensure_schema(engine)
        gone = prune_checks(engine, time.time() - settings.retention_days * 86400)
        engine.dispose()
        print(f"fraud_checks={gone} (older than {settings.retention_days:g} days)")
        return 0
    if check:
        from exporters.framework.check import outcome_line
        from exporters.fraud.recorder import ensure_schema
        from ticketmon.core.database import make_engine

        try:
            ensure_schema(make_engine(settings.database_url, pool_size=1))
        except Exception as exc:  # noqa: BLE001 - any failure is the check's answer
            print(outcome_line("database", f"{type(exc).__name__}: {exc}"))
            return 1
        print(outcome_line("database", None))  # the API has no collectors: its store is all
        return 0
    # gunicorn would retry a taken port for seconds, then stop with its own lines
    ports.ensure_free(settings.host, settings.port, "port")
    multiproc = Path(tempfile.mkdtemp(prefix="ticketmon-fraud-metrics-"))
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc),
           "TICKETMON_FRAUD_REMOVE_METRICS_DIR": "1"}  # gunicorn's on_exit removes it
    if config_path:
        env["TICKETMON_CONFIG"] = str(Path(config_path).resolve())
    argv = gunicorn_argv(settings)
    # exec: gunicorn becomes this process, so SIGTERM reaches its master directly
    os.execve(argv[0], argv, env)
    return 0  # not reached
