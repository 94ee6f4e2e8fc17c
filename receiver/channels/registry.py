"""Channel settings as one tagged union, and building channels from them by name."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from receiver.channels.base import Channel
from receiver.channels.email import EmailChannel, EmailSettings
from receiver.channels.pagerduty import PagerDutyChannel, PagerDutySettings
from receiver.channels.slack import SlackChannel, SlackSettings
from receiver.channels.templates import Templates
from receiver.channels.webhook import WebhookChannel, WebhookSettings

ChannelSettings = Annotated[
    PagerDutySettings | SlackSettings | EmailSettings | WebhookSettings,
    Field(discriminator="type"),
]

KINDS = {
    "pagerduty": PagerDutyChannel,
    "slack": SlackChannel,
    "email": EmailChannel,
    "webhook": WebhookChannel,
}


def build_channels(
    settings: dict[str, ChannelSettings], templates: Templates
) -> dict[str, Channel]:
    return {name: KINDS[cfg.type](name, cfg, templates) for name, cfg in settings.items()}
