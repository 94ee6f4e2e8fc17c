"""The nightly jobs pushed by the real client to a real Pushgateway, scraped by a real
Prometheus with honor_labels, and rules/batch.yml firing on what it scrapes."""

from __future__ import annotations

import json
import random
import re
import textwrap
import threading

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from support.promtool import promtool_check_metrics

from ticketmon.core.config import ConfigError, load
from ticketmon.rules.catalog import load_catalog
from ticketmon.rules.promtool import RULES_DIR
from ticketmon.servers.pushgateway import Pushgateway
from ticketmon.simulator.batch_jobs import BatchJobsSettings, Scheduler, read_states


@pytest.fixture
def pushgateway(workdir):
    gateway = Pushgateway(workdir)
    yield gateway
    gateway.stop()


def pushed(gateway: Pushgateway) -> dict[tuple[str, str], float]:
    """(metric, job) -> value of our families on the gateway's /metrics."""
    text = requests.get(f"{gateway.url}/metrics", timeout=5).text
    return {(s.name, s.labels["job"]): s.value
            for fam in text_string_to_metric_families(text)
            if fam.name.startswith("ticketmon_batch_job") for s in fam.samples}


def scheduler(gateway: Pushgateway, control, interval: float = 2, grace: float = 1) -> Scheduler:
    return Scheduler(BatchJobsSettings.model_validate({
        "pushgateway_url": gateway.url, "control_file": str(control), "tick_seconds": 0.1,
        "jobs": [{"name": n, "interval_seconds": interval, "grace_seconds": grace,
                  "duration_seconds": 0.05} for n in ("settlement", "nft-reconciliation")]}),
        random.Random(2))


def test_runs_push_what_the_catalog_and_promtool_accept(pushgateway, workdir):
    jobs = scheduler(pushgateway, workdir / "knobs.json")
    jobs.tick(0.0)
    for thread in jobs.running.values():
        thread.join(5)
    values = pushed(pushgateway)
    assert values[("ticketmon_batch_job_interval_seconds", "settlement")] == 2
    assert values[("ticketmon_batch_job_last_success_timestamp_seconds", "nft-reconciliation")] > 0
    assert ("ticketmon_batch_job_last_failure_timestamp_seconds", "settlement") not in values
    text = requests.get(f"{pushgateway.url}/metrics", timeout=5).text
    ours = "\n".join(line for line in text.splitlines() if "ticketmon_batch_job" in line) + "\n"
    assert promtool_check_metrics(ours) == ""
    # the gateway adds the grouping key (job, instance): target labels once scraped
    without_grouping = re.sub(r"\{[^}]*\}", "", ours)
    assert load_catalog().check_exposition(without_grouping, "batch_jobs") == []


def test_a_failure_keeps_the_last_success(pushgateway, workdir):
    control = workdir / "knobs.json"
    jobs = scheduler(pushgateway, control)
    jobs.tick(0.0)
    for thread in jobs.running.values():
        thread.join(5)
    success = pushed(pushgateway)[("ticketmon_batch_job_last_success_timestamp_seconds",
                                   "settlement")]
    control.write_text(json.dumps({"settlement": "fail"}))
    jobs.tick(10.0)
    for thread in jobs.running.values():
        thread.join(5)
    values = pushed(pushgateway)
    assert values[("ticketmon_batch_job_last_success_timestamp_seconds", "settlement")] == success
    assert values[("ticketmon_batch_job_last_failure_timestamp_seconds", "settlement")] > success


def test_a_bad_control_file_changes_nothing(tmp_path):
    control = tmp_path / "knobs.json"
    current = {"settlement": "fail", "nft-reconciliation": "ok"}
    for text in ("not json", "[1]", '{"payroll": "ok"}', '{"settlement": "maybe"}'):
        control.write_text(text)
        assert read_states(control, list(current), current) == current
    control.write_text('{"settlement": "stop"}')
    assert read_states(control, list(current), current)["settlement"] == "stop"


def test_settings_errors_are_named(tmp_path):
    cfg = tmp_path / "jobs.yaml"
    cfg.write_text("jobs: [{name: settlement, interval_seconds: 0, grace_seconds: 1}]\n")
    with pytest.raises(ConfigError, match="interval_seconds"):
        load(BatchJobsSettings, cfg)
    cfg.write_text("pushgateway_url: ftp://gateway\n")
    with pytest.raises(ConfigError, match="pushgateway_url"):
        load(BatchJobsSettings, cfg)


def test_late_failed_and_recovered_on_a_real_prometheus(pushgateway, workdir,
                                                        start_prometheus):
    control = workdir / "knobs.json"
    jobs = scheduler(pushgateway, control)
    stop = threading.Event()
    runner = threading.Thread(target=jobs.run, args=(stop,), daemon=True)
    runner.start()
    try:
        prom = start_prometheus(textwrap.dedent(f"""
            global: {{scrape_interval: 1s, evaluation_interval: 1s}}
            rule_files: ["{RULES_DIR / 'batch.yml'}"]
            scrape_configs:
              - job_name: pushgateway
                honor_labels: true
                static_configs: [{{targets: ["{pushgateway.url.removeprefix('http://')}"]}}]
        """))
        # honor_labels: the series carry the batch job's name, not the scrape job's
        prom.wait_for('count(ticketmon_batch_job_last_success_timestamp_seconds'
                      '{job=~"settlement|nft-reconciliation"}) == 2', 20)
        # both reported: no alert (BatchJobNeverReported may be pending until then)
        prom.wait_for('absent(ALERTS{alertname=~"BatchJob.*"})', 10)
        control.write_text(json.dumps({"settlement": "fail", "nft-reconciliation": "stop"}))
        prom.wait_for('ALERTS{alertname="BatchJobFailed", job="settlement", '
                      'alertstate="firing"}', 20)
        for job in ("settlement", "nft-reconciliation"):  # 2 s period + 1 s grace
            prom.wait_for(f'ALERTS{{alertname="BatchJobLate", service="{job}", '
                          'severity="critical", alertstate="firing"}', 20)
        control.write_text(json.dumps({"settlement": "ok", "nft-reconciliation": "ok"}))
        prom.wait_for('absent(ALERTS{alertname=~"BatchJobLate|BatchJobFailed"})', 20)
    finally:
        stop.set()
        runner.join(10)
