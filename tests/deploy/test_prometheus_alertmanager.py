"""deploy/ configs pass promtool and amtool, and behave as intended in real servers."""

import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml

from ticketmon.rules import lint, promtool
from ticketmon.stack import deploy_config

REPO = Path(__file__).resolve().parents[2]
PROM_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
AM_CONFIG = REPO / "deploy" / "alertmanager" / "alertmanager.yml"


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_promtool_check_config_loads_every_rule_file():
    result = _run("promtool", "check", "config", str(PROM_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    for rule_file in promtool.rule_files():
        assert rule_file.name in result.stdout


def test_amtool_check_config():
    result = _run("amtool", "check-config", str(AM_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("labels, receiver", [
    (["severity=critical", "service=checkout"], "ticketmon-critical"),
    (["severity=critical", "tenant=acme", "service=checkout"], "ticketmon-critical"),
    (["severity=critical", "burn_tier=page", "slo=checkout-availability"], "ticketmon-critical"),
    (["severity=warning", "tenant=acme"], "ticketmon-tenant"),
    (["severity=warning", "service=checkout"], "ticketmon"),
    (["severity=info", "service=sales"], "ticketmon"),
    (["alertname=SomethingUnlabelled"], "ticketmon"),
])
def test_routes(labels, receiver):
    result = _run("amtool", "config", "routes", "test", f"--config.file={AM_CONFIG}",
                  f"--verify.receivers={receiver}", *labels)
    assert result.returncode == 0, result.stdout + result.stderr


def test_route_test_can_fail():
    result = _run("amtool", "config", "routes", "test", f"--config.file={AM_CONFIG}",
                  "--verify.receivers=ticketmon", "severity=critical")
    assert result.returncode != 0


def test_real_prometheus_loads_every_rule_from_the_deploy_config(start_prometheus):
    # The main job's rewrite: no component addresses, so only the rules remain.
    cfg = deploy_config.prometheus_config(PROM_CONFIG, {}, interval="1s")
    prom = start_prometheus(yaml.safe_dump(cfg))
    groups = requests.get(f"{prom.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    alerts = {r["name"] for g in groups for r in g["rules"] if r["type"] == "alerting"}
    assert alerts == lint.alert_names(promtool.rule_files())
    time.sleep(2.5)  # a couple of evaluations
    groups = requests.get(f"{prom.url}/api/v1/rules", timeout=10).json()["data"]["groups"]
    broken = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"]
              if r["health"] == "err"]
    assert broken == []


class _Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.headers.get("Authorization"), json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def _fast(route: dict) -> None:
    """Shorter waits for the test; routing, grouping and inhibition stay as deployed."""
    for key in ("group_wait", "group_interval"):
        if key in route:
            route[key] = "1s"
    for child in route.get("routes", []):
        _fast(child)


def test_real_alertmanager_routes_groups_and_inhibits(start_alertmanager, tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Hook.received = []
    token = tmp_path / "token"
    token.write_text("s3cret-token")
    cfg = deploy_config.alertmanager_config(
        AM_CONFIG, {"receiver": f"127.0.0.1:{server.server_port}"}, token)
    cfg["route"]["group_wait"] = cfg["route"]["group_interval"] = "1s"
    _fast(cfg["route"])
    am = start_alertmanager(yaml.safe_dump(cfg))
    try:
        alerts = [
            {"labels": {"alertname": "ServiceDown", "service": "checkout",
                        "severity": "critical"}},
            {"labels": {"alertname": "ServiceLatencyP95High", "service": "checkout",
                        "severity": "warning"}},
            {"labels": {"alertname": "ServiceLatencyP95High", "service": "payments",
                        "severity": "warning"}},
        ]
        requests.post(f"{am.url}/api/v2/alerts", json=alerts, timeout=10).raise_for_status()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(_Hook.received) < 2:
            time.sleep(0.2)
        state = {(a["labels"]["alertname"], a["labels"]["service"]): a["status"]
                 for a in requests.get(f"{am.url}/api/v2/alerts", timeout=10).json()}
        # critical for checkout inhibits the checkout warning, not the payments one
        assert state[("ServiceLatencyP95High", "checkout")]["state"] == "suppressed"
        assert state[("ServiceLatencyP95High", "checkout")]["inhibitedBy"]
        assert state[("ServiceLatencyP95High", "payments")]["state"] == "active"
        time.sleep(1.5)  # nothing more should arrive for the suppressed alert
        by_receiver = {body["receiver"]: (auth, body) for auth, body in _Hook.received}
        assert set(by_receiver) == {"ticketmon-critical", "ticketmon"}
        for auth, body in by_receiver.values():
            assert auth == "Bearer s3cret-token"
            assert body["version"] == "4"
            assert set(body["groupLabels"]) <= {"alertname", "service", "tenant"}
        assert [a["labels"]["service"] for a in by_receiver["ticketmon"][1]["alerts"]] == \
            ["payments"]
    finally:
        server.shutdown()
