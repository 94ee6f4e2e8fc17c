"""Console fixtures: an app with a token of each role over SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from support.console import TOKENS
from support.receiver import WEBHOOK_TOKEN

from receiver.app import create_app
from receiver.settings import ReceiverSettings
from receiver.store import migrate


@pytest.fixture
def make_console(database_url: str) -> Iterator[Callable]:
    """Factory: a receiver app (webhook, API and console) over a migrated database."""
    stores = []

    def make(**settings):
        migrate.upgrade(database_url)
        settings.setdefault("webhook_token", WEBHOOK_TOKEN)
        settings.setdefault("api_tokens", TOKENS)
        settings.setdefault("console", {"grafana_url": "http://127.0.0.1:3000/"})
        app = create_app(ReceiverSettings(database_url=database_url, **settings))
        stores.append(app.extensions["ticketmon_receiver"].store)
        return app

    yield make
    for store in stores:
        store.dispose()


@pytest.fixture
def console_app(make_console):
    return make_console()
