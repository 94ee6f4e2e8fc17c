"""Receiver fixtures: a migrated store on SQLite and PostgreSQL, apps, tokens, payloads."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from receiver.app import create_app
from receiver.settings import ReceiverSettings
from receiver.store import Store, migrate

PAYLOADS = Path(__file__).resolve().parents[2].parent / "shared" / "payloads"
WEBHOOK_TOKEN = "webhook-token-for-tests-0123456789"


def payload_bytes(name: str) -> bytes:
    return (PAYLOADS / f"alertmanager-0.25-{name}.json").read_bytes()


def payload(name: str) -> dict:
    return json.loads(payload_bytes(name))


ALL_PAYLOADS = sorted(p.name[len("alertmanager-0.25-"):-5] for p in PAYLOADS.glob("*.json")
                      if not p.name.endswith("headers.json"))


def snapshot(store: Store) -> dict[str, list]:
    """Every row of the receiver's tables, to prove a post changed nothing."""
    from receiver.store.tables import metadata

    with store.engine.connect() as conn:
        return {t.name: [tuple(r) for r in conn.execute(sa.select(t).order_by(*t.primary_key))]
                for t in metadata.sorted_tables}


def count(store: Store, table: str, where: str = "1=1") -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE {where}")).scalar()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A migrated store, once on SQLite and once on PostgreSQL."""
    migrate.upgrade(database_url)
    s = Store(database_url)
    yield s
    s.dispose()


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


def post_webhook(client, body: bytes | dict, token: str = WEBHOOK_TOKEN, **headers):
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    headers.setdefault("Content-Type", "application/json")
    if token is not None:
        headers.setdefault("Authorization", f"Bearer {token}")
    return client.post("/api/v1/alertmanager", data=body, headers=headers)
