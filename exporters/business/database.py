"""One SQLAlchemy engine for the platform database, with timeouts on every statement."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ticketmon.core.config import ConfigError


def safe_url(url: str) -> str:
    """The URL with its password masked, for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparsable URL)"


def make_engine(url: str, timeout: float, pool_size: int = 4) -> Engine:
    """Pre-pinged pooled connections; PostgreSQL statements are cut at `timeout`."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"platform_database_url: not a database URL ({exc})") from exc
    connect_args: dict = {}
    options: dict = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "postgresql":
        ms = max(1, int(timeout * 1000))
        connect_args = {
            "connect_timeout": max(1, int(timeout)),
            "options": f"-c statement_timeout={ms} -c default_transaction_read_only=on",
            "application_name": "ticketmon-business-exporter",
        }
        options.update(pool_size=pool_size, max_overflow=0, pool_timeout=timeout)
    elif parsed.get_backend_name() == "sqlite":
        connect_args = {"timeout": timeout}
    try:
        return create_engine(parsed, connect_args=connect_args, **options)
    except Exception as exc:  # a missing driver or a bad option, named for the operator
        raise ConfigError(f"platform_database_url {safe_url(url)}: {exc}") from exc
