#!/usr/bin/env python3
"""Fraud check throughput, latency and memory, side by side with a null Flask endpoint.

Part 1 runs the fraud service and a null Flask app (parse the JSON, answer a constant)
under the same gunicorn (2 sync workers, --no-control-socket), one after the other,
and drives each at the same concurrency with the same pre-encoded check bodies over
raw sockets, printing p50/p99 latency and requests/s of both. Targets: fraud p99 <=
10 ms and >= 70 % of the null endpoint's throughput.

Part 2 feeds --users distinct users (default 1,000,000) through one in-process fraud
service (the same code path as a worker, minus HTTP) and prints the process RSS before
and after, with the history's size: target <= 300 MB.

Everything binds to 127.0.0.1 and stops by itself. Run: .venv/bin/python bench/fraud_check.py
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import resource
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ticketmon.servers.process import ManagedProcess, free_port  # noqa: E402

TOKEN = "tm_bench_checkout_token_0123456789"

NULL_APP = textwrap.dedent('''
    import json
    from flask import Flask, Response, request
    app = Flask("null")

    @app.post("/api/v1/fraud/check")
    def check():
        json.loads(request.get_data())
        return Response('{"risk_score":0,"decision":"allow"}', mimetype="application/json")
''')


def bodies(n: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    agents = ["Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", "Mozilla/5.0 (iPhone) Mobile",
              "python-requests/2.31", "Mozilla/5.0 (Windows NT 10.0) Chrome/126.0"]
    out = []
    for i in range(n):
        doc = {
            "user_id": f"user-{rng.randrange(20_000)}", "event_id": f"evt-{rng.randrange(50)}",
            "quantity": rng.choice([1, 2, 2, 4, 12]),
            "requests_per_minute": rng.choice([2, 5, 9, 80]),
            "payment_methods_recent": rng.choice([1, 1, 2, 5]),
            "ip": f"198.51.100.{i % 250}", "geo": {"lat": 48.8 + rng.random(), "lon": 2.3},
            "user_agent": rng.choice(agents),
            "session": {"duration_seconds": rng.uniform(1, 900),
                        "mouse_movements": rng.choice([0, 40, 300]),
                        "keystroke_intervals_ms": [rng.uniform(3, 200) for _ in range(6)]},
        }
        out.append(json.dumps(doc).encode())
    return out


def request_bytes(port: int, body: bytes) -> bytes:
    return (f"POST /api/v1/fraud/check HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


def _one(port: int, data: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head = b"".join(chunks)[:12]
    return int(head[9:12])


def _load_process(port: int, threads: int, duration: float, seed: int, out: mp.Queue) -> None:
    pool = [request_bytes(port, b) for b in bodies(2000, seed)]
    deadline = time.monotonic() + duration
    latencies: list[float] = []
    errors = [0]

    def worker(k: int) -> None:
        i = k
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                status = _one(port, pool[i % len(pool)])
            except OSError:
                status = 0
            if status == 200:
                latencies.append(time.perf_counter() - started)
            else:
                errors[0] += 1
            i += threads

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.put((latencies, errors[0]))


def drive(port: int, concurrency: int, procs: int, duration: float) -> dict:
    out: mp.Queue = mp.Queue()
    per = concurrency // procs
    ps = [mp.Process(target=_load_process, args=(port, per, duration, s, out))
          for s in range(procs)]
    for p in ps:
        p.start()
    results = [out.get() for _ in ps]
    for p in ps:
        p.join()
    lat = sorted(x for r in results for x in r[0])
    errors = sum(r[1] for r in results)
    if not lat:
        return {"ok": 0, "errors": errors}
    return {"ok": len(lat), "errors": errors, "req_per_s": round(len(lat) / duration),
            "p50_ms": round(lat[len(lat) // 2] * 1000, 2),
            "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 2)}


def gunicorn(app: str, port: int, workdir: Path, env: dict[str, str]) -> ManagedProcess:
    """The same gunicorn settings for both apps (the fraud service's own config file)."""
    argv = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
            "--no-control-socket", "--access-logfile", "/dev/null", "--chdir", str(workdir),
            "--config", "python:exporters.fraud.gunicorn_conf", app]
    return ManagedProcess(app, argv, workdir / f"{app.split(':')[0]}.log",
                          env={"PYTHONPATH": f"{REPO}:{workdir}", **env}, cwd=workdir)


