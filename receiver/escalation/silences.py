"""Alertmanager silences that a person asked for on an incident, through its API v2.

A silence covers the incident's group (matchers from the group labels, which are what
Alertmanager grouped the notification by) for a bounded time; asking again extends the
same silence, resolving the incident expires it. While it lasts Alertmanager sends
nothing for the group, not even a resolve: the reconciliation with Alertmanager's API
is what still ends the incident. Outcomes map onto the outbox like a channel's.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import requests

from receiver.channels.base import DeliveryResult, Outcome, classify_status
from receiver.channels.http import session


def matchers(incident: dict) -> list[dict]:
    labels = incident.get("group_labels") or incident.get("common_labels") or {}
    return [{"name": k, "value": str(v), "isRegex": False, "isEqual": True}
            for k, v in sorted(labels.items())]


class Silencer:
    def __init__(self, url: str, duration: float, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.duration = duration
        self.timeout = timeout
        self.session = session()

    def silence(self, incident: dict, actor: str | None, duration: float | None = None,
                replaces: str | None = None,
                now: datetime | None = None) -> tuple[DeliveryResult, str | None]:
        found = matchers(incident)
        if not found:
            return DeliveryResult(Outcome.PERMANENT, "incident has no labels to match"), None
        now = now or datetime.now(UTC)
        body = {
            "matchers": found,
            "startsAt": now.isoformat().replace("+00:00", "Z"),
            "endsAt": (now + timedelta(seconds=duration or self.duration)
                       ).isoformat().replace("+00:00", "Z"),
            "createdBy": f"ticketmon ({actor or 'unknown'})"[:200],
            "comment": f"ticketmon incident {incident['id']} silenced",
        }
        if replaces:  # Alertmanager updates (extends) the silence with this id
            body["id"] = replaces
        try:
            resp = self.session.post(f"{self.url}/api/v2/silences", json=body,
                                     timeout=self.timeout)
        except requests.RequestException as exc:
            return DeliveryResult(Outcome.RETRY, f"alertmanager: {type(exc).__name__}"), None
        if resp.status_code == 404 and replaces:  # that silence is gone: start a new one
            return self.silence(incident, actor, duration, None, now)
        result = classify_status(resp.status_code, resp.headers.get("Retry-After"))
        if result.outcome is not Outcome.DELIVERED:
            return result, None
        try:
            silence_id = resp.json()["silenceID"]
        except (ValueError, KeyError, TypeError):
            return DeliveryResult(Outcome.RETRY, "alertmanager: answer without silenceID"), None
        return DeliveryResult.delivered(f"silence {silence_id}"), str(silence_id)

    def expire(self, silence_id: str | None) -> DeliveryResult:
        if not silence_id:
            return DeliveryResult.delivered("no silence to expire")
        try:
            resp = self.session.delete(f"{self.url}/api/v2/silence/{silence_id}",
                                       timeout=self.timeout)
        except requests.RequestException as exc:
            return DeliveryResult(Outcome.RETRY, f"alertmanager: {type(exc).__name__}")
        if resp.status_code == 404:  # gone already (expired, or deleted by hand)
            return DeliveryResult.delivered("silence already gone")
        return classify_status(resp.status_code, resp.headers.get("Retry-After"))
