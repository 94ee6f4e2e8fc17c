#!/usr/bin/env python3
"""Business exporter benchmark: collection cost at 1M vs 10M tickets, scrape latency at
~5,000 series idle and while collections run, and query-exporter on the same database in
both its modes, side by side in one run.

    .venv/bin/python bench/business_scrape.py [--small 1000000 --large 10000000]
        [--collect-interval 1] [--busy-seconds 20] [--query-exporter BINARY] [--budget 1200]

Starts its own throw-away PostgreSQL (ticketmon.servers.postgres) and builds the
reference schema with generate_series. Both databases hold the same *recent* activity
(the last 365 days: `--small` tickets); the large one adds older history in front of
it, which is how a platform's table grows. Scrapes come from bench/scrape.py in a
process of its own, gzip (as Prometheus asks) alternating with plain text. Goals:
collection per run at 10M <= 1.5x 1M; /metrics p99 <= 5 ms gzip at ~5,000 series, also
while collections run. query-exporter 5.0.2 runs bench/query_exporter/config.yaml
(queries on each scrape) and config-interval.yaml (its own 60 s schedule, and the same
at --collect-interval); it is installed into ~/.cache/ticketmon-bench/qe-venv when
missing, or given by --query-exporter. Bounded by --budget seconds. Not run in CI.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
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

SCRAPE = REPO / "bench" / "scrape.py"
QE_DIR = REPO / "bench" / "query_exporter"
QE_VERSION = "5.0.2"
QE_VENV = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") \
    / "ticketmon-bench" / "qe-venv"
QE_METRICS = ("tickets_sold", "revenue_minor_units", "payments", "refunds", "nft_mints",
              "listings_active", "event_capacity_utilization", "event_on_sale", "active_users")
GUARD_LIMIT = 1300  # the same limit and window as bench/query_exporter/sql/tickets_sold.sql
GUARD_WINDOW_DAYS = 400
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


def scrape(url: str, encoding: str = "both", scrapes: int = 100, seconds: float | None = None,
           timeline: bool = False) -> dict:
    """Sequential scrapes from bench/scrape.py, a process of its own (no shared GIL)."""
    cmd = [sys.executable, str(SCRAPE), "--url", url, "--encoding", encoding,
           "--scrapes", str(scrapes)]
    if seconds is not None:
        cmd += ["--seconds", str(seconds)]
    if timeline:
        cmd.append("--timeline")
    limit = (seconds or 0) + 60 + scrapes * 2
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
    if not out.stdout.strip():
        raise RuntimeError(f"scrape.py failed: {out.stderr.strip()[-500:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["errors"]:
        raise RuntimeError(f"scrapes of {url} failed: {result['errors']}")
    return result


class Replay:
    """Baseline: the same families re-rendered by prometheus-client on every scrape."""

    def __init__(self, families) -> None:
        self.families = families

    def collect(self):
        return self.families


class Gate:
    """Lets the exporter's own scheduler run a collector only while `open`, and records
    each run's span, so scrapes can be matched with the collections they overlapped."""

    def __init__(self, collectors) -> None:
        self.open = threading.Event()
        self.spans: list[tuple[float, float]] = []
        for c in collectors:
            c.run_once = self._wrap(c.run_once)

    def _wrap(self, run_once):
        def gated() -> bool:
            if not self.open.is_set():
                return True
            t0 = time.monotonic()
            ok = run_once()
            self.spans.append((t0, time.monotonic()))
            return ok
        return gated


def overlapping(timeline: list, spans: list[tuple[float, float]], encoding: str) -> dict:
    """p50/p99 of the scrapes that overlapped a collection run, and how many did."""
    spans = sorted(spans)
    lat = []
    for start, dt, enc in timeline:
        if enc == encoding and any(s < start + dt and start < e for s, e in spans):
            lat.append(dt)
    lat.sort()

    def pct(p: float) -> float | None:
        return round(lat[max(0, math.ceil(p / 100 * len(lat)) - 1)] * 1000, 2) if lat else None

    return {"ok": len(lat), "p50_ms": pct(50), "p99_ms": pct(99)}


