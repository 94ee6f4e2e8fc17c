"""An exporter process: background collectors, a guarded /metrics, /healthz, SIGTERM.

/metrics concatenates the pre-rendered text of each collector's last snapshot with
the small live part (collector health, exporter.registry), so a scrape costs
microseconds per collector whatever the number of series. gzip members may be
concatenated (RFC 1952), so the cached gzip of each snapshot is reused the same way.
"""

from __future__ import annotations

import gzip
import json
import logging
import signal
import threading
from collections.abc import Callable, Iterable, Sequence
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from pydantic import Field

from exporters.framework.health import CollectorHealthCollector
from exporters.framework.snapshot import SnapshotCollector
from ticketmon.core import ports, redact
from ticketmon.core.metrics_guard import Guard, GuardSettings

log = logging.getLogger("ticketmon.exporters")


class HttpSettings(GuardSettings):
    """Where /metrics listens and who may read it."""

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - stdlib signature
        pass


def _accepts_gzip(environ: dict) -> bool:
    return "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "").lower()


class Exporter:
    """Runs collectors in the background and serves their snapshots."""

    def __init__(
        self, name: str, collectors: Sequence[SnapshotCollector], http_settings: HttpSettings
    ) -> None:
        names = [c.name for c in collectors]
        if len(set(names)) != len(names) or not all(names):
            raise ValueError(f"exporter {name}: collector names must be unique and set: {names}")
        self.name = name
        self.collectors = list(collectors)
        self.http_settings = http_settings
        for c in self.collectors:
            c.exporter_name = name
        self.registry = CollectorRegistry()
        self.registry.register(CollectorHealthCollector(name, self.collectors))
        ProcessCollector(registry=self.registry)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: WSGIServer | None = None
        self._serving: threading.Thread | None = None
        self.app = Guard(self._wsgi, http_settings)

    # -- HTTP ---------------------------------------------------------------------------

    def metrics_body(self, compressed: bool) -> bytes:
        live = generate_latest(self.registry)
        parts = [c.exposition() for c in self.collectors]
        if compressed:
            return b"".join(gz for _, gz in parts) + gzip.compress(live, 1)
        return b"".join(text for text, _ in parts) + live

    def healthz(self) -> dict:
        return {
            "status": "ok",
            "exporter": self.name,
            "collectors": {
                c.name: {"up": c.health.up, "last_error": redact.text(c.health.last_error)}
                for c in self.collectors
            },
        }

    def _wsgi(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path in ("/metrics", "/healthz") and method not in ("GET", "HEAD"):
            return self._reply(start_response, "405 Method Not Allowed",
                               b'{"error": "use GET"}', "application/json")
        if path == "/metrics":
            compressed = _accepts_gzip(environ)
            body = self.metrics_body(compressed)
            extra = [("Content-Encoding", "gzip")] if compressed else []
            return self._reply(start_response, "200 OK", body, CONTENT_TYPE_PLAIN_0_0_4, extra)
        if path == "/healthz":
            body = json.dumps(self.healthz()).encode()
            return self._reply(start_response, "200 OK", body, "application/json")
        if path == "/":
            body = f'<html><body><a href="/metrics">{self.name} metrics</a></body></html>'
            return self._reply(start_response, "200 OK", body.encode(), "text/html")
        return self._reply(start_response, "404 Not Found", b'{"error": "not found"}',
                           "application/json")

    @staticmethod
    def _reply(start_response: Callable, status: str, body: bytes, content_type: str,
               extra: list | None = None) -> list[bytes]:
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        start_response(status, headers + (extra or []))
        return [body]

    # -- lifecycle ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            return self.http_settings.port
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.http_settings.host}:{self.port}"

    def start(self) -> None:
        """Start collectors and the HTTP server in background threads; returns at once."""
        with ports.listening(self.http_settings.host, self.http_settings.port, "http.port"):
            self._server = make_server(
                self.http_settings.host, self.http_settings.port, self.app,
                server_class=_ThreadingWSGIServer, handler_class=_QuietHandler,
            )
        for c in self.collectors:
            t = threading.Thread(target=c.run_forever, args=(self._stop,),
                                 name=f"schedule-{self.name}-{c.name}", daemon=True)
            t.start()
            self._threads.append(t)
        self._serving = threading.Thread(target=self._server.serve_forever,
                                         name=f"http-{self.name}", daemon=True)
        self._serving.start()
        log.info("exporter listening", extra={"exporter": self.name, "url": self.url})

    def stop(self) -> None:
        """Stop scheduling, close the listener, release each collector's resources."""
        self._stop.set()
        started = self._server is not None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for t in self._threads:
            t.join(timeout=5)
        for c in self.collectors:
            try:
                c.close()
            except Exception:  # a failing close must not stop the others from closing
                log.exception("collector close failed", extra={"collector": c.name})
        if started:  # a port already in use stops it before it started: that error says so
            log.info("exporter stopped", extra={"exporter": self.name})

    def serve(self, on_start: Callable[[], None] | None = None) -> None:
        """Run until SIGTERM or SIGINT, then stop cleanly; on_start runs once serving."""
        finished = threading.Event()

        def on_signal(signum: int, _frame) -> None:
            finished.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            if on_start is not None:
                on_start()
            while not finished.wait(1.0):
                pass
        finally:
            self.stop()
            for s, handler in previous.items():
                signal.signal(s, handler)
