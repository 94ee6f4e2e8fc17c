"""The console's settings: the `console:` section of the receiver's config file."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from ticketmon.core.config import Settings
from ticketmon.core.durations import Duration


class ConsoleSettings(Settings):
    # signs the session cookie; unset: derived from webhook_token and the installation id,
    # so every worker and replica of one installation agrees without configuration
    session_secret: SecretStr | None = None
    # a signed-in session lasts this long (never longer than the JWT it came from)
    session_ttl: Duration = Field(default=12 * 3600.0, ge=60, le=30 * 86400)
    # Grafana's address, for the dashboard link of an incident; None: no link
    grafana_url: str | None = None

    @field_validator("session_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("session_secret must be at least 32 characters")
        return value

    @field_validator("grafana_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else None