def catch_up(exporter) -> None:
    """Counters from the beginning of history, max_rows_per_run a run, before serving."""
    for c in exporter.collectors:
        while c.run_once() and getattr(c, "watermark", None) is not None:
            with c.engine.connect() as conn:
                if c.watermark >= conn.execute(c.max_key).scalar():
                    break


def scrape_bench(url: str, a: argparse.Namespace, deadline: float) -> dict:
    """ticketmon idle (no collection runs), then while its scheduler collects every
    --collect-interval s; the prometheus-client render-per-scrape baseline."""
    settings = BusinessSettings(platform_database_url=url, counters_start="beginning",
                                cardinality_limit=GUARD_LIMIT,
                                cardinality_window_seconds=GUARD_WINDOW_DAYS * 86400,
                                interval_seconds=a.collect_interval, timeout_seconds=300)
    settings.http.port = free_port()
    exporter = build(settings)
    catch_up(exporter)
    gate = Gate(exporter.collectors)
    exporter.start()
    out: dict = {}
    try:
        metrics_url = exporter.url + "/metrics"
        deadline_check(deadline, "ticketmon idle scrapes")
        out["ticketmon idle"] = scrape(metrics_url, "both", a.scrapes)
        deadline_check(deadline, "ticketmon scrapes while collecting")
        gate.open.set()
        t0 = time.monotonic()
        busy = scrape(metrics_url, "both", 1_000_000, seconds=a.busy_seconds, timeline=True)
        wall = time.monotonic() - t0
        gate.open.clear()
        timeline = busy.pop("timeline")
        busy["collections"] = len(gate.spans)
        busy["collecting_s_per_s"] = round(sum(e - s for s, e in gate.spans) / wall, 2)
        for enc in ("gzip", "identity"):
            busy[f"{enc}_overlapping"] = overlapping(timeline, gate.spans, enc)
        out[f"ticketmon collecting every {a.collect_interval:g} s"] = busy
        snapshot = b"".join(c.exposition()[0] for c in exporter.collectors).decode()
    finally:
        exporter.stop()
    registry = CollectorRegistry()
    registry.register(Replay(list(text_string_to_metric_families(snapshot))))
    port = free_port()
    server, _ = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        deadline_check(deadline, "baseline scrapes")
        out["prometheus-client render per scrape"] = scrape(
            f"http://127.0.0.1:{port}/metrics", "both", a.scrapes)
    finally:
        server.shutdown()
    return out


def ensure_query_exporter(given: str | None) -> str:
    """--query-exporter, else QE_VENV's binary, installing query-exporter there if missing."""
    if given:
        return given
    binary = QE_VENV / "bin" / "query-exporter"
    if not binary.exists():
        print(f"# installing query-exporter {QE_VERSION} into {QE_VENV}", file=sys.stderr,
              flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(QE_VENV)], check=True)
        subprocess.run([str(QE_VENV / "bin" / "pip"), "install", "-q",
                        f"query-exporter=={QE_VERSION}", "psycopg2-binary"], check=True)
    return str(binary)


def query_exporter_run(binary: str, url: str, config: Path, workdir: Path, deadline: float,
                       **scrape_args) -> dict:
    """Start query-exporter on `config` against `url`, wait for every metric, scrape it."""
    port = free_port()
    log_path = workdir / f"qe-{port}.log"
    env = {**os.environ, "QE_DSN": url}
    with open(log_path, "w") as log:
        proc = subprocess.Popen([binary, "--config", str(config), "-H", "127.0.0.1",
                                 "-p", str(port), "-L", "warning"],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        metrics_url = f"http://127.0.0.1:{port}/metrics"
        names = [f"\n{m}{{" for m in QE_METRICS]  # it adds a `database` label to each
        while True:  # interval mode: the first run fills the values; on scrape: warm-up
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"query-exporter not ready: {log_path.read_text()[-800:]}")
            try:
                body = requests.get(metrics_url, timeout=300).text
                if all(n in body for n in names):
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        return scrape(metrics_url, **scrape_args)
    finally:
        proc.terminate()
        proc.wait(10)


