#!/usr/bin/env python3
"""amload - Alertmanager webhook load generator (Python 3.11, stdlib only).

Posts Alertmanager webhook notifications (payload version "4") to --url from
--concurrency threads (optionally spread over --procs processes), each thread
on its own raw HTTP/1.1 socket (keep-alive when the server allows it,
reconnect when it answers "Connection: close").

Identity model (what a deduplicating receiver should see):
  * --distinct-fingerprints N alerts exist; alert i always has the same
    labels, fingerprint and startsAt, so later requests RE-SEND the same
    alerts exactly like Alertmanager's repeat/group_interval re-notifications.
  * Alerts are grouped like Alertmanager's group_by [alertname, tenant]:
    fixed groups of GROUP_SIZE consecutive alerts share alertname, tenant,
    service and severity; instance is unique per alert. A request carries
    --alerts-per-request alerts of one group; requests walk round-robin over
    the groups, so one pass over all N alerts takes ~N/k requests.
  * --first-alert K shifts the identities to alerts K..K+N-1, so runs given
    disjoint ranges send alerts that are all new (an alert storm).
  * With --resolve-fraction f each alert in a request is "resolved" with
    probability f (endsAt set); otherwise firing (endsAt 0001-01-01...).

Payload bodies are pre-built and pre-encoded before the clock starts, so the
measured loop does no JSON work. Non-2xx answers and socket errors count as
errors; throughput (alerts_per_s, req_per_s) counts 2xx answers only, and the
latency percentiles are over 2xx answers only. The generator's own CPU time is
reported (client_cpu_s, client_cpu_pct = % of one core) so a saturated
generator is visible; --watch-pid PID adds the CPU of that process tree (server,
postmaster) and machine_busy_pct is the whole box (% of all cores).

Prints ONE JSON line on stdout; exit status 1 if any request failed. Example:
  python3 amload.py --url http://127.0.0.1:8080/webhook --concurrency 4 --duration 20
      --alerts-per-request 10 --distinct-fingerprints 1000 --resolve-fraction 0.1
"""

import argparse
import datetime as dt
import hashlib
import itertools
import json
import math
import multiprocessing as mp
import os
import random
import resource
import socket
import sys
import threading
import time
from urllib.parse import urlsplit

GROUP_SIZE = 100  # alerts per Alertmanager group (identity is stable for k <= 100)
MAX_DURATION_S = 3600  # hard bound on any run
MAX_POOL_BODIES = 20000  # bound on pre-built request bodies

ALERTNAMES = [
    "HighCPUUsage",
    "HighMemoryUsage",
    "DiskWillFillIn4Hours",
    "InstanceDown",
    "HighRequestLatency",
    "HighErrorRate",
    "PodCrashLooping",
    "TargetMissing",
    "CertificateExpiringSoon",
    "ReplicationLagHigh",
    "QueueBacklogGrowing",
    "NodeFilesystemReadOnly",
]
SERVICES = [
    "checkout",
    "payments",
    "search",
    "auth",
    "catalog",
    "inventory",
    "shipping",
    "notifications",
    "gateway",
    "billing",
    "ledger",
    "reporting",
]
SEVERITIES = ["critical", "warning", "warning"]  # no "info": Alerta 9.1 rejects it (HTTP 500)
TENANTS = ["acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne"]
ZERO_TIME = "0001-01-01T00:00:00Z"


# ----------------------------------------------------------------- payloads
def iso(t):
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def alert_identity(i, base_t):
    g = i // GROUP_SIZE
    labels = {
        "alertname": ALERTNAMES[g % len(ALERTNAMES)],
        "severity": SEVERITIES[g % len(SEVERITIES)],
        "service": SERVICES[g % len(SERVICES)],
        "instance": f"node-{i:06d}.prod.internal:9100",
        "tenant": TENANTS[g % len(TENANTS)],
    }
    canon = "\xff".join(f"{k}\xff{labels[k]}" for k in sorted(labels))
    fingerprint = hashlib.sha256(canon.encode()).hexdigest()[:16]
    starts = (
        base_t - 60 - (int(fingerprint, 16) % 3600)
    )  # stable per alert, within the last ~hour of base
    return labels, fingerprint, starts


