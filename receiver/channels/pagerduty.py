"""PagerDuty Events API v2 through the `pagerduty` package.

The incident's thread key (installation id + incident id) is the dedup_key, so
trigger, acknowledge and resolve land on one
PagerDuty incident. The routing key is chosen per service, then per tenant, then the
default. The package's client retries by itself (429 without limit, blocking for
minutes) and ignores a `timeout=` constructor argument: we switch its retries off and
set its timeout attribute, and leave retries to the worker's outbox, which backs off
without holding a thread.
"""

from __future__ import annotations

import re
import ssl
from typing import Literal

from pydantic import SecretStr, field_validator, model_validator

from receiver.channels.base import DeliveryResult, Message, Outcome, classify_status
from receiver.channels.templates import Templates
from ticketmon.core.config import Settings

SEVERITIES = {"critical": "critical", "error": "error", "warning": "warning"}
# an Events API v2 integration key; PagerDuty refuses any other length with a 400
ROUTING_KEY = re.compile(r"^[A-Za-z0-9]{32}$")


def _check_routing_key(key: SecretStr, where: str) -> None:
    value = key.get_secret_value()
    if not ROUTING_KEY.match(value):  # say what is wrong without echoing the secret
        raise ValueError(f"{where}: must be the 32-character integration key (letters and "
                         f"digits) of a PagerDuty Events API v2 integration; this one has "
                         f"{len(value)} characters" +
                         ("" if value.isalnum() else " and not only letters and digits"))


class PagerDutySettings(Settings):
    type: Literal["pagerduty"]
    routing_key: SecretStr | None = None
    routing_keys_by_service: dict[str, SecretStr] = {}
    routing_keys_by_tenant: dict[str, SecretStr] = {}
    base_url: str = "https://events.pagerduty.com"
    timeout: float = 10.0
    verify: bool | str = True  # False, True or a CA bundle path
    source: str = "ticketmon"

    @field_validator("base_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("PagerDuty needs an https:// base_url")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _some_key(self) -> PagerDutySettings:
        if not (self.routing_key or self.routing_keys_by_service or self.routing_keys_by_tenant):
            raise ValueError("set routing_key or routing_keys_by_service/_by_tenant")
        if self.routing_key is not None:
            _check_routing_key(self.routing_key, "routing_key")
        for table in ("routing_keys_by_service", "routing_keys_by_tenant"):
            for name, key in getattr(self, table).items():
                _check_routing_key(key, f"{table}.{name}")
        return self


class PagerDutyChannel:
    kind = "pagerduty"

    def __init__(self, name: str, settings: PagerDutySettings, templates: Templates) -> None:
        self.name = name
        self.settings = settings
        self.templates = templates
        self._clients: dict[str, object] = {}
        # made now, not at the first page of the night: importing the client library
        # and building its TLS context took 0.3 s on the bench machine, added to that page
        keys = [settings.routing_key, *settings.routing_keys_by_service.values(),
                *settings.routing_keys_by_tenant.values()]
        for key in keys:
            if key is not None:
                self._client(key.get_secret_value())

    def routing_key(self, incident: dict) -> str | None:
        s = self.settings
        for table, key in (
            (s.routing_keys_by_service, incident.get("service")),
            (s.routing_keys_by_tenant, incident.get("tenant")),
        ):
            if key and key in table:
                return table[key].get_secret_value()
        return s.routing_key.get_secret_value() if s.routing_key else None

    def _client(self, routing_key: str):
        from pagerduty import EventsApiV2Client

        client = self._clients.get(routing_key)
        if client is None:
            verify = self.settings.verify
            if isinstance(verify, str):
                verify = ssl.create_default_context(cafile=verify)
            client = EventsApiV2Client(routing_key, base_url=self.settings.base_url, verify=verify)
            client.timeout = self.settings.timeout
            # every non-2xx answer comes straight back: a retry entry plus a negative
            # attempt budget returns at once, and network errors raise on the first try
            client.retry = {code: 1 for code in (429, 500, 502, 503, 504)}
            client.max_http_attempts = -1
            client.max_network_attempts = 0
            self._clients[routing_key] = client
        return client

    def send(self, message: Message) -> DeliveryResult:
        from pagerduty import Error, HttpError

        incident = message.incident
        routing_key = self.routing_key(incident)
        if routing_key is None:
            return DeliveryResult(
                Outcome.PERMANENT,
                f"no routing key for service {incident.get('service')!r} "
                f"or tenant {incident.get('tenant')!r}",
            )
        client = self._client(routing_key)
        try:
            if message.action == "trigger":
                client.trigger(**self.trigger_fields(message))
            elif message.action == "acknowledge":
                client.acknowledge(message.thread_key)
            else:
                client.resolve(message.thread_key)
        except HttpError as exc:
            response = exc.response
            result = classify_status(response.status_code, response.headers.get("Retry-After"))
            if result.outcome is Outcome.DELIVERED:  # 2xx with a body that is not an answer
                return DeliveryResult(Outcome.RETRY, "malformed PagerDuty response")
            return result
        except Error as exc:  # network: connect, TLS, timeout
            cause = exc.__cause__ or exc
            return DeliveryResult(Outcome.RETRY, type(cause).__name__)
        return DeliveryResult.delivered(f"pagerduty {message.action}")

    def trigger_fields(self, message: Message) -> dict:
        incident = {**message.context()["incident"]}
        links = [
            {"href": url, "text": text}
            for key, text in (
                ("incident", "Incident"), ("grafana", "Grafana"),
                ("alertmanager", "Alertmanager"), ("ack", "Acknowledge"),
            )
            if (url := message.links.get(key))
        ]
        return {
            "summary": self.templates.render("title.txt.j2", message)[:1024],
            "source": incident.get("service") or self.settings.source,
            "dedup_key": message.thread_key,
            "severity": SEVERITIES.get(str(incident.get("severity")), "info"),
            "custom_details": {
                "service": incident.get("service"),
                "tenant": incident.get("tenant"),
                "firing_for": message.firing_for,
                "escalation_step": message.step + 1,
                "labels": incident.get("labels") or {},
                "summary": incident.get("summary"),
            },
            "links": links,
        }
