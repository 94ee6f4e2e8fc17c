"""The exporter process: cached exposition, gzip, /healthz, guard, Prometheus, SIGTERM."""

from __future__ import annotations

import gzip
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import requests
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families
from support.promtool import promtool_check_metrics

from exporters.framework import Exporter, HttpSettings, SnapshotCollector


class Sales(SnapshotCollector):
    name = "sales"

    def __init__(self, interval: float = 0.2, timeout: float = 2.0, series: int = 3) -> None:
        super().__init__(interval, timeout)
        self.total = 0.0
        self.series = series
        self.broken = False

    def collect_snapshot(self):
        if self.broken:
            raise ConnectionError("database unreachable")
        self.total += 1
        c = CounterMetricFamily("ticketmon_test_sales", "Test sales.", labels=["event"])
        for i in range(self.series):
            c.add_metric([f"e{i}"], self.total)
        return [c]


class Listings(SnapshotCollector):
    name = "listings"

    def collect_snapshot(self):
        return [GaugeMetricFamily("ticketmon_test_listings_active", "Listings.", value=7)]


@pytest.fixture
def running():
    exporters = []

    def start(collectors, **http) -> Exporter:
        exp = Exporter("test", collectors, HttpSettings(port=0, **http))
        exp.start()
        exporters.append(exp)
        return exp

    yield start
    for exp in exporters:
        exp.stop()


def wait_up(collector: SnapshotCollector, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not collector.health.up:
        assert time.monotonic() < deadline, collector.health.last_error
        time.sleep(0.05)


def families(text: str) -> dict:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_metrics_text_gzip_and_promtool(running):
    sales, listings = Sales(), Listings(1, 1)
    exp = running([sales, listings])
    wait_up(sales)
    wait_up(listings)
    plain = requests.get(exp.url + "/metrics", headers={"Accept-Encoding": "identity"}, timeout=5)
    assert plain.status_code == 200
    assert plain.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    fams = families(plain.text)
    assert fams["ticketmon_test_sales"].samples[0].value >= 1
    assert fams["ticketmon_test_listings_active"].samples[0].value == 7
    up = {s.labels["collector"]: s.value for s in fams["ticketmon_collector_up"].samples}
    assert up == {"sales": 1.0, "listings": 1.0}
    assert "process_cpu_seconds" in fams
    assert promtool_check_metrics(plain.content) == ""

    raw = requests.get(exp.url + "/metrics", headers={"Accept-Encoding": "gzip"}, timeout=5,
                       stream=True)
    assert raw.headers["Content-Encoding"] == "gzip"
    body = gzip.decompress(raw.raw.read())  # several gzip members, one stream
    assert promtool_check_metrics(body) == ""
    assert set(families(body.decode())) == set(fams)


def test_failed_collector_is_not_served_as_fresh(running):
    sales, listings = Sales(), Listings(1, 1)
    exp = running([sales, listings])
    wait_up(sales)
    sales.broken = True
    deadline = time.monotonic() + 5
    while sales.health.up:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    fams = families(requests.get(exp.url + "/metrics", timeout=5).text)
    assert "ticketmon_test_sales" not in fams
    assert "ticketmon_test_listings_active" in fams
    up = {s.labels["collector"]: s.value for s in fams["ticketmon_collector_up"].samples}
    assert up["sales"] == 0.0
    errors = {s.labels["collector"]: s.value for s in fams["ticketmon_collector_errors"].samples
              if s.name.endswith("_total")}
    assert errors["sales"] >= 1 and errors["listings"] == 0
    health = requests.get(exp.url + "/healthz", timeout=5).json()
    assert health["collectors"]["sales"]["up"] is False
    assert "database unreachable" in health["collectors"]["sales"]["last_error"]


def test_routes_and_guard(running):
    exp = running([Listings(1, 1)], basic_auth_username="prom", basic_auth_password="pw")
    assert requests.get(exp.url + "/metrics", timeout=5).status_code == 401
    assert requests.get(exp.url + "/metrics", auth=("prom", "pw"), timeout=5).status_code == 200
    assert requests.get(exp.url + "/healthz", timeout=5).status_code == 200
    assert requests.get(exp.url + "/nope", timeout=5).status_code == 404
    assert requests.post(exp.url + "/healthz", timeout=5).status_code == 405
    denied = running([Listings(1, 1)], allow=["10.0.0.0/8"])
    assert requests.get(denied.url + "/metrics", timeout=5).status_code == 403


def test_duplicate_collector_names_are_refused():
    with pytest.raises(ValueError, match="unique"):
        Exporter("x", [Listings(1, 1), Listings(1, 1)], HttpSettings())


def test_real_prometheus_scrapes_through_gzip_and_basic_auth(running, start_prometheus):
    sales = Sales(series=50)
    exp = running([sales, Listings(1, 1)], basic_auth_username="prom", basic_auth_password="pw")
    prom = start_prometheus(textwrap.dedent(f"""
        global: {{scrape_interval: 1s}}
        scrape_configs:
          - job_name: test
            basic_auth: {{username: prom, password: pw}}
            static_configs: [{{targets: ['127.0.0.1:{exp.port}']}}]
    """))
    result = prom.wait_for('count(ticketmon_test_sales_total) == 50', timeout=30)
    assert result[0]["value"][1] == "50"
    up = prom.wait_for('up{job="test"} == 1')
    assert up
    health = prom.wait_for('ticketmon_collector_up{exporter="test",collector="listings"} == 1')
    assert health


def test_sigterm_stops_cleanly(tmp_path, port):
    marker = tmp_path / "closed"
    code = textwrap.dedent(f"""
        from prometheus_client.core import GaugeMetricFamily
        from exporters.framework import Exporter, HttpSettings, SnapshotCollector
        class C(SnapshotCollector):
            name = "c"
            def collect_snapshot(self):
                return [GaugeMetricFamily("ticketmon_test_value", "v", value=1)]
            def close(self):
                open({str(marker)!r}, "w").write("closed")
        Exporter("t", [C(0.1, 1)], HttpSettings(port={port})).serve()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert marker.read_text() == "closed"
    finally:
        if proc.poll() is None:
            proc.kill()
