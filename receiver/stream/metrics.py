"""The stream server's own metrics, beside the receiver's in the same registry.

Under gunicorn (PROMETHEUS_MULTIPROC_DIR set) the gauge sums the live processes'
values, so /metrics answers the same whichever worker is asked.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class StreamMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.open = Gauge("ticketmon_receiver_streams_open",
                          "Live incident streams (GET /api/v1/stream) open now",
                          registry=registry, multiprocess_mode="livesum")
        self.events_sent = Counter("ticketmon_receiver_stream_events_sent_total",
                                   "Incident events written to live streams",
                                   registry=registry)
        self.closed = Counter(
            "ticketmon_receiver_streams_closed_total",
            "Live streams ended by the server, by reason: slow (the client fell more than "
            "`buffer` events behind; one that stops reading is cut off after "
            "`write_timeout` at the latest), max_age, shutdown, refused (503: over "
            "max_streams)",
            ["reason"], registry=registry)
        for reason in ("slow", "max_age", "shutdown", "refused"):
            self.closed.labels(reason)
