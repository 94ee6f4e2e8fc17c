"""Simulated platform services: health, metrics, modes, control errors, and the CLI."""

from __future__ import annotations

import random
import socket
import sqlite3
import subprocess
import sys
import textwrap

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from support.promtool import promtool_check_metrics

from exporters.system.main import SystemSettings, build
from ticketmon.core.config import ConfigError, load
from ticketmon.servers.process import ManagedProcess, free_port
from ticketmon.simulator.platform_db_cli import PlatformDbSettings
from ticketmon.simulator.services import Platform, ServicesSettings, set_mode


@pytest.fixture
def platform():
    settings = ServicesSettings.model_validate({
        "control_port": 0, "tick_seconds": 0.05,
        "services": [
            {"name": n, "port": 0, "routes": ["/a", "/b"], "dependencies": ["postgres", "redis"],
             "requests_per_second": 200}
            for n in ("checkout", "payments", "inventory", "marketplace")],
    })
    p = Platform(settings, random.Random(1))
    p.start()
    yield p
    p.stop()


def states(platform: Platform) -> dict:
    settings = SystemSettings.model_validate({
        "probe_timeout_seconds": 4, "slow_after_seconds": 1.0,
        "services": [{"name": n, "url": u + "/health"} for n, u in platform.urls().items()],
    })
    collector = build(settings).collectors[0]
    assert collector.run_once(), collector.health.last_error
    out: dict = {}
    for fam in text_string_to_metric_families(collector.exposition()[0].decode()):
        for s in fam.samples:
            if s.name == "ticketmon_service_up":
                out.setdefault(s.labels["service"], {})["up"] = s.value
            if s.name == "ticketmon_service_health_state" and s.value == 1:
                out.setdefault(s.labels["service"], {})["state"] = s.labels["state"]
    collector.close()
    return out


def test_health_metrics_and_modes_as_the_system_exporter_sees_them(platform):
    url = platform.urls()["checkout"]
    metrics = requests.get(url + "/metrics", timeout=5).content
    assert promtool_check_metrics(metrics) == ""
    assert b'http_requests_total{code="200",route="/a",service="checkout"}' in metrics
    assert all(s == {"up": 1.0, "state": "healthy"} for s in states(platform).values())

    control = platform.control_url
    set_mode(control, "checkout", "degraded")
    set_mode(control, "payments", "failing")
    set_mode(control, "inventory", "down")
    set_mode(control, "marketplace", "slow")
    seen = states(platform)
    assert seen["checkout"] == {"up": 1.0, "state": "degraded"}
    assert seen["payments"] == {"up": 1.0, "state": "unhealthy"}
    assert seen["inventory"] == {"up": 0.0, "state": "unhealthy"}
    assert seen["marketplace"] == {"up": 1.0, "state": "degraded"}  # slower than 1 s
    with pytest.raises(requests.ConnectionError):
        requests.get(platform.urls()["inventory"] + "/metrics", timeout=2)
    assert requests.get(control + "/control", timeout=5).json()["inventory"] == "down"

    failing = platform.services["payments"]
    errors = sum(failing.requests.labels("payments", r, "500")._value.get() for r in ("/a", "/b"))
    assert errors > 0

    set_mode(control, "inventory", "ok")
    set_mode(control, "marketplace", "ok")
    assert states(platform)["inventory"] == {"up": 1.0, "state": "healthy"}


def test_a_down_service_keeps_its_port_so_nothing_else_looks_healthy_in_its_place(platform):
    """A second stack on the same ports must not take over a down service's port."""
    port = platform.services["inventory"].port
    set_mode(platform.control_url, "inventory", "down")
    for _ in range(2):  # still down the second time: the reset does not close the listener
        with socket.socket() as other, pytest.raises(OSError):
            other.bind(("127.0.0.1", port))
        assert states(platform)["inventory"] == {"up": 0.0, "state": "unhealthy"}
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/health", timeout=2)
    set_mode(platform.control_url, "inventory", "ok")
    assert states(platform)["inventory"] == {"up": 1.0, "state": "healthy"}
    assert platform.services["inventory"].port == port


@pytest.mark.parametrize("path,body,status", [
    ("/control/nope", b'{"mode": "down"}', 404),
    ("/control/checkout", b'{"mode": "sideways"}', 400),
    ("/control/checkout", b"not json", 400),
    ("/control/checkout", b"[1]", 400),
    ("/elsewhere", b"{}", 404),
])
def test_control_rejects_bad_requests(platform, path, body, status):
    resp = requests.post(platform.control_url + path, data=body, timeout=5)
    assert resp.status_code == status and "error" in resp.json()
    assert platform.modes()["checkout"] == "ok"


def test_services_cli_starts_and_stops_on_sigterm(workdir):
    control, svc = free_port(), free_port()
    cfg = workdir / "services.yaml"
    cfg.write_text(textwrap.dedent(f"""
        control_port: {control}
        services: [{{name: checkout, port: {svc}, routes: [/checkout]}}]
    """))
    proc = ManagedProcess("services", [sys.executable, "-m", "ticketmon", "simulator",
                                       "services", "--config", str(cfg)], workdir / "svc.log")
    try:
        proc.wait_http(f"http://127.0.0.1:{control}/healthz", timeout=30)
        assert requests.get(f"http://127.0.0.1:{svc}/health", timeout=5).json()["status"] == "ok"
    finally:
        proc.stop()
    assert proc.proc.returncode == 0


def test_simulator_settings_errors_are_named(tmp_path):
    cfg = tmp_path / "s.yaml"
    cfg.write_text("services: [{name: a, port: 1, routes: []}]\n")
    with pytest.raises(ConfigError, match="services.0.routes"):
        load(ServicesSettings, cfg, environ={})
    cfg.write_text("payment_failure_ratio: 2\n")
    with pytest.raises(ConfigError, match="payment_failure_ratio"):
        load(PlatformDbSettings, cfg, environ={})


def test_platform_db_cli_seeds_once(workdir):
    db = workdir / "p.db"
    cfg = workdir / "p.yaml"
    cfg.write_text(f"platform_database_url: sqlite:///{db}\nlive: false\nhistory_hours: 2\n")
    argv = [sys.executable, "-m", "ticketmon", "simulator", "platform-db", "--config", str(cfg)]
    counts = []
    for _ in range(2):  # the second run finds the history and leaves it alone
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        with sqlite3.connect(db) as conn:
            counts.append(conn.execute("SELECT count(*) FROM tickets").fetchone()[0])
    assert counts[0] > 0 and counts[0] == counts[1]
    assert '"seeded": false' in done.stderr
    bad = workdir / "bad.yaml"
    bad.write_text("orders_per_second: -1\n")
    done = subprocess.run(argv[:-1] + [str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "orders_per_second" in done.stderr
