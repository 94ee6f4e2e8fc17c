"""Alembic migrations shipped inside the package, so an installed receiver can migrate."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from pydantic import BaseModel
from sqlalchemy.engine import make_url

from ticketmon.core.config import ConfigError
from ticketmon.core.database import make_engine

SCRIPT_LOCATION = "receiver:migrations"


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    return cfg


def head() -> str:
    """The revision the code expects (the newest migration)."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def upgrade(url: str, revision: str = "head") -> None:
    engine = make_engine(url, pool_size=1, tenant="*")  # data migrations see every tenant
    try:
        with engine.connect() as conn:
            cfg = _config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()
    finally:
        engine.dispose()


def current(url: str) -> str | None:
    """The revision the database is at (None: no ticketmon schema)."""
    engine = make_engine(url, pool_size=1, tenant="*")
    try:
        with engine.connect() as conn:  # read directly: alembic's context logs at info
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()


def ensure_present(settings: BaseModel, creatable: bool = False) -> None:
    """Stop before touching anything when the SQLite file the settings use is not there.

    SQLite creates a missing file on connect, and the default URL is a file in the working
    directory: without this, a command run without --config leaves an empty database there
    and then fails on a missing table. creatable: a file the settings name (never the
    unconfigured default) may be created, as the worker does.
    """
    url: str = settings.database_url  # type: ignore[attr-defined]
    if not url.startswith("sqlite"):
        return
    configured = "database_url" in settings.model_fields_set
    path = make_url(url).database or ""
    if (creatable and configured) or path in ("", ":memory:") or Path(path).exists():
        return
    where = "" if configured else " (the default, in this directory)"
    raise ConfigError(f"no receiver database at {url}{where}: pass --config FILE whose "
                      "database_url names yours, or create it with "
                      "`ticketmon receiver db upgrade` (same --config)")


def require(settings: BaseModel, upgrade_sqlite: bool = False) -> None:
    """The database is there and at the code's revision (upgrade_sqlite: SQLite is
    migrated by the command itself), or a one-line ConfigError says what to run."""
    ensure_present(settings, creatable=upgrade_sqlite)
    url: str = settings.database_url  # type: ignore[attr-defined]
    if upgrade_sqlite and url.startswith("sqlite"):
        upgrade(url)
        return
    found, wanted = current(url), head()
    if found != wanted:
        shown = make_url(url).render_as_string(hide_password=True)
        raise ConfigError(f"the receiver database at {shown} has schema {found or 'none'}, "
                          f"this ticketmon needs {wanted}: run `ticketmon receiver db upgrade` "
                          "(same --config)")
