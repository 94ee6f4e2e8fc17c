#!/usr/bin/env python3
"""Time sequential scrapes of a /metrics URL from a process of its own, as Prometheus would.

The client runs apart from the exporter so it does not compete for the exporter's GIL.
Each scrape opens a new connection. With --encoding both, gzip and identity scrapes
alternate, so both meet the same conditions. Stops after --scrapes per encoding or
--seconds, whichever comes first. Prints one JSON line: per encoding ok, p50/p99/max
ms, bytes and samples of the last body; with --timeline also [start, seconds, encoding]
per scrape (start on CLOCK_MONOTONIC, which other processes of this machine share).
Stdlib only.

    python3 bench/scrape.py --url http://127.0.0.1:10191/metrics --scrapes 300 --encoding both
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import math
import time
from urllib.parse import urlsplit

MAX_SCRAPES = 100_000
MAX_SECONDS = 3600.0


def pct(values: list[float], p: float) -> float | None:
    values = sorted(values)
    return round(values[max(0, math.ceil(p / 100 * len(values)) - 1)] * 1000, 2) if values else None


def scrape(host: str, port: int, path: str, encoding: str,
           timeout: float) -> tuple[int, bytes, str]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Accept": "text/plain", "Accept-Encoding": encoding})
        resp = conn.getresponse()
        return resp.status, resp.read(), resp.getheader("Content-Encoding", "")
    finally:
        conn.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--scrapes", type=int, default=100, help="per encoding, at most")
    ap.add_argument("--seconds", type=float, default=MAX_SECONDS, help="stop after, at most")
    ap.add_argument("--encoding", choices=["gzip", "identity", "both"], default="gzip")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--timeline", action="store_true", help="add every scrape's start and time")
    a = ap.parse_args()
    u = urlsplit(a.url)
    encodings = ["gzip", "identity"] if a.encoding == "both" else [a.encoding]
    lat: dict[str, list[float]] = {e: [] for e in encodings}
    last: dict[str, tuple[bytes, str]] = {}
    errors: dict[str, int] = {}
    timeline = []
    stop = time.monotonic() + min(a.seconds, MAX_SECONDS)
    n = min(a.scrapes, MAX_SCRAPES)
    for i in range(n * len(encodings)):
        if time.monotonic() > stop:
            break
        enc = encodings[i % len(encodings)]
        start = time.monotonic()
        t0 = time.perf_counter()
        try:
            status, body, got = scrape(u.hostname, u.port or 80, u.path or "/metrics", enc,
                                       a.timeout)
        except OSError as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            continue
        dt = time.perf_counter() - t0
        if status != 200:
            errors[str(status)] = errors.get(str(status), 0) + 1
            continue
        lat[enc].append(dt)
        last[enc] = (body, got)
        if a.timeline:
            timeline.append([round(start, 6), round(dt, 6), enc])
    out: dict = {"url": a.url, "errors": errors}
    for enc in encodings:
        body, got = last.get(enc, (b"", ""))
        text = gzip.decompress(body) if got == "gzip" else body
        out[enc] = {"ok": len(lat[enc]), "p50_ms": pct(lat[enc], 50), "p99_ms": pct(lat[enc], 99),
                    "max_ms": round(max(lat[enc]) * 1000, 2) if lat[enc] else None,
                    "bytes": len(body), "content_encoding": got or "identity",
                    "samples": sum(1 for line in text.decode("utf-8", "replace").splitlines()
                                   if line and not line.startswith("#"))}
    if a.timeline:
        out["timeline"] = timeline
    print(json.dumps(out))
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
