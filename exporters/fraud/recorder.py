"""Every check's outcome in the database, written off the request path.

The request puts a row on a bounded queue and returns; a writer thread wakes every
`flush_seconds` and inserts what is queued in batches. When the queue is full (the
database is slow or gone) the row is dropped and counted
(ticketmon_fraud_records_dropped_total): a check must never wait for storage.
A batch the database refuses is retried once, then dropped and counted the same way.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from ticketmon.core.database import make_engine

log = logging.getLogger("ticketmon.fraud.recorder")

metadata = sa.MetaData()
checks = sa.Table(
    "fraud_checks", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("check_id", sa.String(32), nullable=False, unique=True),
    sa.Column("checked_at", sa.Float, nullable=False, index=True),  # unix seconds
    sa.Column("user_id", sa.String(128), nullable=False),
    sa.Column("event_id", sa.String(128), nullable=False),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("risk_score", sa.Integer, nullable=False),
    sa.Column("risk_level", sa.String(16), nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("patterns", sa.JSON, nullable=False),
    sa.Column("outlier_score", sa.Float),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("ip", sa.String(45)),
)
sa.Index("ix_fraud_checks_level_time", checks.c.risk_level, checks.c.checked_at)

LEVELS = ("low", "medium", "high", "critical")
COLUMNS = [c.name for c in checks.c if c.name != "id"]


def insert_statement(dialect: sa.Dialect) -> tuple[str, bool]:
    """The INSERT in the driver's own paramstyle, and whether it takes tuples.

    Rows go to the driver's executemany as they are: SQLAlchemy's per-row bind
    processing would run on a thread that shares the GIL with the
    request threads. The JSON column gets text, which both SQLite and PostgreSQL take.
    """
    stmt = checks.insert().values({name: sa.bindparam(name) for name in COLUMNS})
    compiled = stmt.compile(dialect=dialect)
    return str(compiled), bool(compiled.positional)


def ensure_schema(engine: sa.Engine) -> None:
    """Create the table if missing; safe when several workers start at once."""
    try:
        metadata.create_all(engine, checkfirst=True)
    except SQLAlchemyError:
        # another worker created it between our check and our CREATE
        if not sa.inspect(engine).has_table(checks.name):
            raise


class Recorder:
    def __init__(self, url: str, queue_size: int, batch_size: int, flush_seconds: float,
                 on_drop: Callable[[int], None]) -> None:
        self.engine = make_engine(url, pool_size=2)
        ensure_schema(self.engine)
        self._insert, self._positional = insert_statement(self.engine.dialect)
        # a deque, not queue.Queue: append/popleft are atomic, and no condition variable
        # is signalled per check (Queue.put takes a lock and a condition); the writer polls
        self.queue: deque[dict[str, Any]] = deque()
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.on_drop = on_drop
        self.written = 0
        self.dropped = 0
        self._writing = 0  # rows taken off the queue and not yet written or dropped
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def put(self, row: dict[str, Any]) -> bool:
        if len(self.queue) >= self.queue_size:  # racing threads may overshoot by a row or two
            self.dropped += 1
            self.on_drop(1)
            return False
        self.queue.append(row)
        return True

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="fraud-recorder", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _take_batch(self) -> list[dict[str, Any]]:
        batch: list[dict[str, Any]] = []
        self._writing = self.batch_size  # before popping: flush() must not see a gap
        popleft = self.queue.popleft
        try:
            while len(batch) < self.batch_size:
                batch.append(popleft())
        except IndexError:
            pass
        self._writing = len(batch)
        return batch

    def _loop(self) -> None:
        # wake on a timer, not per row: a thread woken for every check would keep taking
        # the GIL from the request threads
        while True:
            stopping = self._stop.wait(self.flush_seconds)
            while batch := self._take_batch():
                self._write(batch)
                self._writing = 0
            if stopping:
                return

    def _params(self, batch: list[dict[str, Any]]) -> list:
        """Driver parameters for a batch (its rows are ours, off the queue: changed here)."""
        dumps = json.dumps
        for row in batch:
            row["patterns"] = dumps(row["patterns"])
        if self._positional:
            return [tuple(row[name] for name in COLUMNS) for row in batch]
        return batch

    def _write(self, batch: list[dict[str, Any]]) -> None:
        params = self._params(batch)
        for attempt in (1, 2):
            try:
                with self.engine.begin() as conn:
                    conn.exec_driver_sql(self._insert, params)
                self.written += len(batch)
                return
            except SQLAlchemyError as exc:
                log.warning("writing fraud checks failed",
                            extra={"rows": len(batch), "attempt": attempt,
                                   "error": str(exc).splitlines()[0][:300]})
                time.sleep(0.2)
        self.dropped += len(batch)
        self.on_drop(len(batch))

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything queued so far is written (tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while (self.queue or self._writing) and time.monotonic() < deadline:
            time.sleep(0.01)

    def events(self, since: float, until: float, min_level: str, limit: int) -> list[dict]:
        levels = LEVELS[LEVELS.index(min_level):]
        query = (sa.select(checks)
                 .where(checks.c.checked_at >= since, checks.c.checked_at <= until,
                        checks.c.risk_level.in_(levels))
                 .order_by(checks.c.checked_at.desc()).limit(limit))
        with self.engine.connect().execution_options(readonly=True) as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
