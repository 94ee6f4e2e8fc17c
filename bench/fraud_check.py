#!/usr/bin/env python3
"""Fraud check throughput, latency and memory, side by side with null endpoints.

Part 1 runs the fraud service and two null apps (parse the JSON body, answer a
constant), one in Flask (the issue's baseline) and one plain WSGI (the peer in the
check route's own mode: it answers in front of Flask), under the same gunicorn settings
(2 workers, the fraud service's own gunicorn_conf, once per worker model: sync and
gthread), side by side, and drives each
in alternating runs with --concurrency connections (keep-alive: the checkout calls from
a connection pool) sending the same pre-encoded check bodies. A sync worker closes the
connection after each answer, so there the client reconnects, inside the measured
latency, as a real pool would. Each round has a closed-loop run (as fast as answers
come: throughput, and latency at saturation) and a paced run at --rate checks/s
(latency below saturation). The closed loop runs from wrk (`apt-get install wrk`), a C
client that leaves the two cores to the servers; without it, or with --client python,
from the same Python client as the paced runs, which takes about half the machine.
Printed: requests/s, p50/p99 latency and the server's CPU per request (master, workers
and refitter, from /proc). Targets: fraud p99 <= 10 ms and >= 70 % of the null
endpoint's throughput, paced p99 within 2 ms of the null endpoint's; both nulls are
reported.

Part 2 sends --users distinct users (default 1,000,000) through the real HTTP path to
the fraud service under gunicorn (2 gthread workers, production settings) and prints
the RSS and PSS of every process of the service (master, each worker, the refitter)
before and after. The target (<= 300 MB) is the RSS of each request worker, the
process whose memory grows with users; the sums are printed too.

--in-process CALLS skips both and calls the applications directly as WSGI instead (no
gunicorn, no socket): the CPU per call of the fraud check, the null Flask app and a
null plain-WSGI app, in alternating blocks; --profile adds cProfile's top functions.

Everything binds to 127.0.0.1 and stops by itself. Run: .venv/bin/python bench/fraud_check.py
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import shutil
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
TICKS = os.sysconf("SC_CLK_TCK")

# Two null endpoints: Flask's (the baseline) and plain WSGI, the peer in the
# fraud check's own mode since its route answers in front of Flask (check_route)
NULL_APP = textwrap.dedent('''
    import json
    from flask import Flask, Response, request
    app = Flask("null")
    ANSWER = b'{"risk_score":0,"decision":"allow"}'

    @app.post("/api/v1/fraud/check")
    def check():
        json.loads(request.get_data())
        return Response(ANSWER, mimetype="application/json")

    def plain(environ, start_response):
        json.loads(environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"])))
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(ANSWER)))])
        return [ANSWER]
''')
NULLS = {"null flask": "null_app:app", "null wsgi": "null_app:plain"}


def check_body(rng: random.Random, user: str, i: int) -> bytes:
    agents = ["Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", "Mozilla/5.0 (iPhone) Mobile",
              "python-requests/2.31", "Mozilla/5.0 (Windows NT 10.0) Chrome/126.0"]
    return json.dumps({
        "user_id": user, "event_id": f"evt-{rng.randrange(50)}",
        "quantity": rng.choice([1, 2, 2, 4, 12]),
        "requests_per_minute": rng.choice([2, 5, 9, 80]),
        "payment_methods_recent": rng.choice([1, 1, 2, 5]),
        "ip": f"198.51.100.{i % 250}", "geo": {"lat": 48.8 + rng.random(), "lon": 2.3},
        "user_agent": rng.choice(agents),
        "session": {"duration_seconds": rng.uniform(1, 900),
                    "mouse_movements": rng.choice([0, 40, 300]),
                    "keystroke_intervals_ms": [rng.uniform(3, 200) for _ in range(6)]},
    }).encode()


def request_bytes(port: int, body: bytes) -> bytes:
    return (f"POST /api/v1/fraud/check HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


class KeepAlive:
    """One pooled HTTP/1.1 connection: reconnects when the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buf = b""

    def request(self, data: bytes) -> int:
        for attempt in (1, 2):
            fresh = self.sock is None
            if fresh:
                self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.buf = b""
            try:
                self.sock.sendall(data)
                status, close = self._response()
            except (ConnectionError, EOFError):
                self.close()
                if fresh or attempt == 2:  # an idle pooled connection may have timed out
                    raise
                continue
            if close:
                self.close()
            return status
        raise ConnectionError("unreachable")

    def _response(self) -> tuple[int, bool]:
        buf = self.buf
        while (end := buf.find(b"\r\n\r\n")) < 0:
            buf += self._recv()
        head = buf[:end].lower()
        status = int(head[9:12])
        at = head.find(b"content-length:")
        length = int(head[at + 15:head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0
                          else None]) if at >= 0 else 0
        body_end = end + 4 + length
        while len(buf) < body_end:
            buf += self._recv()
        self.buf = buf[body_end:]
        return status, b"connection: close" in head

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("server closed the connection")
        return chunk

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def _load_process(port: int, threads: int, duration: float, seed: int, distinct: int,
                  interval: float, out: mp.Queue) -> None:
    """`distinct` > 0: every request a new user (the memory flood), else a fixed pool.
    `interval` > 0: each connection sends on a fixed schedule (an offered rate) and
    latency counts from the scheduled time, so a stall delays later requests' clocks
    too (no coordinated omission); 0: closed loop, as fast as answers come."""
    rng = random.Random(seed)
    pool = [request_bytes(port, check_body(rng, f"user-{rng.randrange(20_000)}", i))
            for i in range(2000)] if not distinct else []
    deadline = time.monotonic() + duration
    latencies: list[float] = []
    errors = [0]

    def worker(k: int) -> None:
        conn = KeepAlive(port)
        i = k
        local = random.Random(seed * 1000 + k)
        due = time.perf_counter() + interval * random.random()
        while time.monotonic() < deadline and (not distinct or i < distinct):
            if distinct:
                data = request_bytes(port, check_body(local, f"flood-{seed}-{i}", i))
            else:
                data = pool[i % len(pool)]
            started = time.perf_counter()
            if interval:
                if due > started:
                    time.sleep(due - started)
                started, due = due, due + interval
            try:
                status = conn.request(data)
            except OSError:
                status = 0
            if status == 200:
                latencies.append(time.perf_counter() - started)
            else:
                errors[0] += 1
            i += threads
        conn.close()

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.put((latencies, errors[0]))


