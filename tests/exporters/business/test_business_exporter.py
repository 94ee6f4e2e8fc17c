"""Business exporter on the reference schema with generated data (PostgreSQL and SQLite).

Every figure is checked against an independent full-table SQL aggregate over the same
data, so an incremental collection that skipped or double-counted rows would fail.
"""

from __future__ import annotations

import random
import textwrap
import time

import psycopg2
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, event, text
from support.promtool import promtool_check_metrics

from exporters.business.main import BusinessSettings, build
from ticketmon.core.config import ConfigError
from ticketmon.simulator.platform_db import Knobs, LiveWriter, seed


@pytest.fixture
def platform(database_url):
    engine = create_engine(database_url)
    seed(engine, history_hours=6, orders_per_hour=150, rng=random.Random(7))
    yield database_url, engine
    engine.dispose()


def make(url: str, **overrides):
    options = {"counters_start": "beginning", "interval_seconds": 60, "timeout_seconds": 10,
               "http": {"port": 0}}
    settings = BusinessSettings.model_validate(
        {"platform_database_url": url, **options, **overrides})
    return build(settings)


def run_all(exporter) -> dict[str, dict]:
    """Collect once; {metric: {labels tuple: value}} from the rendered exposition."""
    for c in exporter.collectors:
        assert c.run_once(), (c.name, c.health.last_error)
    text_ = b"".join(c.exposition()[0] for c in exporter.collectors).decode()
    out: dict[str, dict] = {}
    for fam in text_string_to_metric_families(text_):
        for s in fam.samples:
            if s.name.endswith("_created"):
                continue
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def sql(engine, query: str) -> list:
    with engine.connect() as conn:
        return conn.execute(text(query)).all()


def test_counters_match_full_aggregates_and_stay_incremental(platform):
    url, engine = platform
    exporter = make(url, cardinality_limit=1000)
    try:
        first = run_all(exporter)
        tickets_collector = next(c for c in exporter.collectors if c.name == "tickets_sold")
        first_watermark = tickets_collector.watermark
        assert first_watermark == sql(engine, "SELECT max(id) FROM tickets")[0][0]
        sold = first["ticketmon_tickets_sold_total"]
        assert sum(sold.values()) == sql(engine, "SELECT count(*) FROM tickets")[0][0]
        per_type = dict(sql(engine, """SELECT tt.name, count(*) FROM tickets t
                                       JOIN ticket_types tt ON tt.id = t.ticket_type_id
                                       GROUP BY tt.name"""))
        by_type: dict[str, float] = {}
        for labels, value in sold.items():
            kind = dict(labels)["ticket_type"]
            by_type[kind] = by_type.get(kind, 0) + value
        assert by_type == per_type

        writer = LiveWriter(create_engine(url), knobs=Knobs(orders_per_second=40,
                                                            payment_failure_ratio=0.3),
                            rng=random.Random(3))
        writer.platform.load()
        statements: list[tuple[str, dict]] = []

        def capture(conn, cursor, statement, params, context, executemany):
            statements.append((statement, params))

        event.listen(exporter.collectors[0].engine, "before_cursor_execute", capture)
        for _ in range(3):
            writer.tick()
        second = run_all(exporter)
        event.remove(exporter.collectors[0].engine, "before_cursor_execute", capture)

        assert sum(second["ticketmon_tickets_sold_total"].values()) == \
            sql(engine, "SELECT count(*) FROM tickets")[0][0]
        payments = {(("outcome", o), ("provider", p)): float(n) for p, o, n in sql(
            engine, "SELECT provider, outcome, count(*) FROM payments GROUP BY provider, outcome")}
        assert second["ticketmon_payments_total"] == payments
        revenue = {(("currency", c), ("venue", v)): float(n) for c, v, n in sql(engine, """
            SELECT p.currency, v.name, sum(p.amount_minor) FROM payments p
              JOIN orders o ON o.id = p.order_id JOIN events e ON e.id = o.event_id
              JOIN venues v ON v.id = e.venue_id WHERE p.outcome = 'succeeded'
             GROUP BY p.currency, v.name""")}
        assert second["ticketmon_revenue_minor_units_total"] == revenue
        refunds = {(("reason", r),): float(n) for r, n in sql(
            engine, "SELECT reason, count(*) FROM refunds GROUP BY reason")}
        assert second["ticketmon_refunds_total"] == refunds
        assert sum(second["ticketmon_nft_mints_total"].values()) == \
            sql(engine, "SELECT count(*) FROM nft_mints")[0][0]

        # the second run read only the new rows: (watermark after run 1, max id now]
        tickets_query = [p for st, p in statements if "JOIN ticket_types" in st]
        assert len(tickets_query) == 1
        bounds = list(tickets_query[0].values() if isinstance(tickets_query[0], dict)
                      else tickets_query[0])
        max_id = sql(engine, "SELECT max(id) FROM tickets")[0][0]
        assert bounds == [first_watermark, max_id]
        assert tickets_collector.watermark == max_id
    finally:
        for c in exporter.collectors:
            c.close()


