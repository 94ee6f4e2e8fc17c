#!/usr/bin/env python3
"""Webhook ingest: the receiver vs the raw-psycopg2 baseline, side by side, same run.

Two workloads, each on fresh databases of one throw-away PostgreSQL cluster
(ticketmon.servers.postgres), the receiver and the baseline (bench/baselines/rawpg_app.py,
one upsert transaction per request) both under gunicorn with 2 sync workers, both
loaded by bench/amload.py with the same arguments (10 alerts per request, concurrency 16):

- replay: 1,000 distinct alerts re-sent over and over (10 % resolved), as Alertmanager
  repeats notifications. Goal: receiver alerts/s >= 100 % of the baseline's.
- storm: every posted alert is new (--storm-alerts distinct fingerprints per server,
  split over the rounds, none re-sent). Goal: receiver alerts/s >= 50 % of the
  baseline's, receiver p99 <= 50 ms.

Rounds alternate baseline / receiver so machine noise hits both. Afterwards each store
must hold exactly the distinct alerts sent (no loss, no duplicates).

With --streams N, the stream server (receiver/stream, gunicorn gthread) runs beside the
receiver on the same database, and a third kind of round, "receiver+streams", loads the
same receiver while N live streams are open and receiving every change
(bench/stream_holders.py). Goal: the receiver keeps >= 80 % of its own alerts/s without
the streams, in the same run (the streams hold none of the receiver's sync workers; what
they cost is CPU on the same cores).

    .venv/bin/python bench/webhook_ingest.py [--workload replay|storm|both]
        [--duration 15] [--rounds 3] [--storm-alerts 200000] [--threads 4] [--streams 200]
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
import yaml
from stream_holders import StreamHolders

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
GROUP = 100  # amload's alerts per group: --first-alert must be a multiple
WARMUP_ALERTS = 2000
STREAMS = "receiver+streams"
GOALS = {"replay": {"ratio": 1.0}, "storm": {"ratio": 0.5, "p99_ms": 50.0}}
STREAMS_GOAL = 0.8  # receiver+streams alerts/s over the receiver's alone, same run
API_TOKEN = "tm_bench_streams_admin_0123456789"


def start_rawpg(cluster: PostgresCluster, db: str, workdir: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    proc = ManagedProcess(
        f"rawpg-{db}", [GUNICORN, "-w", "2", "-k", "sync", "--no-control-socket",
                        "-b", f"127.0.0.1:{port}", "--chdir", str(BASELINES), "rawpg_app:app"],
        workdir / f"{db}.log",
        env={"RAWPG_DSN": f"postgresql://postgres@127.0.0.1:{cluster.port}/{db}"})
    url = f"http://127.0.0.1:{port}/webhook"
    proc.wait_until(lambda: _port_open(port))
    return proc, url


def receiver_env(url: str, workdir: Path, name: str, streams: int) -> dict[str, str]:
    """The receiver's and the stream server's settings: one file, as in production."""
    config = workdir / f"{name}.yaml"
    config.write_text(yaml.safe_dump({
        "api_tokens": [{"name": "bench", "role": "admin", "tenant": "*", "token": API_TOKEN}],
        # room for a round's streams while the last round's are still being noticed gone
        "stream": {"max_streams": 2 * streams + 1},
        "rate_limit": {"requests_per_second": 0}}))
    metrics_dir = workdir / f"metrics-{name}"
    metrics_dir.mkdir()
    return {"TICKETMON_CONFIG": str(config), "TICKETMON_DATABASE_URL": url,
            "TICKETMON_WEBHOOK_TOKEN": TOKEN, "TICKETMON_LOG_LEVEL": "warning",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}


def start_receiver(cluster: PostgresCluster, db: str, workdir: Path,
                   streams: int = 0) -> tuple[ManagedProcess, str]:
    port = free_port()
    url = cluster.url(db)
    migrate.upgrade(url)
    proc = ManagedProcess(
        f"receiver-{db}", [GUNICORN, "-c", "python:receiver.gunicorn_conf", *RECEIVER_WORKERS,
                           "--no-control-socket", "-b", f"127.0.0.1:{port}",
                           "receiver.wsgi:app"],
        workdir / f"{db}.log", cwd=REPO, env=receiver_env(url, workdir, db, streams))
    proc.wait_http(f"http://127.0.0.1:{port}/readyz")
    return proc, f"http://127.0.0.1:{port}/api/v1/alertmanager"


def start_stream_server(cluster: PostgresCluster, db: str, workdir: Path,
                        streams: int) -> tuple[ManagedProcess, str]:
    """The stream server beside the receiver, on the same database (one worker)."""
    port = free_port()
    proc = ManagedProcess(
        f"stream-{db}", [GUNICORN, "-c", "python:receiver.stream.gunicorn_conf",
                         "--no-control-socket", "-b", f"127.0.0.1:{port}",
                         "receiver.stream.wsgi:app"],
        workdir / f"stream-{db}.log", cwd=REPO,
        env=receiver_env(cluster.url(db), workdir, f"stream-{db}", streams))
    proc.wait_http(f"http://127.0.0.1:{port}/readyz")
    return proc, f"http://127.0.0.1:{port}/api/v1/stream"


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def postmaster_pid(cluster: PostgresCluster) -> int:
    return int((cluster.datadir / "postmaster.pid").read_text().split()[0])


def amload(url: str, args: argparse.Namespace, label: str, duration: float, *,
           distinct: int, resolve: float, first: int = 0, requests: int | None = None,
           header: str | None = None, watch: tuple[int, ...] = ()) -> dict:
    cmd = [sys.executable, str(AMLOAD), "--url", url, "--concurrency", str(args.concurrency),
           "--alerts-per-request", str(args.alerts_per_request),
           "--distinct-fingerprints", str(distinct), "--first-alert", str(first),
           "--resolve-fraction", str(resolve), "--duration", str(duration), "--label", label]
    if requests is not None:
        cmd += ["--requests", str(requests)]
    if header:
        cmd += ["--header", header]
    for pid in watch:
        cmd += ["--watch-pid", str(pid)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 300)
    if not out.stdout.strip():
        raise RuntimeError(f"amload failed: {out.stderr.strip()[-800:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def store_counts(cluster: PostgresCluster, receiver_db: str, raw_db: str) -> dict:
    with psycopg2.connect(cluster.dsn(receiver_db)) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), count(DISTINCT fingerprint), "
                    "count(*) FILTER (WHERE status = 'resolved') FROM alerts")
        alerts, distinct, resolved = cur.fetchone()
        cur.execute("SELECT count(*), count(*) FILTER (WHERE status != 'resolved') "
                    "FROM incidents")
        incidents, unresolved = cur.fetchone()
    with psycopg2.connect(cluster.dsn(raw_db)) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), count(DISTINCT fingerprint) FROM am_alerts")
        raw_rows, raw_distinct = cur.fetchone()
    return {"receiver_alerts": alerts, "receiver_distinct_fingerprints": distinct,
            "receiver_resolved": resolved, "receiver_incidents": incidents,
            "receiver_unresolved_incidents": unresolved, "rawpg_rows": raw_rows,
            "rawpg_distinct_fingerprints": raw_distinct}


def run_workload(name: str, cluster: PostgresCluster, args: argparse.Namespace,
                 workdir: Path) -> dict:
    """One workload on fresh databases: warm-up, alternating rounds, then the stores."""
    raw_db, rec_db = f"raw_{name}", f"receiver_{name}"
    for db in (raw_db, rec_db):
        cluster.create_database(db)
    procs: list[ManagedProcess] = []
    auth = f"Authorization: Bearer {TOKEN}"
    pg_pid = postmaster_pid(cluster)
    results: dict[str, list[dict]] = {"rawpg": [], "receiver": []}
    sent = {"rawpg": 0, "receiver": 0}  # per database
    stream_url = None
    try:
        rawpg, raw_url = start_rawpg(cluster, raw_db, workdir)
        procs.append(rawpg)
        receiver, rec_url = start_receiver(cluster, rec_db, workdir, args.streams)
        procs.append(receiver)
        servers = {"rawpg": (raw_url, rawpg.pid, None), "receiver": (rec_url, receiver.pid, auth)}
        if args.streams:
            streamer, stream_url = start_stream_server(cluster, rec_db, workdir, args.streams)
            procs.append(streamer)
            servers[STREAMS] = (rec_url, receiver.pid, auth)
            results[STREAMS] = []
        if name == "replay":
            load = {"distinct": args.distinct, "resolve": args.resolve_fraction}
            per_round = 0
        else:  # each round, and the warm-up, gets its own range of alert identities
            per_round = max(GROUP, args.storm_alerts // args.rounds // GROUP * GROUP)
            load = {"distinct": per_round, "resolve": 0.0,
                    "requests": -(-per_round // args.alerts_per_request)}
        for system in ("rawpg", "receiver"):  # connections, plans, caches
            url, _pid, header = servers[system]
            warm = dict(load, distinct=WARMUP_ALERTS,
                        requests=WARMUP_ALERTS // args.alerts_per_request) \
                if name == "storm" else load
            r = amload(url, args, f"{name}-{system}-warmup", 3.0, header=header,
                       first=per_round * args.rounds, **warm)
            sent[system] += r["alerts_sent"]
        for rnd in range(args.rounds):
            for system, (url, pid, header) in servers.items():
                holders = None
                first = per_round * rnd
                if system == STREAMS:  # its own alert identities: the store is shared
                    first = per_round * (args.rounds + 1 + rnd)
                    holders = StreamHolders(stream_url, API_TOKEN, args.streams)
                    holders.open()
                try:
                    r = amload(url, args, f"{name}-{system}-{rnd}", args.duration,
                               header=header, first=first, watch=(pid, pg_pid), **load)
                finally:
                    if holders is not None:
                        r_streams = {"streams_open": holders.open_now(),
                                     "streams_refused": holders.refused,
                                     "stream_bytes": holders.received}
                        holders.close()
                if holders is not None:
                    r.update(r_streams)
                r["server_cpu_ms_per_req"] = cpu_ms(r, pid)
                r["postgres_cpu_ms_per_req"] = cpu_ms(r, pg_pid)
                results[system].append(r)
                sent["rawpg" if system == "rawpg" else "receiver"] += r["alerts_sent"]
                print(json.dumps(r), file=sys.stderr, flush=True)
        store = store_counts(cluster, rec_db, raw_db)
    finally:
        for proc in procs:
            proc.stop()
    expected = {s: args.distinct if name == "replay" else sent[s] for s in sent}
    store["receiver_exact"] = (store["receiver_alerts"] == expected["receiver"]
                               == store["receiver_distinct_fingerprints"])
    store["rawpg_exact"] = (store["rawpg_rows"] == expected["rawpg"]
                            == store["rawpg_distinct_fingerprints"])
    return {"results": results, "store": store, "expected_distinct": expected,
            "per_round_alerts": per_round or None}


def cpu_ms(run: dict, pid: int) -> float:
    """CPU ms per answered request of one watched process tree: load-independent-ish."""
    pct = (run.get("watched_cpu_pct") or {}).get(str(pid))
    if pct is None or not run.get("ok"):
        return float("nan")
    return 10 * pct * run["elapsed_s"] / run["ok"]


def med(runs: list[dict], key: str) -> float:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else float("nan")


def report(name: str, w: dict, args: argparse.Namespace) -> dict:
    """Print one workload's table and verdicts; return its figures for the JSON line."""
    res, store = w["results"], w["store"]
    keys = ("alerts_per_s", "req_per_s", "p50_ms", "p95_ms", "p99_ms",
            "server_cpu_ms_per_req", "postgres_cpu_ms_per_req", "other_cpu_pct")
    heads = ("alerts/s", "req/s", "p50 ms", "p95 ms", "p99 ms", "server CPU ms/req",
             "pg CPU ms/req", "other CPU %")
    what = (f"{args.distinct} distinct alerts re-sent, resolve fraction {args.resolve_fraction}"
            if name == "replay" else
            f"every alert new, up to {w['per_round_alerts']:,} per round")
    print(f"\n{name}: {what}; {args.alerts_per_request} alerts/request, concurrency "
          f"{args.concurrency}, {args.rounds} rounds of <= {args.duration:g} s (median of "
          f"rounds); receiver: {' '.join(RECEIVER_WORKERS)}")
    print("| server | " + " | ".join(heads) + " | ratio to baseline | errors |")
    print("|---|" + "---:|" * (len(heads) + 2))
    base = med(res["rawpg"], "alerts_per_s")
    for system in res:
        errors = sum(r.get("error_count", 0) for r in res[system])
        ratio = med(res[system], "alerts_per_s") / base
        print(f"| {system} | " + " | ".join(f"{med(res[system], k):.1f}" for k in keys)
              + f" | {ratio:.0%} | {errors} |")
    ratio = med(res["receiver"], "alerts_per_s") / base
    p99 = med(res["receiver"], "p99_ms")
    goal = GOALS[name]
    checks = {"ratio": ratio >= goal["ratio"]}
    print(f"receiver / rawpg alerts/s: {ratio:.0%} (goal >= {goal['ratio']:.0%}: "
          f"{'PASS' if checks['ratio'] else 'FAIL'})")
    if "p99_ms" in goal:
        checks["p99"] = p99 <= goal["p99_ms"]
        print(f"receiver p99: {p99:.1f} ms (goal <= {goal['p99_ms']:g} ms: "
              f"{'PASS' if checks['p99'] else 'FAIL'})")
    if STREAMS in res:
        alone, loaded = med(res["receiver"], "alerts_per_s"), med(res[STREAMS], "alerts_per_s")
        opened = min(r["streams_open"] for r in res[STREAMS])
        checks["streams"] = loaded >= STREAMS_GOAL * alone and opened == args.streams
        print(f"receiver with {args.streams} streams open ({opened} still open at the end of "
              f"the worst round, {sum(r['streams_refused'] for r in res[STREAMS])} refused, "
              f"{med(res[STREAMS], 'stream_bytes') / 1e6:.1f} MB streamed per round) / "
              f"without: alerts/s {loaded / alone:.0%}, p99 "
              f"{med(res[STREAMS], 'p99_ms'):.1f} ms vs {p99:.1f} ms (goal >= "
              f"{STREAMS_GOAL:.0%}: {'PASS' if checks['streams'] else 'FAIL'})")
    checks["no_loss"] = store["receiver_exact"] and store["rawpg_exact"]
    print(f"stores hold exactly the distinct alerts sent (receiver "
          f"{w['expected_distinct']['receiver']:,}, rawpg {w['expected_distinct']['rawpg']:,}): "
          f"{'PASS' if checks['no_loss'] else 'FAIL'}  {json.dumps(store)}")
    return {"receiver_alerts_per_s": round(med(res["receiver"], "alerts_per_s")),
            "rawpg_alerts_per_s": round(base), "ratio": round(ratio, 3),
            "receiver_p50_ms": med(res["receiver"], "p50_ms"), "receiver_p99_ms": p99,
            "rawpg_p99_ms": med(res["rawpg"], "p99_ms"), "store": store,
            "pass": all(checks.values())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workload", choices=["replay", "storm", "both"], default="both")
    ap.add_argument("--duration", type=float, default=15.0,
                    help="seconds per measured run, at most (a storm round also stops when "
                         "its alerts are all sent)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per workload")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--alerts-per-request", type=int, default=10)
    ap.add_argument("--distinct", type=int, default=1000, help="replay: alerts re-sent")
    ap.add_argument("--resolve-fraction", type=float, default=0.1, help="replay")
    ap.add_argument("--storm-alerts", type=int, default=200_000,
                    help="storm: new alerts per server, split over the rounds")
    ap.add_argument("--threads", type=int, default=0,
                    help="run the receiver's 2 workers as gthread with this many threads")
    ap.add_argument("--streams", type=int, default=0,
                    help="also load the receiver while this many live streams are open")
    args = ap.parse_args()
    if args.threads:
        RECEIVER_WORKERS[:] = ["-w", "2", "-k", "gthread", "--threads", str(args.threads)]
    workloads = ["replay", "storm"] if args.workload == "both" else [args.workload]

    workdir = Path(tempfile.mkdtemp(prefix="ticketmon-bench-ingest-"))
    cluster = PostgresCluster()
    done: dict[str, dict] = {}
    try:
        for name in workloads:
            done[name] = run_workload(name, cluster, args, workdir)
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print("\n'other CPU %' is what the rest of the box used meanwhile (200 = both cores): "
          "a busy box lowers throughput and raises latency for both, CPU per request less.")
    summary = {name: report(name, w, args) for name, w in done.items()}
    print(json.dumps({"summary": summary}))
    return 0 if all(s["pass"] for s in summary.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
