"""Several workers share the series through claims: no double work, and a dead
worker's series move to the others once its lease ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from support.anomaly_series import STEP

from receiver.anomaly import claims
from receiver.anomaly.job import AnomalyJob
from receiver.anomaly.settings import AnomalySettings, SeriesSettings
from receiver.store import Store, migrate

NAMES = [f"s{i}" for i in range(7)]
T0 = datetime(2026, 12, 6, 12, tzinfo=UTC)
LEASE = 120.0


@pytest.fixture
def store(database_url):
    migrate.upgrade(database_url)
    s = Store(database_url, pool_size=1)
    yield s
    s.dispose()


def take(store: Store, worker: str, at: datetime) -> set[str]:
    with store.transaction() as conn:
        return claims.claim(conn, worker, NAMES, at, LEASE)


def test_workers_split_the_series_without_overlap_and_take_over_a_dead_ones(store):
    a = take(store, "a", T0)
    assert a == set(NAMES)  # alone: everything
    b = take(store, "b", T0 + timedelta(seconds=10))
    assert b == set()  # a's leases are live: nothing free yet
    a = take(store, "a", T0 + timedelta(seconds=60))  # a sees b and hands back a share
    b = take(store, "b", T0 + timedelta(seconds=70))
    assert a.isdisjoint(b) and a | b == set(NAMES) and abs(len(a) - len(b)) <= 1
    # a dies (stops renewing): within a lease after its last renewal, b has everything
    later = T0 + timedelta(seconds=60 + LEASE + 1)
    assert take(store, "b", later) == set(NAMES)


def test_thousands_of_series_split_and_move_in_bulk(store):
    many = [f"m{i:05d}" for i in range(1201)]  # more than one statement's 500

    def grab(worker: str, at: datetime) -> set[str]:
        with store.transaction() as conn:
            return claims.claim(conn, worker, many, at, LEASE)

    assert len(grab("a", T0)) == 1201
    grab("b", T0 + timedelta(seconds=1))  # registers; a's leases are live
    a = grab("a", T0 + timedelta(seconds=60))
    b = grab("b", T0 + timedelta(seconds=61))
    assert a.isdisjoint(b) and a | b == set(many) and (len(a), len(b)) == (601, 600)
    later = T0 + timedelta(seconds=61 + LEASE + 1)  # a died: b takes its expired leases
    assert grab("b", later) == set(many)


def test_a_clean_stop_hands_the_series_over_at_once(store):
    take(store, "a", T0)
    with store.transaction() as conn:
        claims.release(conn, "a")
    assert take(store, "b", T0 + timedelta(seconds=1)) == set(NAMES)


def test_series_that_leave_the_settings_are_not_claimed(store):
    assert take(store, "a", T0) == set(NAMES)
    with store.transaction() as conn:
        assert claims.claim(conn, "a", NAMES[:3], T0 + timedelta(seconds=5), LEASE) \
            == set(NAMES[:3])


def test_two_jobs_never_score_the_same_series(backfilled, sqlite_url):
    prom, end = backfilled
    migrate.upgrade(sqlite_url)
    store = Store(sqlite_url, pool_size=1)
    items = [SeriesSettings(name=f"flat_{i}", query='ticketmon_test_value{case="flat"}',
                            step_seconds=STEP, history_seconds=STEP * 399, season_seconds=0,
                            min_train=100, min_scores=100) for i in range(4)]
    settings = AnomalySettings(prometheus_url=prom.url, series=items, interval_seconds=60)
    jobs = [AnomalyJob(settings, store, background_refit=False) for _ in range(2)]
    try:
        first = [o.series for o in jobs[0].run_once(now=end)]
        assert len(first) == 4  # alone so far
        jobs[1].run_once(now=end + 30)  # nothing free yet
        first = {o.series for o in jobs[0].run_once(now=end + 60)}  # hands back two
        second = {o.series for o in jobs[1].run_once(now=end + 61)}
        assert first.isdisjoint(second) and len(first) == len(second) == 2
        jobs[0].close()  # stops cleanly: its series move at the other's next run
        assert {o.series for o in jobs[1].run_once(now=end + 120)} == {i.name for i in items}
    finally:
        jobs[1].close()
        store.dispose()
