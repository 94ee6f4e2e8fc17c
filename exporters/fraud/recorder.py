"""Every check's outcome in the database, written off the request path.

The request puts a row on a bounded queue and returns; a writer thread wakes every
`flush_seconds` and inserts what is queued in batches. When the queue is full (the
database is slow or gone) the row is dropped and counted
(ticketmon_fraud_records_dropped_total): a check must never wait for storage.
A batch the database refuses is retried once, then dropped and counted the same way.

Each check belongs to a tenant (the caller's; see exporters.fraud.app). Reads of events
are filtered by tenant here and, on PostgreSQL, by a row-level security policy on the
tenant set per transaction (`ticketmon.tenant`), like the receiver's tables. Checks hold
personal data: the writer deletes those older than the retention, and IP addresses are
stored truncated or keyed-hashed (exporters.fraud.privacy) unless configured otherwise.
The table is this module's own (no Alembic): ensure_schema creates it and brings an
older table up to date (tenant column, index, policy), once, under a lock.
"""

from __future__ import annotations

import logging
import operator
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from pydantic_core import to_json
from sqlalchemy.exc import SQLAlchemyError

from exporters.fraud.privacy import ip_transform
from ticketmon.core.auth import ALL_TENANTS
from ticketmon.core.database import TENANT_SETTING, make_engine

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
    sa.Column("ip", sa.String(45)),  # as privacy.ip_transform left it (may be None)
    # checks written before tenancy belong to the receiver's fallback tenant, "default"
    sa.Column("tenant", sa.String(100), nullable=False, server_default=sa.text("'default'")),
)
sa.Index("ix_fraud_checks_level_time", checks.c.risk_level, checks.c.checked_at)
TENANT_INDEX = sa.Index("ix_fraud_checks_tenant_time", checks.c.tenant, checks.c.checked_at)
DEFAULT_TENANT = "default"
POLICY = "ticketmon_tenant"
SCOPE = f"coalesce(current_setting('{TENANT_SETTING}', true), '')"
RULE = f"{SCOPE} = '*' OR tenant = {SCOPE}"
SET_TENANT = sa.text(f"SELECT set_config('{TENANT_SETTING}', :tenant, true)")

LEVELS = ("low", "medium", "high", "critical")
COLUMNS = [c.name for c in checks.c if c.name != "id"]
ROW_VALUES = operator.itemgetter(*COLUMNS)  # a queued row's values in COLUMNS order


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
    """Create the table, or bring an older one up to date; safe when several workers
    start at once (one transaction under a lock: SQLite's write lock, or an advisory
    lock on PostgreSQL)."""
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as conn:
        if postgres:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('ticketmon.fraud'))"))
            conn.execute(SET_TENANT, {"tenant": ALL_TENANTS})
        metadata.create_all(conn, checkfirst=True)
        names = {c["name"] for c in sa.inspect(conn).get_columns(checks.name)}
        if "tenant" not in names:  # a table from before tenancy
            conn.execute(sa.text(f"ALTER TABLE {checks.name} ADD COLUMN tenant VARCHAR(100) "
                                 f"NOT NULL DEFAULT '{DEFAULT_TENANT}'"))
        conn.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {TENANT_INDEX.name} "
                             f"ON {checks.name} (tenant, checked_at)"))
        if postgres:
            _row_security(conn)


def _row_security(conn: sa.Connection) -> None:
    """The tenant policy, forced on the owner too (PostgreSQL only)."""
    forced = conn.execute(sa.text(
        "SELECT relrowsecurity AND relforcerowsecurity FROM pg_class "
        "WHERE oid = to_regclass(:t)"), {"t": checks.name}).scalar()
    policy = conn.execute(sa.text(
        "SELECT 1 FROM pg_policies WHERE tablename = :t AND policyname = :p"),
        {"t": checks.name, "p": POLICY}).scalar()
    if not policy:
        conn.execute(sa.text(f"CREATE POLICY {POLICY} ON {checks.name} "
                             f"USING ({RULE}) WITH CHECK ({RULE})"))
    if not forced:
        conn.execute(sa.text(f"ALTER TABLE {checks.name} ENABLE ROW LEVEL SECURITY"))
        conn.execute(sa.text(f"ALTER TABLE {checks.name} FORCE ROW LEVEL SECURITY"))