def make_alert(i, base_t, resolved, ext_url):
    labels, fp, starts = alert_identity(i, base_t)
    name, inst = labels["alertname"], labels["instance"]
    return {
        "status": "resolved" if resolved else "firing",
        "labels": labels,
        "annotations": {
            "summary": f"{name} on {inst}",
            "description": (
                f"{name} has been active on {inst} (service {labels['service']}, "
                f"tenant {labels['tenant']}) for more than 5 minutes."
            ),
        },
        "startsAt": iso(starts),
        "endsAt": iso(starts + 300) if resolved else ZERO_TIME,
        "generatorURL": (
            "http://prometheus.prod.internal:9090/graph?g0.expr="
            + name
            + "%7Binstance%3D%22"
            + inst
            + "%22%7D&g0.tab=1"
        ),
        "fingerprint": fp,
    }


def make_payload(alerts, ext_url):
    common = dict(alerts[0]["labels"])
    common_ann = dict(alerts[0]["annotations"])
    for a in alerts[1:]:
        common = {k: v for k, v in common.items() if a["labels"].get(k) == v}
        common_ann = {k: v for k, v in common_ann.items() if a["annotations"].get(k) == v}
    group_labels = {k: common[k] for k in ("alertname", "tenant") if k in common}
    gl = ", ".join(f'{k}="{v}"' for k, v in sorted(group_labels.items()))
    return {
        "version": "4",
        "groupKey": '{}/{tenant=~".+"}:{' + gl + "}",
        "truncatedAlerts": 0,
        "status": "firing" if any(a["status"] == "firing" for a in alerts) else "resolved",
        "receiver": "bench-webhook",
        "groupLabels": group_labels,
        "commonLabels": common,
        "commonAnnotations": common_ann,
        "externalURL": ext_url,
        "alerts": alerts,
    }


