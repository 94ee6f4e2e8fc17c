"""Report definitions (reports/*.yaml), validated like every other config.

A definition names the services and SLOs to cover, the business figures, the period,
the format, the recipients and an optional schedule. Unknown keys, unknown services,
SLOs or figures are errors that name the key, so a typo fails in CI, not at 6 a.m.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from ticketmon.core import durations
from ticketmon.core.config import ConfigError, Settings, format_errors, read_yaml
from ticketmon.reports import REPORTS_DIR
from ticketmon.rules.slo import SloSpec, load_spec

BUSINESS_FIGURES = ("tickets_sold", "revenue", "refund_ratio", "payment_failure_ratio",
                    "fraud_blocked", "mint_success")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_AT = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


def parse_duration(text: str) -> float:
    """A period's length (ticketmon.core.durations: 1h, 1d, 7d, 30d…), longer than zero."""
    seconds = durations.parse_duration(text)
    if seconds <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    return seconds


class Schedule(Settings):
    """When the worker sends the report: the period ending at the last boundary
    (midnight UTC, or Monday midnight for weekly) is sent at `at` after it."""

    every: Literal["daily", "weekly"]
    at: str = "06:00"  # UTC, HH:MM after the boundary
    weekday: Literal[WEEKDAYS] = "monday"  # type: ignore[valid-type]

    @field_validator("at")
    @classmethod
    def _at(cls, value: str) -> str:
        if not _AT.match(value):
            raise ValueError("at must be HH:MM (UTC)")
        return value


class ReportSpec(Settings):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    title: str = "SLA report"
    services: list[str] | None = None  # None: every service with an SLO
    slos: list[str] | None = None  # None: every SLO of those services
    business: list[str] = list(BUSINESS_FIGURES)
    period: str = "7d"
    format: Literal["html", "md", "json"] = "html"
    recipients: list[str] = []  # empty: the email channel's own `to`
    channel: str = "email"  # the worker's email channel that sends it
    tenant: str = "*"  # incidents of this tenant; who may list its history
    top_alerts: int = Field(default=10, ge=1, le=100)
    schedule: Schedule | None = None

    @field_validator("period")
    @classmethod
    def _period(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("business")
    @classmethod
    def _business(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(BUSINESS_FIGURES))
        if unknown:
            raise ValueError(f"unknown figure(s) {', '.join(unknown)}; known: "
                             f"{', '.join(BUSINESS_FIGURES)}")
        return value

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        bad = [r for r in value if "@" not in r or " " in r]
        if bad:
            raise ValueError(f"not an email address: {', '.join(bad)}")
        return value

    @model_validator(mode="after")
    def _scheduled_period(self) -> ReportSpec:
        if self.schedule and self.schedule.every == "weekly" and self.period_seconds < 86400:
            raise ValueError("a weekly report needs a period of at least 1d")
        return self

    @property
    def period_seconds(self) -> float:
        return parse_duration(self.period)


def check_against_slos(spec: ReportSpec, slos: SloSpec, source: str) -> None:
    """Services and SLOs must exist in rules/slo/slos.yaml."""
    problems = []
    services = {s.service for s in slos.slos}
    names = {s.name for s in slos.slos}
    for i, service in enumerate(spec.services or []):
        if service not in services:
            problems.append(f"  services.{i}: unknown service {service!r} "
                            f"(services with an SLO: {', '.join(sorted(services))})")
    for i, slo in enumerate(spec.slos or []):
        if slo not in names:
            problems.append(f"  slos.{i}: unknown SLO {slo!r}")
    if problems:
        raise ConfigError("\n".join([f"invalid configuration ({source}):", *problems]))


def load_report(path: str | Path, slos: SloSpec | None = None) -> ReportSpec:
    data = read_yaml(path)
    data.setdefault("name", Path(path).stem)
    try:
        spec = ReportSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, str(path))) from exc
    check_against_slos(spec, slos or load_spec(), str(path))
    return spec


def find_report(name: str, reports_dir: Path = REPORTS_DIR) -> ReportSpec:
    """NAME -> reports/NAME.yaml, or a path; `sla` without a file: every SLO, 7 days."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return load_report(path)
    candidate = reports_dir / f"{name}.yaml"
    if candidate.exists():
        return load_report(candidate)
    if name == "sla":
        return ReportSpec(name="sla")
    known = sorted(p.stem for p in reports_dir.glob("*.yaml"))
    raise ConfigError(f"no report {name!r} (known: {', '.join(known) or 'none'}, or sla)")


def load_all(reports_dir: Path = REPORTS_DIR) -> list[ReportSpec]:
    slos = load_spec()
    return [load_report(p, slos) for p in sorted(reports_dir.glob("*.yaml"))]


def parse_period(text: str, now: datetime | None = None) -> tuple[datetime, datetime]:
    """`7d` (ending now) or `FROM..TO` (ISO dates or times, UTC when no zone)."""
    now = now or datetime.now(UTC)
    if ".." in text:
        raw_from, _, raw_to = text.partition("..")
        try:
            start, end = _instant(raw_from), _instant(raw_to)
        except ValueError as exc:
            raise ConfigError(f"--period {text!r}: {exc}") from exc
        if end <= start:
            raise ConfigError(f"--period {text!r}: TO must be after FROM")
        return start, end
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"--period: {exc} (or FROM..TO)") from exc
    return now - timedelta(seconds=seconds), now


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip())
    return value if value.tzinfo else value.replace(tzinfo=UTC)
