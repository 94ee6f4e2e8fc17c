"""Alertmanager webhook payload (version 4), validated in one pass from the raw body.

Unknown fields are accepted and kept (newer Alertmanagers add `notification_reason`,
`routeLabels`, …); everything the receiver relies on is checked, and an error names
the field, e.g. `alerts.3.fingerprint`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

ZERO_YEAR = 1  # Alertmanager sends endsAt 0001-01-01T00:00:00Z for firing alerts

LabelName = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Labels = dict[LabelName, Annotated[str, StringConstraints(max_length=10_000)]]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=False)

    def unknown_fields(self) -> dict | None:
        return dict(self.model_extra) if self.model_extra else None


class Alert(_Open):
    status: Literal["firing", "resolved"]
    labels: Labels
    annotations: Labels = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: str | None = Field(default=None, max_length=10_000)
    fingerprint: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z]+$")

    @property
    def starts_at(self) -> datetime:
        return _utc(self.startsAt)

    @property
    def ends_at(self) -> datetime | None:
        if self.endsAt is None or self.endsAt.year <= ZERO_YEAR:
            return None
        return _utc(self.endsAt)

    @property
    def key(self) -> tuple[str, datetime]:
        return self.fingerprint, self.starts_at


class WebhookPayload(_Open):
    version: Literal["4"]
    groupKey: str = Field(min_length=1, max_length=2000)
    status: Literal["firing", "resolved"]
    receiver: str = Field(default="", max_length=200)
    truncatedAlerts: int = Field(default=0, ge=0)
    groupLabels: Labels = Field(default_factory=dict)
    commonLabels: Labels = Field(default_factory=dict)
    commonAnnotations: Labels = Field(default_factory=dict)
    externalURL: str | None = Field(default=None, max_length=2000)
    alerts: list[Alert] = Field(min_length=1)


class PayloadError(ValueError):
    """A payload that cannot be accepted, with the field at fault."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _nul_path(node, path: str = "") -> str | None:
    """Where a NUL character sits: PostgreSQL cannot store it in text or JSONB."""
    if isinstance(node, str):
        return path if "\x00" in node else None
    if isinstance(node, dict):
        for key, value in node.items():
            if "\x00" in key:
                return f"{path}.{key}".lstrip(".")
            found = _nul_path(value, f"{path}.{key}")
            if found:
                return found.lstrip(".")
    if isinstance(node, list):
        for i, value in enumerate(node):
            found = _nul_path(value, f"{path}.{i}")
            if found:
                return found.lstrip(".")
    return None


def parse(body: bytes) -> WebhookPayload:
    """Validate a raw request body; raise PayloadError naming what is wrong."""
    try:
        payload = WebhookPayload.model_validate_json(body)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        if err["type"] == "json_invalid":
            raise PayloadError("invalid_json", f"body is not valid JSON: {err['msg']}") from None
        field = ".".join(str(p) for p in err["loc"]) or None
        if err["type"] == "model_type" and not err["loc"]:
            raise PayloadError("invalid_payload", "body must be a JSON object") from None
        raise PayloadError("invalid_field", f"{field}: {err['msg']}", field) from None
    if b"\\u0000" in body:
        where = _nul_path(payload.model_dump(mode="json"))
        if where:
            raise PayloadError("invalid_field", f"{where}: NUL characters are not allowed", where)
    return payload
