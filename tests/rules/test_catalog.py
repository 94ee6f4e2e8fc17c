"""The metric catalog: valid, promtool-clean names, and a checker exporters can call."""

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ticketmon.core.config import ConfigError
from ticketmon.rules.catalog import load_catalog
from ticketmon.rules.promtool import check_metrics


def _exposition_of(specs) -> str:
    """One sample per catalogued family, built with the real client library."""
    registry = CollectorRegistry()
    kinds = {"counter": Counter, "gauge": Gauge, "histogram": Histogram}
    for spec in specs:
        name = spec.name[: -len("_total")] if spec.type == "counter" else spec.name
        metric = kinds[spec.type](name, spec.help or spec.name, spec.labels, registry=registry)
        values = [spec.values.get(label, ["x"])[0] for label in spec.labels]
        child = metric.labels(*values) if spec.labels else metric
        {"counter": lambda c: c.inc(), "gauge": lambda g: g.set(1),
         "histogram": lambda h: h.observe(0.2)}[spec.type](child)
    return generate_latest(registry).decode()


def test_catalogued_ticketmon_names_pass_promtool_check_metrics():
    catalog = load_catalog()
    ours = [m for m in catalog.metrics.values() if m.name.startswith("ticketmon_")]
    assert len(ours) > 40
    text = _exposition_of(ours)
    result = check_metrics(text)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stderr
    assert catalog.check_exposition(text) == []


def test_every_source_job_is_known():
    catalog = load_catalog()
    for spec in catalog.metrics.values():
        assert spec.source in catalog.sources


def test_exposition_problems_are_named():
    catalog = load_catalog()
    registry = CollectorRegistry()
    Counter("ticketmon_payments", "p", ["provider", "outcome"], registry=registry) \
        .labels("stripe", "failure").inc()
    Gauge("ticketmon_tickets_sold_total_wrong", "x", registry=registry).set(1)
    Gauge("ticketmon_service_up", "x", ["svc"], registry=registry).labels("a").set(1)
    problems = catalog.check_exposition(generate_latest(registry).decode(), source="system")
    assert "ticketmon_payments_total: catalogued under source 'business', not 'system'" \
        in problems
    assert any("outcome='failure' is not one of" in p for p in problems)
    assert "ticketmon_tickets_sold_total_wrong: not in the metric catalog" in problems
    assert any(p.startswith("ticketmon_service_up: labels ['svc']") for p in problems)


def test_require_all_lists_missing_families():
    catalog = load_catalog()
    problems = catalog.check_exposition("", source="fraud", require_all=True)
    assert "ticketmon_fraud_checks_total: in the catalog for fraud but not exposed" in problems


def test_garbage_exposition_is_reported_not_raised():
    assert load_catalog().check_exposition("ticketmon_x{ 1\n")[0].startswith("not valid")


@pytest.mark.parametrize("body, key", [
    ("sources: {}\nmetrics: [{name: a_total, type: counter, source: nowhere}]", "unknown source"),
    ("sources: {s: {kind: exporter, job: j}}\nmetrics: [{name: a, type: counter, source: s}]",
     "must end in _total"),
    ("sources: {s: {kind: exporter, job: j}}\nmetrics: [{name: a, type: gauge, source: s,"
     " labels: [x], values: {y: [b]}}]", "unknown labels"),
    ("sources: {s: {kind: exporter, job: j}}\nmetrics: [{name: a, type: gauge, source: s,"
     " colour: red}]", "metrics.0.colour"),
    ("- not a mapping", "top level must be a mapping"),
])
def test_bad_catalog_file_names_the_problem(tmp_path, body, key):
    path = tmp_path / "catalog.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError) as err:
        load_catalog(path)
    assert key in str(err.value)
