"""Server-side prepared statements for the ingest hot path (PostgreSQL).

psycopg2 sends each statement as text, so PostgreSQL parses, analyses and plans every
post's probe, incident lock, upsert and links-and-history statement anew: measured
in a storm, planning alone took about 0.6 ms of server CPU per post, more than half of
what executing them took. A statement prepared once per connection (PREPARE) is then
only bound and run (EXECUTE), and after five runs PostgreSQL keeps one generic plan
when it costs no more than planning each time. The replay probe is not prepared: its
generic plan, chosen while the alerts table was still small, ran at 1.4-5 ms per call
in a storm against 0.14 ms planned each time (one prepared on the grown table was fast).

A prepared statement lives as long as its session, whatever becomes of the transaction
that prepared it (a rollback does not drop it), so each pooled connection remembers
what it has prepared in its `info`, which SQLAlchemy empties when the connection is
replaced. A connection pooler in transaction mode (PgBouncer) would hand the session's
statements to other clients: point the receiver at PostgreSQL or a session pooler.

They run on the DBAPI cursor of the caller's connection, not through SQLAlchemy's
exec_driver_sql: its execution context and result metadata (rebuilt per call for
textual SQL, 25 columns for the incident lock) cost more client CPU than psycopg2's
own execute (measured: 157 -> 70 us per lock call). What SQLAlchemy adds that matters
is kept: cursor events fire (tests count statements with them) and a DBAPI error goes
through the connection's own handling, so it is wrapped (the store turns it into 503)
and a lost connection invalidates the pool as any other statement's would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

PREPARED = "ticketmon_prepared"  # key of the DBAPI connection's info: names prepared


class Prepared:
    """One statement written with %(name)s parameters, prepared on first use per
    connection. `params` maps each parameter to its SQL type, in the order wanted."""

    def __init__(self, name: str, sql: str, params: dict[str, str],
                 constants: dict | None = None) -> None:
        body = sql
        for number, param in enumerate(params, 1):
            if f"%({param})s" not in body:
                raise ValueError(f"{name}: no parameter {param!r} in the statement")
            body = body.replace(f"%({param})s", f"${number}")
        if "%(" in body:
            raise ValueError(f"{name}: a parameter has no type")
        self.name = name
        self.prepare = f"PREPARE {name} ({', '.join(params.values())}) AS {body}"
        self.execute = (f"EXECUTE {name} ("
                        + ", ".join(f"%({p})s::{t}" for p, t in params.items()) + ")")
        self.constants = constants or {}

    @classmethod
    def from_core(cls, name: str, statement: sa.Executable, dialect: Dialect) -> Prepared:
        """A Core statement as its dialect renders it; its literal values become
        parameters of the prepared statement, given at each EXECUTE."""
        compiled = statement.compile(dialect=dialect)
        params = {compiled.bind_names[bind]: bind.type.compile(dialect=dialect)
                  for bind in compiled.binds.values()}
        constants = {k: v for k, v in compiled.params.items() if v is not None}
        return cls(name, compiled.string, params, constants)

    def __call__(self, conn: Connection, params: dict) -> list[tuple]:
        """Run it in the caller's transaction; the rows it returns, if any."""
        return self._run(conn, params,
                         lambda cursor: cursor.fetchall() if cursor.description else [])

    def first(self, conn: Connection, params: dict) -> dict | None:
        """Run it; its first row by column name, or None."""
        def read(cursor) -> dict | None:
            row = cursor.fetchone()
            return None if row is None else dict(zip([d[0] for d in cursor.description], row,
                                                        strict=True))
        return self._run(conn, params, read)

    def _run(self, conn: Connection, params: dict, read: Callable[[Any], Any]) -> Any:
        if self.constants:
            params = {**self.constants, **params}
        pooled = conn.connection
        done = pooled.info.setdefault(PREPARED, set())
        cursor = pooled.dbapi_connection.cursor()
        try:
            if self.name not in done:
                _execute(conn, cursor, self.prepare, None)
                done.add(self.name)
            _execute(conn, cursor, self.execute, params)
            return read(cursor)
        finally:
            cursor.close()


def fetch_all(conn: Connection, statement: str, params: dict) -> list[tuple]:
    """An unprepared statement on the DBAPI cursor, as a prepared one runs: the cheap way
    for the replay probe, which answers most posts (SQLAlchemy's exec_driver_sql cost
    about as much client CPU again)."""
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        _execute(conn, cursor, statement, params)
        return cursor.fetchall()
    finally:
        cursor.close()


def _execute(conn: Connection, cursor, statement: str, params: dict | None) -> None:
    listeners = conn.dispatch.before_cursor_execute
    if listeners:
        listeners(conn, cursor, statement, params, None, False)
    try:
        cursor.execute(statement, params)
    except conn.dialect.loaded_dbapi.Error as exc:
        # SQLAlchemy's own handling (wrap, invalidate on disconnect): no public API
        # does the same for a statement run on the DBAPI cursor (psycopg2 reads every
        # row at execute, so fetching raises nothing of its own)
        conn._handle_dbapi_exception(exc, statement, params, cursor, None)
