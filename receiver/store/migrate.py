"""Alembic migrations shipped inside the package, so an installed receiver can migrate."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

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
