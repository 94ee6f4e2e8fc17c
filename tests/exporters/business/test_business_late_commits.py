"""Counters on PostgreSQL when ids commit out of order, roll back, or the exporter restarts.

A sequence hands out ids when rows are inserted, not when they commit: a transaction
holding id N can commit after N+1 was read. Every figure is checked against count(*)
over the same table, so a row skipped or counted twice fails the test.
"""

from __future__ import annotations

import random

import pytest
from sqlalchemy import Connection, create_engine, text

from exporters.business.main import BusinessSettings, build
from ticketmon.core.config import ConfigError, load
from ticketmon.simulator.platform_db import seed

INSERT = text("""
    INSERT INTO tickets (order_id, event_id, ticket_type_id, price_minor, currency, sold_at)
    SELECT order_id, event_id, ticket_type_id, price_minor, currency, sold_at
      FROM tickets ORDER BY id LIMIT 1
    RETURNING id""")


@pytest.fixture
def platform(database_url):
    engine = create_engine(database_url)
    seed(engine, history_hours=1, orders_per_hour=20, rng=random.Random(5))
    yield database_url, engine
    engine.dispose()


@pytest.fixture
def pg_platform(postgres_url):
    engine = create_engine(postgres_url)
    seed(engine, history_hours=1, orders_per_hour=20, rng=random.Random(5))
    yield postgres_url, engine
    engine.dispose()


def tickets_collector(url: str, **overrides):
    settings = BusinessSettings.model_validate({
        "platform_database_url": url, "counters_start": "beginning", "http": {"port": 0},
        "disable_queries": ["revenue", "payments", "refunds", "nft_mints",
                            "marketplace_listings_active", "event_capacity_utilization",
                            "event_on_sale", "active_users"],
        **overrides})
    (collector,) = build(settings).collectors
    return collector


def total(collector) -> float:
    assert collector.run_once(), collector.health.last_error
    return sum(collector.totals.values())


def count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM tickets")).scalar()


def insert(conn: Connection) -> int:
    """Insert one ticket in conn's open transaction; its id."""
    return conn.execute(INSERT).scalar()


def test_an_id_committed_after_a_higher_one_counts_once(pg_platform):
    url, engine = pg_platform
    collector = tickets_collector(url)
    try:
        assert total(collector) == count(engine)
        with engine.connect() as slow, engine.connect() as fast:
            n = insert(slow)
            assert insert(fast) == n + 1
            fast.commit()
            assert total(collector) == count(engine)  # n+1 counted, n not committed yet
            assert collector.watermark == n + 1 and collector.gaps == {n}
            slow.commit()
        assert total(collector) == count(engine)  # n counted late
        assert collector.gaps == frozenset()
        assert total(collector) == count(engine)  # and only once
    finally:
        collector.close()


def test_a_rolled_back_id_never_counts_and_leaves_the_window(pg_platform):
    url, engine = pg_platform
    collector = tickets_collector(url, counter_lookback_ids=5)
    try:
        before = total(collector)
        with engine.connect() as doomed, engine.connect() as other:
            n = insert(doomed)
            insert(other)
            other.commit()
            assert total(collector) == before + 1
            doomed.rollback()
        assert total(collector) == before + 1 == count(engine)
        assert collector.gaps == {n}
        with engine.connect() as conn:
            for _ in range(6):
                insert(conn)
            conn.commit()
        assert total(collector) == before + 7 == count(engine)
        assert collector.gaps == frozenset() and collector.given_up == 1
    finally:
        collector.close()


def test_a_commit_later_than_the_window_is_lost_the_documented_limit(pg_platform):
    url, engine = pg_platform
    collector = tickets_collector(url, counter_lookback_ids=2)
    try:
        total(collector)
        with engine.connect() as slow, engine.connect() as fast:
            insert(slow)
            for _ in range(3):
                insert(fast)
            fast.commit()
            total(collector)
            slow.commit()
        assert total(collector) == count(engine) - 1
        assert collector.gaps == frozenset()  # n was below the window when n+3 was read
    finally:
        collector.close()


def test_interleaved_writers_commit_and_roll_back_in_any_order(pg_platform):
    url, engine = pg_platform
    collector = tickets_collector(url, counter_lookback_ids=50)
    rng = random.Random(11)
    try:
        for _ in range(4):
            conns = [engine.connect() for _ in range(5)]
            for conn in conns:
                for _ in range(rng.randint(1, 3)):
                    insert(conn)
            rng.shuffle(conns)
            for conn in conns:
                conn.rollback() if rng.random() < 0.3 else conn.commit()
                conn.close()
                assert total(collector) == count(engine)
    finally:
        collector.close()


def test_restart_starts_totals_afresh(platform):
    """Totals live in memory: a restart is a counter reset, never a double count."""
    url, engine = platform
    first = tickets_collector(url)
    assert total(first) == count(engine)
    first.close()
    again = tickets_collector(url)  # counters_start: beginning re-reads the history once
    assert total(again) == count(engine)
    assert total(again) == count(engine)
    again.close()
    fresh = tickets_collector(url, counters_start="now")  # only rows after the start
    assert total(fresh) == 0
    with engine.connect() as conn:
        insert(conn)
        conn.commit()
    assert total(fresh) == 1
    fresh.close()


def test_a_row_in_flight_across_a_now_start_counts_when_it_commits(pg_platform):
    url, engine = pg_platform
    with engine.connect() as slow, engine.connect() as fast:
        insert(slow)
        insert(fast)
        fast.commit()
        collector = tickets_collector(url, counters_start="now")
        assert total(collector) == 0
        slow.commit()
    assert total(collector) == 1  # it committed after the start
    collector.close()


@pytest.mark.parametrize("value", ["-1", "2000000", "many"])
def test_bad_lookback_is_named(tmp_path, value):
    cfg = tmp_path / "business.yaml"
    cfg.write_text(f"counter_lookback_ids: {value}\n")
    with pytest.raises(ConfigError, match="counter_lookback_ids"):
        load(BusinessSettings, cfg, environ={})