def test_gauges_and_promtool(platform):
    url, engine = platform
    exporter = make(url)
    values = run_all(exporter)
    active = sql(engine, "SELECT count(*) FROM marketplace_listings WHERE status = 'active'")
    assert values["ticketmon_marketplace_listings_active"][()] == active[0][0]
    assert values["ticketmon_active_users"][()] >= 0
    ratios = values["ticketmon_event_capacity_utilization_ratio"].values()
    assert ratios and all(0 <= r for r in ratios)
    assert set(values["ticketmon_event_on_sale"].values()) == {1.0}
    live = b"".join(c.exposition()[0] for c in exporter.collectors)
    assert promtool_check_metrics(live) == ""


def test_cardinality_guard_folds_the_rest_into_other(platform):
    url, engine = platform
    exporter = make(url, cardinality_limit=2)
    values = run_all(exporter)
    events = {dict(k)["event"] for k in values["ticketmon_tickets_sold_total"]}
    venues = {dict(k)["venue"] for k in values["ticketmon_tickets_sold_total"]}
    assert "other" in events and len(events - {"other"}) <= 2
    assert len(venues - {"other"}) <= 2
    top = [r[0] for r in sql(engine, """SELECT e.name FROM tickets t JOIN events e
        ON e.id = t.event_id GROUP BY e.name ORDER BY count(*) DESC, e.name LIMIT 2""")]
    assert events - {"other"} == set(top)
    assert sum(values["ticketmon_tickets_sold_total"].values()) == \
        sql(engine, "SELECT count(*) FROM tickets")[0][0]


def test_a_bad_query_fails_alone_and_is_named(platform, tmp_path):
    url, _ = platform
    extra = tmp_path / "extra.yaml"
    extra.write_text(textwrap.dedent("""
        queries:
          - name: broken_sql
            metric: ticketmon_broken
            type: gauge
            help: Refers to a missing table.
            sql: SELECT count(*) AS value FROM no_such_table
          - name: wrong_columns
            metric: ticketmon_wrong_columns
            type: gauge
            help: Returns a column the labels do not name.
            labels: [provider]
            sql: SELECT provider AS prov, count(*) AS value FROM payments GROUP BY provider
          - name: not_a_number
            metric: ticketmon_not_a_number
            type: gauge
            help: Returns text.
            sql: SELECT 'abc' AS value
    """))
    exporter = make(url, query_files=[extra])
    results = {c.name: c.run_once() for c in exporter.collectors}
    errors = {c.name: c.health.last_error for c in exporter.collectors}
    assert results.pop("broken_sql") is False and "no_such_table" in errors["broken_sql"]
    assert results.pop("wrong_columns") is False and "prov" in errors["wrong_columns"]
    assert results.pop("not_a_number") is False and "'abc'" in errors["not_a_number"]
    assert all(results.values()), errors


