"""`ticketmon exporter business`: settings, wiring and the --check mode."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Literal

from pydantic import Field

from exporters.business.cardinality import CardinalityGuard
from exporters.business.catalog import load_catalog
from exporters.business.collector import QueryCollector
from exporters.business.database import make_engine, safe_url
from exporters.framework import Exporter, HttpSettings
from exporters.framework.check import check as run_check
from ticketmon.core import logs
from ticketmon.core.config import ConfigError, Settings, load

DEFAULT_PORT = 10191
log = logging.getLogger("ticketmon.exporters.business")


class BusinessSettings(Settings):
    """Env: TICKETMON_PLATFORM_DATABASE_URL, TICKETMON_HTTP__PORT, …"""

    platform_database_url: str = "sqlite:///platform.db"
    http: HttpSettings = HttpSettings(port=DEFAULT_PORT)
    interval_seconds: float = Field(default=15.0, gt=0)
    timeout_seconds: float = Field(default=10.0, gt=0)
    include_default_queries: bool = True
    query_files: list[Path] = []
    disable_queries: list[str] = []
    max_rows_per_run: int = Field(default=1_000_000, gt=0)
    counters_start: Literal["now", "beginning"] = "now"
    # ids below a counter's watermark re-checked for rows that commit late (0: none)
    counter_lookback_ids: int = Field(default=10_000, ge=0, le=1_000_000)
    cardinality_limit: int = Field(default=50, ge=1, le=10_000)
    cardinality_window_seconds: float = Field(default=86_400.0, gt=0)
    cardinality_refresh_seconds: float = Field(default=300.0, gt=0)
    log_level: Literal["debug", "info", "warning", "error"] = "info"


def build(settings: BusinessSettings) -> Exporter:
    catalog = load_catalog(settings.include_default_queries, settings.query_files,
                           settings.disable_queries)
    engine = make_engine(settings.platform_database_url, settings.timeout_seconds,
                         pool_size=min(len(catalog.queries), 4) or 1)
    guard = CardinalityGuard(catalog.guards, settings.cardinality_limit,
                             settings.cardinality_window_seconds,
                             settings.cardinality_refresh_seconds)
    collectors = [
        QueryCollector(spec, engine, guard, settings.interval_seconds, settings.timeout_seconds,
                       settings.max_rows_per_run, settings.counters_start,
                       settings.counter_lookback_ids)
        for spec in catalog.queries
    ]
    return Exporter("business", collectors, settings.http)


def refuse_missing_sqlite(url: str) -> None:
    """The exporter only reads: SQLite would otherwise create an empty file and fail on it."""
    path = url.split("///", 1)[-1] if url.startswith("sqlite") else ""
    if path and path != ":memory:" and not Path(path).exists():
        raise ConfigError(f"no platform database at {url}: pass --config FILE with "
                          "platform_database_url (`ticketmon simulator platform-db` makes "
                          "the demo's)")


def report_first_runs(exporter: Exporter, timeout: float) -> None:
    """Name every query whose first run failed, once all have run (or `timeout` passed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(
        c.health.up or c.health.errors for c in exporter.collectors
    ):
        time.sleep(0.05)
    bad = [c.name for c in exporter.collectors if not c.health.up]
    if bad:
        log.error("queries failed at start; they keep being retried", extra={"queries": bad})
        print(f"business exporter: queries failed at start: {', '.join(bad)}", file=sys.stderr)


def run(config: str | None, check: bool = False) -> int:
    settings = load(BusinessSettings, config)
    logs.setup(settings.log_level)
    refuse_missing_sqlite(settings.platform_database_url)
    exporter = build(settings)
    if check:
        return run_check(exporter)
    log.info("business exporter starting",
             extra={"database": safe_url(settings.platform_database_url),
                    "queries": [c.name for c in exporter.collectors]})
    exporter.serve(on_start=lambda: report_first_runs(exporter, settings.timeout_seconds + 1))
    return 0
