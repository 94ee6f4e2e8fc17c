"""Both exporters as the main job runs them (CLI processes), scraped by a real Prometheus.

The business exporter reads a SQLite platform database that the simulator keeps
writing sales into; the system exporter probes a healthy and a broken service and
PostgreSQL. Their output passes promtool, and SIGTERM ends them with status 0.
"""

from __future__ import annotations

import random
import sys
import textwrap
import threading

import requests
from sqlalchemy import create_engine
from support.promtool import promtool_check_metrics

from ticketmon.servers.process import ManagedProcess, free_port
from ticketmon.simulator.platform_db import Knobs, LiveWriter, seed


def start_exporter(name: str, config: str, workdir, port: int) -> ManagedProcess:
    cfg = workdir / f"{name}.yaml"
    cfg.write_text(textwrap.dedent(config))
    proc = ManagedProcess(name, [sys.executable, "-m", "ticketmon", "exporter", name,
                                 "--config", str(cfg)], workdir / f"{name}.log")
    proc.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=30)
    return proc


def test_prometheus_scrapes_business_and_system(workdir, target, postgres_cluster,
                                                start_prometheus):
    db = f"sqlite:///{workdir / 'platform.db'}"
    engine = create_engine(db)
    seed(engine, history_hours=2, orders_per_hour=50, rng=random.Random(5))
    stop = threading.Event()
    writer = LiveWriter(engine, knobs=Knobs(orders_per_second=20), tick_seconds=0.5)
    live = threading.Thread(target=writer.run, args=(stop,), daemon=True)
    live.start()
    bport, sport = free_port(), free_port()
    procs = []
    try:
        procs.append(start_exporter("business", f"""
            platform_database_url: {db}
            http: {{port: {bport}}}
            interval_seconds: 0.5
            counters_start: beginning
        """, workdir, bport))
        procs.append(start_exporter("system", f"""
            http: {{port: {sport}}}
            interval_seconds: 0.5
            probe_timeout_seconds: 1
            services:
              - {{name: checkout, url: '{target}/ok'}}
              - {{name: payments, url: '{target}/html-500'}}
            dependencies:
              - {{name: platform-db, kind: postgres, url: '{postgres_cluster.url()}'}}
        """, workdir, sport))
        prom = start_prometheus(textwrap.dedent(f"""
            global: {{scrape_interval: 1s}}
            scrape_configs:
              - job_name: ticketmon-business
                static_configs: [{{targets: ['127.0.0.1:{bport}']}}]
              - job_name: ticketmon-system
                static_configs: [{{targets: ['127.0.0.1:{sport}']}}]
        """))
        prom.wait_for('rate(ticketmon_tickets_sold_total[5s]) > 0', timeout=40)
        prom.wait_for('ticketmon_payments_total{outcome="succeeded"} > 0')
        prom.wait_for('ticketmon_service_up{service="checkout"} == 1')
        prom.wait_for('ticketmon_service_up{service="payments"} == 0')
        prom.wait_for('ticketmon_service_probe_failures_total{service="payments",'
                      'reason="http_5xx"} > 0')
        prom.wait_for('ticketmon_dependency_up{dependency="platform-db",kind="postgres"} == 1')
        prom.wait_for('min(ticketmon_collector_up{exporter="business"}) == 1')
        for port in (bport, sport):
            body = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).content
            assert promtool_check_metrics(body) == ""
    finally:
        stop.set()
        for proc in procs:
            proc.stop()
    assert [p.proc.returncode for p in procs] == [0, 0], [p.log_tail() for p in procs]
