"""The job against a real Prometheus: scores, every bad input, persistence, /metrics."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from support.anomaly_series import STEP

from receiver.anomaly import scores as anomaly_store
from receiver.anomaly.job import AnomalyJob
from receiver.anomaly.settings import AnomalySettings, SeriesSettings
from receiver.anomaly.tables import anomaly_scores, anomaly_skips
from receiver.store import Store, migrate
from ticketmon.core.config import ConfigError, load
from ticketmon.servers.process import find_binary, free_port


def series(name: str, query: str | None = None, **kw) -> SeriesSettings:
    query = query or f'ticketmon_test_value{{case="{name}"}}'
    return SeriesSettings(name=name, query=query, step_seconds=STEP, history_seconds=STEP * 399,
                          season_seconds=0, min_train=100, min_scores=100, **kw)


@pytest.fixture
def store(database_url):
    migrate.upgrade(database_url)
    s = Store(database_url, pool_size=1)
    yield s
    s.dispose()


def run(store: Store, url: str, at: int, *items: SeriesSettings):
    settings = AnomalySettings(prometheus_url=url, series=list(items))
    job = AnomalyJob(settings, store, background_refit=False)
    try:
        return {o.series: o for o in job.run_once(now=at)}, job
    finally:
        job.close()


def test_spike_scores_high_and_flat_does_not(backfilled, store):
    prom, end = backfilled
    out, _ = run(store, prom.url, end, series("spike"), series("flat"))
    assert out["spike"].status == "scored" and out["spike"].anomalous
    assert out["spike"].score > 0.999
    assert out["flat"].status == "scored" and not out["flat"].anomalous
    assert out["flat"].score < 0.999
    with store.transaction(readonly=True) as conn:
        rows = {r.series: r for r in conn.execute(sa.select(anomaly_scores))}
    assert rows["spike"].anomalous and not rows["flat"].anomalous
    assert rows["spike"].at == datetime.fromtimestamp(end, UTC)
    why = rows["spike"].explanation  # the last point jumped by 40 on noise of 1
    assert why["feature"] in ("level", "diff") and why["direction"] == "above"
    assert why["past_threshold_spreads"] > 0
    assert why["flagged_at"] == datetime.fromtimestamp(end, UTC).isoformat()
    assert why["feature"] in why["summary"] and rows["flat"].explanation is None


def test_next_run_scores_only_new_points(backfilled, store):
    prom, end = backfilled
    settings = AnomalySettings(prometheus_url=prom.url, series=[series("flat")])
    job = AnomalyJob(settings, store, background_refit=False)
    try:
        first = job.run_once(now=end - 10 * STEP)[0]
        count = job.states["flat"].stream.count
        second = job.run_once(now=end)[0]
        assert (first.status, second.status) == ("scored", "scored")
        assert job.states["flat"].stream.count == count + 10
        assert job.run_once(now=end)[0].status == "up_to_date"
    finally:
        job.close()


@pytest.mark.parametrize("name,reason", [
    ("constant", "constant"),
    ("gap", "gap"),
    ("nan", "nan"),
    ("short", "too_little_history"),
])
def test_bad_series_are_skipped_with_a_reason(backfilled, store, name, reason):
    prom, end = backfilled
    out, _ = run(store, prom.url, end, series(name), series("flat"))
    assert out[name].status == reason
    assert out["flat"].status == "scored"  # one bad series does not stop the others
    with store.transaction(readonly=True) as conn:
        skips = {(r.series, r.reason): r.count for r in conn.execute(sa.select(anomaly_skips))}
        scored = {r.series for r in conn.execute(sa.select(anomaly_scores))}
    assert skips == {(name, reason): 1}
    assert name not in scored


@pytest.mark.parametrize("query,reason", [
    ("ticketmon_test_value", "too_many_series"),
    ('ticketmon_test_value{case="absent"}', "no_data"),
    ("sum(", "query_error"),
])
def test_bad_queries_are_skipped_with_a_reason(backfilled, store, query, reason):
    prom, end = backfilled
    out, _ = run(store, prom.url, end, series("q", query=query))
    assert out["q"].status == reason


def test_unreachable_prometheus_is_a_skip_not_a_crash(store):
    out, _ = run(store, f"http://127.0.0.1:{free_port()}", 1_700_000_000, series("flat"))
    assert out["flat"].status == "prometheus_unreachable"


def test_metrics_from_the_table_pass_promtool(backfilled, store):
    prom, end = backfilled
    run(store, prom.url, end, series("spike"), series("constant"))
    from prometheus_client import CollectorRegistry, generate_latest

    from receiver.metrics import StoreCollector

    collector = StoreCollector(store)
    collector.sources = [anomaly_store.anomaly_gauges]
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    assert 'ticketmon_anomaly{series="spike"} 1.0' in text
    assert 'ticketmon_anomaly_skipped_total{reason="constant",series="constant"} 1.0' in text
    check = subprocess.run([find_binary("promtool", "PROMTOOL", "prometheus"), "check", "metrics"],
                           input=text, capture_output=True, text=True, timeout=30)
    assert check.returncode == 0 and not check.stdout and not check.stderr, check.stdout


def test_bad_settings_name_the_key(tmp_path):
    path = tmp_path / "anomaly.yml"
    path.write_text("series:\n  - name: x\n    query: up\n    step_seconds: 1\n"
                    "    history_seconds: 86400\n")
    with pytest.raises(ConfigError, match=r"series\.0"):
        load(AnomalySettings, path, environ={})
    path.write_text("prometheus_url: ftp://x\n")
    with pytest.raises(ConfigError, match="prometheus_url"):
        load(AnomalySettings, path, environ={})
    path.write_text("series:\n  - {name: a, query: up}\n  - {name: a, query: up}\n")
    with pytest.raises(ConfigError, match="unique"):
        load(AnomalySettings, path, environ={})
    assert [s.name for s in load(AnomalySettings, None, environ={}).series] == [
        "ticket_sales_rate", "payment_failure_ratio", "checkout_latency_p95",
        "solana_rpc_latency_p95", "fraud_high_risk_ratio"]
