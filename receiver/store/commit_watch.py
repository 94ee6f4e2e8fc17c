"""Wake up when another connection commits, instead of polling the database on a timer.

The escalation worker and the stream hub learn of new incidents, resolves and changes
only through the database. Polling every poll interval puts that interval into every
page and every live update; waiting here puts a few milliseconds there:

- PostgreSQL: LISTEN on the change feed's channel, on a connection of its own; every
  incident change NOTIFYs it (migration 0010's statement trigger, feed.sequence).
- SQLite: `PRAGMA data_version`, which changes when any other connection (any process)
  commits, read every `tick` on a connection of its own: a read of the WAL index, no lock.

A database that is away is not an error here: the wait says "look now" and the caller's
own query reports the outage.
"""

from __future__ import annotations

import select
import threading
import time

from sqlalchemy.engine import Engine

from receiver.stream import feed


class CommitWatch:
    def __init__(self, engine: Engine, stop: threading.Event | None = None,
                 tick: float = 0.01) -> None:
        self.engine = engine
        self.stop = stop or threading.Event()
        self.tick = tick
        self.conn = None
        self.version: int | None = None

    def wait(self, timeout: float) -> bool:
        """True as soon as something committed elsewhere (or the database could not be
        asked), False after `timeout` seconds without a commit or once `stop` is set."""
        try:
            if self.engine.dialect.name == "postgresql":
                return self._listen(timeout)
            return self._data_version(timeout)
        except Exception:  # noqa: BLE001 - away: the caller's next query says so
            self.close()
            self.stop.wait(timeout)
            return True

    def _own_connection(self):
        raw = self.engine.raw_connection()
        conn = raw.driver_connection
        raw.detach()  # ours for good: a pooled connection would lose LISTEN or its version
        return conn

    def _listen(self, timeout: float) -> bool:
        if self.conn is None:
            self.conn = self._own_connection()
            self.conn.autocommit = True
            with self.conn.cursor() as cur:
                cur.execute(f"LISTEN {feed.CHANNEL}")
        deadline = time.monotonic() + timeout
        while not self.stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if select.select([self.conn], [], [], min(left, 0.5))[0]:  # 0.5: see `stop`
                self.conn.poll()
                if self.conn.notifies:
                    self.conn.notifies.clear()
                    return True
        return False

    def _data_version(self, timeout: float) -> bool:
        if self.conn is None:
            self.conn = self._own_connection()
            self.version = self._read_version()
        deadline = time.monotonic() + timeout
        while not self.stop.wait(min(self.tick, max(0.0, deadline - time.monotonic()))):
            version = self._read_version()
            if version != self.version:
                self.version = version
                return True
            if time.monotonic() >= deadline:
                return False
        return False

    def _read_version(self) -> int:
        return self.conn.execute("PRAGMA data_version").fetchone()[0]

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - already broken; a new one is made next time
                pass
            self.conn = None