def drive(port: int, concurrency: int, procs: int, duration: float, distinct: int = 0,
          rate: float = 0) -> dict:
    out: mp.Queue = mp.Queue()
    interval = concurrency / rate if rate else 0.0
    per = concurrency // procs
    started = time.monotonic()
    ps = [mp.Process(target=_load_process,
                     args=(port, per, duration, s, distinct // procs if distinct else 0,
                           interval, out))
          for s in range(procs)]
    for p in ps:
        p.start()
    results = [out.get() for _ in ps]
    for p in ps:
        p.join()
    elapsed = time.monotonic() - started if distinct else duration
    lat = sorted(x for r in results for x in r[0])
    errors = sum(r[1] for r in results)
    if not lat:
        return {"ok": 0, "errors": errors, "latencies": lat}
    return {"ok": len(lat), "errors": errors, "req_per_s": round(len(lat) / elapsed),
            "p50_ms": round(lat[len(lat) // 2] * 1000, 2),
            "p99_ms": round(lat[int(len(lat) * 0.99)] * 1000, 2), "latencies": lat}


WRK_SCRIPT = textwrap.dedent('''
    -- one pre-formatted request per body line, each wrk thread starting at its own line
    local requests, i = {}, 0
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    function init(args)
      wrk.headers["Authorization"] = "Bearer " .. args[2]
      for line in io.lines(args[1]) do
        requests[#requests + 1] = wrk.format(nil, "/api/v1/fraud/check", nil, line)
      end
      i = math.random(#requests)
    end
    function request()
      i = i % #requests + 1
      return requests[i]
    end
    function done(summary, latency)
      local e = summary.errors
      io.write(string.format('{"ok": %d, "errors": %d, "latency_us": [',
        summary.requests - e.status - e.connect - e.read - e.write - e.timeout,
        e.status + e.connect + e.read + e.write + e.timeout))
      for k = 1, #latency do  -- the histogram: (microseconds, count) pairs
        local value, count = latency(k)
        io.write(k > 1 and "," or "", string.format("[%d,%d]", value, count))
      end
      io.write("]}\\n")
    end
''')


def wrk_drive(port: int, concurrency: int, duration: float, workdir: Path) -> dict:
    """The closed-loop run through wrk (C, epoll): the client takes a few % of a core,
    where the Python client takes about half the machine from the servers it measures."""
    script, bodies = workdir / "checks.lua", workdir / "checks.jsonl"
    if not script.exists():
        script.write_text(WRK_SCRIPT)
        rng = random.Random(7)
        bodies.write_bytes(b"\n".join(check_body(rng, f"user-{rng.randrange(20_000)}", i)
                                      for i in range(2000)) + b"\n")
    out = subprocess.run(
        ["wrk", "--threads", "1", "--connections", str(concurrency),
         "--duration", f"{duration:g}s", "--timeout", "10s", "--script", str(script),
         f"http://127.0.0.1:{port}", "--", str(bodies), TOKEN],
        capture_output=True, text=True, check=True, timeout=duration + 30).stdout
    doc = json.loads(out[out.index('{"ok"'):].splitlines()[0])
    lat = sorted(value / 1e6 for value, count in doc["latency_us"] for _ in range(count))
    return {"ok": doc["ok"], "errors": doc["errors"], "latencies": lat}


def gunicorn(app: str, port: int, workdir: Path, env: dict[str, str], worker_class: str,
             threads: int) -> ManagedProcess:
    """The same gunicorn settings for both apps: the fraud service's own config module,
    the worker model given on the command line (it overrides the module's)."""
    argv = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "2",
            "--worker-class", worker_class, "--threads", str(threads),
            "--no-control-socket", "--chdir", str(workdir),
            "--config", "python:exporters.fraud.gunicorn_conf", app]
    return ManagedProcess(app, argv, workdir / f"{app.split(':')[0]}-{worker_class}.log",
                          env={"PYTHONPATH": f"{REPO}:{workdir}", **env}, cwd=workdir)


def _children(parent: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                kids.append(int(entry.name))
    return kids


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / TICKS


def memory(pid: int) -> tuple[float, float]:
    """(RSS, PSS) in MB from smaps_rollup."""
    rss = pss = 0.0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Rss:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("Pss:"):
            pss = int(line.split()[1]) / 1024
    return rss, pss


def fraud_config(workdir: Path, refit_seconds: float) -> Path:
    cfg = workdir / "fraud.yml"
    cfg.write_text(textwrap.dedent(f"""
        database_url: sqlite:///{workdir}/fraud.db
        auth: {{tokens: [{{name: bench, role: operator, tenant: bench, token: {TOKEN}}}]}}
        outlier: {{min_samples: 200, refit_seconds: {refit_seconds}}}
    """))
    return cfg


def fraud_env(workdir: Path, cfg: Path) -> dict[str, str]:
    multiproc = workdir / f"metrics-{time.monotonic_ns()}"
    multiproc.mkdir()
    return {"TICKETMON_CONFIG": str(cfg), "PROMETHEUS_MULTIPROC_DIR": str(multiproc)}


def _healthz(port: int) -> dict:
    import requests

    return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()


def _ready(port: int) -> bool:
    try:
        return KeepAlive(port).request(request_bytes(
            port, b'{"user_id":"w","event_id":"e","quantity":1}')) == 200
    except OSError:
        return False


def wait_fitted(port: int, timeout: float = 120) -> None:
    """Both workers have a fitted model (healthz lands on either; ask until all say so)."""
    deadline = time.monotonic() + timeout
    streak = 0
    while streak < 6:
        if time.monotonic() > deadline:
            raise RuntimeError("the fraud workers did not fit an outlier model in time")
        streak = streak + 1 if _healthz(port)["outlier_model_fits"] > 0 else 0
        time.sleep(0.2)


def part1(args: argparse.Namespace, workdir: Path) -> None:
    """Both servers up at once (an idle one costs nothing); short runs alternate between
    them, so noise from other work on the machine falls on both alike."""
    (workdir / "null_app.py").write_text(NULL_APP)
    cfg = fraud_config(workdir, refit_seconds=5)
    rows = []
    ratios: dict[str, list[float]] = {}
    for worker_class in args.worker_classes:
        servers = {}
        try:
            for name, app in (*NULLS.items(), ("fraud check", "exporters.fraud.wsgi:app")):
                env = fraud_env(workdir, cfg) if name == "fraud check" else {
                    "TICKETMON_FRAUD_REFITTER": "off"}  # no model to fit
                port = free_port()
                servers[name] = (port, gunicorn(app, port, workdir, env, worker_class,
                                                args.threads))
            for port, proc in servers.values():
                proc.wait_until(lambda p=port: _ready(p), timeout=60)
                drive(port, args.concurrency, args.procs, args.warmup)
            wait_fitted(servers["fraud check"][0])
            runs: dict[tuple[str, float], list[dict]] = {}
            for round_no in range(args.rounds):
                # each round swaps which endpoint goes first, so a drift in the machine's
                # speed favours neither
                order = list(servers.items())[::1 if round_no % 2 else -1]
                for rate in (0, args.rate):
                    for name, (port, proc) in order:
                        pids = [proc.pid, *_children(proc.pid)]
                        before = cpu_seconds(pids)
                        if rate or args.client == "python":
                            result = drive(port, args.concurrency, args.procs,
                                           args.duration, rate=rate)
                        else:
                            result = wrk_drive(port, args.concurrency, args.duration, workdir)
                        result["cpu_s"] = cpu_seconds(pids) - before
                        runs.setdefault((name, rate), []).append(result)
            ratios[worker_class] = {null: [  # in round order
                f["ok"] / n["ok"] for n, f in zip(runs[(null, 0)], runs[("fraud check", 0)],
                                                  strict=True) if n["ok"]] for null in NULLS}
        finally:
            for _, proc in servers.values():
                proc.stop()
        for (name, rate), results in sorted(runs.items(),
                                            key=lambda kv: (kv[0][1], kv[0][0] == "fraud check",
                                                            kv[0][0])):
            rows.append((worker_class, rate, name, _combine(results, args.duration)))
    print(f"\n## HTTP: gunicorn 2 workers, {args.concurrency} keep-alive connections, "
          f"{args.rounds} alternating runs of {args.duration:g}s per endpoint, closed loop "
          f"from {args.client}, paced from Python; "
          f"load average {_loadavg()}")
    print(f"{'workers':<12} {'offered':<10} {'endpoint':<12} {'req/s':>7} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'CPU µs/req':>10} {'ok':>7} {'errors':>6}")
    for worker_class, rate, name, r in rows:
        label = worker_class + (f" x{args.threads}" if worker_class == "gthread" else "")
        offered = f"{rate:g}/s" if rate else "max"
        print(f"{label:<12} {offered:<10} {name:<12} {r['req_per_s']:>7} {r['p50_ms']:>7} "
              f"{r['p99_ms']:>7} {r['cpu_us']:>10} {r['ok']:>7} {r['errors']:>6}")
    for worker_class in args.worker_classes:
        closed = {name: r for w, rate, name, r in rows if w == worker_class and not rate}
        paced = {name: r for w, rate, name, r in rows if w == worker_class and rate}
        fraud = closed["fraud check"]
        for null_name in NULLS:
            null, each = closed[null_name], sorted(ratios[worker_class][null_name])
            if each:
                overall = fraud["req_per_s"] / null["req_per_s"]
                print(f"{worker_class} vs {null_name}: fraud/null throughput {overall:.0%} over "
                      f"all runs; per round median {each[len(each) // 2]:.0%} (min "
                      f"{each[0]:.0%}, max {each[-1]:.0%}; target >= 70%); fraud p99 "
                      f"{fraud['p99_ms']} ms, null p99 {null['p99_ms']} ms (target <= 10 ms); "
                      f"server CPU per check {fraud['cpu_us']} vs {null['cpu_us']} µs, a "
                      f"capacity ratio of {null['cpu_us'] / fraud['cpu_us']:.0%}")
                print(f"{worker_class} vs {null_name}: each round's fraud/null throughput, "
                      "in order: " + " ".join(f"{x:.0%}" for x in ratios[worker_class][null_name]))
            if paced and all(isinstance(r["p99_ms"], float) for r in paced.values()):
                gap = paced["fraud check"]["p99_ms"] - paced[null_name]["p99_ms"]
                print(f"{worker_class} vs {null_name}: paced at {args.rate:g}/s, p99 fraud "
                      f"{paced['fraud check']['p99_ms']} ms vs null "
                      f"{paced[null_name]['p99_ms']} ms, {gap:+.2f} ms (target: within 2 ms)")


def _combine(results: list[dict], duration: float) -> dict:
    lat = sorted(x for r in results for x in r["latencies"])
    ok = len(lat)
    return {"ok": ok, "errors": sum(r["errors"] for r in results),
            "req_per_s": round(ok / (duration * len(results))),
            "p50_ms": round(lat[ok // 2] * 1000, 2) if ok else "-",
            "p99_ms": round(lat[int(ok * 0.99)] * 1000, 2) if ok else "-",
            "cpu_us": round(sum(r["cpu_s"] for r in results) / max(ok, 1) * 1e6)}


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _service_memory(master: int) -> list[tuple[str, int, float, float]]:
    out = [("master", master, *memory(master))]
    for pid in sorted(_children(master)):
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        role = "refitter" if b"exporters.fraud.refitter" in cmd else "worker"
        out.append((role, pid, *memory(pid)))
    return out


def part2(args: argparse.Namespace, workdir: Path) -> None:
    cfg = fraud_config(workdir, refit_seconds=30)
    port = free_port()
    proc = gunicorn("exporters.fraud.wsgi:app", port, workdir, fraud_env(workdir, cfg),
                    "gthread", args.threads)
    try:
        proc.wait_until(lambda: _ready(port), timeout=60)
        drive(port, args.concurrency, args.procs, 3)  # warm: a model fitted, pools open
        wait_fitted(port)
        before = _service_memory(proc.pid)
        started = time.monotonic()
        flood = drive(port, args.concurrency, args.procs, duration=3600, distinct=args.users)
        elapsed = time.monotonic() - started
        time.sleep(1)
        after = _service_memory(proc.pid)
        health = [_healthz(port) for _ in range(4)]
    finally:
        proc.stop()
    print(f"\n## Memory: {flood['ok']:,} distinct users over HTTP in {elapsed:.0f}s "
          f"({flood.get('req_per_s', 0):,} checks/s, {flood['errors']} errors), gunicorn 2 "
          f"gthread workers, history cap 100,000 users per worker; load average {_loadavg()}")
    print(f"{'process':<10} {'pid':>8} {'RSS before':>11} {'RSS after':>10} "
          f"{'PSS after':>10}   (MB)")
    for (role, pid, rss0, _), (_, _, rss1, pss1) in zip(before, after, strict=True):
        target = "   target <= 300" if role == "worker" else ""
        print(f"{role:<10} {pid:>8} {rss0:>11.1f} {rss1:>10.1f} {pss1:>10.1f}{target}")
    print(f"{'sum':<10} {'':>8} {sum(r[2] for r in before):>11.1f} "
          f"{sum(r[2] for r in after):>10.1f} {sum(r[3] for r in after):>10.1f}")
    users = sorted({h["history_users"] for h in health})
    print(f"history users per worker (as reported by /healthz): {users}")


def in_process(args: argparse.Namespace, workdir: Path) -> None:
    """The applications called directly as WSGI (one thread, no gunicorn, no socket) on
    the same simulator bodies with the bench's token, in alternating blocks, so what the
    fraud check adds over a null endpoint (Flask's, and a plain WSGI one) is seen
    without HTTP's noise; CPU is the whole process's, background threads included.
    The fraud app runs as in production (background threads, a fitted outlier model,
    the recorder writing to SQLite); with --profile, cProfile's top functions of the
    fraud side follow."""
    import cProfile
    import gc
    import io
    import pstats

    from werkzeug.test import EnvironBuilder

    from exporters.fraud.app import create_app
    from exporters.fraud.settings import FraudSettings
    from ticketmon.simulator.checkout import CheckoutSettings, labelled

    settings = FraudSettings.model_validate({  # fraud_config's, refitted below by hand
        "database_url": f"sqlite:///{workdir}/fraud.db",
        "auth": {"tokens": [{"name": "bench", "role": "operator", "tenant": "bench",
                             "token": TOKEN}]},
        "outlier": {"min_samples": 200, "refit_seconds": 3600}})
    fraud = create_app(settings)
    namespace: dict = {}
    exec(NULL_APP, namespace)  # noqa: S102 - the bench's own null app, as gunicorn loads it
    null = namespace["app"]
    apps = {"null flask": null, "null wsgi": namespace["plain"], "fraud check": fraud}
    rng = random.Random(7)
    sim = CheckoutSettings(users=5000, seed=7)
    shares = {"bot": 0.03, "scalper": 0.02, "evasive_bot": 0.03}
    bodies = [json.dumps(labelled(rng, shares, sim)[1]).encode() for _ in range(2000)]
    environs = [EnvironBuilder(path="/api/v1/fraud/check", method="POST", data=body,
                               headers={"Authorization": f"Bearer {TOKEN}",
                                        "Content-Type": "application/json"}).get_environ()
                for body in bodies]
    statuses: list[str] = []

    def start_response(status: str, headers: list, exc_info: object = None) -> None:
        statuses.append(status)

    def call(app, count: int, offset: int) -> tuple[float, float]:
        """(CPU seconds of the whole process, its background threads included, wall)."""
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(offset, offset + count):
            environ = dict(environs[i % len(environs)])
            environ["wsgi.input"] = io.BytesIO(bodies[i % len(bodies)])
            b"".join(app(environ, start_response))
        return time.process_time() - cpu, time.perf_counter() - wall

    service = fraud.extensions["fraud"]
    try:
        call(fraud, 2000, 0)  # warm: history, the window for a first model
        if not service.outlier.refit():
            raise RuntimeError("the outlier model did not fit")
        call(null, 500, 0)
        gc.freeze()  # as gunicorn_conf.post_worker_init does once the app is loaded
        block = 500
        blocks: dict[str, list[tuple[float, float]]] = {name: [] for name in apps}
        statuses.clear()
        for k in range(0, args.in_process, block):
            for name, app in list(apps.items())[::1 if k % 2 else -1]:
                blocks[name].append(call(app, block, k))
        if set(statuses) != {"200 OK"}:
            raise RuntimeError(f"answers other than 200: {sorted(set(statuses))}")
        print(f"\n## In process: {args.in_process} calls per app in alternating blocks of "
              f"{block}, one thread; load average {_loadavg()}")
        print(f"{'app':<12} {'CPU µs/call':>11} {'block median':>12} {'wall µs/call':>12}")
        cpu = {}
        for name, spent in blocks.items():
            cpu[name] = sum(c for c, _ in spent) / args.in_process * 1e6
            median = sorted(c for c, _ in spent)[len(spent) // 2] / block * 1e6
            wall = sum(w for _, w in spent) / args.in_process * 1e6
            print(f"{name:<12} {cpu[name]:>11.1f} {median:>12.1f} {wall:>12.1f}")
        for null_name in ("null flask", "null wsgi"):
            print(f"the fraud check adds {cpu['fraud check'] - cpu[null_name]:.1f} µs of CPU "
                  f"per call over the {null_name} endpoint")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            call(fraud, args.in_process, 0)
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(35)
            print(out.getvalue())
    finally:
        service.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--procs", type=int, default=4, help="load generator processes")
    parser.add_argument("--duration", type=float, default=4, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=6, help="alternating runs per endpoint")
    parser.add_argument("--rate", type=float, default=400,
                        help="offered checks/s of the paced runs (latency below saturation)")
    parser.add_argument("--warmup", type=float, default=4)
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--worker-classes", nargs="+", default=["sync", "gthread"])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--client", choices=["wrk", "python"],
                        default="wrk" if shutil.which("wrk") else "python",
                        help="load generator of the closed-loop runs (wrk: apt-get install wrk)")
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--in-process", type=int, default=0, metavar="CALLS",
                        help="only call both apps in process, CALLS times each (no HTTP)")
    parser.add_argument("--profile", action="store_true",
                        help="with --in-process: cProfile's top functions of the fraud app")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ticketmon-bench-fraud-") as tmp:
        workdir = Path(tmp)
        if args.in_process:
            in_process(args, workdir)
            return 0
        if not args.skip_http:
            part1(args, workdir)
        if not args.skip_memory:
            part2(args, workdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
