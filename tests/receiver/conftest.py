"""Receiver fixtures: a migrated store on SQLite and PostgreSQL, apps, tokens, payloads."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator

import pytest
from support.receiver import WEBHOOK_TOKEN

from receiver.app import create_app
from receiver.settings import ReceiverSettings
from receiver.store import Store, migrate


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A migrated store, once on SQLite and once on PostgreSQL."""
    migrate.upgrade(database_url)
    s = Store(database_url)
    yield s
    s.dispose()


_roles = itertools.count()


@pytest.fixture
def app_role_url(postgres_cluster) -> str:
    """A fresh PostgreSQL database owned by an ordinary role (no superuser, no BYPASSRLS),
    as production should run: row-level security then binds every query it makes."""
    return postgres_cluster.create_database(f"tm_app_{next(_roles)}_{os.getpid()}",
                                            owned_by_ordinary_role=True)


@pytest.fixture
def make_app(sqlite_url: str) -> Iterator[Callable]:
    """Factory: an app over a migrated database (SQLite unless a URL is given)."""
    stores = []

    def make(database_url: str | None = None, migrated: bool = True, **settings):
        url = database_url or sqlite_url
        if migrated:
            migrate.upgrade(url)
        settings.setdefault("webhook_token", WEBHOOK_TOKEN)
        app = create_app(ReceiverSettings(database_url=url, **settings))
        stores.append(app.extensions["ticketmon_receiver"].store)
        return app

    yield make
    for s in stores:
        s.dispose()