def test_lost_database_sets_up_zero_then_recovers(postgres_cluster, postgres_url):
    engine = create_engine(postgres_url)
    seed(engine, history_hours=1, orders_per_hour=50, rng=random.Random(1))
    engine.dispose()
    dbname = postgres_url.rsplit("/", 1)[1]
    exporter = make(postgres_url, timeout_seconds=3)
    exporter.start()
    try:
        tickets = next(c for c in exporter.collectors if c.name == "tickets_sold")
        deadline = time.monotonic() + 20  # let the first scheduled runs finish
        while not all(c.health.up for c in exporter.collectors):
            assert time.monotonic() < deadline, [c.health for c in exporter.collectors]
            time.sleep(0.05)
        admin = psycopg2.connect(postgres_cluster.dsn())
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,))
            cur.execute(f'ALTER DATABASE "{dbname}" RENAME TO "{dbname}_away"')
        assert tickets.run_once() is False
        assert tickets.exposition() == (b"", b"")
        body = requests.get(exporter.url + "/metrics", timeout=5).text
        assert 'ticketmon_collector_up{collector="tickets_sold",exporter="business"} 0.0' in body
        with admin.cursor() as cur:
            cur.execute(f'ALTER DATABASE "{dbname}_away" RENAME TO "{dbname}"')
        admin.close()
        assert tickets.run_once() is True
    finally:
        exporter.stop()


def test_bad_settings_are_named(tmp_path):
    from ticketmon.core.config import load

    cfg = tmp_path / "business.yaml"
    cfg.write_text("cardinality_limit: 0\n")
    with pytest.raises(ConfigError, match="cardinality_limit"):
        load(BusinessSettings, cfg, environ={})
    cfg.write_text("platform_database_url: 'not a url'\n")
    with pytest.raises(ConfigError, match="platform_database_url"):
        build(load(BusinessSettings, cfg, environ={}))


BAD_QUERY = """
queries:
  - name: broken_sql
    metric: ticketmon_broken
    type: gauge
    help: Refers to a missing table.
    sql: SELECT count(*) AS value FROM no_such_table
"""


def test_cli_check_and_start_report_name_the_bad_query(tmp_path):
    import subprocess
    import sys

    from ticketmon.servers.process import ManagedProcess, free_port

    db = f"sqlite:///{tmp_path / 'p.db'}"
    seed(create_engine(db), history_hours=1, orders_per_hour=20, rng=random.Random(2))
    (tmp_path / "extra.yaml").write_text(BAD_QUERY)
    cfg = tmp_path / "business.yaml"
    port = free_port()
    cfg.write_text(f"platform_database_url: {db}\nhttp: {{port: {port}}}\n")
    argv = [sys.executable, "-m", "ticketmon", "exporter", "business", "--config", str(cfg)]
    good = subprocess.run(argv + ["--check"], capture_output=True, text=True, timeout=60)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "tickets_sold: ok" in good.stdout

    cfg.write_text(cfg.read_text() + f"query_files: ['{tmp_path / 'extra.yaml'}']\n")
    bad = subprocess.run(argv + ["--check"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert "broken_sql: FAILED" in bad.stdout and "no_such_table" in bad.stdout
    assert "tickets_sold: ok" in bad.stdout

    proc = ManagedProcess("business", argv, tmp_path / "business.log")
    try:
        proc.wait_http(f"http://127.0.0.1:{port}/healthz")
        proc.wait_until(lambda: "queries failed at start: broken_sql" in proc.log_tail(50))
        body = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert 'ticketmon_collector_up{collector="broken_sql",exporter="business"} 0.0' in body
        assert 'ticketmon_collector_up{collector="tickets_sold",exporter="business"} 1.0' in body
    finally:
        proc.stop()
    assert proc.proc.returncode == 0

    cfg.write_text("cardinality_limit: -3\n")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "cardinality_limit" in done.stderr


def test_the_daily_sales_pattern_peaks_in_the_evening_and_averages_one():
    from datetime import datetime

    from ticketmon.simulator.platform_db import daily_factor

    day = [daily_factor(datetime(2026, 3, 2, h, m)) for h in range(24) for m in (0, 30)]
    assert abs(sum(day) / len(day) - 1) < 0.01
    assert daily_factor(datetime(2026, 3, 2, 19, 30)) > 2 > 0.2 > daily_factor(
        datetime(2026, 3, 2, 3))
