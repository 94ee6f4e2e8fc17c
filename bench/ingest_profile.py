#!/usr/bin/env python3
"""Where a webhook post's CPU goes: the receiver in-process, one post at a time.

Starts a throw-away PostgreSQL with pg_stat_statements (planning tracked too), posts
amload's bodies to the receiver's Flask app (werkzeug's test client: no gunicorn, no
sockets on the HTTP side) one after another, and prints per post the Python CPU of
this process, the CPU of the receiver's PostgreSQL backends (from /proc), and the
statements by execution time with their planning time. `--profile FILE` adds a
cProfile of the posts (cumulative and own time). Not a throughput figure (see
webhook_ingest.py for that): it tells which part to work on. Compare two trees by
running each in turn from its own root, alternating; the box's noise moves both.

    .venv/bin/python bench/ingest_profile.py [--workload storm|replay] [--posts 1000]
        [--profile /tmp/ingest.prof.txt]
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
import types
from pathlib import Path

import psycopg2

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench")]

import amload  # noqa: E402

from receiver.app import create_app  # noqa: E402
from receiver.settings import ReceiverSettings  # noqa: E402
from receiver.store import migrate  # noqa: E402
from ticketmon.servers.postgres import PostgresCluster  # noqa: E402

TOKEN = "bench-profile-token-0123456789ab"
DB = "ingest_profile"
TOP = 12  # statements listed


def backend_cpu_s(cluster: PostgresCluster) -> float:
    """User + system CPU of the cluster's backends serving DB (not autovacuum, WAL...)."""
    postmaster = int((cluster.datadir / "postmaster.pid").read_text().split()[0])
    ticks = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == postmaster and DB.encode() in cmdline:
            ticks += int(stat[11]) + int(stat[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def bodies(args: argparse.Namespace, count: int) -> list[bytes]:
    replay = args.workload == "replay"
    spec = types.SimpleNamespace(
        distinct_fingerprints=args.distinct if replay else count * args.alerts_per_request,
        alerts_per_request=args.alerts_per_request, epoch=None, seed=1, first_alert=0,
        resolve_fraction=0.1 if replay else 0.0, pool_passes=4, header=[])
    out = [raw.split(b"\r\n\r\n", 1)[1] for raw, _ in amload.build_requests(spec, "x", "/")]
    while len(out) < count:  # replay: the pool again, as Alertmanager repeats
        out += out
    return out[:count]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workload", choices=["storm", "replay"], default="storm")
    ap.add_argument("--posts", type=int, default=1000, help="measured posts")
    ap.add_argument("--warmup", type=int, default=300, help="posts before measuring")
    ap.add_argument("--alerts-per-request", type=int, default=10)
    ap.add_argument("--distinct", type=int, default=1000, help="replay: alerts re-sent")
    ap.add_argument("--profile", type=Path, help="write a cProfile report here")
    args = ap.parse_args()

    cluster = PostgresCluster()
    try:
        conn = psycopg2.connect(cluster.dsn())
        conn.autocommit = True
        conn.cursor().execute("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        conn.close()
        cluster.halt()
        cluster.start()
        url = cluster.create_database(DB)
        migrate.upgrade(url)
        stats = psycopg2.connect(cluster.dsn(DB))
        stats.autocommit = True
        cur = stats.cursor()
        cur.execute("CREATE EXTENSION pg_stat_statements")
        cur.execute("ALTER SYSTEM SET pg_stat_statements.track_planning = on")
        cur.execute("SELECT pg_reload_conf()")
        app = create_app(ReceiverSettings(database_url=url, webhook_token=TOKEN,
                                          log_level="warning"))
        client = app.test_client()
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        posts = bodies(args, args.warmup + args.posts)

        def post(body: bytes) -> None:
            answer = client.post("/api/v1/alertmanager", data=body, headers=headers)
            if answer.status_code != 200:
                raise SystemExit(f"post answered {answer.status_code}: {answer.data[:300]!r}")

        for body in posts[:args.warmup]:  # connections, prepared statements, caches
            post(body)
        cur.execute("SELECT pg_stat_statements_reset()")
        profiler = cProfile.Profile() if args.profile else None
        pg0, cpu0, wall0 = backend_cpu_s(cluster), time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        for body in posts[args.warmup:]:
            post(body)
        if profiler:
            profiler.disable()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        pg = backend_cpu_s(cluster) - pg0
        cur.execute(
            "SELECT calls, total_exec_time, total_plan_time, rows, "
            "left(regexp_replace(query, '\\s+', ' ', 'g'), 90) FROM pg_stat_statements "
            "WHERE query NOT LIKE '%%pg_stat_statements%%' "
            "ORDER BY total_exec_time DESC LIMIT %s", (TOP,))
        rows = cur.fetchall()
        stats.close()
    finally:
        cluster.stop()
    n = args.posts
    print(f"{args.workload}: {n} posts of {args.alerts_per_request} alerts, one at a time, "
          f"after {args.warmup} warm-up posts")
    print(f"per post: Python CPU {cpu / n * 1e3:.3f} ms, PostgreSQL backend CPU "
          f"{pg / n * 1e3:.3f} ms, wall {wall / n * 1e3:.3f} ms (profiler on: "
          f"{'yes' if profiler else 'no'})")
    print("| calls/post | exec ms/post | plan ms/post | rows/call | statement |")
    print("|---:|---:|---:|---:|---|")
    for calls, exec_ms, plan_ms, nrows, query in rows:
        print(f"| {calls / n:.2f} | {exec_ms / n:.3f} | {plan_ms / n:.3f} | "
              f"{nrows / max(calls, 1):.1f} | `{query}` |")
    if profiler:
        with args.profile.open("w") as out:
            report = pstats.Stats(profiler, stream=out)
            report.sort_stats("cumulative").print_stats(60)
            report.sort_stats("tottime").print_stats(40)
        print(f"cProfile report: {args.profile}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
