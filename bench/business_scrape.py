#!/usr/bin/env python3
"""Business exporter benchmark: collection cost at 1M vs 10M tickets, scrape latency at
~5,000 series, and query-exporter on the same database, side by side in one run.

    .venv/bin/python bench/business_scrape.py [--small 1000000 --large 10000000]
        [--query-exporter /tmp/anchors/qe-venv/bin/query-exporter]

Starts its own throw-away PostgreSQL (ticketmon.servers.postgres) and builds the
reference schema with generate_series. Both databases hold the same *recent* activity
(the last 365 days: `--small` tickets); the large one adds older history in front of
it, which is how a platform's table grows. Targets: (a) collection per run at 10M
<= 1.5x 1M; (b) /metrics p99 <= 20 ms at ~5,000 series. Bounded by --budget seconds.
Not run in CI. query-exporter: `python3 -m venv /tmp/anchors/qe-venv &&
/tmp/anchors/qe-venv/bin/pip install query-exporter==5.0.2 psycopg2-binary`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
import requests
from prometheus_client import start_http_server
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from exporters.business import schema  # noqa: E402
from exporters.business.main import BusinessSettings, build  # noqa: E402
from ticketmon.servers.postgres import PostgresCluster  # noqa: E402
from ticketmon.servers.process import free_port  # noqa: E402

RECENT_EVENTS = 2000
TICKETS_PER_OLD_EVENT = 500
NOW = "(now() AT TIME ZONE 'UTC')"


def deadline_check(deadline: float, what: str) -> None:
    if time.monotonic() > deadline:
        raise SystemExit(f"budget exhausted before {what}")


def load_segment(cur, t_lo: int, t_hi: int, e_lo: int, e_hi: int, days_from: float,
                 days_to: float, active_from: int = 0) -> None:
    """Tickets t_lo..t_hi over events e_lo..e_hi, sold between now-days_from and now-days_to
    (ids and time both increasing), with their orders, payments, mints, listings, refunds."""
    span = t_hi - t_lo + 1
    n_events = e_hi - e_lo + 1
    when = (f"{NOW} - make_interval(secs => ({days_from} - ({days_from} - {days_to}) "
            f"* (g - {t_lo})::float8 / {span}) * 86400)")
    ev = f"({e_lo} + (g % {n_events}))"
    cur.execute(f"""
        INSERT INTO orders (id, user_id, event_id, total_minor, currency, created_at)
        SELECT (g + 1) / 2, g % 100000, {ev}, 9000,
               CASE WHEN {ev} % 3 = 0 THEN 'EUR' ELSE 'USD' END, {when}
          FROM generate_series({t_lo}, {t_hi}, 2) g""")
    cur.execute(f"""
        INSERT INTO tickets (id, order_id, event_id, ticket_type_id, price_minor, currency, sold_at)
        SELECT g, (g + 1) / 2, {ev}, ({ev} - 1) * 3 + 1 + (g % 3), 4500,
               CASE WHEN {ev} % 3 = 0 THEN 'EUR' ELSE 'USD' END, {when}
          FROM generate_series({t_lo}, {t_hi}) g""")
    cur.execute(f"""
        INSERT INTO payments (id, order_id, provider, outcome, amount_minor, currency, created_at)
        SELECT (g + 1) / 2, (g + 1) / 2,
               (ARRAY['stripe', 'adyen', 'paypal'])[1 + g % 3],
               CASE WHEN g % 41 = 1 THEN 'declined' WHEN g % 97 = 1 THEN 'failed'
                    ELSE 'succeeded' END,
               9000, CASE WHEN {ev} % 3 = 0 THEN 'EUR' ELSE 'USD' END, {when}
          FROM generate_series({t_lo}, {t_hi}, 2) g""")
    cur.execute(f"""
        INSERT INTO nft_mints (id, ticket_id, outcome, signature, created_at)
        SELECT g / 4 + 1, g, CASE WHEN g % 53 = 0 THEN 'failed' ELSE 'confirmed' END, NULL, {when}
          FROM generate_series({t_lo}, {t_hi}) g WHERE g % 4 = 0""")
    cur.execute(f"""
        INSERT INTO marketplace_listings (id, ticket_id, seller_id, price_minor, currency, status,
                                          created_at, updated_at)
        SELECT g / 20, g, g % 100000, 6000, 'USD',
               CASE WHEN g > {active_from} THEN 'active' ELSE 'sold' END, {when}, {when}
          FROM generate_series({t_lo}, {t_hi}) g WHERE g % 20 = 0""")
    cur.execute(f"""
        INSERT INTO refunds (id, payment_id, reason, amount_minor, currency, created_at)
        SELECT g / 200, (g + 1) / 2,
               (ARRAY['customer_request', 'event_cancelled', 'fraud'])[1 + g % 3],
               9000, 'USD', {when}
          FROM generate_series({t_lo}, {t_hi}) g WHERE g % 200 = 0""")


def build_database(cluster: PostgresCluster, name: str, old: int, recent: int) -> str:
    """Reference schema with `old` tickets of past years, then `recent` of the last year."""
    url = cluster.create_database(name)
    from sqlalchemy import create_engine

    engine = create_engine(url)
    schema.create_schema(engine)
    engine.dispose()
    indexes = [ix for t in schema.metadata.sorted_tables for ix in t.indexes]
    conn = psycopg2.connect(cluster.dsn(name))
    conn.autocommit = True
    cur = conn.cursor()
    for ix in indexes:
        cur.execute(f"DROP INDEX {ix.name}")
    cur.execute("SET session_replication_role = replica")  # no FK triggers while loading
    old_events = old // TICKETS_PER_OLD_EVENT
    n_events = old_events + RECENT_EVENTS
    cur.execute("""INSERT INTO venues (id, name, city, capacity)
                   SELECT g, 'Venue ' || g, 'City ' || (g % 50), 5000
                     FROM generate_series(1, 200) g""")
    # old events lie in past years; recent ones span -365..+60 days
    cur.execute(f"""
        INSERT INTO events (id, venue_id, name, starts_at, sale_starts_at, sale_ends_at, capacity)
        SELECT g, 1 + g % 200, 'Event ' || g, s, s - interval '90 days', s - interval '2 hours',
               CASE WHEN g % 7 = 0 THEN 1000 ELSE 5000 END
          FROM (SELECT g, CASE WHEN g <= {old_events}
                    THEN {NOW} - interval '366 days'
                         - make_interval(days => ({old_events} - g) % 3000)
                    ELSE {NOW} - interval '365 days' + make_interval(
                         secs => (g - {old_events}) * 425.0 * 86400 / {RECENT_EVENTS})
                    END AS s
                  FROM generate_series(1, {n_events}) g) x""")
    cur.execute(f"""INSERT INTO ticket_types (id, event_id, name, price_minor, currency)
                    SELECT (e - 1) * 3 + k, e, (ARRAY['general', 'vip', 'balcony'])[k],
                           4500 * k, 'USD'
                      FROM generate_series(1, {n_events}) e, generate_series(1, 3) k""")
    chunk = 2_000_000
    if old:
        for lo in range(1, old + 1, chunk):
            hi = min(old, lo + chunk - 1)
            # old history: 9 years back, spread evenly
            d_from = 365 + 9 * 365 * (old - lo + 1) / old
            d_to = 365 + 9 * 365 * (old - hi) / old
            load_segment(cur, lo, hi, 1, old_events, d_from, d_to, active_from=old + recent)
    for lo in range(old + 1, old + recent + 1, chunk):
        hi = min(old + recent, lo + chunk - 1)
        d_from = 365 * (old + recent - lo + 1) / recent
        d_to = 365 * (old + recent - hi) / recent
        # listings of the last ~5 weeks' tickets are still active
        load_segment(cur, lo, hi, old_events + 1, n_events, d_from, d_to,
                     active_from=old + recent - recent // 10)
    cur.execute(f"""INSERT INTO user_sessions (id, user_id, started_at, last_seen_at)
                    SELECT g, g, {NOW} - interval '2 hours',
                           {NOW} - make_interval(secs => g % 3600)
                      FROM generate_series(1, 200000) g""")
    cur.execute("SET session_replication_role = DEFAULT")
    conn.close()
    engine = create_engine(url)
    with engine.begin() as c:
        for ix in indexes:
            ix.create(c)
    engine.dispose()
    conn = psycopg2.connect(cluster.dsn(name))
    conn.autocommit = True
    conn.cursor().execute("VACUUM ANALYZE")
    conn.close()
    return url


def add_activity(dsn: str, tickets: int = 2000) -> None:
    """New sales between runs, as a live platform adds them (ids continue, time = now)."""
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT max(id) FROM tickets")
    top = cur.fetchone()[0]
    cur.execute("SELECT max(id) FROM events")
    n_events = cur.fetchone()[0]
    lo = top + 1 + (top % 2)  # keep (g + 1) / 2 order ids fresh
    load_segment(cur, lo, lo + tickets - 1, n_events - RECENT_EVENTS + 1, n_events, 0.0001, 0,
                 active_from=lo)
    conn.close()


def collection_times(url: str, dsn: str, runs: int) -> dict:
    """Per run: every catalog query once (guard re-ranked each run: the worst case)."""
    exporter = build(BusinessSettings(platform_database_url=url, timeout_seconds=120,
                                      cardinality_refresh_seconds=0.001))
    for c in exporter.collectors:  # warm-up: first watermark, connections, caches
        assert c.run_once(), (c.name, c.health.last_error)
        c.run_once()
    totals, per_query = [], {c.name: [] for c in exporter.collectors}
    for _ in range(runs):
        add_activity(dsn)
        total = 0.0
        for c in exporter.collectors:
            assert c.run_once(), (c.name, c.health.last_error)
            per_query[c.name].append(c.health.duration)
            total += c.health.duration
        totals.append(total)
    for c in exporter.collectors:
        c.close()
    return {"median_ms": round(statistics.median(totals) * 1000, 1),
            "max_ms": round(max(totals) * 1000, 1),
            "per_query_median_ms": {k: round(statistics.median(v) * 1000, 1)
                                    for k, v in per_query.items()}}


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return round(values[max(0, int(round(p / 100 * len(values))) - 1)] * 1000, 2)


def time_scrapes(url: str, n: int, headers: dict | None = None) -> dict:
    lat, size = [], 0
    with requests.Session() as s:
        for _ in range(n):
            t0 = time.perf_counter()
            r = s.get(url, headers=headers or {}, timeout=60, stream=True)
            body = r.raw.read()
            lat.append(time.perf_counter() - t0)
            r.close()
            size = len(body)
    return {"p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "bytes": size}


class Replay:
    """Baseline: the same families re-rendered by prometheus-client on every scrape."""

    def __init__(self, families) -> None:
        self.families = families

    def collect(self):
        return self.families


def scrape_bench(url: str, scrapes: int) -> dict:
    settings = BusinessSettings(platform_database_url=url, counters_start="beginning",
                                cardinality_limit=1300, cardinality_window_seconds=400 * 86400,
                                interval_seconds=3600, timeout_seconds=300)
    settings.http.port = free_port()
    exporter = build(settings)
    for c in exporter.collectors:  # catch up with the whole history, max_rows_per_run a run
        while c.run_once() and getattr(c, "watermark", None) is not None:
            with c.engine.connect() as conn:
                if c.watermark >= conn.execute(c.max_key).scalar():
                    break
    exporter.start()
    try:
        metrics_url = exporter.url + "/metrics"
        text = requests.get(metrics_url, timeout=30).text
        series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
        ours_plain = time_scrapes(metrics_url, scrapes, {"Accept-Encoding": "identity"})
        ours_gzip = time_scrapes(metrics_url, scrapes, {"Accept-Encoding": "gzip"})
        snapshot = b"".join(c.exposition()[0] for c in exporter.collectors).decode()
        registry = CollectorRegistry()
        registry.register(Replay(list(text_string_to_metric_families(snapshot))))
        port = free_port()
        server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
        try:
            base = time_scrapes(f"http://127.0.0.1:{port}/metrics", scrapes,
                                {"Accept-Encoding": "identity"})
            base_gz = time_scrapes(f"http://127.0.0.1:{port}/metrics", scrapes,
                                   {"Accept-Encoding": "gzip"})
        finally:
            server.shutdown()
        gz_size = len(gzip.compress(text.encode()))
        return {"series": series, "ours_text": ours_plain, "ours_gzip": ours_gzip,
                "baseline_render_per_scrape_text": base, "baseline_render_per_scrape_gzip": base_gz,
                "gzip_bytes_single_member": gz_size}
    finally:
        exporter.stop()


QE_QUERIES = {
    "tickets_sold": ("""SELECT e.name AS event, v.name AS venue, tt.name AS ticket_type,
        count(*) AS tickets_sold FROM tickets t JOIN events e ON e.id = t.event_id
        JOIN venues v ON v.id = e.venue_id JOIN ticket_types tt ON tt.id = t.ticket_type_id
        GROUP BY e.name, v.name, tt.name""", ["event", "venue", "ticket_type"]),
    "revenue_minor_units": ("""SELECT p.currency AS currency, v.name AS venue,
        sum(p.amount_minor) AS revenue_minor_units FROM payments p
        JOIN orders o ON o.id = p.order_id JOIN events e ON e.id = o.event_id
        JOIN venues v ON v.id = e.venue_id WHERE p.outcome = 'succeeded'
        GROUP BY p.currency, v.name""", ["currency", "venue"]),
    "payments": ("SELECT provider, outcome, count(*) AS payments FROM payments "
                 "GROUP BY provider, outcome", ["provider", "outcome"]),
    "refunds": ("SELECT reason, count(*) AS refunds FROM refunds GROUP BY reason", ["reason"]),
    "nft_mints": ("SELECT outcome, count(*) AS nft_mints FROM nft_mints GROUP BY outcome",
                  ["outcome"]),
    "listings_active": ("SELECT count(*) AS listings_active FROM marketplace_listings "
                        "WHERE status = 'active'", []),
    "active_users": ("SELECT count(DISTINCT user_id) AS active_users FROM user_sessions "
                     "WHERE last_seen_at >= (now() AT TIME ZONE 'UTC') - interval '5 minutes'", []),
}


def query_exporter_bench(binary: str, url: str, workdir: Path, scrapes: int) -> dict:
    """query-exporter running the equivalent full aggregates on every scrape."""
    import yaml

    config = {
        "databases": {"platform": {"dsn": url}},
        "metrics": {name: {"type": "gauge", "description": name, **({"labels": labels}
                                                                      if labels else {})}
                    for name, (_, labels) in QE_QUERIES.items()},
        "queries": {f"q_{name}": {"databases": ["platform"], "metrics": [name], "sql": sql}
                    for name, (sql, _) in QE_QUERIES.items()},
    }
    cfg = workdir / "qe.yaml"
    cfg.write_text(yaml.safe_dump(config))
    port = free_port()
    log = open(workdir / "qe.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([binary, "--config", str(cfg), "-H", "127.0.0.1", "-p", str(port),
                             "-L", "warning"], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                requests.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.2)
        url_m = f"http://127.0.0.1:{port}/metrics"
        requests.get(url_m, timeout=300)  # warm-up
        result = time_scrapes(url_m, scrapes)
        body = requests.get(url_m, timeout=300).text
        result["series"] = sum(1 for line in body.splitlines()
                               if line and not line.startswith("#"))
        return result
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=1_000_000)
    ap.add_argument("--large", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--scrapes", type=int, default=300)
    ap.add_argument("--qe-scrapes", type=int, default=5)
    ap.add_argument("--query-exporter", default="/tmp/anchors/qe-venv/bin/query-exporter")
    ap.add_argument("--budget", type=float, default=900, help="seconds, whole run")
    a = ap.parse_args()
    deadline = time.monotonic() + a.budget
    work = Path(tempfile.mkdtemp(prefix="bench-business-"))
    cluster = PostgresCluster()
    report: dict = {}
    try:
        for label, old, recent in (("1M", 0, a.small), ("10M", a.large - a.small, a.small)):
            deadline_check(deadline, f"building {label}")
            t0 = time.monotonic()
            name = f"b{label.lower()}"
            url = build_database(cluster, name, old, recent)
            entry: dict = {"tickets": old + recent, "build_s": round(time.monotonic() - t0, 1)}
            print(f"# built {label} in {entry['build_s']} s", file=sys.stderr, flush=True)
            deadline_check(deadline, f"collection at {label}")
            entry["ours_collection_per_run"] = collection_times(url, cluster.dsn(name), a.runs)
            print(json.dumps({label: entry}), file=sys.stderr, flush=True)
            if label == "1M":
                deadline_check(deadline, "scrape bench")
                entry["scrape"] = scrape_bench(url, a.scrapes)
                print(json.dumps({label: entry}), file=sys.stderr, flush=True)
            if Path(a.query_exporter).exists():
                deadline_check(deadline, f"query-exporter at {label}")
                entry["query_exporter_on_scrape"] = query_exporter_bench(
                    a.query_exporter, url, work, a.qe_scrapes)
            report[label] = entry
            print(json.dumps({label: entry}), flush=True)
        small = report["1M"]["ours_collection_per_run"]["median_ms"]
        large = report["10M"]["ours_collection_per_run"]["median_ms"]
        summary = {"collection_10M_over_1M": round(large / small, 2), "target": "<= 1.5",
                   "scrape_p99_ms": report["1M"]["scrape"]["ours_text"]["p99_ms"],
                   "scrape_target": "p99 <= 20 ms"}
        if "query_exporter_on_scrape" in report["10M"]:
            summary["query_exporter_10M_over_1M"] = round(
                report["10M"]["query_exporter_on_scrape"]["p50_ms"]
                / report["1M"]["query_exporter_on_scrape"]["p50_ms"], 2)
        print(json.dumps({"summary": summary}), flush=True)
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
