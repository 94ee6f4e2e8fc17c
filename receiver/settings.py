"""Receiver settings: one YAML file ($TICKETMON_CONFIG) plus TICKETMON_* overrides.

The same model configures `ticketmon receiver serve` and gunicorn's `receiver.wsgi:app`,
so development and production differ only in values, never in code paths.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from ticketmon.config import Settings
from ticketmon.httpguard import GuardSettings

Role = Literal["viewer", "operator", "admin"]


def hash_token(token: str) -> str:
    """API tokens are long random strings, so one SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()


class ConfiguredToken(Settings):
    """A bootstrap API token from the config file, e.g. the admin token of the stack."""

    name: str = Field(min_length=1, max_length=100)
    role: Role
    tenant: str = Field(default="*", min_length=1, max_length=100)
    token: SecretStr | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _one_secret(self) -> ConfiguredToken:
        if (self.token is None) == (self.sha256 is None):
            raise ValueError("give exactly one of token or sha256")
        if self.token is not None:
            if len(self.token.get_secret_value()) < 16:
                raise ValueError("token must be at least 16 characters")
            self.sha256 = hash_token(self.token.get_secret_value())
            self.token = None  # only the hash is kept in memory
        return self


class JwtSettings(Settings):
    """JWTs issued by the platform's auth service: HS256 secret and/or RS256 public key."""

    hs256_secret: SecretStr | None = None
    rs256_public_key: str | None = None  # PEM text or a path to a PEM file
    audience: str | None = None
    issuer: str | None = None
    role_claim: str = "role"
    tenant_claim: str = "tenant"
    name_claim: str = "sub"
    leeway_seconds: int = Field(default=30, ge=0, le=600)

    @field_validator("hs256_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("hs256_secret must be at least 32 characters")
        return value

    @field_validator("rs256_public_key")
    @classmethod
    def _pem(cls, value: str | None) -> str | None:
        if value is None or "-----BEGIN" in value:
            return value
        try:
            text = Path(value).read_text()
        except OSError as exc:
            raise ValueError(f"cannot read public key file {value}: {exc.strerror}") from exc
        if "-----BEGIN" not in text:
            raise ValueError(f"{value} is not a PEM public key")
        return text

    @property
    def enabled(self) -> bool:
        return self.hs256_secret is not None or self.rs256_public_key is not None


class ReceiverSettings(Settings):
    database_url: str = "sqlite:///ticketmon-receiver.db"
    host: str = "127.0.0.1"
    port: int = Field(default=10190, ge=1, le=65535)
    dev: bool = False  # turns auth off, loudly
    webhook_token: SecretStr | None = None
    api_tokens: list[ConfiguredToken] = Field(default_factory=list)
    jwt: JwtSettings = Field(default_factory=JwtSettings)
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    page_limit_default: int = Field(default=50, ge=1, le=1000)
    page_limit_max: int = Field(default=500, ge=1, le=10000)
    pool_size: int = Field(default=4, ge=1, le=50)
    store_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    auto_migrate: bool | None = None  # None: migrate by itself on SQLite only
    metrics_guard: GuardSettings = Field(default_factory=GuardSettings)  # basic auth, allowlist
    # "module:function" plug-ins run in the incident's transaction; escalation is on by default
    incident_hooks: list[str] = Field(
        default_factory=lambda: ["receiver.escalation.hooks:on_incident_event",
                                 "receiver.anomaly.store:on_incident_event"])
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("database_url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg2:")):
            raise ValueError("must be a sqlite:/// or postgresql+psycopg2:// URL")
        return value

    @field_validator("webhook_token")
    @classmethod
    def _long_webhook_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("webhook_token must be at least 16 characters")
        return value
