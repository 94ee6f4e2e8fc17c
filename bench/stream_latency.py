#!/usr/bin/env python3
"""Live stream latency: from an incident's commit to each client's receipt of its event.

For each backend (a throw-away PostgreSQL cluster, and SQLite), a stream server
(gunicorn gthread, --workers processes) serves --clients SSE clients spread over its
workers; this process opens --events incidents through the receiver's real ingest
(Store.ingest, one Alertmanager post each, paced at --rate a second) and notes when
each commit returned. Every client notes when the incident's `opened` event arrived.
The table shows p50/p99/max of (arrival - commit) over every (event, client) pair, and
beside it the baseline the same run measures: one SELECT round trip to the same database
(what any reader of the database pays at least), and the poll interval SQLite waits.

    .venv/bin/python bench/stream_latency.py [--events 300] [--clients 20]
        [--workers 2] [--rate 20] [--backend both|postgresql|sqlite]
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import sqlalchemy as sa
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from support.sse import SseClient  # noqa: E402

from receiver.payload import WebhookPayload  # noqa: E402
from receiver.store import Store, migrate  # noqa: E402
from ticketmon.servers.postgres import PostgresCluster  # noqa: E402
from ticketmon.servers.process import ManagedProcess, free_port  # noqa: E402

GUNICORN = str(Path(sys.executable).parent / "gunicorn")
TOKEN = "tm_bench_stream_admin_0123456789"
POST = json.loads((REPO / "tests/fixtures/alertmanager/alertmanager-0.25-firing.json")
                  .read_text())


def start_stream_server(url: str, workers: int, workdir: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    config = workdir / f"stream-{port}.yaml"
    config.write_text(yaml.safe_dump({
        "database_url": url, "webhook_token": "bench-webhook-token-0123456789",
        "log_level": "warning", "rate_limit": {"requests_per_second": 0},
        "api_tokens": [{"name": "bench", "role": "admin", "tenant": "*", "token": TOKEN}]}))
    proc = ManagedProcess(
        f"stream-{port}", [GUNICORN, "-c", "python:receiver.stream.gunicorn_conf", "-w",
                           str(workers), "-b", f"127.0.0.1:{port}", "--no-control-socket",
                           "receiver.stream.wsgi:app"],
        workdir / f"stream-{port}.log", cwd=REPO,
        env={"TICKETMON_CONFIG": str(config),
             "PROMETHEUS_MULTIPROC_DIR": str(workdir / f"metrics-{port}")})
    proc.wait_http(f"http://127.0.0.1:{port}/readyz")
    return proc, f"http://127.0.0.1:{port}/api/v1/stream"


def post_for(n: int) -> WebhookPayload:
    """The real post, as group n of its own: each one opens a new incident."""
    body = copy.deepcopy(POST)
    body["groupKey"] += f"/bench-{n}"
    body["alerts"][0]["fingerprint"] = f"b{n:015x}"
    return WebhookPayload.model_validate(body)


def collect(client: SseClient, arrivals: dict[int, float], wanted: int) -> None:
    while len(arrivals) < wanted:
        block = client.next_block(120.0)
        if block is None:
            return
        if block.event == "incident" and block.data["change"] == "opened":
            arrivals[block.data["id"]] = time.monotonic()


def measure(url: str, args: argparse.Namespace, workdir: Path) -> dict:
    migrate.upgrade(url)
    proc, stream_url = start_stream_server(url, args.workers, workdir)
    store = Store(url)
    try:
        clients = [SseClient(stream_url, {"Authorization": f"Bearer {TOKEN}"})
                   for _ in range(args.clients)]
        assert all(c.status == 200 for c in clients), [c.status for c in clients]
        arrivals: list[dict[int, float]] = [{} for _ in clients]
        readers = [threading.Thread(target=collect, args=(c, a, args.events), daemon=True)
                   for c, a in zip(clients, arrivals, strict=True)]
        for r in readers:
            r.start()
        time.sleep(1.0)  # every stream subscribed
        committed: dict[int, float] = {}
        for n in range(args.events):
            [incident] = store.ingest(post_for(n)).opened
            committed[incident] = time.monotonic()
            time.sleep(1 / args.rate)
        for r in readers:
            r.join(60)
        lat = [1000 * (a[i] - t) for a in arrivals for i, t in committed.items() if i in a]
        missing = args.events * args.clients - len(lat)
        rtt = []
        for _ in range(200):
            started = time.monotonic()
            with store.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            rtt.append(1000 * (time.monotonic() - started))
        for c in clients:
            c.close()
    finally:
        store.dispose()
        proc.stop()
    q = statistics.quantiles(lat, n=100)
    return {"events": args.events, "clients": args.clients, "workers": args.workers,
            "samples": len(lat), "missing": missing, "p50_ms": round(q[49], 1),
            "p99_ms": round(q[98], 1), "max_ms": round(max(lat), 1),
            "select_p50_ms": round(statistics.median(rtt), 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=300)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2, help="stream server processes")
    ap.add_argument("--rate", type=float, default=20.0, help="incidents opened a second")
    ap.add_argument("--backend", choices=["both", "postgresql", "sqlite"], default="both")
    args = ap.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ticketmon-bench-stream-"))
    results: dict[str, dict] = {}
    cluster = None
    try:
        if args.backend in ("both", "postgresql"):
            cluster = PostgresCluster()
            results["postgresql"] = measure(cluster.create_database("stream_bench"), args,
                                            workdir)
        if args.backend in ("both", "sqlite"):
            results["sqlite"] = measure(f"sqlite:///{workdir / 'receiver.db'}", args, workdir)
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\ncommit -> client, {args.events} incidents at {args.rate:g}/s, {args.clients} "
          f"clients over {args.workers} stream server workers (every event x client)")
    print("| backend | samples | missing | p50 ms | p99 ms | max ms | baseline: SELECT 1 "
          "p50 ms | poll interval ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for backend, r in results.items():
        poll = "woken by NOTIFY" if backend == "postgresql" else "500"
        print(f"| {backend} | {r['samples']} | {r['missing']} | {r['p50_ms']} | {r['p99_ms']} "
              f"| {r['max_ms']} | {r['select_p50_ms']} | {poll} |")
    print(json.dumps({"summary": results}))
    return 0 if all(r["missing"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
