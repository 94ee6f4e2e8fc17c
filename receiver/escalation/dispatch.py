"""Delivering the outbox: claim only what a free thread starts at once, per channel.

Every channel (plus the Alertmanager pseudo-channel, and one lane for channels that are
no longer configured) is a lane with its own threads, so a slow or failing channel
fills only its own lane: pages still go out while Slack is backed up. A lane holds at
most `rounds` rows per thread, so a claimed row waits for at most rounds - 1
deliveries before its own starts; the worker picks `rounds` so that this, with the
slowest channel's timeout, stays well inside the lease. Threads only talk to the
channel; their outcomes come back on a queue, and each round of the dispatcher writes
all that arrived (each fenced by its lease, outbox.finish_all) and claims more, in one
transaction.
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

from sqlalchemy.engine import Connection, Engine

from receiver.channels.base import DeliveryResult, Outcome
from receiver.escalation.outbox import (
    Claimed,
    Finished,
    RetryPolicy,
    any_ready,
    claim,
    finish_all,
    outcome_values,
)

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
                 poll_interval: float, rounds: int = 2) -> None:
        self.engine = engine
        self.owner = owner
        self.per_channel = per_channel
        self.rounds = rounds  # a lane holds at most rounds x per_channel claimed rows
        self.lease = lease
        self.retry = retry
        self.send = send
        self.recorded = recorded
        self.poll_interval = poll_interval
        lanes: list[str | None] = [*dict.fromkeys(channels), OTHER]
        self.claimed = dict.fromkeys(lanes, 0)  # claimed and not yet finished, per lane
        self.pools = {lane: ThreadPoolExecutor(per_channel, thread_name_prefix=f"deliver-{lane}")
                      for lane in lanes}
        self.wakeup = threading.Event()
        self.hold = threading.Event()  # set while the step loop works through a burst
        self._done: queue.SimpleQueue[Done] = queue.SimpleQueue()
        self._unwritten: list[Done] = []
        self._futures: set[Future] = set()
        self._idle: set[str | None] = set()  # lanes that had nothing due at the last look
        self._last_look = 0.0
        self._lock = threading.Lock()

    def lane(self, channel: str) -> str | None:
        if channel in self.claimed:
            return channel
        prefix = channel.partition(":")[0] + ":"  # a person's method: 'sms:alice' -> 'sms:'
        return prefix if prefix in self.claimed else OTHER

    def nudge(self) -> None:
        """New rows were written (a step fired): look at every lane again, now."""
        with self._lock:
            self._idle.clear()
        self.wakeup.set()

    # -- one round -----------------------------------------------------------------------
    def pump(self) -> int:
        """Write the outcomes that arrived and claim for every lane with room, in one
        transaction; returns how many rows were claimed."""
        batch = self._collect()
        depth = self.rounds * self.per_channel
        with self._lock:
            if time.monotonic() - self._last_look >= self.poll_interval:
                self._idle.clear()  # retries and expired leases fall due with time
                self._last_look = time.monotonic()
            slots = {lane: depth - busy for lane, busy in self.claimed.items()
                     if busy < depth and lane not in self._idle and not self.hold.is_set()}
        if not batch and not slots:
            return 0
        if not batch and not self._any_ready():
            with self._lock:
                self._idle.update(slots)
            return 0
        with self.engine.begin() as conn:
            states = self._write(conn, batch)
            items = claim(conn, self.owner, datetime.now(UTC), self.lease, slots) if slots else []
        self._written(batch, states)
        got = Counter(self.lane(item.row["channel"]) for item in items)
        with self._lock:
            self._idle.update(lane for lane, free in slots.items() if got[lane] < free)
            for lane, count in got.items():
                self.claimed[lane] += count
        for item in items:
            future = self.pools[self.lane(item.row["channel"])].submit(self._deliver, item)
            with self._lock:
                self._futures.add(future)
            future.add_done_callback(self._forget)
        return len(items)

    def _any_ready(self) -> bool:
        with self.engine.execution_options(readonly=True).begin() as conn:
            return any_ready(conn, datetime.now(UTC))

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
            self.claimed[lane] -= 1
            self._idle.discard(lane)  # what this row held back (a resolve) may go now
        self.wakeup.set()

    def _collect(self) -> list[Done]:
        """Outcomes that arrived, after any a failed round could not write (they are
        written next round; the leases are still ours meanwhile)."""
        while True:
            try:
                self._unwritten.append(self._done.get_nowait())
            except queue.Empty:
                return self._unwritten

    def _write(self, conn: Connection, batch: list[Done]) -> list[str | None]:
        if not batch:
            return []
        return finish_all(conn, self.owner, [
            Finished(d.item.row, outcome_values(d.item.row, d.at, d.outcome, d.result.detail,
                                                self.retry, d.result.retry_after),
                     d.silence_id) for d in batch])

    def _written(self, batch: list[Done], states: list[str | None]) -> None:
        self._unwritten = []
        for done, state in zip(batch, states, strict=True):
            self.recorded(done, state)

    def write_outcomes(self) -> int:
        """Write every outcome that arrived, in one transaction."""
        batch = self._collect()
        if batch:
            with self.engine.begin() as conn:
                states = self._write(conn, batch)
            self._written(batch, states)
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
        for pool in self.pools.values():
            pool.shutdown(wait=True)
        try:
            self.write_outcomes()
        except Exception as exc:  # the leases run out and another worker redelivers
            failed(exc)