def prune(engine: sa.Engine, cutoff: float, batch: int = 5000) -> int:
    """Delete checks older than `cutoff` (unix seconds), in batches so writers are not
    held up for long; returns how many went."""
    deleted = 0
    while True:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(SET_TENANT, {"tenant": ALL_TENANTS})
            old = (sa.select(checks.c.id).where(checks.c.checked_at < cutoff)
                   .limit(batch).scalar_subquery())
            count = conn.execute(checks.delete().where(checks.c.id.in_(old))).rowcount
        deleted += count
        if count < batch:
            return deleted


class Recorder:
    def __init__(self, url: str, queue_size: int, batch_size: int, flush_seconds: float,
                 on_drop: Callable[[int], None], ip_storage: str = "truncate",
                 ip_key: bytes | None = None, retention_seconds: float = 30 * 86400,
                 prune_interval: float = 3600, clock: Callable[[], float] = time.time
                 ) -> None:
        self.engine = make_engine(url, pool_size=2)
        ensure_schema(self.engine)
        self.postgres = self.engine.dialect.name == "postgresql"
        self._insert, self._positional = insert_statement(self.engine.dialect)
        self._ip = ip_transform(ip_storage, ip_key)
        self.retention_seconds = retention_seconds
        self.prune_interval = prune_interval
        self.clock = clock
        self._next_prune = 0.0  # the first pass of the writer prunes
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
            self._prune_when_due()

    def _prune_when_due(self) -> None:
        if not self.prune_interval or time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + self.prune_interval
        try:
            gone = prune(self.engine, self.clock() - self.retention_seconds)
        except SQLAlchemyError as exc:
            log.warning("pruning fraud checks failed",
                        extra={"error": str(exc).splitlines()[0][:300]})
            return
        if gone:
            log.info("pruned fraud checks past retention", extra={"rows": gone})

    def _params(self, batch: list[dict[str, Any]]) -> list:
        """Driver parameters for a batch (its rows are ours, off the queue: changed here).
        pydantic-core's JSON encoder and one itemgetter per row: this thread shares the
        GIL with the request threads."""
        ip = self._ip
        for row in batch:
            row["patterns"] = to_json(row["patterns"]).decode()
            row["ip"] = ip(row["ip"])
        if self._positional:
            return [ROW_VALUES(row) for row in batch]
        return batch

    def _write(self, batch: list[dict[str, Any]]) -> None:
        params = self._params(batch)
        for attempt in (1, 2):
            try:
                with self.engine.begin() as conn:
                    if self.postgres:  # the writer acts for every tenant
                        conn.execute(SET_TENANT, {"tenant": ALL_TENANTS})
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

    def events(self, since: float, until: float, min_level: str, limit: int,
               tenant: str) -> list[dict]:
        """Checks at or above min_level for one tenant ('*': every tenant, admin only)."""
        levels = LEVELS[LEVELS.index(min_level):]
        query = (sa.select(checks)
                 .where(checks.c.checked_at >= since, checks.c.checked_at <= until,
                        checks.c.risk_level.in_(levels))
                 .order_by(checks.c.checked_at.desc()).limit(limit))
        if tenant != ALL_TENANTS:
            query = query.where(checks.c.tenant == tenant)
        with self.engine.execution_options(readonly=True).begin() as conn:
            if self.postgres:
                conn.execute(SET_TENANT, {"tenant": tenant})
            return [dict(r._mapping) for r in conn.execute(query)]
