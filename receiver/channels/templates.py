"""Message templates (Jinja2) that a user can override file by file.

Defaults live beside this module; a directory named in the settings is searched
first, so copying `text.txt.j2` there and editing it changes every channel's text.
Templates are rendered once against a sample message at start-up, so a typo in an
override fails the worker's start with the template's name, not a 3 a.m. delivery.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from receiver.channels.base import Message
from ticketmon.core.config import ConfigError

DEFAULTS = Path(__file__).with_name("templates")
NAMES = ("title.txt.j2", "text.txt.j2", "email.html.j2")


class Templates:
    def __init__(self, override_dir: str | Path | None = None) -> None:
        loaders: list[jinja2.BaseLoader] = []
        if override_dir:
            path = Path(override_dir)
            if not path.is_dir():
                raise ConfigError(f"templates_dir: {path} is not a directory")
            loaders.append(jinja2.FileSystemLoader(str(path)))
        loaders.append(jinja2.FileSystemLoader(str(DEFAULTS)))
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
            keep_trailing_newline=False,
        )
        self.check()

    def render(self, name: str, message: Message) -> str:
        return self.env.get_template(name).render(message.context()).strip()

    def check(self) -> None:
        """Render every template against a sample, raising ConfigError naming the bad one."""
        sample = Message(
            action="trigger",
            delivery_id="sample",
            incident={
                "id": "sample", "title": "Sample", "severity": "critical", "service": "s",
                "tenant": "t", "status": "open", "started_at": 0, "labels": {},
                "summary": "",
            },
            links={"incident": "http://x", "ack": "http://x"},
        )
        for name in NAMES:
            try:
                self.render(name, sample)
            except jinja2.TemplateError as exc:
                raise ConfigError(f"template {name}: {exc}") from exc
