"""The whole alert path with real components: a Prometheus rule fires against a test
target, a real Alertmanager posts to the receiver (gunicorn, bearer token) and an
incident appears; clearing the condition resolves it."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import requests
from prometheus_client import CollectorRegistry, Gauge, start_http_server
from support.alertmanager import webhook_config

from receiver.store import migrate
from ticketmon.servers.process import ManagedProcess, free_port

WEBHOOK_TOKEN = "integration-webhook-token-0123"
ADMIN_TOKEN = "integration-admin-token-0123"

RULES = """
groups:
  - name: test
    interval: 1s
    rules:
      - alert: TicketingTestTrip
        expr: ticketmon_test_trip > 0
        labels: {severity: critical, tenant: acme, service: checkout}
        annotations: {summary: "test trip on {{ $labels.instance }}"}
"""


def prometheus_config(target: str, alertmanager: str) -> str:
    return f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [rules.yml]
alerting:
  alertmanagers: [{{static_configs: [{{targets: ["{alertmanager}"]}}]}}]
scrape_configs:
  - job_name: trip
    static_configs: [{{targets: ["{target}"]}}]
"""


def start_receiver(workdir: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    db = f"sqlite:///{workdir / 'receiver.db'}"
    migrate.upgrade(db)
    config = workdir / "receiver.yml"
    config.write_text(f"api_tokens: [{{name: it-admin, role: admin, token: {ADMIN_TOKEN}}}]\n")
    env = {"TICKETMON_CONFIG": str(config), "TICKETMON_DATABASE_URL": db,
           "TICKETMON_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
           "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics")}
    proc = ManagedProcess(
        "receiver",
        [str(Path(sys.executable).parent / "gunicorn"), "-c", "python:receiver.gunicorn_conf",
         "-w", "2", "-b", f"127.0.0.1:{port}", "--no-control-socket", "receiver.wsgi:app"],
        workdir / "receiver.log", env=env)
    proc.wait_http(f"{url}/readyz", timeout=30)
    return proc, url


def wait_incident(url: str, status: str, timeout: float = 40.0) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        resp = requests.get(f"{url}/api/v1/incidents", timeout=5,
                            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        resp.raise_for_status()
        last = resp.json()["incidents"]
        if last and last[0]["status"] == status:
            return last[0]
        time.sleep(0.3)
    raise AssertionError(f"no {status} incident after {timeout}s; last: {last}")


def test_rule_fires_alertmanager_posts_incident_opens_then_resolves(
        workdir, start_prometheus, start_alertmanager):
    registry = CollectorRegistry()
    trip = Gauge("ticketmon_test_trip", "1 while the test condition holds", registry=registry)
    target_port = free_port()
    server, _thread = start_http_server(target_port, addr="127.0.0.1", registry=registry)
    receiver, url = start_receiver(workdir)
    try:
        token_file = workdir / "webhook-token"
        token_file.write_text(WEBHOOK_TOKEN)
        am = start_alertmanager(webhook_config(url, token_file))
        start_prometheus(prometheus_config(f"127.0.0.1:{target_port}",
                                           f"127.0.0.1:{am.port}"), {"rules.yml": RULES})
        trip.set(1)
        opened = wait_incident(url, "open")
        assert (opened["severity"], opened["tenant"], opened["service"]) == (
            "critical", "acme", "checkout")
        assert opened["title"] == f"test trip on 127.0.0.1:{target_port}"

        trip.set(0)
        resolved = wait_incident(url, "resolved")
        assert resolved["id"] == opened["id"] and resolved["resolved_by"] == "alertmanager"
        detail = requests.get(f"{url}/api/v1/incidents/{opened['id']}", timeout=5,
                              headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}).json()
        assert [a["status"] for a in detail["incident"]["alerts"]] == ["resolved"]

        metrics = requests.get(f"{url}/metrics", timeout=5).text
        assert 'ticketmon_receiver_alerts_received_total{status="resolved"}' in metrics
        assert WEBHOOK_TOKEN not in receiver.log_path.read_text()  # secrets never logged
    finally:
        server.shutdown()
        receiver.stop()
