"""Background collection: expensive work on a schedule, scrapes read the last result.

A SnapshotCollector's `collect_snapshot()` runs in its own thread every `interval`
seconds, bounded by `timeout`. A successful run is rendered to exposition text (and a
gzip member) right away, so a scrape only concatenates bytes. A failed or timed-out
run drops the collector's series: stale figures must not look fresh. Consecutive
failures back off exponentially (capped) so a lost database is not hammered.
"""

from __future__ import annotations

import gzip
import logging
import threading
import time
from dataclasses import dataclass

from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest

from ticketmon.core import redact

log = logging.getLogger("ticketmon.exporters")


class _Fixed:
    """The minimal 'registry' generate_latest needs: something with collect()."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> list[Metric]:
        return self.metrics


RENDER_SLICE = 250  # samples rendered between two GIL hand-offs
_HAND_OVER = 0.0001  # seconds; long enough for a waiting thread to take the GIL
_OPENMETRICS_ONLY = ("_created", "_gsum", "_gcount")  # generate_latest moves these to the end


def render(metrics: list[Metric], slice_size: int = RENDER_SLICE) -> bytes:
    """Prometheus text format 0.0.4 for a list of metric families, byte for byte what
    generate_latest gives, rendered `slice_size` samples at a time with a short sleep in
    between. Rendering is pure Python and holds the GIL: in one piece, a scrape thread of
    the same process waits up to the 5 ms switch interval at each of its own I/O calls,
    so scrapes that meet a collection took tens of ms. The sleep hands the GIL over."""
    out = []
    for family in metrics:
        samples = family.samples
        if len(samples) <= slice_size or any(s.name.endswith(_OPENMETRICS_ONLY)
                                             for s in samples):
            out.append(generate_latest(_Fixed([family])))
            time.sleep(_HAND_OVER)
            continue
        for start in range(0, len(samples), slice_size):
            part = Metric(family.name, family.documentation, family.type, family.unit)
            part.samples = samples[start:start + slice_size]
            text = generate_latest(_Fixed([part]))
            # the # HELP and # TYPE lines once, as generate_latest writes them
            out.append(text if start == 0 else text.split(b"\n", 2)[2])
            time.sleep(_HAND_OVER)
    return b"".join(out)


@dataclass
class CollectorHealth:
    up: bool = False
    last_success: float = 0.0
    duration: float = 0.0
    errors: int = 0
    last_error: str = ""


class SnapshotCollector:
    """Base for one expensive source; subclasses set `name` and implement collect_snapshot."""

    name: str = ""
    max_backoff: float = 30.0  # seconds between retries after repeated failures, at most
    gzip_level: int = 6

    def __init__(self, interval: float, timeout: float) -> None:
        if interval <= 0 or timeout <= 0:
            raise ValueError(f"collector {self.name!r}: interval and timeout must be > 0")
        self.interval = float(interval)
        self.timeout = float(timeout)
        self.exporter_name = ""
        self.health = CollectorHealth()
        self.text = b""
        self.gzipped = b""
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._failures = 0

    def collect_snapshot(self) -> list[Metric]:
        """Build every metric family of this source; raise on failure."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections and the like when the exporter stops."""

    # -- run side ---------------------------------------------------------------------

    def exposition(self) -> tuple[bytes, bytes]:
        with self._lock:
            return self.text, self.gzipped

    def run_once(self) -> bool:
        """One bounded collection; returns whether it succeeded."""
        if self._worker is not None and self._worker.is_alive():
            return self._fail(0.0, "previous collection still running")
        outcome: dict = {}

        def work() -> None:
            try:
                metrics = self.collect_snapshot()
                text = render(metrics)
                outcome["text"] = text
                outcome["gzip"] = gzip.compress(text, self.gzip_level) if text else b""
            except BaseException as exc:  # anything a source raises fails the run
                outcome["error"] = exc

        started = time.monotonic()
        self._worker = threading.Thread(
            target=work, name=f"collect-{self.exporter_name}-{self.name}", daemon=True
        )
        self._worker.start()
        self._worker.join(self.timeout)
        duration = time.monotonic() - started
        if self._worker.is_alive():
            return self._fail(duration, f"timed out after {self.timeout:g}s")
        if "error" in outcome:
            exc = outcome["error"]
            return self._fail(duration, f"{type(exc).__name__}: {exc}")
        with self._lock:
            self.text, self.gzipped = outcome["text"], outcome["gzip"]
            self.health.up = True
            self.health.last_success = time.time()
            self.health.duration = duration
            self.health.last_error = ""
        if self._failures:
            log.info("collector recovered", extra={"collector": self.name})
        self._failures = 0
        return True

    def _fail(self, duration: float, reason: str) -> bool:
        # the text is served on /healthz and logged: an exception may quote a DSN or key
        reason = redact.text(reason)
        with self._lock:
            self.text, self.gzipped = b"", b""
            self.health.up = False
            self.health.duration = duration
            self.health.errors += 1
            self.health.last_error = reason[:500]
        self._failures += 1
        log.warning(
            "collection failed",
            extra={"collector": self.name, "exporter": self.exporter_name,
                   "reason": reason[:500], "consecutive_failures": self._failures},
        )
        return False

    def next_delay(self) -> float:
        """The interval, doubled per consecutive failure up to max_backoff."""
        if not self._failures:
            return self.interval
        cap = max(self.interval, self.max_backoff)
        return min(self.interval * 2 ** (self._failures - 1), cap)

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.run_once()
            stop.wait(self.next_delay())
