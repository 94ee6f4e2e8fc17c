"""`ticketmon receiver anomaly`: run the anomaly scoring job on its own."""

from __future__ import annotations

import argparse
import signal
import sys
import threading


def run(args: argparse.Namespace) -> int:
    from receiver.anomaly.job import AnomalyJob
    from receiver.anomaly.settings import AnomalySettings
    from receiver.store import Store, migrate
    from ticketmon.core import logs
    from ticketmon.core.config import load

    overrides = {"prometheus_url": args.prometheus_url} if args.prometheus_url else {}
    settings = load(AnomalySettings, path=args.config, overrides=overrides)
    logs.setup(settings.log_level)
    migrate.require(settings, upgrade_sqlite=True)
    store = Store(settings.database_url, pool_size=1)
    job = AnomalyJob(settings, store, progress=sys.stderr.isatty() or args.progress,
                     background_refit=not args.once)
    if settings.metrics_port and not args.once:
        serve_forecasts(settings, job)
    try:
        if args.once:
            outcomes = job.run_once()
            for o in outcomes:
                line = f"{o.series}: {o.status}"
                if o.score is not None:
                    line += f" score={o.score:.4f} anomalous={int(o.anomalous)}"
                print(line)
            for f in job.forecasts:  # informative: a capacity with no series yet is normal
                print(f"forecast {f.forecast}: {f.status} series={f.series} skipped={f.skipped}")
            return 0 if all(o.status in ("scored", "up_to_date") for o in outcomes) else 1
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        job.run_forever(stop)
        return 0
    finally:
        job.close()
        store.dispose()


def serve_forecasts(settings, job) -> None:
    """/metrics with the forecast gauges of the series this process holds."""
    from prometheus_client import CollectorRegistry

    from receiver.escalation.worker_cli import serve_metrics

    registry = CollectorRegistry()
    registry.register(job.forecaster)
    serve_metrics(settings, registry)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("anomaly", help="score Prometheus series for anomalies (PyOD)")
    p.add_argument("--config", help="YAML settings file (default: $TICKETMON_CONFIG)")
    p.add_argument("--prometheus-url", help="Prometheus base URL (default http://127.0.0.1:9090)")
    p.add_argument("--once", action="store_true",
                   help="one run over every series (backfill), print the outcomes, exit "
                        "(1 if any series was skipped)")
    p.add_argument("--progress", action="store_true", help="progress bars even without a TTY")
    p.set_defaults(func=run)