def build_requests(a, host_header, path):
    """Pre-encode the request pool. Returns list of (request_bytes, n_alerts)."""
    n, k = a.distinct_fingerprints, a.alerts_per_request
    base_t = a.epoch if a.epoch is not None else (int(time.time()) // 86400) * 86400
    ext_url = "http://alertmanager.prod.internal:9093"
    rng = random.Random(a.seed)
    first = a.first_alert
    groups = [
        list(range(s, min(s + GROUP_SIZE, first + n))) for s in range(first, first + n, GROUP_SIZE)
    ]
    chunks_per_group = [math.ceil(len(g) / min(k, len(g))) for g in groups]
    per_pass = sum(chunks_per_group)
    passes = a.pool_passes if a.resolve_fraction > 0 else 1
    passes = max(1, min(passes, MAX_POOL_BODIES // max(per_pass, 1)))
    extra = "".join(f"{h}\r\n" for h in a.header)
    out = []
    for _ in range(passes):
        for step in range(max(chunks_per_group)):  # round-robin over groups
            for g, cpg in zip(groups, chunks_per_group, strict=True):
                if step >= cpg:
                    continue
                kk = min(k, len(g))
                idx = g[step * kk : (step + 1) * kk]
                alerts = [
                    make_alert(i, base_t, rng.random() < a.resolve_fraction, ext_url) for i in idx
                ]
                body = json.dumps(make_payload(alerts, ext_url), separators=(",", ":")).encode()
                head = (
                    f"POST {path} HTTP/1.1\r\nHost: {host_header}\r\n"
                    f"User-Agent: Alertmanager/0.27.0\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n{extra}\r\n"
                ).encode()
                out.append((head + body, len(idx)))
    return out


# ----------------------------------------------------------------- HTTP/1.1
class Conn:
    """Minimal blocking HTTP/1.1 client connection (Content-Length, chunked, read-to-close)."""

    def __init__(self, host, port, timeout):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.used = False

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("connection closed by server")
        self.buf += d

    def _line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2 :]
                return line
            self._fill()

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        self.buf = self.buf[n:]

    def request(self, data):
        """Send pre-encoded request; return (status, keep_alive)."""
        self.used = True
        self.s.sendall(data)
        while True:
            while b"\r\n\r\n" not in self.buf:
                self._fill()
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            lines = head.split(b"\r\n")
            parts = lines[0].split(None, 2)
            version, status = parts[0], int(parts[1])
            if 100 <= status < 200:  # interim response; read the next one
                continue
            break
        h = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(b":")
            h[k.strip().lower()] = v.strip().lower()
        conn_hdr = h.get(b"connection", b"")
        keep = (b"close" not in conn_hdr) if version == b"HTTP/1.1" else (b"keep-alive" in conn_hdr)
        if status in (204, 304):
            pass
        elif b"chunked" in h.get(b"transfer-encoding", b""):
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():  # trailers until blank line
                        pass
                    break
                self._take(size + 2)
        elif b"content-length" in h:
            self._take(int(h[b"content-length"]))
        else:  # body delimited by close
            try:
                while True:
                    self._fill()
            except EOFError:
                pass
            keep = False
        return status, keep


# ----------------------------------------------------------------- CPU accounting (Linux /proc)
def tree_cpu_s(root):
    """CPU seconds of process `root` and all its descendants, including reaped children."""
    tick = os.sysconf("SC_CLK_TCK")
    procs = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    f_ = f.read().rsplit(")", 1)[1].split()
                procs[int(d)] = (int(f_[1]), sum(int(x) for x in f_[11:15]))  # ppid, u+s+cu+cs
            except (OSError, IndexError, ValueError):
                pass
    kids = {}
    for pid, (ppid, _) in procs.items():
        kids.setdefault(ppid, []).append(pid)
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        if p in procs:
            total += procs[p][1]
            todo.extend(kids.get(p, []))
    return total / tick


def machine_busy():
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v) - v[3] - v[4], sum(v)  # busy, total (idle and iowait excluded)
    except (OSError, IndexError, ValueError):
        return None


# ----------------------------------------------------------------- runner
def run_threads(a, reqs, host, port, n_threads, max_requests, start_at, offset):
    """Run n_threads workers until deadline / request budget. Returns result dict."""
    counter = itertools.count()
    P = len(reqs)
    results = []
    lock = threading.Lock()

    def worker():
        lat, codes, alerts_ok, alerts_sent = [], {}, 0, 0
        c = None
        perf = time.perf_counter
        deadline = start_at + a.duration
        while True:
            n = next(counter)
            if n >= max_requests or perf() >= deadline:
                break
            data, na = reqs[(offset + n) % P]
            alerts_sent += na
            t0 = perf()
            key = None
            for attempt in (0, 1):
                try:
                    if c is None:
                        c = Conn(host, port, a.timeout)
                    reused = c.used
                    status, keep = c.request(data)
                    key = status
                    if not keep:
                        c.close()
                        c = None
                    break
                except (EOFError, ConnectionResetError, BrokenPipeError) as e:
                    stale = c is not None and reused and not c.buf
                    if c is not None:
                        c.close()
                        c = None
                    if attempt == 0 and stale:  # idle keep-alive closed by server: retry once
                        continue
                    key = type(e).__name__
                    break
                except (OSError, ValueError, IndexError) as e:
                    if c is not None:
                        c.close()
                        c = None
                    key = "timeout" if isinstance(e, socket.timeout) else type(e).__name__
                    break
            t1 = perf()
            if isinstance(key, int) and 200 <= key < 300:
                lat.append(t1 - t0)
                alerts_ok += na
            else:
                codes[str(key)] = codes.get(str(key), 0) + 1
        if c is not None:
            c.close()
        with lock:
            results.append((lat, codes, alerts_ok, alerts_sent))

    ths = [threading.Thread(target=worker, daemon=True) for _ in range(n_threads)]
    for t in ths:
        t.start()
    for t in ths:
        t.join(a.duration + a.timeout + 30)
    lat, codes, ok_alerts, sent = [], {}, 0, 0
    for l_, c_, ao, s_ in results:
        lat.extend(l_)
        ok_alerts += ao
        sent += s_
        for k, v in c_.items():
            codes[k] = codes.get(k, 0) + v
    return {"lat": lat, "codes": codes, "alerts_ok": ok_alerts, "alerts_sent": sent}


def child_main(a, reqs, host, port, n_threads, max_requests, start_at, offset, pipe):
    r = run_threads(a, reqs, host, port, n_threads, max_requests, start_at, offset)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    r["cpu"] = ru.ru_utime + ru.ru_stime
    pipe.send(r)
    pipe.close()


def pct(sorted_vals, p):
    if not sorted_vals:
        return None
    i = max(0, math.ceil(p / 100.0 * len(sorted_vals)) - 1)
    return round(sorted_vals[i] * 1000.0, 2)


def main():
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--url", required=True, help="http://127.0.0.1:PORT/path (plain http only)")
    ap.add_argument("--concurrency", type=int, default=1, help="client threads in flight (total)")
    ap.add_argument(
        "--duration", type=float, default=None, help="seconds to run (default 10 if no --requests)"
    )
    ap.add_argument("--requests", type=int, default=None, help="stop after this many requests")
    ap.add_argument("--alerts-per-request", type=int, default=1)
    ap.add_argument("--distinct-fingerprints", type=int, default=1000)
    ap.add_argument("--resolve-fraction", type=float, default=0.0)
    ap.add_argument(
        "--first-alert",
        type=int,
        default=0,
        help="index of the first alert identity: runs with disjoint ranges send new alerts",
    )
    ap.add_argument(
        "--header", action="append", default=[], help="extra header, e.g. 'Authorization: Bearer X'"
    )
    ap.add_argument(
        "--procs", type=int, default=1, help="generator processes (threads are split among them)"
    )
    ap.add_argument("--timeout", type=float, default=30.0, help="socket timeout per request, s")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--epoch",
        type=int,
        default=None,
        help="unix time the alerts' startsAt are based on (default: today 00:00 UTC)",
    )
    ap.add_argument(
        "--pool-passes",
        type=int,
        default=10,
        help="passes over all fingerprints pre-built with independent resolve draws",
    )
    ap.add_argument(
        "--watch-pid",
        type=int,
        action="append",
        default=[],
        help="report CPU used by this process tree during the run (gunicorn master, postmaster)",
    )
    ap.add_argument("--label", default=None, help="free text copied into the output line")
    ap.add_argument(
        "--dump-payload",
        action="store_true",
        help="write the first request body exactly as sent (compact JSON) to stdout and exit",
    )
    a = ap.parse_args()

    if a.duration is None:
        a.duration = 10.0 if a.requests is None else MAX_DURATION_S
    a.duration = min(a.duration, MAX_DURATION_S)
    max_requests = a.requests if a.requests is not None else 1 << 62
    if a.concurrency < 1 or a.procs < 1 or a.alerts_per_request < 1 or a.distinct_fingerprints < 1:
        ap.error("concurrency, procs, alerts-per-request, distinct-fingerprints must be >= 1")
    if a.first_alert < 0 or a.first_alert % GROUP_SIZE:
        ap.error(f"--first-alert must be a multiple of {GROUP_SIZE} (alerts keep their groups)")
    if not 0.0 <= a.resolve_fraction <= 1.0:
        ap.error("--resolve-fraction must be within [0, 1]")
    for h in a.header:
        if ":" not in h:
            ap.error(f"bad --header {h!r}; expected 'Name: value'")

    u = urlsplit(a.url)
    if u.scheme != "http":
        ap.error("only http:// URLs are supported")
    host, port = u.hostname, u.port or 80
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    host_header = u.netloc

    reqs = build_requests(a, host_header, path)
    if a.dump_payload:
        sys.stdout.buffer.write(reqs[0][0].split(b"\r\n\r\n", 1)[1] + b"\n")
        return 0

    procs = min(a.procs, a.concurrency)
    watch0 = {p: tree_cpu_s(p) for p in a.watch_pid}
    mb0 = machine_busy()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t_start = time.perf_counter()
    if procs == 1:
        r = run_threads(a, reqs, host, port, a.concurrency, max_requests, t_start, 0)
        elapsed = time.perf_counter() - t_start
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        parts = [r]
    else:
        ctx = mp.get_context("fork")
        kids, parts = [], []
        for p in range(procs):
            nth = a.concurrency // procs + (1 if p < a.concurrency % procs else 0)
            mr = (
                max_requests // procs + (1 if p < max_requests % procs else 0)
                if a.requests
                else max_requests
            )
            rx, tx = ctx.Pipe(duplex=False)
            pr = ctx.Process(
                target=child_main,
                args=(a, reqs, host, port, nth, mr, t_start, p * len(reqs) // procs, tx),
            )
            pr.start()
            kids.append((pr, rx))
        for pr, rx in kids:
            parts.append(rx.recv())
            pr.join(60)
        elapsed = time.perf_counter() - t_start
        cpu = sum(p_["cpu"] for p_ in parts)

    watch = {str(p): round(100.0 * (tree_cpu_s(p) - c0) / elapsed, 1) for p, c0 in watch0.items()}
    mb1 = machine_busy()
    machine = round(100.0 * (mb1[0] - mb0[0]) / max(1, mb1[1] - mb0[1]), 1) if mb0 and mb1 else None
    # CPU used by everything that is neither this generator nor a watched tree (other tenants of
    # the box). Only meaningful when the server and its DB are watched. Percent of ONE core.
    other = (
        round(machine * (os.cpu_count() or 1) - 100.0 * cpu / elapsed - sum(watch.values()), 1)
        if machine is not None and a.watch_pid
        else None
    )
    lat = sorted(x for p_ in parts for x in p_["lat"])
    codes = {}
    for p_ in parts:
        for k, v in p_["codes"].items():
            codes[k] = codes.get(k, 0) + v
    ok = len(lat)
    n_err = sum(codes.values())
    alerts_ok = sum(p_["alerts_ok"] for p_ in parts)
    out = {
        "label": a.label,
        "url": a.url,
        "concurrency": a.concurrency,
        "procs": procs,
        "alerts_per_request": a.alerts_per_request,
        "distinct_fingerprints": a.distinct_fingerprints,
        "resolve_fraction": a.resolve_fraction,
        "elapsed_s": round(elapsed, 3),
        "requests": ok + n_err,
        "ok": ok,
        "error_count": n_err,
        "errors": codes,
        "alerts": alerts_ok,
        "alerts_sent": sum(p_["alerts_sent"] for p_ in parts),
        "alerts_per_s": round(alerts_ok / elapsed, 1) if elapsed > 0 else 0.0,
        "req_per_s": round(ok / elapsed, 1) if elapsed > 0 else 0.0,
        "p50_ms": pct(lat, 50),
        "p95_ms": pct(lat, 95),
        "p99_ms": pct(lat, 99),
        "max_ms": round(lat[-1] * 1000, 2) if lat else None,
        "client_cpu_s": round(cpu, 2),
        "client_cpu_pct": round(100.0 * cpu / elapsed, 1) if elapsed > 0 else 0.0,
        "watched_cpu_pct": watch,  # percent of ONE core, per --watch-pid tree
        "machine_busy_pct": machine,  # percent of ALL cores (whole box, incl. client and DB)
        "other_cpu_pct": other,  # percent of ONE core used by unrelated processes (noise)
        "date_utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    print(json.dumps(out), flush=True)
    return 0 if n_err == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
