"""SMS and phone calls to a person through Twilio's REST API (the `twilio` library).

One Twilio account (SID, auth token, a sending number) serves every person: the number
comes from people.yaml. Twilio's answers map onto the worker's outcomes: 429 and 5xx
are worth a retry, other 4xx (an invalid number, 21211; bad credentials, 20003) are
not. Only a page calls or texts: an acknowledge or resolve is not worth waking anyone,
so those are skipped (the Slack message is updated instead).
"""

from __future__ import annotations

import re
from typing import Literal
from xml.sax.saxutils import escape

import requests
from pydantic import SecretStr, field_validator

from receiver.channels.base import DeliveryResult, Message, Outcome
from ticketmon.core.config import Settings

SID = re.compile(r"^AC[0-9a-f]{32}$")
SMS_LIMIT = 1600  # Twilio refuses longer bodies (error 21617)


class TwilioSettings(Settings):
    account_sid: str
    auth_token: SecretStr
    from_number: str  # E.164, a number of the account
    base_url: str = "https://api.twilio.com"  # the demo and tests point it at the sink
    timeout: float = 10.0
    verify: bool | str = True

    @field_validator("account_sid")
    @classmethod
    def _sid(cls, value: str) -> str:
        if not SID.match(value):
            raise ValueError("account_sid looks like AC followed by 32 hex digits")
        return value

    @field_validator("from_number")
    @classmethod
    def _number(cls, value: str) -> str:
        if not re.match(r"^\+[1-9]\d{6,14}$", value):
            raise ValueError(f"{value!r} is not an E.164 number like +15005550006")
        return value


def sms_text(message: Message, why: str) -> str:
    incident = message.context()["incident"]
    ack = f" Ack: {message.links['ack']}" if message.links.get("ack") else ""
    text = (f"[ticketmon] {str(incident['severity']).upper()} #{message.incident_id} "
            f"{incident['title']} ({why}).{ack}")
    return text[:SMS_LIMIT]


def call_twiml(message: Message, why: str) -> str:
    incident = message.context()["incident"]
    words = (f"This is ticketmon. {incident['severity']} incident {message.incident_id}: "
             f"{incident['title']}. You are paged as {why}. Acknowledge it in Slack or "
             "with the link in your text message.")
    say = escape(words)
    return f"<Response><Say>{say}</Say><Pause length=\"1\"/><Say>{say}</Say></Response>"


class TwilioPerson:
    """Sends SMS (`kind` sms) or places calls (`kind` voice) to a person's phone."""

    def __init__(self, kind: Literal["sms", "voice"], settings: TwilioSettings) -> None:
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        self.kind = kind
        self.settings = settings
        self.timeout = settings.timeout
        http = TwilioHttpClient(timeout=settings.timeout, pool_connections=True)
        http.session.verify = settings.verify
        self.client = Client(settings.account_sid, settings.auth_token.get_secret_value(),
                             http_client=http)
        self.client.api.base_url = settings.base_url.rstrip("/")

    def send_to(self, user, message: Message, why: str) -> DeliveryResult:
        from twilio.base.exceptions import TwilioRestException

        if message.action != "trigger":
            return DeliveryResult.delivered("skipped")
        if not user.phone:
            return DeliveryResult(Outcome.PERMANENT, f"{user.name} has no phone number")
        try:
            if self.kind == "sms":
                sent = self.client.messages.create(to=user.phone,
                                                   from_=self.settings.from_number,
                                                   body=sms_text(message, why))
            else:
                sent = self.client.calls.create(to=user.phone, from_=self.settings.from_number,
                                                twiml=call_twiml(message, why))
        except TwilioRestException as exc:
            detail = f"twilio {exc.status} error {exc.code}: {exc.msg}"[:300]
            if exc.status == 429 or exc.status >= 500:
                return DeliveryResult(Outcome.RETRY, detail)
            return DeliveryResult(Outcome.PERMANENT, detail)
        except requests.Timeout:
            return DeliveryResult(Outcome.RETRY, "timeout")
        except requests.RequestException as exc:
            return DeliveryResult(Outcome.RETRY, f"connection error: {type(exc).__name__}")
        return DeliveryResult.delivered(f"twilio {self.kind} {sent.sid} {sent.status}")
