"""The worker and the stream hub wait on commits, not on a timer (store.commit_watch)."""

from __future__ import annotations

import threading
import time

from support.receiver import payload_bytes

from receiver.payload import parse
from receiver.store import Store, migrate
from receiver.store.commit_watch import CommitWatch
from ticketmon.core.database import make_engine
from ticketmon.servers.process import free_port


def test_a_commit_elsewhere_ends_the_wait_and_quiet_lets_it_time_out(database_url):
    migrate.upgrade(database_url)
    store = Store(database_url)
    watch = CommitWatch(make_engine(database_url))
    try:
        assert watch.wait(0.3) is False  # nothing committed
        timer = threading.Timer(0.3, store.ingest, [parse(payload_bytes("firing"))])
        timer.start()
        started = time.monotonic()
        assert watch.wait(20) is True
        assert time.monotonic() - started < 10  # woken by the commit, not the timeout
        timer.join()
        # quiet again: the wait times out (PostgreSQL may deliver one ingest's
        # notifications in more than one read, each a harmless extra look)
        assert any(watch.wait(0.3) is False for _ in range(5))
    finally:
        watch.close()
        store.dispose()


def test_stop_ends_the_wait(sqlite_url):
    stop = threading.Event()
    watch = CommitWatch(make_engine(sqlite_url), stop)
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    assert watch.wait(30) is False
    assert time.monotonic() - started < 10
    watch.close()


def test_a_database_that_is_away_means_look_now_not_an_exception():
    engine = make_engine(f"postgresql+psycopg2://nobody@127.0.0.1:{free_port()}/none",
                         timeout=1)
    watch = CommitWatch(engine)
    assert watch.wait(0.2) is True  # the caller's own query reports the outage
    assert watch.conn is None
