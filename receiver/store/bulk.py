"""Statements that carry many rows in one round trip, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection

CHUNK = 500  # rows per multi-row statement, well under SQLite's parameter limit


def dialect_insert(conn: Connection, table: sa.Table):
    """INSERT with ON CONFLICT for whichever backend the connection speaks."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def chunks(rows: Sequence, size: int = CHUNK) -> Iterable[Sequence]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def unnest(name: str, columns: list[sa.Column]) -> sa.TableValuedAlias:
    """Rows passed as one array per column (PostgreSQL): one statement whatever their
    number, and always the same text, so SQLAlchemy compiles it once."""
    arrays = [sa.bindparam(f"{name}_{c.name}", type_=ARRAY(c.type)) for c in columns]
    return sa.func.unnest(*arrays).table_valued(
        *[sa.column(c.name, c.type) for c in columns], name=name).render_derived()


def arrays(name: str, columns: list[sa.Column], rows: list[tuple]) -> dict[str, list]:
    return {f"{name}_{c.name}": list(values)
            for c, values in zip(columns, zip(*rows, strict=True), strict=True)}
