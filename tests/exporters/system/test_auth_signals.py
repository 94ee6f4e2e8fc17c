"""Security signals of the simulated services: their metrics, the attacks, and the
security rules firing on a real Prometheus that scrapes them."""

from __future__ import annotations

import random
import textwrap

import pytest
import requests
from prometheus_client import CollectorRegistry
from support.promtool import promtool_check_metrics
from support.waiting import wait_for

from ticketmon.rules.catalog import load_catalog
from ticketmon.rules.promtool import RULES_DIR
from ticketmon.simulator.auth_traffic import LOCKOUT_AFTER, AuthTraffic, FailureWindow
from ticketmon.simulator.services import Platform, ServicesSettings, set_attack


@pytest.fixture
def platform():
    settings = ServicesSettings.model_validate({
        "control_port": 0, "tick_seconds": 0.05, "auth_window_seconds": 30,
        "services": [{"name": n, "port": 0, "routes": ["/a", "/b"], "requests_per_second": 40,
                      "logins_per_second": 5}
                     for n in ("checkout", "payments", "marketplace")],
    })
    p = Platform(settings, random.Random(3))
    p.start()
    yield p
    p.stop()


def metric(platform: Platform, service: str, name: str) -> float:
    text = requests.get(platform.urls()[service] + "/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{"))


def test_failure_window_forgets_what_is_older_than_it():
    window = FailureWindow(10)
    window.add(0, "a", "s1")
    window.add(5, "a", "s2")
    window.add(9, "b", "s2")
    window.prune(12)
    assert dict(window.accounts) == {"a": 1, "b": 1}
    assert dict(window.sources) == {"s2": 2}
    window.prune(20)
    assert not window.accounts and not window.sources and not window.events


def test_an_account_locks_after_repeated_failures_and_stays_locked():
    auth = AuthTraffic("checkout", ["/a"], CollectorRegistry(), random.Random(1), 0, 60)
    for i in range(LOCKOUT_AFTER):
        auth.login(float(i), "user-1", "198.51.100.9", "bad_password")
    auth.login(10.0, "user-1", "198.51.100.9", "success")  # the right password, too late
    auth._export(10.0)
    assert auth.logins.labels("checkout", "account_locked")._value.get() == 1
    assert auth.lockouts.labels("checkout")._value.get() == 1
    assert auth.locked.labels("checkout")._value.get() == 1
    auth._export(70.0)  # the lockout lasts one window
    assert auth.locked.labels("checkout")._value.get() == 0


def test_metrics_are_well_formed_catalogued_and_bounded(platform):
    set_attack(platform.control_url, "checkout", "credential-stuffing")
    wait_for(lambda: metric(platform, "checkout", "auth_failing_accounts") > 50, 20,
             "credential stuffing to show")
    text = requests.get(platform.urls()["checkout"] + "/metrics", timeout=5).text
    assert promtool_check_metrics(text) == ""
    assert load_catalog().check_exposition(text, "platform_services", require_all=True,
                                           prefix="") == []
    # hundreds of accounts tried, still one series per service for the window gauges
    assert text.count("auth_failing_accounts{") == 1
    assert "leaked-" not in text and "192.0.2." not in text


def test_each_attack_moves_its_own_signal(platform):
    set_attack(platform.control_url, "checkout", "brute-force")
    set_attack(platform.control_url, "payments", "rate-limit-storm")
    wait_for(lambda: metric(platform, "checkout", "auth_top_source_failures") >= 30, 20,
             "brute force concentrated on one source")
    wait_for(lambda: metric(platform, "checkout", "auth_accounts_locked") >= 1, 10,
             "the attacked accounts to lock")
    wait_for(lambda: metric(platform, "payments", "http_rate_limited_requests_total") > 100,
             20, "the limiter to reject the flood")
    assert metric(platform, "marketplace", "auth_top_source_failures") < 5  # untouched
    assert requests.get(platform.control_url + "/control/checkout", timeout=5).json() == {
        "service": "checkout", "mode": "ok", "attack": "brute-force"}
    set_attack(platform.control_url, "checkout", "none")
    assert platform.services["checkout"].auth.attack == "none"


@pytest.mark.parametrize("body", [b'{"attack": "ddos"}', b'{"attack": null}',
                                  b'{"mode": "ok", "color": "red"}', b"{}"])
def test_control_refuses_bad_attacks_and_changes_nothing(platform, body):
    set_attack(platform.control_url, "checkout", "brute-force")
    resp = requests.post(platform.control_url + "/control/checkout", data=body, timeout=5)
    assert resp.status_code == 400 and "error" in resp.json()
    assert platform.services["checkout"].auth.attack == "brute-force"
    assert platform.modes()["checkout"] == "ok"


def test_security_alerts_fire_on_a_real_prometheus(platform, start_prometheus):
    targets = ", ".join(f'"{u.removeprefix("http://")}"' for u in platform.urls().values())
    prom = start_prometheus(textwrap.dedent(f"""
        global: {{scrape_interval: 1s, evaluation_interval: 1s}}
        rule_files: ["{RULES_DIR / 'security.yml'}"]
        scrape_configs:
          - job_name: platform-services
            static_configs: [{{targets: [{targets}]}}]
    """))
    prom.wait_for('up{job="platform-services"} == 1')
    quiet = 'ALERTS{alertname=~"AuthBruteForce|AuthCredentialStuffing|RateLimitStorm"}'
    prom.wait_for("service:auth_login_failures:ratio_rate5m", 20)
    assert prom.query(quiet) == []  # ordinary traffic alone raises nothing
    set_attack(platform.control_url, "checkout", "brute-force")
    set_attack(platform.control_url, "marketplace", "credential-stuffing")
    set_attack(platform.control_url, "payments", "rate-limit-storm")
    for alert, service in (("AuthBruteForce", "checkout"),
                           ("AuthCredentialStuffing", "marketplace"),
                           ("RateLimitStorm", "payments")):
        prom.wait_for(f'ALERTS{{alertname="{alert}", service="{service}"}}', 60)
    # the shortest `for` (1m) passes: brute force and stuffing fire, nothing else does
    firing = prom.wait_for('count(ALERTS{alertstate="firing", '
                           'alertname=~"AuthBruteForce|AuthCredentialStuffing"}) == 2', 90)
    assert firing
    alerts = {(a["metric"]["alertname"], a["metric"]["service"]) for a in prom.query(quiet)}
    assert alerts == {("AuthBruteForce", "checkout"), ("AuthCredentialStuffing", "marketplace"),
                      ("RateLimitStorm", "payments")}
