"""One reader of the change feed per process, fanning changes out to its open streams.

However many clients a stream server holds, it asks the database once: a thread wakes
on PostgreSQL's NOTIFY (or every `poll_interval`, which is all SQLite has), numbers
committed changes (feed.sequence), reads what came after its last position, and puts
each change into the bounded queue of every stream allowed to see its tenant. A queue
that is full means that client fell `buffer` events behind: it is marked dropped, not
buffered further. The same thread prunes the feed now and then.
"""

from __future__ import annotations

import logging
import queue
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from receiver.store import StoreUnavailable
from receiver.stream import feed
from receiver.stream.settings import StreamSettings

log = logging.getLogger("receiver.stream")

PAGE = 500  # changes per read
PRUNE_EVERY = 300.0  # seconds
# set by the stream server's gunicorn on SIGTERM (receiver/stream/gunicorn_conf.py): every
# stream then ends at once, so a stopping worker is not held by clients that never leave
SHUTDOWN = threading.Event()


@dataclass(eq=False)
class Subscriber:
    """One open stream: the tenant it may see (None: every tenant) and its queue."""

    tenant: str | None
    queue: queue.Queue
    ended: str | None = None  # why the hub ended it: "slow" or "shutdown"

    def offer(self, change: feed.Change) -> None:
        try:
            self.queue.put_nowait(change)
        except queue.Full:
            self.ended = "slow"

    def end(self, reason: str) -> None:
        self.ended = reason
        try:
            self.queue.put_nowait(None)  # wakes a waiting stream; a full one is busy anyway
        except queue.Full:
            pass


@dataclass
class Hub:
    engine: Engine  # the all-tenant engine of the receiver's Store
    settings: StreamSettings
    head: int = 0
    subscribers: set[Subscriber] = field(default_factory=set)
    open_streams: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    clock: Callable[[], float] = time.monotonic
    _thread: threading.Thread | None = None

    # -- what streams call ---------------------------------------------------------------
    def reserve(self) -> bool:
        """Take a slot for one more stream; False when max_streams are open."""
        self.start()
        with self.lock:
            if self.open_streams >= self.settings.max_streams:
                return False
            self.open_streams += 1
            return True

    def release(self) -> None:
        with self.lock:
            self.open_streams -= 1

    def subscribe(self, tenant: str | None) -> tuple[Subscriber, int]:
        """A queue receiving every change after the returned position."""
        sub = Subscriber(tenant, queue.Queue(maxsize=self.settings.buffer))
        with self.lock:
            self.subscribers.add(sub)
            if SHUTDOWN.is_set():
                sub.end("shutdown")
            return sub, self.head

    def unsubscribe(self, sub: Subscriber) -> None:
        with self.lock:
            self.subscribers.discard(sub)

    # -- the reader thread ---------------------------------------------------------------
    def start(self) -> None:
        with self.lock:
            if self._thread is not None:
                return
            try:
                with self.engine.begin() as conn:  # a fresh stream starts after what committed
                    feed.sequence(conn)
                    self.head = feed.head(conn)
            except (sa.exc.DBAPIError, sa.exc.TimeoutError) as exc:
                raise StoreUnavailable(f"the change feed cannot be read: {exc}") from exc
            self._thread = threading.Thread(target=self._run, name="stream-hub", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        listener = Listener(self.engine) if self.engine.dialect.name == "postgresql" else None
        pruned = 0.0
        while not SHUTDOWN.is_set():
            try:
                if listener is not None:
                    listener.wait(self.settings.poll_interval)
                else:
                    SHUTDOWN.wait(self.settings.poll_interval)
                self.catch_up()
                if self.clock() - pruned >= PRUNE_EVERY:
                    pruned = self.clock()
                    self.prune()
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any outage
                log.warning("stream hub cannot read the change feed: %s", exc)
                if listener is not None:
                    listener.close()
                SHUTDOWN.wait(1.0)
        with self.lock:
            for sub in self.subscribers:
                sub.end("shutdown")

    def catch_up(self) -> None:
        """Number what committed, then hand every change after `head` to the streams."""
        reader = self.engine.execution_options(readonly=True)  # SQLite: no write lock
        with reader.connect() as conn:
            waiting = feed.unsequenced(conn)
        if waiting:
            with self.engine.begin() as conn:
                feed.sequence(conn)
        while True:
            with reader.connect() as conn:
                changes = feed.read_after(conn, self.head, PAGE)
            with self.lock:
                for change in changes:
                    for sub in self.subscribers:
                        if sub.tenant is None or sub.tenant == change.tenant:
                            sub.offer(change)
                if changes:
                    self.head = changes[-1].position
            if len(changes) < PAGE:
                return
            time.sleep(0.01)  # a burst: let the streams write this page out first

    def prune(self) -> None:
        cutoff = datetime.now(UTC) - timedelta(seconds=self.settings.retention)
        with self.engine.begin() as conn:
            gone = feed.prune(conn, cutoff, self.settings.max_rows)
        if gone:
            log.info("pruned the change feed", extra={"rows": gone})


class Listener:
    """PostgreSQL LISTEN on the feed's channel, on a connection of its own."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.conn = None

    def wait(self, timeout: float) -> None:
        """Until a change is committed (or sequenced) anywhere, or `timeout` seconds."""
        if self.conn is None:
            raw = self.engine.raw_connection()
            self.conn = raw.driver_connection
            raw.detach()  # ours for good: a pooled connection would lose the LISTEN
            self.conn.autocommit = True
            with self.conn.cursor() as cur:
                cur.execute(f"LISTEN {feed.CHANNEL}")
        if select.select([self.conn], [], [], timeout)[0]:
            self.conn.poll()
            self.conn.notifies.clear()

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - already broken; a new one is made next time
                pass
            self.conn = None
