"""The on-call configuration a process runs with: loaded at start, reloaded when its files
change, with imported calendars refreshed in the background.

Start-up refuses a bad configuration (errors name the key). Later, a bad edit is logged
and shown (`last_error`, the reload metric) while the last good configuration keeps
answering, as Prometheus does with its rules; a calendar that cannot be fetched keeps
its last good copy the same way.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import Field, SecretStr

from receiver.channels.slack_dm import SlackBotSettings
from receiver.channels.twilio import TwilioSettings
from receiver.oncall.people import People, parse_people
from receiver.oncall.schedules import Override, Schedule, Schedules, parse_schedules
from ticketmon.core.config import ConfigError, Settings, read_yaml
from ticketmon.core.durations import Duration

log = logging.getLogger("receiver.oncall")
REPO = Path(__file__).resolve().parents[2]
DEFAULT_DIR = REPO / "rules" / "oncall"


class OncallSettings(Settings):
    people_file: Path | None = None  # default rules/oncall/people.yaml (none: nobody)
    schedules_file: Path | None = None  # default rules/oncall/schedules.yaml
    reload_interval: Duration = 30.0  # how often the files are checked for changes
    # the worker's contact methods for people (None: that method fails as a dead letter)
    twilio: TwilioSettings | None = None
    slack_bot: SlackBotSettings | None = None
    # the receiver's: verifies Slack's interactive requests (the Acknowledge button)
    slack_signing_secret: SecretStr | None = None
    coverage_horizon: Duration = Field(default=7 * 86400.0, gt=0)  # how far the metric looks


def _file(given: Path | None, name: str) -> tuple[Path, bool]:
    return (Path(given), True) if given else (DEFAULT_DIR / name, False)


class OnCall:
    """People and schedules of this process; thread-safe to read."""

    def __init__(self, settings: OncallSettings | None = None) -> None:
        self.settings = settings or OncallSettings()
        self.people_file, self._people_required = _file(self.settings.people_file,
                                                         "people.yaml")
        self.schedules_file, self._schedules_required = _file(self.settings.schedules_file,
                                                              "schedules.yaml")
        self.last_error: str | None = None
        self.reloaded_ok = True
        self._stamp = self._stamps()
        self._checked = time.monotonic()
        self._lock = threading.Lock()
        self.people, self.schedules = self._load(None)  # raises ConfigError: refuse to start
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._stop = threading.Event()

    # -- loading -------------------------------------------------------------------------
    def _read(self, path: Path, required: bool) -> dict:
        if not path.exists() and not required:
            return {}
        return read_yaml(path)

    def _load(self, previous: Schedules | None) -> tuple[People, Schedules]:
        people = parse_people(self._read(self.people_file, self._people_required) or
                              {"users": [], "teams": []}, str(self.people_file))
        data = self._read(self.schedules_file, self._schedules_required) or {"schedules": []}
        return people, parse_schedules(data, people, str(self.schedules_file), previous)

    def _stamps(self) -> tuple:
        return tuple(p.stat().st_mtime_ns if p.exists() else None
                     for p in (self.people_file, self.schedules_file))

    def reload(self) -> bool:
        """Load the files again; on error keep the last good configuration."""
        try:
            people, schedules = self._load(self.schedules)
        except ConfigError as exc:
            self.last_error, self.reloaded_ok = str(exc), False
            log.error("on-call configuration not reloaded; the last good one stays",
                      extra={"error": str(exc)})
            return False
        with self._lock:
            self.people, self.schedules = people, schedules
        self.last_error, self.reloaded_ok = None, True
        log.info("on-call configuration reloaded")
        return True

    def maybe_reload(self) -> None:
        if time.monotonic() - self._checked < self.settings.reload_interval:
            return
        self._checked = time.monotonic()
        stamp = self._stamps()
        if stamp != self._stamp:
            self._stamp = stamp
            self.reload()

    def refresh_calendars(self, force: bool = False) -> int:
        """Fetch every imported calendar that is due; returns how many failed."""
        failed = 0
        for layer in self.schedules.calendars():
            if force or layer.due():
                failed += not layer.fetch()
        return failed

    def start_background(self) -> None:
        """Reload and calendar refresh on a daemon thread of this process (never in a
        request); started again after a fork (gunicorn workers)."""
        if self._thread is not None and self._pid == os.getpid():
            return
        self._pid = os.getpid()

        def loop() -> None:
            wait = 0.0  # the first calendar fetch at once, then every refresh interval
            while not self._stop.wait(wait):
                wait = min(self.settings.reload_interval, 30.0)
                try:
                    self.maybe_reload()
                    self.refresh_calendars()
                except Exception:  # keep serving the last good configuration
                    log.exception("on-call refresh failed")

        self._thread = threading.Thread(target=loop, name="oncall-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    # -- answers -------------------------------------------------------------------------
    def schedule(self, name: str) -> Schedule | None:
        return self.schedules.by_name.get(name)

    def who(self, name: str, at: datetime, overrides: list[Override] = ()
            ) -> tuple[tuple[str, ...], str]:
        schedule = self.schedule(name)
        if schedule is None:
            return (), ""
        return schedule.at(at, overrides)

    def covered_seconds(self, schedule: Schedule, now: datetime,
                        overrides: list[Override] = ()) -> float:
        horizon = timedelta(seconds=self.settings.coverage_horizon)
        return (schedule.covered_until(now, horizon, overrides) - now).total_seconds()


def now() -> datetime:
    return datetime.now(UTC)
