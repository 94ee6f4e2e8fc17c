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
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection, CursorResult, Dialect

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

    def __call__(self, conn: Connection, params: dict) -> CursorResult:
        done = conn.connection.info.setdefault(PREPARED, set())
        if self.name not in done:
            conn.exec_driver_sql(self.prepare)
            done.add(self.name)
        return conn.exec_driver_sql(self.execute, {**self.constants, **params}
                                    if self.constants else params)
