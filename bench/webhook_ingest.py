#!/usr/bin/env python3
"""Webhook ingest: the receiver vs the raw-psycopg2 baseline, side by side, same run.

Both run under gunicorn (2 sync workers) against one throw-away PostgreSQL cluster
(ticketmon.servers.postgres), and both are loaded by bench/amload.py with the same
arguments (default: 10 alerts per request, concurrency 16, 1,000 distinct fingerprints,
so later passes re-send the same alerts, as Alertmanager does). Rounds alternate
baseline / receiver so machine noise hits both. Afterwards the receiver's store must hold
exactly the distinct alerts sent.

Target: receiver alerts/s >= 70 % of the baseline's, receiver p99 <= 50 ms.

    .venv/bin/python bench/webhook_ingest.py [--duration 15] [--rounds 3] [--threads 4]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from receiver.store import migrate  # noqa: E402
from ticketmon.servers.postgres import PostgresCluster  # noqa: E402
from ticketmon.servers.process import ManagedProcess, free_port  # noqa: E402

AMLOAD = REPO / "bench" / "amload.py"
BASELINES = REPO / "bench" / "baselines"
TOKEN = "bench-webhook-token-0123456789"
GUNICORN = str(Path(sys.executable).parent / "gunicorn")
RECEIVER_WORKERS = ["-w", "2", "-k", "sync"]  # receiver.gunicorn_conf's default class


def start_rawpg(cluster: PostgresCluster, workdir: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    proc = ManagedProcess(
        "rawpg", [GUNICORN, "-w", "2", "-k", "sync", "--no-control-socket",
                  "-b", f"127.0.0.1:{port}", "--chdir", str(BASELINES), "rawpg_app:app"],
        workdir / "rawpg.log",
        env={"RAWPG_DSN": f"postgresql://postgres@127.0.0.1:{cluster.port}/raw_bench"})
    url = f"http://127.0.0.1:{port}/webhook"
    proc.wait_until(lambda: _port_open(port))
    return proc, url


def start_receiver(cluster: PostgresCluster, workdir: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    db = cluster.url("receiver_bench")
    migrate.upgrade(db)
    proc = ManagedProcess(
        "receiver", [GUNICORN, "-c", "python:receiver.gunicorn_conf", *RECEIVER_WORKERS,
                     "--no-control-socket", "-b", f"127.0.0.1:{port}", "receiver.wsgi:app"],
        workdir / "receiver.log", cwd=REPO,
        env={"TICKETMON_DATABASE_URL": db, "TICKETMON_WEBHOOK_TOKEN": TOKEN,
             "TICKETMON_LOG_LEVEL": "warning",
             "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics")})
    proc.wait_http(f"http://127.0.0.1:{port}/readyz")
    return proc, f"http://127.0.0.1:{port}/api/v1/alertmanager"


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def postmaster_pid(cluster: PostgresCluster) -> int:
    return int((cluster.datadir / "postmaster.pid").read_text().split()[0])


def amload(url: str, pid: int, args: argparse.Namespace, label: str, duration: float,
           header: str | None = None, db_pid: int | None = None) -> dict:
    cmd = [sys.executable, str(AMLOAD), "--url", url, "--concurrency", str(args.concurrency),
           "--alerts-per-request", str(args.alerts_per_request),
           "--distinct-fingerprints", str(args.distinct), "--resolve-fraction",
           str(args.resolve_fraction), "--duration", str(duration), "--watch-pid", str(pid),
           "--label", label]
    if header:
        cmd += ["--header", header]
    if db_pid:
        cmd += ["--watch-pid", str(db_pid)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def counts(cluster: PostgresCluster) -> dict:
    with psycopg2.connect(cluster.dsn("receiver_bench")) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), count(DISTINCT fingerprint), "
                    "count(*) FILTER (WHERE status = 'resolved') FROM alerts")
        alerts, distinct, resolved = cur.fetchone()
        cur.execute("SELECT count(*), count(*) FILTER (WHERE status != 'resolved') "
                    "FROM incidents")
        incidents, unresolved = cur.fetchone()
    with psycopg2.connect(cluster.dsn("raw_bench")) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), count(DISTINCT fingerprint) FROM am_alerts")
        raw_rows, raw_distinct = cur.fetchone()
    return {"receiver_alerts": alerts, "receiver_distinct_fingerprints": distinct,
            "receiver_resolved": resolved, "receiver_incidents": incidents,
            "receiver_unresolved_incidents": unresolved, "rawpg_rows": raw_rows,
            "rawpg_distinct_fingerprints": raw_distinct}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per measured run")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--alerts-per-request", type=int, default=10)
    ap.add_argument("--distinct", type=int, default=1000)
    ap.add_argument("--resolve-fraction", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=0,
                    help="run the receiver's 2 workers as gthread with this many threads")
    args = ap.parse_args()
    if args.threads:
        RECEIVER_WORKERS[:] = ["-w", "2", "-k", "gthread", "--threads", str(args.threads)]

    workdir = Path(tempfile.mkdtemp(prefix="ticketmon-bench-ingest-"))
    cluster = PostgresCluster()
    procs: list[ManagedProcess] = []
    try:
        for name in ("raw_bench", "receiver_bench"):
            cluster.create_database(name)
        rawpg, raw_url = start_rawpg(cluster, workdir)
        procs.append(rawpg)
        receiver, rec_url = start_receiver(cluster, workdir)
        procs.append(receiver)
        auth = f"Authorization: Bearer {TOKEN}"
        for url, pid, header in ((raw_url, rawpg.pid, None), (rec_url, receiver.pid, auth)):
            amload(url, pid, args, "warmup", 2.0, header)  # connections, plans, caches
        results: dict[str, list[dict]] = {"rawpg": [], "receiver": []}
        pg_pid = postmaster_pid(cluster)
        for r in range(args.rounds):
            results["rawpg"].append(amload(raw_url, rawpg.pid, args, f"rawpg-{r}",
                                           args.duration, db_pid=pg_pid))
            results["receiver"].append(amload(rec_url, receiver.pid, args, f"receiver-{r}",
                                              args.duration, auth, db_pid=pg_pid))
        for runs in results.values():
            for run in runs:
                print(json.dumps(run), file=sys.stderr)
        store = counts(cluster)
    finally:
        for proc in procs:
            proc.stop()
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    def med(name: str, key: str) -> float:
        values = [r[key] for r in results[name] if r.get(key) is not None]
        return statistics.median(values) if values else float("nan")

    def cpu_ms(run: dict, pid: int) -> float:
        """CPU ms per answered request of one watched process tree: load-independent-ish."""
        pct = (run.get("watched_cpu_pct") or {}).get(str(pid))
        if pct is None or not run.get("ok"):
            return float("nan")
        return 10 * pct * run["elapsed_s"] / run["ok"]

    for name, pid in (("rawpg", rawpg.pid), ("receiver", receiver.pid)):
        for run in results[name]:
            run["server_cpu_ms_per_req"] = cpu_ms(run, pid)
            run["postgres_cpu_ms_per_req"] = cpu_ms(run, pg_pid)
            run["box_other_cpu_pct"] = run.get("other_cpu_pct")

    keys = ("alerts_per_s", "req_per_s", "p50_ms", "p95_ms", "p99_ms",
            "server_cpu_ms_per_req", "postgres_cpu_ms_per_req", "box_other_cpu_pct")
    heads = ("alerts/s", "req/s", "p50 ms", "p95 ms", "p99 ms", "server CPU ms/req",
             "pg CPU ms/req", "other CPU %")
    print(f"\nwebhook ingest, {args.alerts_per_request} alerts/request, concurrency "
          f"{args.concurrency}, {args.distinct} distinct fingerprints, resolve fraction "
          f"{args.resolve_fraction}, {args.rounds} x {args.duration:.0f} s each "
          f"(median of rounds); receiver: {' '.join(RECEIVER_WORKERS)}")
    print("| run | " + " | ".join(heads) + " | errors |")
    print("|---|" + "---:|" * (len(heads) + 1))
    for name in ("rawpg", "receiver"):
        errors = sum(sum(r.get("errors", {}).values()) for r in results[name])
        print(f"| {name} | " + " | ".join(f"{med(name, k):.1f}" for k in keys)
              + f" | {errors} |")
    ratio = med("receiver", "alerts_per_s") / med("rawpg", "alerts_per_s")
    p99 = med("receiver", "p99_ms")
    cpu_ratio = ((med("receiver", "server_cpu_ms_per_req")
                  + med("receiver", "postgres_cpu_ms_per_req"))
                 / (med("rawpg", "server_cpu_ms_per_req")
                    + med("rawpg", "postgres_cpu_ms_per_req")))
    exact = (store["receiver_alerts"] == args.distinct
             and store["receiver_distinct_fingerprints"] == args.distinct)
    print("\n'other CPU %' is what the rest of the box used meanwhile (200 = both cores): "
          "a busy box lowers throughput and raises latency for both, CPU per request less.")
    print(f"receiver / rawpg CPU per request (server + postgres): {cpu_ratio:.2f}x")
    print(f"\nreceiver / rawpg alerts/s: {ratio:.0%} (target >= 70%: "
          f"{'PASS' if ratio >= 0.7 else 'FAIL'})")
    print(f"receiver p99: {p99:.1f} ms (target <= 50 ms: {'PASS' if p99 <= 50 else 'FAIL'})")
    print(f"store after the run: {json.dumps(store)}")
    print(f"store holds exactly the {args.distinct} distinct alerts sent: "
          f"{'PASS' if exact else 'FAIL'}")
    return 0 if (ratio >= 0.7 and p99 <= 50 and exact) else 1


if __name__ == "__main__":
    sys.exit(main())
