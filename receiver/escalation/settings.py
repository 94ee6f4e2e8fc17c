"""Worker settings: channels, policies, silences, retries, and the jobs the worker hosts
(anomaly scoring, reconciliation with Alertmanager).

One YAML file plus TICKETMON_* overrides, like every component (`ticketmon receiver
worker --config FILE`); a channel's timeout bounds the delivery lease.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from receiver.anomaly.settings import AnomalyJobSettings
from receiver.channels.registry import ChannelSettings
from receiver.oncall.service import OncallSettings
from receiver.reconcile.settings import ReconcileSettings
from ticketmon.core.config import Settings
from ticketmon.core.durations import Duration
from ticketmon.core.metrics_guard import GuardSettings
from ticketmon.reports.schedule import ReportScheduleSettings


class WorkerSettings(Settings):
    database_url: str = "sqlite:///ticketmon-receiver.db"
    policies_file: Path | None = None  # default: rules/escalation/policies.yaml
    templates_dir: Path | None = None
    channels: dict[str, ChannelSettings] = {}
    public_url: str = "http://127.0.0.1:10190"  # the receiver, for incident and ack links
    grafana_url: str | None = None
    alertmanager_url: str | None = None  # for explicit silences; None: no silences
    silence_duration: Duration = 4 * 3600.0  # when a silence request names no duration
    ack_link_secret: SecretStr | None = None  # the receiver must have the same one
    ack_link_ttl: Duration = 24 * 3600.0
    poll_interval: Duration = 0.5  # a look when no commit woke the worker (store.commit_watch)
    batch_size: int = Field(default=250, ge=1, le=10_000)  # escalation timers per transaction
    concurrency: int = Field(default=4, ge=1, le=64)  # deliveries in flight per channel
    lease: Duration = 120.0
    retry_base: Duration = 2.0
    retry_cap: Duration = 300.0
    max_age: Duration = 6 * 3600.0
    max_attempts: int = Field(default=25, ge=1)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=10195, ge=0, le=65535)  # 0: no /metrics
    metrics_guard: GuardSettings = Field(default_factory=GuardSettings)  # basic auth, allowlist
    worker_id: str | None = None
    log_level: str = "info"
    anomaly: AnomalyJobSettings | None = None  # also run the anomaly job; None: off
    # reconcile with Alertmanager's API (default: every 60s with alertmanager_url)
    reconcile: ReconcileSettings = Field(default_factory=ReconcileSettings)
    # people, schedules and the methods that reach people (Twilio, a Slack bot)
    oncall: OncallSettings = Field(default_factory=OncallSettings)
    reports: ReportScheduleSettings | None = None  # send reports/*.yaml on schedule; None: off

    @model_validator(mode="before")
    @classmethod
    def _no_silence_on_ack(cls, data):
        if isinstance(data, dict) and "silence_on_ack" in data:
            raise ValueError("silence_on_ack was removed: acknowledging never silences "
                             "(Alertmanager would then send no resolve); silence an incident "
                             "explicitly with POST /api/v1/incidents/ID/silence")
        return data

    @model_validator(mode="after")
    def _lease_outlives_a_delivery(self) -> WorkerSettings:
        people = [self.oncall.twilio, self.oncall.slack_bot]
        slowest = max((getattr(c, "timeout", 0) for c in [*self.channels.values(), *people]),
                      default=0)
        if self.lease <= slowest * 2:
            raise ValueError(f"lease must be longer than twice the slowest channel timeout "
                             f"({slowest}s)")
        return self
