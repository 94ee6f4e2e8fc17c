"""Requests per API token: a token bucket per caller, in each worker process.

The bucket is per process, not shared: with N gunicorn workers a caller may get up to
N times the configured rate (requests are spread over workers by the kernel, so in
practice close to N times only under a flood). That bounds abuse by one token without a
database write per request; the webhook, /metrics and /healthz are never limited.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from pydantic import Field

from ticketmon.core.config import Settings


class RateLimitSettings(Settings):
    """Defaults leave room for Grafana: a 30-panel dashboard refreshing every 5 s is 6
    requests a second per viewer, and viewers usually share the data source's token."""

    requests_per_second: float = Field(default=50.0, ge=0, le=100_000,
                                       description="per token and worker; 0 disables")
    burst: int = Field(default=300, ge=1, le=1_000_000,
                       description="requests a quiet token may send at once")


class TokenBuckets:
    """One bucket per caller key, refilled at `rate` per second up to `burst`."""

    MAX_KEYS = 10_000  # least recently seen callers are forgotten (their bucket refills)

    def __init__(self, rate: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str) -> float:
        """0.0 when the request may go ahead, else the seconds until it could."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > self.MAX_KEYS:
                self._buckets.popitem(last=False)
        return wait
