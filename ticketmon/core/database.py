"""Engines that behave well under several gunicorn workers on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

TENANT_SETTING = "ticketmon.tenant"  # what PostgreSQL row-level security policies read


def make_engine(url: str, pool_size: int = 4, timeout: float = 5.0,
                autocommit: bool = False, tenant: str | None = None) -> Engine:
    """A small pool per worker; bounded waits so a sick database yields 503, not a hang.

    autocommit (PostgreSQL only) gives a pool whose connections never open a transaction:
    for single-statement reads, which see one snapshot anyway and then need no BEGIN and
    COMMIT round trips. It is a pool of its own because switching a pooled connection in
    and out of autocommit costs a round trip each way (psycopg2 resets session settings).
    """
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": timeout},
                                  pool_size=pool_size, max_overflow=pool_size)
        _sqlite_transactions(engine, timeout)
        return engine
    millis = int(timeout * 1000)
    options: dict = {}
    if autocommit:
        options["isolation_level"] = "AUTOCOMMIT"
    session = f"-c statement_timeout={millis} -c lock_timeout={millis}"
    if tenant is not None:
        escaped = tenant.replace("\\", "\\\\").replace(" ", "\\ ")
        session += f" -c {TENANT_SETTING}={escaped}"
    return sa.create_engine(
        url,
        **options,
        pool_size=pool_size,
        max_overflow=2,
        pool_timeout=timeout,
        pool_recycle=3600,
        connect_args={
            "connect_timeout": max(1, int(timeout)),
            "options": session,
            "application_name": "ticketmon-receiver",
        },
    )


def _sqlite_transactions(engine: Engine, timeout: float) -> None:
    """Take SQLite's write lock at BEGIN, so two writers queue instead of deadlocking.

    pysqlite would otherwise start transactions lazily and upgrade read locks to write
    locks mid-transaction, which fails at once ("database is locked") under concurrency.
    Read-only work passes execution_options(readonly=True) and begins DEFERRED.
    """

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn) -> None:
        readonly = conn.get_execution_options().get("readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")
