"""The anomaly job as a background thread of another process (the receiver worker).

`ticketmon receiver worker` starts it when its settings have an `anomaly:` section;
the thread has its own database connection, so a slow Prometheus or a long backfill
never holds up escalations, and it stops with the worker.
"""

from __future__ import annotations

import logging
import threading

from receiver.anomaly.settings import AnomalyJobSettings

log = logging.getLogger("receiver.anomaly")


class AnomalyThread:
    def __init__(self, settings: AnomalyJobSettings, database_url: str, registry=None) -> None:
        from receiver.anomaly.job import AnomalyJob
        from receiver.store import Store

        self.store = Store(database_url, pool_size=1)
        self.job = AnomalyJob(settings, self.store)
        if registry is not None:  # the forecast gauges on the worker's /metrics
            registry.register(self.job.forecaster)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="anomaly", daemon=True)

    @classmethod
    def start(cls, settings: AnomalyJobSettings | None, database_url: str,
              registry=None) -> AnomalyThread | None:
        """Start scoring if `settings` is given; None (nothing started) otherwise."""
        if settings is None:
            return None
        runner = cls(settings, database_url, registry)
        runner.thread.start()
        log.info("anomaly job started", extra={"series": [s.name for s in settings.series],
                                               "prometheus": settings.prometheus_url})
        return runner

    def _run(self) -> None:
        try:
            self.job.run_forever(self.stopping)
        finally:
            self.job.close()
            self.store.dispose()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the job to stop and wait for its current run to finish."""
        self.stopping.set()
        self.thread.join(timeout)