def interval_config(workdir: Path, seconds: int) -> Path:
    """config-interval.yaml with its 60 s interval replaced, next to a copy of sql/."""
    text = (QE_DIR / "config-interval.yaml").read_text()
    assert "interval: 60s" in text
    target = workdir / "qe"
    if not target.exists():
        shutil.copytree(QE_DIR, target)
    path = target / f"config-interval-{seconds}s.yaml"
    path.write_text(text.replace("interval: 60s", f"interval: {seconds}s"))
    return path


def row(system: str, mode: str, r: dict) -> list:
    g, t = r.get("gzip", {}), r.get("identity", {})
    if g.get("content_encoding", "gzip") != "gzip":
        mode += " (answers gzip requests uncompressed)"
    return [system, mode, g.get("samples") or t.get("samples"), g.get("p50_ms"), g.get("p99_ms"),
            t.get("p50_ms"), t.get("p99_ms"), g.get("bytes"), t.get("bytes")]


def print_table(report: dict) -> None:
    small = report["small"]
    print(f"\nscrape latency, {small['tickets']:,} tickets (ms; sequential scrapes, new "
          "connection each, client in its own process)")
    print("| system | mode | series | gzip p50 | gzip p99 | text p50 | text p99 "
          "| gzip bytes | text bytes |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    rows = []
    for mode, r in small["scrape"].items():
        system, _, rest = mode.partition(" ")
        rows.append(row(system, rest, r))
        if "gzip_overlapping" in r:
            ov = {"gzip": r["gzip_overlapping"], "identity": r["identity_overlapping"]}
            rows.append(row(system, f"{rest}: scrapes overlapping a collection "
                            f"({ov['gzip']['ok']} + {ov['identity']['ok']} of "
                            f"{r['gzip']['ok']} + {r['identity']['ok']})", ov))
    for mode, r in small.get("query_exporter", {}).items():
        rows.append(row("query-exporter", mode, r))
    for cells in rows:
        print("| " + " | ".join("" if c is None else str(c) for c in cells) + " |")
    print("\ncollection per run (ms) and query-exporter's queries run on scrape (ms, gzip p50)")
    print("| tickets | ticketmon median | ticketmon max | query-exporter on scrape p50 |")
    print("|---:|---:|---:|---:|")
    for key in ("small", "large"):
        e = report.get(key)
        if not e:
            continue
        qe = e.get("query_exporter", {}).get("queries on scrape", {}).get("gzip", {})
        print(f"| {e['tickets']:,} | {e['ours_collection_per_run']['median_ms']} "
              f"| {e['ours_collection_per_run']['max_ms']} | {qe.get('p50_ms', '')} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", type=int, default=1_000_000, help="tickets of the last year")
    ap.add_argument("--large", type=int, default=10_000_000, help="tickets, with history")
    ap.add_argument("--runs", type=int, default=7, help="collection runs timed per size")
    ap.add_argument("--scrapes", type=int, default=300, help="per encoding, idle modes")
    ap.add_argument("--busy-seconds", type=float, default=20.0,
                    help="scrape loop while collections run")
    ap.add_argument("--collect-interval", type=int, default=1,
                    help="seconds between collections while they run (both exporters)")
    ap.add_argument("--qe-scrapes", type=int, default=5,
                    help="per encoding, query-exporter with queries on scrape")
    ap.add_argument("--query-exporter", default=None,
                    help=f"its binary (default: installed into {QE_VENV} when missing)")
    ap.add_argument("--no-query-exporter", action="store_true")
    ap.add_argument("--budget", type=float, default=1200, help="seconds, whole run")
    a = ap.parse_args()
    deadline = time.monotonic() + a.budget
    qe = None if a.no_query_exporter else ensure_query_exporter(a.query_exporter)
    work = Path(tempfile.mkdtemp(prefix="bench-business-"))
    cluster = PostgresCluster()
    report: dict = {}
    try:
        for key, old, recent in (("small", 0, a.small), ("large", a.large - a.small, a.small)):
            deadline_check(deadline, f"building {key}")
            t0 = time.monotonic()
            url = build_database(cluster, f"b{key}", old, recent)
            entry: dict = {"tickets": old + recent, "build_s": round(time.monotonic() - t0, 1)}
            report[key] = entry
            print(f"# built {key} ({old + recent:,} tickets) in {entry['build_s']} s",
                  file=sys.stderr, flush=True)
            deadline_check(deadline, f"collection at {key}")
            entry["ours_collection_per_run"] = collection_times(url, cluster.dsn(f"b{key}"),
                                                                a.runs)
            if key == "small":
                entry["scrape"] = scrape_bench(url, a, deadline)
            if qe:
                runs = entry["query_exporter"] = {}
                deadline_check(deadline, f"query-exporter at {key}")
                runs["queries on scrape"] = query_exporter_run(
                    qe, url, QE_DIR / "config.yaml", work, deadline, scrapes=a.qe_scrapes)
                if key == "small":
                    deadline_check(deadline, "query-exporter, interval 60 s")
                    runs["interval 60 s"] = query_exporter_run(
                        qe, url, QE_DIR / "config-interval.yaml", work, deadline,
                        scrapes=a.scrapes)
                    deadline_check(deadline, "query-exporter, short interval")
                    runs[f"interval {a.collect_interval} s (collecting)"] = query_exporter_run(
                        qe, url, interval_config(work, a.collect_interval), work, deadline,
                        scrapes=1_000_000, seconds=a.busy_seconds)
            print(json.dumps({key: entry}), file=sys.stderr, flush=True)
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    print_table(report)
    scr = report["small"]["scrape"]
    idle, busy = scr["ticketmon idle"], scr[f"ticketmon collecting every {a.collect_interval:g} s"]
    small_ms = report["small"]["ours_collection_per_run"]["median_ms"]
    large_ms = report["large"]["ours_collection_per_run"]["median_ms"]
    summary = {
        "series": idle["gzip"]["samples"],
        "scrape_p99_gzip_ms": idle["gzip"]["p99_ms"],
        "scrape_p99_text_ms": idle["identity"]["p99_ms"],
        "scrape_p99_gzip_collecting_ms": busy["gzip"]["p99_ms"],
        "scrape_p99_text_collecting_ms": busy["identity"]["p99_ms"],
        "scrape_p99_gzip_overlapping_ms": busy["gzip_overlapping"]["p99_ms"],
        "collections_during_loop": busy["collections"],
        "scrape_goal": "gzip p99 <= 5 ms at ~5,000 series, idle and while collecting",
        "collection_large_over_small": round(large_ms / small_ms, 2),
        "collection_goal": "<= 1.5",
    }
    gz = [summary["scrape_p99_gzip_ms"], summary["scrape_p99_gzip_collecting_ms"]]
    summary["scrape_pass"] = all(v is not None and v <= 5 for v in gz)
    summary["collection_pass"] = summary["collection_large_over_small"] <= 1.5
    if qe:
        q = report["small"]["query_exporter"]
        summary["query_exporter_p99_gzip_ms"] = {k: v["gzip"]["p99_ms"] for k, v in q.items()}
        summary["query_exporter_on_scrape_large_over_small"] = round(
            report["large"]["query_exporter"]["queries on scrape"]["gzip"]["p50_ms"]
            / q["queries on scrape"]["gzip"]["p50_ms"], 2)
    print(json.dumps({"summary": summary}), flush=True)
    return 0 if summary["scrape_pass"] and summary["collection_pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
