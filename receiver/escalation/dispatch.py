"""Delivering the outbox: claim only what a free thread starts at once, per channel.

Every channel (plus the Alertmanager pseudo-channel, and one lane for channels that are
no longer configured) has its own share of delivery threads, so a slow or failing
channel fills only its own share: pages still go out while Slack is backed up. A row
is claimed only when a thread of its lane is free, so its lease starts when its
delivery starts and never runs out while it waits in a local queue. Threads only talk
to the channel; their outcomes come back on a queue, and the dispatcher writes all
that have arrived in one transaction, each fenced by the lease (outbox.finish).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from receiver.channels.base import DeliveryResult, Outcome
from receiver.escalation.outbox import Claimed, RetryPolicy, claim, finish

log = logging.getLogger("receiver.worker")

OTHER = None  # the lane of rows whose channel is not configured (they fail at once)


@dataclass
class Done:
    """One finished delivery attempt, waiting to be written."""

    item: Claimed
    result: DeliveryResult
    silence_id: str | None
    at: datetime  # when the far end answered

    @property
    def outcome(self) -> str:
        return "cancelled" if self.result.detail == "skipped" else self.result.outcome.value


Send = Callable[[Claimed], tuple[DeliveryResult, str | None]]
Recorded = Callable[[Done, str | None], None]


class Dispatcher:
    def __init__(self, engine: Engine, owner: str, channels: Iterable[str], per_channel: int,
                 lease: float, retry: RetryPolicy, send: Send, recorded: Recorded,
                 poll_interval: float) -> None:
        self.engine = engine
        self.owner = owner
        self.per_channel = per_channel
        self.lease = lease
        self.retry = retry
        self.send = send
        self.recorded = recorded
        self.poll_interval = poll_interval
        self.in_flight: dict[str | None, int] = {name: 0 for name in channels}
        self.in_flight[OTHER] = 0
        self.pool = ThreadPoolExecutor(per_channel * len(self.in_flight),
                                       thread_name_prefix="deliver")
        self.wakeup = threading.Event()
        self._done: queue.SimpleQueue[Done] = queue.SimpleQueue()
        self._unwritten: list[Done] = []
        self._futures: set[Future] = set()
        self._idle: set[str | None] = set()  # lanes that had nothing due at the last look
        self._last_look = 0.0
        self._lock = threading.Lock()

    def lane(self, channel: str) -> str | None:
        return channel if channel in self.in_flight else OTHER

    def nudge(self) -> None:
        """New rows were written (a step fired): look at every lane again, now."""
        with self._lock:
            self._idle.clear()
        self.wakeup.set()

    # -- one round -----------------------------------------------------------------------
    def pump(self) -> int:
        """Write the outcomes that arrived, then claim for every lane with a free thread;
        returns how many rows were claimed."""
        self.write_outcomes()
        with self._lock:
            if time.monotonic() - self._last_look >= self.poll_interval:
                self._idle.clear()  # retries and expired leases fall due with time
                self._last_look = time.monotonic()
            slots = {lane: self.per_channel - busy for lane, busy in self.in_flight.items()
                     if busy < self.per_channel and lane not in self._idle}
        if not slots:
            return 0
        with self.engine.begin() as conn:
            items = claim(conn, self.owner, datetime.now(UTC), self.lease, slots)
        got = Counter(self.lane(item.row["channel"]) for item in items)
        with self._lock:
            self._idle.update(lane for lane, free in slots.items() if got[lane] < free)
            for item in items:
                self.in_flight[self.lane(item.row["channel"])] += 1
        for item in items:
            future = self.pool.submit(self._deliver, item)
            with self._lock:
                self._futures.add(future)
            future.add_done_callback(self._forget)
        return len(items)

    def _forget(self, future: Future) -> None:
        with self._lock:
            self._futures.discard(future)

    def _deliver(self, item: Claimed) -> None:
        try:
            result, silence_id = self.send(item)
        except Exception as exc:  # a bug in a channel must not kill the worker or the row
            log.exception("delivery %s crashed", item.row["key"])
            result, silence_id = DeliveryResult(Outcome.RETRY,
                                                f"internal error: {type(exc).__name__}"), None
        self._done.put(Done(item, result, silence_id, datetime.now(UTC)))
        with self._lock:
            lane = self.lane(item.row["channel"])
            self.in_flight[lane] -= 1
            self._idle.discard(lane)  # what this row held back (a resolve) may go now
        self.wakeup.set()

    def write_outcomes(self) -> int:
        """Write every outcome that arrived in one transaction. If the database is away
        they are kept and written next round (the leases are still ours meanwhile)."""
        while True:
            try:
                self._unwritten.append(self._done.get_nowait())
            except queue.Empty:
                break
        if not self._unwritten:
            return 0
        batch = self._unwritten
        with self.engine.begin() as conn:
            states = [finish(conn, d.item.row, self.owner, d.at, d.outcome, d.result.detail,
                             self.retry, d.result.retry_after, d.silence_id) for d in batch]
        self._unwritten = []
        for done, state in zip(batch, states, strict=True):
            self.recorded(done, state)
        return len(batch)

    def settle(self) -> None:
        """Wait for the deliveries in flight and write their outcomes."""
        with self._lock:
            pending = set(self._futures)
        wait(pending)
        self.write_outcomes()

    # -- loop ------------------------------------------------------------------------------
    def run(self, stopping: threading.Event, failed: Callable[[Exception], None]) -> None:
        """Claim and deliver until `stopping`; then finish what is in flight."""
        while not stopping.is_set():
            self.wakeup.clear()
            try:
                self.pump()
            except Exception as exc:  # database away: keep trying, state is in the DB
                failed(exc)
                stopping.wait(self.poll_interval)
                continue
            self.wakeup.wait(self.poll_interval)
        self.pool.shutdown(wait=True)
        try:
            self.write_outcomes()
        except Exception as exc:  # the leases run out and another worker redelivers
            failed(exc)
