"""Escalation under a burst: 1,000 open incidents whose step falls due at one instant.

    .venv/bin/python bench/escalation.py [--incidents 1000] [--channels 2] [--spread 20]

On a throw-away PostgreSQL, real `ticketmon receiver worker` processes (one, then two,
default settings but for the thread count) fire the step of every incident and
deliver each notification (signed webhook) to a local recording server; the steps
fall due at one instant (burst) or evenly over --spread seconds. From the database:
step lateness (due -> the step's outbox rows written, the target: p99 <= 1 s) and
delivery lateness (due -> delivered), and deliveries/s. The workers' own lateness
histogram, observed after each step's commit, cross-checks the step figure. The
baseline in the same run is the delivery path without the outbox: the same number of
signed POSTs sent straight to the same server from the same number of threads. Ends
with a JSON line of the figures.
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
PER_CHANNEL = 4  # delivery threads per channel and worker (x 2 channels = the baseline's 8)
STEP_LATENESS = "ticketmon_receiver_escalation_lateness_seconds"


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


def steps_within_one_second(metrics_ports: list[int]) -> tuple[float, float]:
    """(steps observed <= 1 s, steps observed) summed over the workers' histograms."""
    within = total = 0.0
    for port in metrics_ports:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        for line in text.splitlines():
            if line.startswith(f'{STEP_LATENESS}_bucket{{le="1.0"}}'):
                within += float(line.rsplit(" ", 1)[1])
            elif line.startswith(f"{STEP_LATENESS}_count"):
                total += float(line.rsplit(" ", 1)[1])
    return within, total


def run_workers(cluster: PostgresCluster, db: str, workers: int, count: int, channels: int,
                sink: NotificationSink, workdir: Path, spread: float = 0.0,
                targets: list[dict] | None = None, extra: dict | None = None,
                per_incident: int | None = None) -> dict:
    """`targets`, `extra` and `per_incident` (rows per incident) are for bench/oncall.py:
    a step that also pages people, the worker's `oncall` settings."""
    url = cluster.create_database(db)
    migrate.upgrade(url)
    names = [f"c{i}" for i in range(channels)]
    policies = workdir / f"{db}-policies.yaml"
    step = {"after": "0s", "channels": names, **({"targets": targets} if targets else {})}
    policies.write_text(yaml.safe_dump({"policies": [{"name": "bench", "steps": [step]}]}))
    procs, ports = [], []
    for w in range(workers):
        port = free_port()
        cfg = workdir / f"{db}-w{w}.yaml"
        cfg.write_text(yaml.safe_dump({
            "database_url": url, "policies_file": str(policies), "metrics_port": port,
            "concurrency": PER_CHANNEL, "worker_id": f"w{w}", "log_level": "warning",
            "channels": {n: {"type": "webhook", "url": f"{sink.url}/{n}", "secret": SECRET,
                             "allow_insecure_http": True} for n in names},
            **(extra or {})}))
        proc = ManagedProcess(f"{db}-w{w}", [sys.executable, "-m", "ticketmon", "receiver",
                                             "worker", "--config", str(cfg)],
                              workdir / f"{db}-w{w}.log")
        proc.wait_http(f"http://127.0.0.1:{port}/metrics", timeout=60)
        procs.append(proc)
        ports.append(port)
    due = datetime.now(UTC) + timedelta(seconds=1.0)
    seed(url, count, due, spread)
    engine = sa.create_engine(url)
    expected = count * (per_incident or channels)
    n = notifications.c
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            with engine.connect() as conn:
                done = conn.execute(sa.select(sa.func.count()).select_from(notifications)
                                    .where(n.state == "delivered")).scalar()
            if done == expected:
                break
            time.sleep(0.2)
        with engine.connect() as conn:
            rows = conn.execute(sa.select(n.incident_id, n.due_at, n.created_at,
                                          n.finished_at, n.attempts)
                                .where(n.state == "delivered")).all()
        within, observed = steps_within_one_second(ports)
    finally:
        for proc in procs:
            proc.stop()
        engine.dispose()
    if len(rows) != expected:
        raise SystemExit(f"only {len(rows)} of {expected} delivered with {workers} worker(s)")
    steps = sorted({  # one step per incident here: its rows are written together
        incident_id: (created_at - due_at).total_seconds()
        for incident_id, due_at, created_at, *_ in rows}.values())
    delivery = [(f - d).total_seconds() for _, d, _, f, _ in rows]
    span = max(f for *_, f, _ in rows) - due
    if spread:
        span = timedelta(seconds=max(span.total_seconds(), spread))
    return {"steps": len(steps), "step_p50_s": percentile(steps, 0.5),
            "step_p99_s": percentile(steps, 0.99), "step_max_s": max(steps),
            "steps_le_1s_histogram": within / observed if observed else 0.0,
            "deliveries": len(rows), "delivery_p50_s": percentile(delivery, 0.5),
            "delivery_p99_s": percentile(delivery, 0.99), "delivery_max_s": max(delivery),
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
    return {"deliveries": len(latencies), "delivery_p50_s": percentile(latencies, 0.5),
            "delivery_p99_s": percentile(latencies, 0.99), "delivery_max_s": max(latencies),
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
            "baseline: direct POST": run_baseline(args.incidents, args.channels, sink,
                                                  PER_CHANNEL * args.channels),
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
    print(f"{args.incidents} incidents x {args.channels} channels, due at one instant (burst) "
          f"or evenly over {args.spread:g} s; PostgreSQL 15, local HTTP sink, "
          f"{PER_CHANNEL} delivery threads per channel and worker, baseline "
          f"{PER_CHANNEL * args.channels} threads")
    print(f"{'':<30}{'step lateness (due -> written)':^36}{'delivery (due -> delivered)':^33}")
    print(f"{'run':<30}{'steps':>7}{'p50':>9}{'p99':>9}{'max':>9}{'<=1s*':>7}"
          f"{'p50':>9}{'p99':>9}{'max':>9}{'deliv/s':>9}{'retries':>8}")
    for name, r in results.items():
        if "steps" in r:
            step = (f"{r['steps']:>7}{r['step_p50_s']:>8.3f}s{r['step_p99_s']:>8.3f}s"
                    f"{r['step_max_s']:>8.3f}s{100 * r['steps_le_1s_histogram']:>6.1f}%")
        else:
            step = f"{'-':>7}{'-':>9}{'-':>9}{'-':>9}{'-':>7}"
        print(f"{name:<30}{step}{r['delivery_p50_s']:>8.3f}s{r['delivery_p99_s']:>8.3f}s"
              f"{r['delivery_max_s']:>8.3f}s{r['per_s']:>9.0f}{r['retries']:>8}")
    print("* share of steps <= 1 s in the workers' own histogram, observed after each commit")
    print("(baseline delivery = one POST's round trip; target step p99 <= 1 s: "
          + ", ".join(f"{name}: {'met' if r['step_p99_s'] <= 1 else 'NOT met'}"
                      for name, r in results.items() if "steps" in r) + ")")
    print(json.dumps({k: {m: round(v, 4) for m, v in r.items()} for k, r in results.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
