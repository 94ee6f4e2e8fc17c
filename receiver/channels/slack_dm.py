"""Slack direct messages to a person with a bot token (Web API chat.postMessage).

Unlike an incoming webhook, a bot can write to a person (channel = their member id)
and carry an interactive Acknowledge button: Slack posts the click to the receiver's
/api/v1/slack/actions, signed with the app's signing secret. Slack answers HTTP 200
with `ok: false` and an `error` for bad input, so the body decides the outcome:
`ratelimited` and Slack's own failures are retried, everything else (invalid_auth,
channel_not_found, invalid_blocks) is permanent.
"""

from __future__ import annotations

import json

import requests
from pydantic import SecretStr, field_validator

from receiver.channels.base import DeliveryResult, Message, Outcome, parse_retry_after
from receiver.channels.http import session
from receiver.channels.slack import ICONS, STATE
from ticketmon.core.config import Settings

ACK_ACTION = "ticketmon_ack"
RETRY_ERRORS = {"ratelimited", "internal_error", "fatal_error", "service_unavailable",
                "request_timeout"}


class SlackBotSettings(Settings):
    bot_token: SecretStr  # xoxb-…, with the chat:write scope
    api_url: str = "https://slack.com/api"  # the demo and tests point it at the sink
    timeout: float = 10.0
    verify: bool | str = True

    @field_validator("bot_token")
    @classmethod
    def _bot(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith("xoxb-"):
            raise ValueError("bot_token must be a bot token (xoxb-…)")
        return value


def blocks(message: Message, why: str) -> tuple[str, list[dict]]:
    """The text and Block Kit blocks of a direct message about an incident."""
    incident = message.context()["incident"]
    icon = ICONS.get(str(incident["severity"]), ":white_circle:")
    title = f"{icon} #{message.incident_id} {incident['title']}"
    if message.action in STATE:
        who = f" by {message.actor}" if message.actor else ""
        text = f"{STATE[message.action]}{who}: {title}"
        return text, [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}]
    text = f"You are paged ({why}): {title}"
    found: list[dict] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": (
            f"*{incident['severity'] or '-'}* · {incident['service'] or '-'} · "
            f"firing for {message.firing_for}")}]},
    ]
    buttons: list[dict] = [{"type": "button", "action_id": ACK_ACTION, "style": "danger",
                            "text": {"type": "plain_text", "text": "Acknowledge"},
                            "value": message.incident_id}]
    for key, label in (("incident", "Incident"), ("grafana", "Grafana")):
        if message.links.get(key):
            buttons.append({"type": "button", "action_id": f"link_{key}", "url":
                            message.links[key], "text": {"type": "plain_text", "text": label}})
    found.append({"type": "actions", "elements": buttons})
    return text, found


class SlackDirect:
    kind = "slack"

    def __init__(self, settings: SlackBotSettings) -> None:
        self.settings = settings
        self.timeout = settings.timeout
        self.session = session()
        self.url = settings.api_url.rstrip("/") + "/chat.postMessage"

    def send_to(self, user, message: Message, why: str) -> DeliveryResult:
        if not user.slack_id:
            return DeliveryResult(Outcome.PERMANENT, f"{user.name} has no slack_id")
        text, found = blocks(message, why)
        body = json.dumps({"channel": user.slack_id, "text": text, "blocks": found,
                           "unfurl_links": False}).encode()
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "Authorization": f"Bearer {self.settings.bot_token.get_secret_value()}"}
        try:
            response = self.session.post(self.url, data=body, headers=headers,
                                         timeout=self.timeout, verify=self.settings.verify,
                                         allow_redirects=False)
        except requests.Timeout:
            return DeliveryResult(Outcome.RETRY, "timeout")
        except requests.RequestException as exc:
            return DeliveryResult(Outcome.RETRY, f"connection error: {type(exc).__name__}")
        with response:
            wait = parse_retry_after(response.headers.get("Retry-After"))
            if response.status_code == 429 or response.status_code >= 500:
                return DeliveryResult(Outcome.RETRY, f"HTTP {response.status_code}", wait)
            try:
                answer = response.json()
            except ValueError:
                return DeliveryResult(Outcome.PERMANENT, f"HTTP {response.status_code}: "
                                      "not a Slack Web API answer")
        if answer.get("ok") is True:
            return DeliveryResult.delivered(f"slack dm ts {answer.get('ts')}")
        error = str(answer.get("error") or "unknown_error")
        outcome = Outcome.RETRY if error in RETRY_ERRORS else Outcome.PERMANENT
        return DeliveryResult(outcome, f"slack error {error}", wait)
