"""One reader of the change feed per process, fanning changes out to its open streams.

However many clients a stream server holds, it asks the database once: a thread wakes
on any commit (store.commit_watch: PostgreSQL's NOTIFY, SQLite's data_version) or every
`poll_interval`, numbers committed changes (feed.sequence), reads what came after its
last position, and puts what it read, as one batch per tenant, into the queue of every
stream allowed to see it. A stream with `buffer` changes waiting fell that far behind:
it is marked dropped, not buffered further. The same thread prunes the feed now and then.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from receiver.store import StoreUnavailable
from receiver.store.commit_watch import CommitWatch
from receiver.stream import feed
from receiver.stream.settings import StreamSettings

log = logging.getLogger("receiver.stream")

PAGE = 500  # changes per read
PRUNE_EVERY = 300.0  # seconds
COALESCE = 0.05  # seconds: reads at most this often
# set by the stream server's gunicorn on SIGTERM (receiver/stream/gunicorn_conf.py): every
# stream then ends at once, so a stopping worker is not held by clients that never leave
SHUTDOWN = threading.Event()


@dataclass(frozen=True)
class Batch:
    """The changes of one read that one stream may see, their events joined once: a
    storm's page goes to each stream as one queue item and one write, not one per change."""

    changes: list[feed.Change]
    text: str

    @classmethod
    def of(cls, changes: list[feed.Change]) -> Batch:
        return cls(changes, "".join(change.text for change in changes))

    @property
    def last(self) -> int:
        return self.changes[-1].position

    def after(self, position: int) -> tuple[str, int]:
        """The events after `position` and how many (all, but right after subscribing)."""
        if self.changes[0].position > position:
            return self.text, len(self.changes)
        fresh = [change for change in self.changes if change.position > position]
        return "".join(change.text for change in fresh), len(fresh)


@dataclass(eq=False)
class Subscriber:
    """One open stream: the tenant it may see (None: every tenant), its queue of batches,
    and how many changes wait in it, at most `limit`."""

    tenant: str | None
    limit: int
    queue: queue.Queue = field(default_factory=queue.Queue)
    waiting: int = 0
    ended: str | None = None  # why the hub ended it: "slow" or "shutdown"
    lock: threading.Lock = field(default_factory=threading.Lock)

    def offer(self, batch: Batch) -> None:
        with self.lock:
            if self.waiting + len(batch.changes) > self.limit:
                self.end("slow")
                return
            self.waiting += len(batch.changes)
        self.queue.put_nowait(batch)

    def taken(self, batch: Batch) -> None:
        with self.lock:
            self.waiting -= len(batch.changes)

    def end(self, reason: str) -> None:
        self.ended = self.ended or reason
        self.queue.put_nowait(None)  # wakes a waiting stream


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
        sub = Subscriber(tenant, self.settings.buffer)
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
        watch = CommitWatch(self.engine, SHUTDOWN)
        pruned = read = 0.0
        while not SHUTDOWN.is_set():
            try:
                watch.wait(self.settings.poll_interval)
                # in a storm every commit notifies: gather them into one read, so each
                # stream gets a batch per COALESCE instead of a write per commit (a lone
                # change still goes out at once)
                SHUTDOWN.wait(max(0.0, read + COALESCE - self.clock()))
                read = self.clock()
                self.catch_up()
                if self.clock() - pruned >= PRUNE_EVERY:
                    pruned = self.clock()
                    self.prune()
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any outage
                log.warning("stream hub cannot read the change feed: %s", exc)
                watch.close()
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
                if changes:
                    self.fan_out(changes)
                    self.head = changes[-1].position
            if len(changes) < PAGE:
                return
            time.sleep(0.01)  # a burst: let the streams write this page out first

    def fan_out(self, changes: list[feed.Change]) -> None:
        """Each stream gets the batch of its tenant (an admin's: all of it)."""
        everything = Batch.of(changes)
        of_tenant: dict[str, Batch | None] = {}
        for sub in self.subscribers:
            if sub.tenant is None:
                sub.offer(everything)
                continue
            if sub.tenant not in of_tenant:
                mine = [change for change in changes if change.tenant == sub.tenant]
                of_tenant[sub.tenant] = Batch.of(mine) if mine else None
            if of_tenant[sub.tenant] is not None:
                sub.offer(of_tenant[sub.tenant])

    def prune(self) -> None:
        cutoff = datetime.now(UTC) - timedelta(seconds=self.settings.retention)
        with self.engine.begin() as conn:
            gone = feed.prune(conn, cutoff, self.settings.max_rows)
        if gone:
            log.info("pruned the change feed", extra={"rows": gone})
