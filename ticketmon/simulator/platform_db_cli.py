"""`ticketmon simulator platform-db --config FILE`: seed a platform database, keep it live."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Literal

from pydantic import Field
from sqlalchemy import create_engine

from ticketmon.core import logs
from ticketmon.core.config import ConfigError, Settings, load
from ticketmon.simulator.platform_db import Knobs, LiveWriter, seed

log = logging.getLogger("ticketmon.simulator.platform_db")


class PlatformDbSettings(Settings):
    """Env: TICKETMON_PLATFORM_DATABASE_URL (shared with the business exporter), …"""

    platform_database_url: str = "sqlite:///platform.db"
    history_hours: float = Field(default=48, ge=0, le=24 * 365)
    history_orders_per_hour: int = Field(default=300, ge=0, le=1_000_000)
    live: bool = True
    orders_per_second: float = Field(default=2.0, ge=0, le=10_000)
    payment_failure_ratio: float = Field(default=0.05, ge=0, le=0.95)
    control_file: Path | None = None  # JSON knobs re-read every tick (see platform_db.Knobs)
    log_level: Literal["debug", "info", "warning", "error"] = "info"


def run(args) -> int:
    settings = load(PlatformDbSettings, args.config)
    logs.setup(getattr(args, "log_level", None) or settings.log_level)
    try:
        engine = create_engine(settings.platform_database_url)
    except Exception as exc:
        raise ConfigError(f"platform_database_url: {exc}") from exc
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:  # readers (the exporter) never wait on the writer
            conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    seeded = seed(engine, settings.history_hours, settings.history_orders_per_hour)
    log.info("platform database ready", extra={"seeded": seeded})
    if not settings.live:
        return 0
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    knobs = Knobs(orders_per_second=settings.orders_per_second,
                  payment_failure_ratio=settings.payment_failure_ratio)
    LiveWriter(engine, settings.control_file, knobs).run(stop)
    return 0
