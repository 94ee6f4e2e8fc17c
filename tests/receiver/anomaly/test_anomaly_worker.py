"""`ticketmon receiver worker` runs the anomaly job too when its settings say so."""

from __future__ import annotations

import sys

import pytest
import requests
import sqlalchemy as sa
import yaml
from support.anomaly_series import STEP

from receiver.anomaly.background import AnomalyThread
from receiver.anomaly.tables import anomaly_scores
from receiver.escalation.settings import WorkerSettings
from receiver.store import migrate
from ticketmon.core.config import ConfigError, load
from ticketmon.servers.process import ManagedProcess, free_port


def worker_config(tmp_path, database_url: str, **extra) -> dict:
    policies = tmp_path / "policies.yaml"
    policies.write_text(yaml.safe_dump({"policies": [
        {"name": "critical", "match": {"severity": "critical"},
         "steps": [{"after": "0s", "channels": ["chat"]}]}]}))
    return {
        "database_url": database_url, "policies_file": str(policies),
        "metrics_port": free_port(), "poll_interval": "0.2s",
        "channels": {"chat": {"type": "webhook", "url": f"http://127.0.0.1:{free_port()}/chat",
                              "secret": "webhook-signing-secret-0123456789", "timeout": 1.0,
                              "allow_insecure_http": True}},
        **extra,
    }


def anomaly_section(prometheus_url: str) -> dict:
    series = [{"name": name, "query": f'ticketmon_test_value{{case="{name}"}}',
               "step_seconds": STEP, "history_seconds": STEP * 399, "season_seconds": 0,
               "min_train": 100, "min_scores": 100} for name in ("spike", "flat")]
    forecast = {"name": "test_value", "query": "ticketmon_test_value", "by": ["case"],
                "step_seconds": STEP, "history_seconds": STEP * 399, "season_seconds": 0}
    return {"prometheus_url": prometheus_url, "interval_seconds": 1, "series": series,
            "forecasts": [forecast]}


def scores(url: str) -> dict:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {r.series: r for r in conn.execute(sa.select(anomaly_scores))}
    finally:
        engine.dispose()


def test_worker_scores_series_in_the_background_and_stops_cleanly(backfilled, tmp_path):
    prom, _ = backfilled
    url = f"sqlite:///{tmp_path / 'receiver.db'}"
    migrate.upgrade(url)
    cfg = worker_config(tmp_path, url, anomaly=anomaly_section(prom.url))
    path = tmp_path / "worker.yaml"
    path.write_text(yaml.safe_dump(cfg))
    worker = ManagedProcess("worker", [sys.executable, "-m", "ticketmon", "receiver", "worker",
                                       "--config", str(path)], tmp_path / "worker.log")
    try:
        worker.wait_http(f"http://127.0.0.1:{cfg['metrics_port']}/metrics")  # escalating
        worker.wait_until(lambda: len(scores(url)) == 2, timeout=60)
        rows = scores(url)
        assert rows["spike"].anomalous and rows["spike"].score > 0.999
        assert not rows["flat"].anomalous
        metrics = f"http://127.0.0.1:{cfg['metrics_port']}/metrics"
        forecast = 'ticketmon_forecast_exhaustion_seconds{case="flat",forecast="test_value"}'
        # the forecasts on the worker's own /metrics
        worker.wait_until(lambda: forecast in requests.get(metrics, timeout=5).text, timeout=30)
    finally:
        worker.stop()
    assert worker.proc.returncode == 0, worker.log_tail()
    assert "anomaly job started" in worker.log_path.read_text()


def test_no_anomaly_section_starts_nothing(tmp_path):
    settings = WorkerSettings.model_validate(worker_config(tmp_path, "sqlite://"))
    assert settings.anomaly is None
    assert AnomalyThread.start(settings.anomaly, settings.database_url) is None


@pytest.mark.parametrize("section,key", [
    ({"prometheus_url": "ftp://prometheus"}, "anomaly.prometheus_url"),
    ({"series": [{"name": "x"}]}, "anomaly.series.0.query"),
    ({"all_series": {"step_seconds": 5, "history_seconds": 60}}, "history_seconds"),
    ({"interval": 5}, "anomaly.interval"),
])
def test_bad_anomaly_section_is_refused_naming_the_key(tmp_path, section, key):
    path = tmp_path / "worker.yaml"
    path.write_text(yaml.safe_dump(worker_config(tmp_path, "sqlite://", anomaly=section)))
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load(WorkerSettings, path, environ={})
