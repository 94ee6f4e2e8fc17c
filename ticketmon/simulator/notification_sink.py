"""A local stand-in for PagerDuty, Slack and webhook endpoints that records what it gets.

The demo routes every notification here so a user can see them at GET / (HTML) or
GET /messages (JSON); tests and the benchmark use it as the far end of real clients.
It answers like the real services, refusals included (PagerDuty's Events API v2, Slack's
incoming webhooks and chat.postMessage, Twilio's REST API: sink_apis.py),
can be told to fail the next N requests with a status, or to stall, and can listen
on HTTPS with a certificate it generates, because the PagerDuty client refuses http://.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import json
import ssl
import threading
import time
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

from ticketmon.simulator.sink_apis import answer as api_answer

MAX_BODY = 1_048_576


@dataclass
class Received:
    at: float
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def summary(self) -> dict:
        doc = asdict(self)
        doc["body"] = self.json() if self.json() is not None else self.body.decode(errors="replace")
        doc["headers"] = {k: v for k, v in self.headers.items()
                          if k.lower().startswith(("x-ticketmon", "content-type"))}
        return doc


class NotificationSink:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, tls_dir: Path | None = None,
                 keep: int = 10_000) -> None:
        self.messages: list[Received] = []
        self.keep = keep
        self._lock = threading.Lock()
        self._failures: list[int] = []
        self._stall = 0.0
        self.twilio_token: str | None = None  # set: Twilio requests must carry it
        self.cert_file: Path | None = None
        self.server = ThreadingHTTPServer((host, port), _handler(self))
        self.server.daemon_threads = True
        if tls_dir is not None:
            self.cert_file, key_file = self_signed_cert(Path(tls_dir), host)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.cert_file, key_file)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls_dir is not None else "http"
        self.url = f"{scheme}://{host}:{self.server.server_address[1]}"
        self._thread: threading.Thread | None = None

    # -- control (tests) ---------------------------------------------------------
    def fail_next(self, *statuses: int) -> None:
        """Answer the next requests with these statuses instead of success."""
        with self._lock:
            self._failures.extend(statuses)

    def stall(self, seconds: float) -> None:
        """Hold every request this long before answering (0 turns it off)."""
        self._stall = seconds

    def received(self, path_prefix: str = "/", delivered_only: bool = True) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.path.startswith(path_prefix)
                    and (not delivered_only or m.status < 300)]

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> NotificationSink:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                        name="notification-sink")
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- request handling --------------------------------------------------------
    def record(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        if self._stall:
            time.sleep(self._stall)
        with self._lock:
            status = self._failures.pop(0) if self._failures else 0
        if not status:
            status, answer = (api_answer(path, headers, body, self.twilio_token)
                              or (200, b'{"ok":true}'))  # any other path: a plain webhook
        else:
            answer = json.dumps({"status": "error", "message": f"sink failure {status}"}).encode()
        with self._lock:
            self.messages.append(Received(time.time(), path, headers, body, status))
            del self.messages[: max(0, len(self.messages) - self.keep)]
        return status, answer


def _handler(sink: NotificationSink):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: a client reuses its connection
        # headers and body leave in two writes: without TCP_NODELAY the body waits for
        # the client's delayed ACK (~40 ms per request on Linux)
        disable_nagle_algorithm = True

        def log_message(self, *args) -> None:  # quiet: the page shows what arrived
            pass

        def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY:
                self._send(413, b'{"error":"body missing or too large"}')
                return
            body = self.rfile.read(length)
            status, answer = sink.record(self.path, dict(self.headers.items()), body)
            self._send(status, answer,
                       "text/plain" if self.path.startswith("/slack") else "application/json")

        def do_GET(self) -> None:
            if self.path.startswith("/healthz"):
                self._send(200, b"ok\n", "text/plain")
            elif self.path.startswith("/messages"):
                docs = [m.summary() for m in sink.received("/", delivered_only=False)]
                self._send(200, json.dumps(docs, indent=1).encode())
            elif self.path in ("/", ""):
                self._send(200, render_page(sink).encode(), "text/html; charset=utf-8")
            else:
                self._send(404, b'{"error":"not found"}')

    return Handler


def render_page(sink: NotificationSink) -> str:
    rows = []
    for m in reversed(sink.received("/", delivered_only=False)[-200:]):
        when = dt.datetime.fromtimestamp(m.at, dt.UTC).strftime("%H:%M:%S")
        body = m.json()
        text = (body.get("text") or body.get("payload", {}).get("summary")
                or body.get("event_action") or "") if isinstance(body, dict) else ""
        if m.path.startswith("/twilio/"):  # form-encoded: who was texted or called
            form = parse_qs(m.body.decode(errors="replace"))
            text = f"to {form.get('To', ['?'])[0]}: {form.get('Body', ['(voice call)'])[0]}"
        elif isinstance(body, dict) and body.get("channel"):  # a Slack DM
            text = f"to {body['channel']}: {text}"
        rows.append(
            f"<tr><td>{when}</td><td>{html.escape(m.path)}</td><td>{m.status}</td>"
            f"<td><pre>{html.escape(str(text))}</pre></td></tr>"
        )
    return (
        "<!doctype html><html><head><title>ticketmon notifications</title>"
        "<meta http-equiv='refresh' content='5'></head><body style='font-family:sans-serif'>"
        f"<h1>Notifications received ({len(rows)})</h1><p>JSON: <a href='/messages'>/messages</a>"
        "</p><table border=1 cellpadding=4><tr><th>time</th><th>channel path</th>"
        "<th>status</th><th>text</th></tr>" + "".join(rows) + "</table></body></html>"
    )


def self_signed_cert(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A throw-away certificate for 127.0.0.1/localhost; clients pass it as verify=."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ticketmon-sink")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost"),
        ]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "sink-cert.pem", directory / "sink-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    key_file.chmod(0o600)
    return cert_file, key_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Record and show notifications (demo sink).")
    parser.add_argument("--port", type=int, default=10196)
    parser.add_argument("--tls-port", type=int, default=10198,
                        help="HTTPS listener for the PagerDuty client (0: off)")
    parser.add_argument("--tls-dir", type=Path, default=Path("sink-tls"))
    args = parser.parse_args(argv)
    plain = NotificationSink(port=args.port).start()
    if args.tls_port:
        secure = NotificationSink(port=args.tls_port, tls_dir=args.tls_dir)
        secure.messages = plain.messages  # one list, one page
        secure._lock = plain._lock
        secure.start()
        print(f"pagerduty base_url {secure.url}/pagerduty  verify {secure.cert_file}", flush=True)
    print(f"sink {plain.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
