"""Receiver settings: one YAML file ($TICKETMON_CONFIG) plus TICKETMON_* overrides.

The same model configures `ticketmon receiver serve` and gunicorn's `receiver.wsgi:app`,
so development and production differ only in values, never in code paths.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from receiver.console.settings import ConsoleSettings
from receiver.oncall.service import OncallSettings
from receiver.overview import OverviewSettings
from receiver.ratelimit import RateLimitSettings
from receiver.stream.settings import StreamSettings
from ticketmon.core.auth import ConfiguredToken, JwtSettings
from ticketmon.core.config import Settings
from ticketmon.core.durations import Duration
from ticketmon.core.metrics_guard import GuardSettings

MIB = 1_048_576


class ReceiverSettings(Settings):
    database_url: str = "sqlite:///ticketmon-receiver.db"
    host: str = "127.0.0.1"
    port: int = Field(default=10190, ge=1, le=65535)
    dev: bool = False  # turns auth off, loudly
    webhook_token: SecretStr | None = None
    api_tokens: list[ConfiguredToken] = Field(default_factory=list)
    jwt: JwtSettings = Field(default_factory=JwtSettings)
    # what one Alertmanager post may weigh: a group of 1,000 alerts with long labels is
    # several MiB, and a refused post is lost for good; each sync worker holds the body
    # and its parsed alerts: about 3 times the body at peak (receiver/api/webhook.py)
    max_body_bytes: int = Field(default=32 * MIB, ge=1024, le=256 * MIB)
    page_limit_default: int = Field(default=50, ge=1, le=1000)
    page_limit_max: int = Field(default=500, ge=1, le=10000)
    pool_size: int = Field(default=4, ge=1, le=50)
    store_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    auto_migrate: bool | None = None  # None: migrate by itself on SQLite only
    metrics_guard: GuardSettings = Field(default_factory=GuardSettings)  # basic auth, allowlist
    # "module:function" plug-ins run in the incident's transaction; escalation is on by default
    incident_hooks: list[str] = Field(
        default_factory=lambda: ["receiver.escalation.timers:on_incident_event",
                                 "receiver.anomaly.scores:on_incident_event"])
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # the longest silence a person may set on an incident ('30m', '8h', or seconds)
    silence_max: Duration = 24 * 3600.0
    # REST API requests per token (never the webhook, /metrics or /healthz), per worker
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    # the incident console at /ui/: its session cookie and the Grafana link
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    # Strict-Transport-Security on every answer: only when clients reach the receiver by
    # https (a TLS proxy in front); it is sent anyway on requests that came over https
    hsts: bool = False
    # people and schedules (rules/oncall/) and the Slack signing secret of the ack button
    oncall: OncallSettings = Field(default_factory=OncallSettings)
    # where the console opens its live stream: this origin's path, or the stream
    # server's URL (`ticketmon receiver stream`, port 10199) when the receiver runs
    # sync gunicorn workers, which never hold streams
    stream_url: str = Field(default="/api/v1/stream", max_length=2000)
    stream: StreamSettings = Field(default_factory=StreamSettings)
    # GET /api/v1/overview: the Prometheus it reads services, SLOs and key figures from
    overview: OverviewSettings = Field(default_factory=OverviewSettings)

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg2:")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg2:// URL")
        return value

    @field_validator("stream_url")
    @classmethod
    def _stream_url(cls, value: str) -> str:
        if not (value.startswith("/") or value.startswith(("http://", "https://"))):
            raise ValueError("must be a path on this origin (/api/v1/stream) or an "
                             "http(s):// URL of the stream server")
        return value

    @field_validator("webhook_token")
    @classmethod
    def _long_webhook_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("webhook_token must be at least 16 characters")
        return value