def part1(args: argparse.Namespace, workdir: Path) -> None:
    (workdir / "null_app.py").write_text(NULL_APP)
    multiproc = workdir / "metrics"
    multiproc.mkdir()
    cfg = workdir / "fraud.yml"
    cfg.write_text(textwrap.dedent(f"""
        database_url: sqlite:///{workdir}/fraud.db
        auth: {{tokens: [{{name: bench, role: operator, token: {TOKEN}}}]}}
        outlier: {{min_samples: 200, refit_seconds: 10}}
    """))
    rows = []
    for name, app, env in (
        ("null flask", "null_app:app", {}),
        ("fraud check", "exporters.fraud.wsgi:app",
         {"TICKETMON_CONFIG": str(cfg), "PROMETHEUS_MULTIPROC_DIR": str(multiproc)}),
    ):
        port = free_port()
        proc = gunicorn(app, port, workdir, env)
        try:
            proc.wait_until(lambda p=port: _ready(p), timeout=60)
            drive(port, args.concurrency, args.procs, args.warmup)  # warm-up, fits the model
            rows.append((name, drive(port, args.concurrency, args.procs, args.duration)))
        finally:
            proc.stop()
    print(f"\n## HTTP: gunicorn 2 sync workers, concurrency {args.concurrency}, "
          f"{args.duration:g}s each, new connection per request")
    print(f"{'endpoint':<12} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'ok':>8} {'errors':>7}")
    for name, r in rows:
        print(f"{name:<12} {r.get('req_per_s', 0):>8} {r.get('p50_ms', '-'):>8} "
              f"{r.get('p99_ms', '-'):>8} {r['ok']:>8} {r['errors']:>7}")
    null, fraud = rows[0][1], rows[1][1]
    if null.get("req_per_s") and fraud.get("req_per_s"):
        print(f"fraud/null throughput: {fraud['req_per_s'] / null['req_per_s']:.0%} "
              f"(target >= 70%); fraud p99 {fraud['p99_ms']} ms (target <= 10 ms)")


def _ready(port: int) -> bool:
    try:
        return _one(port, request_bytes(port, b'{"user_id":"w","event_id":"e","quantity":1}')) \
            == 200
    except OSError:
        return False


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def part2(args: argparse.Namespace, workdir: Path) -> None:
    from exporters.fraud.app import FraudService
    from exporters.fraud.settings import FraudSettings

    settings = FraudSettings.model_validate({
        "database_url": f"sqlite:///{workdir}/memory.db", "auth": {"disabled": True},
        "outlier": {"min_samples": 200, "refit_seconds": 5},
    })
    service = FraudService(settings)
    service.ensure_started()
    template = bodies(1)[0].decode()
    base = rss_mb()
    started = time.monotonic()
    mid = None
    for i in range(args.users):
        body = template.replace('"user_id": "user-', f'"user_id": "flood-{i}-', 1).encode()
        _, status = service.check(body)
        assert status == 200
        if i == 1000:
            service.outlier.refit()
            mid = rss_mb()
    elapsed = time.monotonic() - started
    service.recorder.flush(timeout=120)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n## Memory: {args.users:,} distinct users through one in-process service "
          f"(history cap {settings.history.max_users:,} users, ttl "
          f"{settings.history.ttl_seconds:g}s)")
    print(f"{'state':<34} {'RSS MB':>8}")
    print(f"{'after imports (baseline)':<34} {base:>8.1f}")
    print(f"{'after 1,000 users + first fit':<34} {mid:>8.1f}")
    print(f"{f'after {args.users:,} users':<34} {rss_mb():>8.1f}")
    print(f"{'peak':<34} {peak:>8.1f}   (target <= 300)")
    print(f"users held {len(service.history):,}, evicted {service.history.evicted:,}; "
          f"{args.users / elapsed:,.0f} checks/s in-process; rows written "
          f"{service.recorder.written:,}")
    service.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--procs", type=int, default=4, help="load generator processes")
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=4)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ticketmon-bench-fraud-") as tmp:
        workdir = Path(tmp)
        if args.memory_only:
            part2(args, workdir)
            return 0
        if not args.skip_http:
            part1(args, workdir)
        if not args.skip_memory:
            # a fresh interpreter, so part 1's imports and buffers do not count
            subprocess.run([sys.executable, __file__, "--memory-only", "--users",
                            str(args.users)], check=True, env={**os.environ})
    return 0


if __name__ == "__main__":
    sys.exit(main())
