"""Health documents and probes against real and deliberately broken targets."""

from __future__ import annotations

import pytest

from exporters.system import healthdoc, probes
from ticketmon.servers.process import free_port

# the probes' reason label takes only these values (bounded cardinality)
REASONS = ("timeout", "refused", "reset", "dns", "tls", "http_3xx", "http_4xx", "http_5xx",
           "bad_body", "too_large", "auth", "bad_reply", "error")


@pytest.mark.parametrize("body,state,deps", [
    (b'{"status": "ok"}', "healthy", {}),
    (b'{"status": "HEALTHY", "dependencies": {"db": "up", "mq": "down"}}', "healthy",
     {"db": True, "mq": False}),
    (b'{"status": "pass", "checks": {"db": {"status": "fail"}}}', "healthy", {"db": False}),
    (b'{"status": "warn"}', "degraded", {}),
    (b'{"status": "unhealthy", "components": [{"name": "redis", "status": "up"}]}',
     "unhealthy", {"redis": True}),
    (b"OK\n", "healthy", {}),
    (b'{"status": "ok", "dependencies": {"bad name!": true}}', "healthy", {"bad_name_": True}),
])
def test_health_documents(body, state, deps):
    doc = healthdoc.parse(body)
    assert (doc.state, doc.dependencies) == (state, deps)


@pytest.mark.parametrize("body", [
    b"", b"<html>oops</html>", b"[1, 2]", b'{"status": "sideways"}', b'{"uptime": 3}',
    b'{"status": "ok", "dependencies": "db"}', b'{"status": "ok", "dependencies": {"db": 7}}',
    b'{"status": "ok", "checks": [{"status": "up"}]}', b"\xff\xfe",
])
def test_bad_health_documents(body):
    with pytest.raises((healthdoc.BadBody, UnicodeDecodeError)):
        healthdoc.parse(body)


def test_dependency_map_is_capped():
    deps = ", ".join(f'"d{i}": "up"' for i in range(200))
    doc = healthdoc.parse(('{"status": "ok", "dependencies": {' + deps + "}}").encode())
    assert len(doc.dependencies) == healthdoc.MAX_DEPENDENCIES


@pytest.mark.parametrize("path,up,state,reason", [
    ("/ok", True, "healthy", ""),
    ("/degraded", True, "degraded", ""),
    ("/unhealthy-503", True, "unhealthy", ""),
    ("/plain-ok", True, "healthy", ""),
    ("/slow", True, "degraded", ""),  # slower than slow_after=0.3 s
    ("/garbage", False, "unhealthy", "bad_body"),
    ("/no-status", False, "unhealthy", "bad_body"),
    ("/html-200", False, "unhealthy", "bad_body"),
    ("/html-500", False, "unhealthy", "http_5xx"),
    ("/not-found", False, "unhealthy", "http_4xx"),
    ("/redirect", False, "unhealthy", "http_3xx"),
    ("/hang", False, "unhealthy", "timeout"),
    ("/reset", False, "unhealthy", "reset"),
    ("/half", False, "unhealthy", "reset"),
    ("/huge", False, "unhealthy", "too_large"),
])
def test_service_probe_outcomes(target, path, up, state, reason):
    out = probes.probe_service(target + path, timeout=1.0, slow_after=0.3)
    assert (out.up, out.state, out.reason) == (up, state, reason), out.detail
    assert out.reason in ("",) + REASONS


def test_service_probe_refused_and_dns():
    out = probes.probe_service(f"http://127.0.0.1:{free_port()}/health", 1.0, 2.0)
    assert (out.up, out.reason) == (False, "refused")
    out = probes.probe_service("http://no-such-host.invalid/health", 2.0, 2.0)
    assert (out.up, out.reason) == (False, "dns")


def test_postgres_probe(postgres_cluster):
    out = probes.probe_postgres(postgres_cluster.url("postgres"), 3)
    assert out.up and 0 < out.used_ratio <= 1
    out = probes.probe_postgres(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres", 2)
    assert (out.up, out.reason) == (False, "refused")
    out = probes.probe_postgres(postgres_cluster.url("no_such_db"), 2)
    assert not out.up and out.reason == "error" and "no_such_db" in out.detail


def test_redis_probe(redis_url, target):
    assert probes.probe_redis(redis_url, 2).up
    out = probes.probe_redis(f"redis://127.0.0.1:{free_port()}/0", 1)
    assert (out.up, out.reason) == (False, "refused")
    port = target.rsplit(":", 1)[1]
    out = probes.probe_redis(f"redis://127.0.0.1:{port}/0", 1)  # an HTTP server is no Redis
    assert not out.up and out.reason in ("bad_reply", "reset", "timeout")


def test_tcp_and_http_probes(target):
    host_port = target.removeprefix("http://")
    assert probes.probe_tcp(host_port, 1).up
    assert probes.probe_tcp(f"127.0.0.1:{free_port()}", 1).reason == "refused"
    assert probes.probe_http(target + "/ok", 1).up
    assert probes.probe_http(target + "/html-500", 1).reason == "http_5xx"
    assert probes.probe_http(target + "/hang", 0.5).reason == "timeout"
