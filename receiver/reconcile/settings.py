"""The worker's `reconcile:` section: which Alertmanagers to ask, how often, how patiently."""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from ticketmon.core.config import Settings
from ticketmon.core.durations import Duration

DEFAULT_HOOKS = ["receiver.escalation.timers:on_incident_event",
                 "receiver.anomaly.scores:on_incident_event"]


class ReconcileSettings(Settings):
    enabled: bool = True
    # every member of the Alertmanager cluster; empty: the worker's alertmanager_url
    alertmanagers: list[str] = Field(default_factory=list, max_length=16)
    period: Duration = 60.0
    # a difference must be seen for this long before it is corrected: covers webhook
    # posts in flight, HA members a moment apart and flapping API answers
    grace: Duration = 60.0
    # for an alert the store has never seen, at least this long (default: grace): above
    # the routes' longest group_wait, so a new group's own post opens its incident under
    # its real key, and the reconciler only steps in when that post was lost
    new_alert_grace: Duration | None = None
    timeout: Duration = 10.0  # per Alertmanager request
    receiver: str | None = None  # regex of the receivers that post to ticketmon; None: all
    filter: list[str] = Field(default_factory=list, max_length=20)  # AM matchers, e.g. env="prod"
    max_alerts: int = Field(default=10_000, ge=1, le=1_000_000)  # per Alertmanager and run
    max_response_bytes: int = Field(default=32 * 1_048_576, ge=1024)
    batch_size: int = Field(default=500, ge=1, le=10_000)  # store rows per transaction
    # the same plug-ins as the receiver's incident_hooks: escalation stops on resolve
    incident_hooks: list[str] = Field(default_factory=lambda: list(DEFAULT_HOOKS))

    @field_validator("alertmanagers")
    @classmethod
    def _http_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not re.match(r"^https?://[^\s/]+", url):
                raise ValueError(f"{url!r} is not an http(s) URL")
        return [u.rstrip("/") for u in value]

    @field_validator("receiver")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"receiver: not a regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _bounded(self) -> ReconcileSettings:
        if self.period < 1:
            raise ValueError("period must be at least 1s")
        if not 0 < self.timeout < self.period:
            raise ValueError("timeout must be positive and shorter than period")
        return self

    def members(self, alertmanager_url: str | None) -> list[str]:
        if self.alertmanagers:
            return list(self.alertmanagers)
        return [alertmanager_url.rstrip("/")] if alertmanager_url else []
