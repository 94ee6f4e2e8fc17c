"""Generic webhook: a JSON body signed with HMAC-SHA256 over timestamp + body.

Headers: `X-Ticketmon-Timestamp` (unix seconds), `X-Ticketmon-Signature`
(`v1=<hex hmac of "<timestamp>.<body>">`) and `X-Ticketmon-Delivery` (stable across
retries). `verify()` is what a receiving service runs: it rejects a wrong signature
(forgery), a timestamp outside the tolerance and a delivery id already seen (replay).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from typing import Literal

from pydantic import SecretStr, model_validator

from receiver.channels.base import DeliveryResult, Message
from receiver.channels.http import post, session
from receiver.channels.templates import Templates
from ticketmon.core.config import Settings

TIMESTAMP = "X-Ticketmon-Timestamp"
SIGNATURE = "X-Ticketmon-Signature"
DELIVERY = "X-Ticketmon-Delivery"


class WebhookSettings(Settings):
    type: Literal["webhook"]
    url: str
    secret: SecretStr
    timeout: float = 10.0
    verify: bool | str = True
    # plain http shows the incident and its ack links to the network: only by choice
    allow_insecure_http: bool = False

    @model_validator(mode="after")
    def _https(self) -> WebhookSettings:
        require_https("url", self.url, self.allow_insecure_http)
        return self


def require_https(key: str, url: str, allow_insecure_http: bool) -> None:
    """Outgoing webhooks go over https; http only where the settings say so explicitly."""
    if url.startswith("https://"):
        return
    if not url.startswith("http://"):
        raise ValueError(f"{key} must be an https:// URL")
    if not allow_insecure_http:
        raise ValueError(f"{key} is plain http://: messages would cross the network "
                         "unencrypted; use https://, or set allow_insecure_http: true "
                         "on this channel (local test sinks only)")


class WebhookVerificationError(ValueError):
    pass


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance: float = 300.0,
    seen: Callable[[str], bool] | None = None,
    now: float | None = None,
) -> dict:
    """Check a delivery and return its JSON; raise WebhookVerificationError otherwise.

    `seen(delivery_id)` records the id and returns True if it was already recorded:
    with the timestamp tolerance it bounds how long ids must be remembered.
    """
    now = time.time() if now is None else now
    raw_ts, signature = headers.get(TIMESTAMP), headers.get(SIGNATURE)
    if not raw_ts or not signature:
        raise WebhookVerificationError("missing signature headers")
    try:
        timestamp = int(raw_ts)
    except ValueError as exc:
        raise WebhookVerificationError("timestamp is not an integer") from exc
    if not hmac.compare_digest(sign(secret, timestamp, body), signature):
        raise WebhookVerificationError("signature does not match")
    if abs(now - timestamp) > tolerance:
        raise WebhookVerificationError("timestamp outside the tolerance (replay?)")
    delivery = headers.get(DELIVERY, "")
    if seen is not None and (not delivery or seen(delivery)):
        raise WebhookVerificationError("delivery already received (replay)")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise WebhookVerificationError("body is not JSON") from exc


class WebhookChannel:
    kind = "webhook"

    def __init__(self, name: str, settings: WebhookSettings, templates: Templates) -> None:
        self.name = name
        self.settings = settings
        self.templates = templates
        self.session = session()

    def body(self, message: Message) -> dict:
        ctx = message.context()
        return {
            "version": "1",
            "delivery_id": message.delivery_id,
            "action": message.action,
            "step": message.step,
            "round": message.round,
            "actor": message.actor,
            "incident": ctx["incident"],
            "links": message.links,
            "title": self.templates.render("title.txt.j2", message),
            "text": self.templates.render("text.txt.j2", message),
        }

    def send(self, message: Message) -> DeliveryResult:
        body = json.dumps(self.body(message), default=str).encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP: str(timestamp),
            SIGNATURE: sign(self.settings.secret.get_secret_value(), timestamp, body),
            DELIVERY: message.delivery_id,
        }
        return post(self.session, self.settings.url, body, headers, self.settings.timeout,
                    self.settings.verify)
