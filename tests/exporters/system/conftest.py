"""A misbehaving health endpoint and a real redis-server for the system exporter's tests."""

from __future__ import annotations

import json
import shutil
import socket
import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis

from ticketmon.servers.process import ManagedProcess, free_port


class Target(BaseHTTPRequestHandler):
    """Each path is one behaviour a real service's /health may show."""

    def log_message(self, *args) -> None:
        pass

    def send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        path = self.path
        if path == "/ok":
            self.send(200, json.dumps({"status": "ok", "dependencies": {
                "db": "up", "cache": {"status": "down"}}}).encode())
        elif path == "/degraded":
            self.send(200, b'{"status": "degraded", "checks": [{"name": "db", "status": "pass"}]}')
        elif path == "/unhealthy-503":
            self.send(503, b'{"status": "unhealthy"}')
        elif path == "/plain-ok":
            self.send(200, b"OK", "text/plain")
        elif path == "/garbage":
            self.send(200, b"\x00\xff{{{ not json")
        elif path == "/no-status":
            self.send(200, b'{"uptime": 12}')
        elif path == "/html-500":
            self.send(500, b"<html><body><h1>Internal Server Error</h1></body></html>",
                      "text/html")
        elif path == "/html-200":
            self.send(200, b"<html><body>Welcome</body></html>", "text/html")
        elif path == "/not-found":
            self.send(404, b"nope", "text/plain")
        elif path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/slow":
            time.sleep(0.6)
            self.send(200, b'{"status": "ok"}')
        elif path == "/hang":
            time.sleep(5)
        elif path == "/reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
        elif path == "/huge":
            self.send(200, b'{"status": "ok", "pad": "' + b"x" * (2 << 20) + b'"}')
        elif path == "/half":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b'{"status": "o')
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.connection.close()
        else:
            self.send(404, b"{}")


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Target)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory) -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server not installed (apt-get install redis-server)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = ManagedProcess("redis", [binary, "--port", str(port), "--bind", "127.0.0.1",
                                    "--save", "", "--appendonly", "no", "--dir", str(workdir)],
                          workdir / "redis.log")
    url = f"redis://127.0.0.1:{port}/0"

    def ready() -> bool:
        try:
            return redis.Redis.from_url(url, socket_timeout=1).ping()
        except redis.RedisError:
            return False

    proc.wait_until(ready)
    yield url
    proc.stop()
