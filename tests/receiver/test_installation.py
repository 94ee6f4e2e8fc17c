"""Each database gets its own installation id at its first migration: the key that keeps
PagerDuty incidents and email threads of two installations (or a reset) apart."""

from __future__ import annotations

from pathlib import Path

from receiver.store import Store, migrate, queries


def installation(url: str) -> str:
    migrate.upgrade(url)
    store = Store(url)
    try:
        return store.read(queries.installation_id)
    finally:
        store.dispose()


def test_installation_id_is_drawn_once_per_database(database_url: str, tmp_path: Path):
    first = installation(database_url)
    assert len(first) == 36
    assert installation(database_url) == first  # migrating again keeps it
    other = installation(f"sqlite:///{tmp_path / 'reset.db'}")  # a reset: a new database
    assert other != first
