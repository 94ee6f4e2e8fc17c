"""What every channel shares: the message it is given and how a delivery went.

The worker decides retries from the outcome alone, so each channel maps its
transport's answers onto three outcomes: delivered, retry later (5xx, 429, timeouts,
connection errors) or permanent failure (other 4xx, bad configuration), which stops
at once instead of hammering an endpoint that will never accept the message.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import Any, Protocol


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class DeliveryResult:
    outcome: Outcome
    detail: str = ""
    retry_after: float | None = None  # seconds, when the server said so (Retry-After)

    @classmethod
    def delivered(cls, detail: str = "") -> DeliveryResult:
        return cls(Outcome.DELIVERED, detail)


ACTIONS = ("trigger", "acknowledge", "resolve")
LINK_DEFAULTS = {"incident": "", "grafana": "", "alertmanager": "", "ack": ""}
# every template can rely on these keys being present
INCIDENT_DEFAULTS: dict[str, Any] = {
    "title": "", "severity": "", "service": "", "tenant": "", "status": "",
    "started_at": None, "labels": {}, "summary": "",
}


@dataclass
class Message:
    """One notification about one incident, as the channels render it.

    `incident` holds plain data (id, title, severity, service, tenant, status,
    started_at as epoch seconds, labels, annotations); `links` the URLs to put in the
    message (incident, grafana, alertmanager, ack). `delivery_id` is stable across
    retries so receivers can drop duplicates.
    """

    action: str
    incident: dict[str, Any]
    delivery_id: str
    step: int = 0
    round: int = 0
    actor: str | None = None
    links: dict[str, str] = field(default_factory=dict)
    now: float = field(default_factory=time.time)
    installation: str = ""  # this installation's id (migration 0004)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}; expected one of {ACTIONS}")

    @property
    def incident_id(self) -> str:
        return str(self.incident["id"])

    @property
    def thread_key(self) -> str:
        """The incident's key outside ticketmon (PagerDuty dedup_key, email thread): unique
        across installations and database resets, so two of them never merge incidents."""
        return f"ticketmon-{self.installation or 'unset'}-{self.incident_id}"

    @property
    def firing_for(self) -> str:
        """How long the incident has been open, e.g. '1h 05m', for humans."""
        started = self.incident.get("started_at")
        if not isinstance(started, int | float):
            return "unknown"
        seconds = max(0, int(self.now - started))
        hours, rest = divmod(seconds, 3600)
        minutes, secs = divmod(rest, 60)
        if hours:
            return f"{hours}h {minutes:02d}m"
        if minutes:
            return f"{minutes}m {secs:02d}s"
        return f"{secs}s"

    def context(self) -> dict[str, Any]:
        """Variables for the message templates."""
        incident = {**INCIDENT_DEFAULTS, **self.incident}
        return {
            "action": self.action,
            "incident": incident,
            "labels": self.incident.get("labels") or {},
            "links": {**LINK_DEFAULTS, **self.links},
            "step": self.step,
            "round": self.round,
            "actor": self.actor,
            "firing_for": self.firing_for,
            "delivery_id": self.delivery_id,
        }


class Channel(Protocol):
    """A configured destination. `send` never raises for transport problems."""

    name: str
    kind: str

    def send(self, message: Message) -> DeliveryResult: ...


def classify_status(status: int, retry_after: str | None = None) -> DeliveryResult:
    """Map an HTTP status onto an outcome: 2xx delivered, 408/429/5xx retry, else permanent."""
    if 200 <= status < 300:
        return DeliveryResult.delivered(f"HTTP {status}")
    if status in (408, 425, 429) or status >= 500:
        return DeliveryResult(Outcome.RETRY, f"HTTP {status}", parse_retry_after(retry_after))
    return DeliveryResult(Outcome.PERMANENT, f"HTTP {status}")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form only; dates are ignored)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds <= 3600 else None
