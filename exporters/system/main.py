"""`ticketmon exporter system`: settings and wiring."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from exporters.framework import Exporter, HttpSettings
from exporters.framework.check import check as run_check
from exporters.system.collectors import (
    DependenciesCollector,
    DependencyTarget,
    ServicesCollector,
    ServiceTarget,
)
from ticketmon.core import logs
from ticketmon.core.config import ConfigError, Settings, load

DEFAULT_PORT = 10192
NAME = r"^[A-Za-z0-9_.-]{1,64}$"


class Service(Settings):
    name: str = Field(pattern=NAME)
    url: str = Field(pattern=r"^https?://")
    timeout_seconds: float | None = Field(default=None, gt=0)
    slow_after_seconds: float | None = Field(default=None, gt=0)


class Dependency(Settings):
    name: str = Field(pattern=NAME)
    kind: Literal["postgres", "redis", "tcp", "http"]
    url: str | None = None
    address: str | None = None
    timeout_seconds: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _target(self) -> Dependency:
        if self.kind == "tcp":
            if not self.address or not re.match(r"^\[?[^\s\]]+\]?:\d{1,5}$", self.address):
                raise ValueError("a tcp dependency needs address: host:port")
        else:
            schemes = {"postgres": r"^postgres(ql)?(\+\w+)?://", "redis": r"^rediss?://",
                       "http": r"^https?://"}[self.kind]
            if not self.url or not re.match(schemes, self.url):
                raise ValueError(f"a {self.kind} dependency needs a {self.kind} url")
        return self


class SystemSettings(Settings):
    """Env: TICKETMON_HTTP__PORT, TICKETMON_SERVICES='[{"name":…,"url":…}]', …"""

    http: HttpSettings = HttpSettings(port=DEFAULT_PORT)
    interval_seconds: float = Field(default=10.0, gt=0)
    probe_timeout_seconds: float = Field(default=3.0, gt=0)
    slow_after_seconds: float = Field(default=2.0, gt=0)
    services: list[Service] = []
    dependencies: list[Dependency] = []
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="after")
    def _unique(self) -> SystemSettings:
        for kind, items in (("services", self.services), ("dependencies", self.dependencies)):
            names = [i.name for i in items]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{kind}: names must be unique, repeated: {dupes}")
        return self


def build(settings: SystemSettings) -> Exporter:
    timeout = settings.probe_timeout_seconds
    collectors = []
    if settings.services:
        targets = [ServiceTarget(s.name, s.url, s.timeout_seconds or timeout,
                                 s.slow_after_seconds or settings.slow_after_seconds)
                   for s in settings.services]
        longest = max(t.timeout for t in targets)
        collectors.append(ServicesCollector(settings.interval_seconds, longest + 2, targets))
    if settings.dependencies:
        deps = [DependencyTarget(d.name, d.kind, d.url or d.address or "",
                                 d.timeout_seconds or timeout) for d in settings.dependencies]
        longest = max(d.timeout for d in deps)
        collectors.append(DependenciesCollector(settings.interval_seconds, longest + 2, deps))
    return Exporter("system", collectors, settings.http)


def run(config: str | None, check: bool = False) -> int:
    settings = load(SystemSettings, config)
    logs.setup(settings.log_level)
    if not settings.services and not settings.dependencies:
        raise ConfigError("nothing to probe: pass --config FILE with services: or "
                          "dependencies: (see deploy/ticketmon/system.yaml)")
    exporter = build(settings)
    if check:
        return run_check(exporter)
    exporter.serve()
    return 0
