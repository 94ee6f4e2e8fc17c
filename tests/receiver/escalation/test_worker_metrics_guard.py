"""The worker's /metrics is guarded like every component's; /healthz stays open."""

from __future__ import annotations

import base64

from prometheus_client import CollectorRegistry, Counter
from werkzeug.test import Client

from receiver.escalation.settings import WorkerSettings
from receiver.escalation.worker_cli import metrics_app


def test_basic_auth_on_metrics_not_on_healthz(tmp_path):
    password = tmp_path / "metrics_password"
    password.write_text("pw-0123456789\n")
    registry = CollectorRegistry()
    Counter("ticketmon_worker_test", "x", registry=registry).inc()
    settings = WorkerSettings(metrics_guard={"basic_auth_username": "prometheus",
                                             "basic_auth_password_file": str(password)})
    client = Client(metrics_app(settings, registry))
    assert client.get("/metrics").status_code == 401
    assert client.get("/").status_code == 401
    assert client.get("/healthz").status_code == 200
    good = "Basic " + base64.b64encode(b"prometheus:pw-0123456789").decode()
    resp = client.get("/metrics", headers={"Authorization": good})
    assert resp.status_code == 200 and b"ticketmon_worker_test_total 1.0" in resp.data
    bad = "Basic " + base64.b64encode(b"prometheus:wrong").decode()
    assert client.get("/metrics", headers={"Authorization": bad}).status_code == 401


def test_open_without_a_guard():
    client = Client(metrics_app(WorkerSettings(), CollectorRegistry()))
    assert client.get("/metrics").status_code == 200
