"""Escalation under a burst: 1,000 open incidents whose step falls due at one instant.

    .venv/bin/python bench/escalation.py [--incidents 1000] [--channels 2]

On a throw-away PostgreSQL, real `ticketmon receiver worker` processes (one, then two)
fire the step of every incident and deliver each notification (signed webhook) to a
local recording server. Step lateness is measured per notification from the database
(delivered - due), deliveries/s over the burst. The baseline in the same run is the
delivery path without the outbox: the same number of signed POSTs sent straight to
the same server from the same number of threads. Ends with a JSON line of the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
import sqlalchemy as sa
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from receiver.channels.webhook import sign  # noqa: E402
from receiver.escalation.tables import escalations, notifications  # noqa: E402
from receiver.store import migrate  # noqa: E402
from receiver.store.tables import incidents  # noqa: E402
from ticketmon.servers.postgres import PostgresCluster  # noqa: E402
from ticketmon.servers.process import ManagedProcess, free_port  # noqa: E402
from ticketmon.simulator.notification_sink import NotificationSink  # noqa: E402

SECRET = "bench-signing-secret-0123456789"
CONCURRENCY = 8


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def seed(url: str, count: int, due: datetime, spread: float = 0.0) -> None:
    """Open incidents with escalation timers due from `due` on, evenly over `spread` s."""
    now = datetime.now(UTC)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        ids = conn.execute(incidents.insert().returning(incidents.c.id), [{
            "group_key": f"bench-{i}", "tenant": "acme", "status": "open",
            "severity": "critical", "title": f"Bench incident {i}", "service": "sales",
            "group_labels": {"alertname": f"Bench{i}"},
            "common_labels": {"alertname": f"Bench{i}", "severity": "critical"},
            "opened_at": now, "created_at": now, "updated_at": now,
        } for i in range(count)]).scalars().all()
        conn.execute(escalations.insert(), [{
            "incident_id": i, "tenant": "acme", "state": "active", "policy": None,
            "episode": 0, "step": 0, "round": 0, "updated_at": now,
            "started_at": due + timedelta(seconds=spread * k / count),
            "due_at": due + timedelta(seconds=spread * k / count)} for k, i in enumerate(ids)])
    engine.dispose()


def run_workers(cluster: PostgresCluster, db: str, workers: int, count: int, channels: int,
                sink: NotificationSink, workdir: Path, spread: float = 0.0) -> dict:
    url = cluster.create_database(db)
    migrate.upgrade(url)
    names = [f"c{i}" for i in range(channels)]
    policies = workdir / "policies.yaml"
    policies.write_text(yaml.safe_dump({"policies": [
        {"name": "bench", "steps": [{"after": "0s", "channels": names}]}]}))
    procs = []
    for w in range(workers):
        port = free_port()
        cfg = workdir / f"{db}-w{w}.yaml"
        cfg.write_text(yaml.safe_dump({
            "database_url": url, "policies_file": str(policies), "metrics_port": port,
            "poll_interval": "0.2s", "concurrency": CONCURRENCY, "worker_id": f"w{w}",
            "log_level": "warning",
            "channels": {n: {"type": "webhook", "url": f"{sink.url}/{n}", "secret": SECRET}
                         for n in names}}))
        proc = ManagedProcess(f"{db}-w{w}", [sys.executable, "-m", "ticketmon", "receiver",
                                             "worker", "--config", str(cfg)],
                              workdir / f"{db}-w{w}.log")
        proc.wait_http(f"http://127.0.0.1:{port}/metrics", timeout=60)
        procs.append(proc)
    due = datetime.now(UTC) + timedelta(seconds=1.0)
    seed(url, count, due, spread)
    engine = sa.create_engine(url)
    expected = count * channels
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                done = conn.execute(sa.select(sa.func.count()).select_from(notifications)
                                    .where(notifications.c.state == "delivered")).scalar()
            if done == expected:
                break
            time.sleep(0.2)
        with engine.connect() as conn:
            rows = conn.execute(sa.select(notifications.c.due_at, notifications.c.finished_at,
                                          notifications.c.attempts)
                                .where(notifications.c.state == "delivered")).all()
    finally:
        for proc in procs:
            proc.stop()
        engine.dispose()
    if len(rows) != expected:
        raise SystemExit(f"only {len(rows)} of {expected} delivered with {workers} worker(s)")
    lateness = [(f - d).total_seconds() for d, f, _ in rows]
    span = max(f for _, f, _ in rows) - due
    if spread:
        span = timedelta(seconds=max(span.total_seconds(), spread))
    return {"deliveries": len(rows), "p50_s": percentile(lateness, 0.5),
            "p99_s": percentile(lateness, 0.99), "max_s": max(lateness),
            "per_s": len(rows) / max(span.total_seconds(), 1e-9),
            "retries": sum(a - 1 for *_, a in rows)}


def run_baseline(count: int, channels: int, sink: NotificationSink, threads: int) -> dict:
    """The same signed POSTs straight to the sink: what delivery costs without the outbox."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=threads)
    session.mount("http://", adapter)

    def post(i: int) -> float:
        body = json.dumps({"delivery_id": f"baseline/{i}", "action": "trigger",
                           "incident": {"id": str(i)}}).encode()
        ts = int(time.time())
        started = time.perf_counter()
        session.post(f"{sink.url}/baseline", data=body, timeout=10, headers={
            "Content-Type": "application/json", "X-Ticketmon-Timestamp": str(ts),
            "X-Ticketmon-Signature": sign(SECRET, ts, body)}).raise_for_status()
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        latencies = list(pool.map(post, range(count * channels)))
    elapsed = time.perf_counter() - started
    return {"deliveries": len(latencies), "p50_s": percentile(latencies, 0.5),
            "p99_s": percentile(latencies, 0.99), "max_s": max(latencies),
            "per_s": len(latencies) / elapsed, "retries": 0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1000)
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--spread", type=float, default=20.0,
                        help="seconds over which the steady-state runs' steps fall due")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="ticketmon-bench-escalation-"))
    sink = NotificationSink(keep=10 * args.incidents * args.channels).start()
    cluster = PostgresCluster()
    try:
        results = {
            "baseline: direct POST, no outbox": run_baseline(args.incidents, args.channels,
                                                             sink, CONCURRENCY),
            "1 worker": run_workers(cluster, "one", 1, args.incidents, args.channels, sink,
                                    workdir),
            "2 workers": run_workers(cluster, "two", 2, args.incidents, args.channels, sink,
                                     workdir),
            f"1 worker, due over {args.spread:g} s": run_workers(
                cluster, "one_spread", 1, args.incidents, args.channels, sink, workdir,
                args.spread),
            f"2 workers, due over {args.spread:g} s": run_workers(
                cluster, "two_spread", 2, args.incidents, args.channels, sink, workdir,
                args.spread),
        }
    finally:
        cluster.stop()
        sink.stop()
    print(f"{args.incidents} incidents x {args.channels} channels due at one instant (burst) "
          f"or evenly over {args.spread:g} s; "
          f"PostgreSQL 15, local HTTP sink, {CONCURRENCY} delivery threads per worker")
    print(f"{'run':<34}{'deliveries':>11}{'lateness p50':>14}{'p99':>9}{'max':>9}"
          f"{'deliveries/s':>14}{'retries':>9}")
    for name, r in results.items():
        print(f"{name:<34}{r['deliveries']:>11}{r['p50_s']:>13.3f}s{r['p99_s']:>8.3f}s"
              f"{r['max_s']:>8.3f}s{r['per_s']:>14.0f}{r['retries']:>9}")
    print("(baseline lateness = one POST's round trip; target p99 <= 1 s: "
          + ", ".join(f"{name}: {'met' if r['p99_s'] <= 1 else 'NOT met'}"
                      for name, r in results.items() if "worker" in name) + ")")
    print(json.dumps({k: {m: round(v, 4) for m, v in r.items()} for k, r in results.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
