"""Slack incoming webhooks: a readable Block Kit message with a plain-text fallback.

Incoming webhooks cannot edit a message they posted (that needs a bot token and
chat.update), so an acknowledge or resolve posts a follow-up message rendered from
the same incident, marked with its new state and who changed it.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import SecretStr, model_validator

from receiver.channels.base import DeliveryResult, Message
from receiver.channels.http import post, session
from receiver.channels.templates import Templates
from receiver.channels.webhook import require_https
from ticketmon.core.config import Settings

ICONS = {"critical": ":red_circle:", "error": ":large_orange_circle:",
         "warning": ":large_yellow_circle:"}
STATE = {"acknowledge": ":eyes: Acknowledged", "resolve": ":white_check_mark: Resolved"}
RESOLVED_ICON = ":white_check_mark:"  # a resolve is good news: never the severity's red


class SlackSettings(Settings):
    type: Literal["slack"]
    webhook_url: SecretStr  # the URL itself is the credential
    timeout: float = 10.0
    verify: bool | str = True
    allow_insecure_http: bool = False  # http:// only by explicit choice (local sinks)

    @model_validator(mode="after")
    def _https(self) -> SlackSettings:
        require_https("webhook_url", self.webhook_url.get_secret_value(),
                      self.allow_insecure_http)
        return self


class SlackChannel:
    kind = "slack"

    def __init__(self, name: str, settings: SlackSettings, templates: Templates) -> None:
        self.name = name
        self.settings = settings
        self.templates = templates
        self.session = session()

    def send(self, message: Message) -> DeliveryResult:
        body = json.dumps(self.payload(message)).encode()
        return post(
            self.session, self.settings.webhook_url.get_secret_value(), body,
            {"Content-Type": "application/json"}, self.settings.timeout, self.settings.verify,
        )

    def payload(self, message: Message) -> dict:
        ctx = message.context()
        incident = ctx["incident"]
        title = self.templates.render("title.txt.j2", message)
        icon = (RESOLVED_ICON if message.action == "resolve"
                else ICONS.get(str(incident["severity"]), ":white_circle:"))
        fields = [
            ("Severity", incident["severity"] or "-"), ("Service", incident["service"] or "-"),
            ("Tenant", incident["tenant"] or "-"), ("Firing for", message.firing_for),
        ]
        blocks: list[dict] = [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in fields
            ]},
        ]
        if incident["summary"]:
            blocks.append({"type": "section",
                           "text": {"type": "mrkdwn", "text": str(incident["summary"])[:3000]}})
        if message.action in STATE:
            who = f" by {message.actor}" if message.actor else ""
            blocks.append({"type": "context", "elements": [
                {"type": "mrkdwn", "text": f"{STATE[message.action]}{who}"}]})
        buttons = [
            (key, text) for key, text in (
                ("ack", "Acknowledge"), ("incident", "Incident"), ("grafana", "Grafana"),
                ("alertmanager", "Alertmanager"),
            )
            if message.links.get(key) and (key != "ack" or message.action == "trigger")
        ]
        if buttons:
            elements = []
            for key, text in buttons:
                button = {"type": "button", "text": {"type": "plain_text", "text": text},
                          "url": message.links[key], "action_id": key}
                if key == "ack":
                    button["style"] = "danger"
                elements.append(button)
            blocks.append({"type": "actions", "elements": elements})
        text = f"{icon} " + self.templates.render("text.txt.j2", message)
        return {"text": text, "blocks": blocks}
