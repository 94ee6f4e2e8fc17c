"""Probes with a bounded outcome: success, or a failure with one of a few reasons.

The reason becomes a label value, so it comes from a fixed set; details (exception
text) only go to logs.
"""

from __future__ import annotations

import errno
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from exporters.system import healthdoc

MAX_BODY = 1 << 20


@dataclass
class Outcome:
    up: bool
    duration: float
    reason: str = ""
    detail: str = ""
    state: str = "unhealthy"
    dependencies: dict[str, bool] = field(default_factory=dict)
    used_ratio: float | None = None


def _exception_reason(exc: BaseException) -> str:
    """Walk the exception chain for the socket-level cause."""
    seen = exc
    while seen is not None:
        if isinstance(seen, requests.exceptions.SSLError):
            return "tls"
        if isinstance(seen, socket.timeout | TimeoutError | requests.Timeout):
            return "timeout"
        if isinstance(seen, socket.gaierror) or "NameResolutionError" in type(seen).__name__:
            return "dns"
        if isinstance(seen, ConnectionRefusedError):
            return "refused"
        if isinstance(seen, ConnectionResetError | BrokenPipeError) or type(seen).__name__ in (
            "RemoteDisconnected", "ProtocolError", "IncompleteRead", "ChunkedEncodingError"
        ):
            return "reset"
        if isinstance(seen, OSError) and seen.errno == errno.ECONNREFUSED:
            return "refused"
        seen = seen.__cause__ or seen.__context__ or (
            seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None)
    text = str(exc).lower()
    if "refused" in text:
        return "refused"
    if "timed out" in text or "timeout" in text:
        return "timeout"
    if "reset" in text or "aborted" in text or "closed" in text:
        return "reset"
    return "error"


def _read_limited(resp: requests.Response, deadline: float) -> bytes:
    chunks, size = [], 0
    for chunk in resp.iter_content(16384):
        size += len(chunk)
        if size > MAX_BODY:
            raise ValueError("too_large")
        if time.monotonic() > deadline:
            raise TimeoutError("body not complete within the timeout")
        chunks.append(chunk)
    return b"".join(chunks)


def http_get(url: str, timeout: float) -> tuple[int, bytes]:
    """GET without redirects, the body capped at 1 MiB and the whole call at `timeout`."""
    deadline = time.monotonic() + timeout
    with requests.get(url, timeout=timeout, stream=True, allow_redirects=False,
                      headers={"Accept": "application/json",
                               "User-Agent": "ticketmon-system-exporter"}) as resp:
        return resp.status_code, _read_limited(resp, deadline)


def _http_reason(status: int) -> str:
    return f"http_{status // 100}xx" if 300 <= status < 600 else "bad_reply"


def probe_service(url: str, timeout: float, slow_after: float) -> Outcome:
    """Probe a /health URL: state from its JSON, degraded if slower than slow_after."""
    started = time.monotonic()
    try:
        status, body = http_get(url, timeout)
    except ValueError as exc:
        return Outcome(False, time.monotonic() - started, "too_large", str(exc))
    except Exception as exc:  # any transport failure becomes a reason, never a crash
        return Outcome(False, time.monotonic() - started, _exception_reason(exc),
                       f"{type(exc).__name__}: {exc}")
    duration = time.monotonic() - started
    try:
        doc = healthdoc.parse(body)
    except (healthdoc.BadBody, UnicodeDecodeError) as exc:
        reason = "bad_body" if 200 <= status < 300 else _http_reason(status)
        return Outcome(False, duration, reason, f"HTTP {status}: {exc}")
    if not (200 <= status < 300 or 500 <= status < 600):
        return Outcome(False, duration, _http_reason(status), f"HTTP {status}")
    state = doc.state
    if state == "healthy" and duration > slow_after:
        state = "degraded"
    return Outcome(True, duration, state=state, dependencies=doc.dependencies)


def probe_tcp(address: str, timeout: float) -> Outcome:
    started = time.monotonic()
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except Exception as exc:
        return Outcome(False, time.monotonic() - started, _exception_reason(exc), str(exc))
    return Outcome(True, time.monotonic() - started, state="healthy")


def probe_http(url: str, timeout: float) -> Outcome:
    """Any 2xx answer is up (the body is not interpreted)."""
    started = time.monotonic()
    try:
        status, _ = http_get(url, timeout)
    except ValueError as exc:
        return Outcome(False, time.monotonic() - started, "too_large", str(exc))
    except Exception as exc:
        return Outcome(False, time.monotonic() - started, _exception_reason(exc), str(exc))
    if not 200 <= status < 300:
        return Outcome(False, time.monotonic() - started, _http_reason(status), f"HTTP {status}")
    return Outcome(True, time.monotonic() - started, state="healthy")


def _postgres_dsn(url: str) -> str:
    parts = urlsplit(url)
    return parts._replace(scheme="postgresql").geturl()


def probe_postgres(url: str, timeout: float) -> Outcome:
    """Connect, SELECT 1, and the share of max_connections in use."""
    import psycopg2

    started = time.monotonic()
    try:
        conn = psycopg2.connect(_postgres_dsn(url), connect_timeout=max(1, int(timeout)),
                                options=f"-c statement_timeout={int(timeout * 1000)}",
                                application_name="ticketmon-system-exporter")
    except psycopg2.OperationalError as exc:
        text = str(exc).lower()
        reason = ("auth" if "authentication" in text or "password" in text
                  else "dns" if "translate host name" in text else _exception_reason(exc))
        return Outcome(False, time.monotonic() - started, reason, str(exc).strip()[:300])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            if cur.fetchone() != (1,):
                return Outcome(False, time.monotonic() - started, "bad_reply", "SELECT 1")
            cur.execute("SELECT count(*), current_setting('max_connections')::int "
                        "FROM pg_stat_activity WHERE backend_type = 'client backend'")
            used, most = cur.fetchone()
    except psycopg2.Error as exc:
        return Outcome(False, time.monotonic() - started, _exception_reason(exc),
                       str(exc).strip()[:300])
    finally:
        conn.close()
    ratio = used / most if most else None
    return Outcome(True, time.monotonic() - started, state="healthy", used_ratio=ratio)


def probe_redis(url: str, timeout: float) -> Outcome:
    import redis

    started = time.monotonic()
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        reply = client.ping()
    except redis.AuthenticationError as exc:
        return Outcome(False, time.monotonic() - started, "auth", str(exc))
    except redis.ResponseError as exc:
        reason = "auth" if "NOAUTH" in str(exc) else "bad_reply"
        return Outcome(False, time.monotonic() - started, reason, str(exc))
    except redis.TimeoutError as exc:
        return Outcome(False, time.monotonic() - started, "timeout", str(exc))
    except (redis.ConnectionError, redis.exceptions.InvalidResponse) as exc:
        reason = _exception_reason(exc)
        if isinstance(exc, redis.exceptions.InvalidResponse) or "protocol" in str(exc).lower():
            reason = "bad_reply"
        return Outcome(False, time.monotonic() - started, reason, str(exc))
    except Exception as exc:
        return Outcome(False, time.monotonic() - started, _exception_reason(exc), str(exc))
    finally:
        client.close()
    if reply is not True:
        return Outcome(False, time.monotonic() - started, "bad_reply", repr(reply)[:100])
    return Outcome(True, time.monotonic() - started, state="healthy")
