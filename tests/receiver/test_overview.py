"""GET /api/v1/overview against a real Prometheus running the repository's SLO rules,
scraping services that report health, requests and sales in the real metric shapes;
and the same call while Prometheus is away."""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server
from support.receiver import bearer, post_webhook, tenant_payload

from ticketmon.servers.process import free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def platform():
    """The platform's metrics as its exporters expose them, moving every 0.2 s."""
    registry = CollectorRegistry()
    up = Gauge("ticketmon_service_up", "", ["service"], registry=registry)
    state = Gauge("ticketmon_service_health_state", "", ["service", "state"], registry=registry)
    requests_total = Counter("http_requests_total", "", ["service", "code"], registry=registry)
    sold = Counter("ticketmon_tickets_sold", "", ["event"], registry=registry)
    revenue = Counter("ticketmon_revenue_minor_units", "", ["currency"], registry=registry)
    up.labels("checkout").set(1)
    up.labels("payments").set(0)
    for service, healthy in (("checkout", "healthy"), ("payments", "down")):
        for s in ("healthy", "degraded", "down"):
            state.labels(service, s).set(1 if s == healthy else 0)
    stop = threading.Event()

    def traffic() -> None:
        while not stop.wait(0.2):
            requests_total.labels("checkout", "200").inc(99)
            requests_total.labels("checkout", "500").inc(1)  # 1 % errors: over a 0.5 % budget
            requests_total.labels("payments", "200").inc(100)
            sold.labels("e1").inc(2)
            revenue.labels("EUR").inc(5000)

    port = free_port()
    server, thread = start_http_server(port, "127.0.0.1", registry)
    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    yield port
    stop.set()
    server.shutdown()


@pytest.fixture
def prometheus(start_prometheus, platform):
    prom = start_prometheus(textwrap.dedent(f"""
        global: {{scrape_interval: 1s, evaluation_interval: 1s}}
        rule_files: [slos.yml]
        scrape_configs:
          - job_name: platform
            static_configs: [{{targets: ['127.0.0.1:{platform}']}}]
    """), {"slos.yml": (REPO / "rules" / "generated" / "slos.yml").read_text()})
    prom.wait_for('slo:error_budget_remaining:ratio{slo="checkout-availability"}', timeout=60)
    prom.wait_for('slo:burn_rate:ratio_rate1h{slo="payments-availability"}', timeout=30)
    prom.wait_for("increase(ticketmon_tickets_sold_total[1h]) > 0", timeout=30)
    # checkout's 1 % errors burn its budget 2x: the generated page fires
    prom.wait_for('ALERTS{alertstate="firing", service="checkout"}', timeout=60)
    return prom


def test_overview_has_services_slos_figures_and_the_callers_incidents(make_app, prometheus):
    app = make_app(overview={"prometheus_url": prometheus.url, "cache_seconds": 0})
    client = app.test_client()
    post_webhook(client, tenant_payload("acme"))
    post_webhook(client, tenant_payload("globex"))
    operator = bearer(app, "operator", "acme")
    [acme] = client.get("/api/v1/incidents", headers=operator).json["incidents"]
    assert client.post(f"/api/v1/incidents/{acme['id']}/acknowledge",
                       headers=operator).status_code == 200

    admin = client.get("/api/v1/overview", headers=bearer(app, "admin"))
    assert admin.status_code == 200, admin.json
    body = admin.json
    assert body["prometheus"]["status"] == "ok" and body["prometheus"]["error"] is None
    services = {s["service"]: s for s in body["services"]}
    assert services["checkout"]["up"] is True and services["checkout"]["state"] == "healthy"
    assert services["payments"]["up"] is False and services["payments"]["state"] == "down"
    slos = {s["slo"]: s for s in body["slos"]}
    checkout = slos["checkout-availability"]
    assert checkout["service"] == "checkout" and checkout["objective"] == 0.995
    assert checkout["burn_rate_1h"] == pytest.approx(2.0, rel=0.05)  # 1 % errors / 0.5 %
    # all its history is at 1 % errors: twice the budget of the SLO window is spent
    assert checkout["error_budget_remaining"] == pytest.approx(-1.0, abs=0.1)
    assert checkout["status"] == "exhausted"
    assert slos["payments-availability"]["status"] == "ok"
    assert slos["payments-availability"]["error_budget_remaining"] == 1.0
    figures = body["figures"]
    assert figures["window"] == "1h" and figures["tickets_sold"] > 0
    assert figures["revenue_minor_units"]["EUR"] > 0
    assert figures["payment_failure_ratio"] is None  # no payments scraped: unknown, not 0
    firing = prometheus.query('count(ALERTS{alertstate="firing"})')
    assert figures["firing_alerts"] == float(firing[0]["value"][1]) >= 1
    assert services["checkout"]["firing_alerts"] >= 1
    assert services["payments"]["firing_alerts"] == 0
    assert body["tenant"] == "*"
    assert body["incidents"]["open"] == 1 and body["incidents"]["acknowledged"] == 1
    assert body["incidents"]["oldest_opened_at"].endswith("Z")

    viewer = client.get("/api/v1/overview", headers=bearer(app, "viewer", "acme")).json
    assert viewer["tenant"] == "acme"
    assert viewer["incidents"]["by_severity"] == {"warning": {"open": 0, "acknowledged": 1}}
    assert (viewer["incidents"]["open"], viewer["incidents"]["acknowledged"]) == (0, 1)
    assert viewer["services"] == body["services"]  # platform health is everyone's
    assert viewer["figures"] is None and "all-tenant" in viewer["figures_note"]


def test_overview_says_prometheus_is_away_and_still_gives_incidents(make_app, database_url):
    app = make_app(database_url, overview={"prometheus_url": f"http://127.0.0.1:{free_port()}",
                                           "cache_seconds": 30})
    client = app.test_client()
    post_webhook(client, tenant_payload("acme"))
    resp = client.get("/api/v1/overview", headers=bearer(app, "viewer"))
    assert resp.status_code == 200
    body = resp.json
    assert body["prometheus"]["status"] == "unavailable"
    assert "cannot reach Prometheus" in body["prometheus"]["error"]
    assert body["services"] is None and body["slos"] is None and body["figures"] is None
    assert body["incidents"]["open"] == 1
    # the failed round is reused for cache_seconds: Prometheus is not asked per request
    again = client.get("/api/v1/overview", headers=bearer(app, "viewer")).json
    assert again["prometheus"]["as_of"] == body["prometheus"]["as_of"]


def test_overview_without_prometheus_configured_and_its_bad_input(make_app):
    app = make_app()
    client = app.test_client()
    body = client.get("/api/v1/overview", headers=bearer(app, "viewer")).json
    assert body["prometheus"]["status"] == "not_configured"
    assert body["incidents"] == {"open": 0, "acknowledged": 0, "by_severity": {},
                                 "oldest_opened_at": None}
    assert client.get("/api/v1/overview").status_code == 401
    bad = client.get("/api/v1/overview?window=2h", headers=bearer(app, "viewer"))
    assert bad.status_code == 400 and bad.json["error"]["field"] == "window"
