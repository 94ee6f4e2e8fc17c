"""Lint finds what promtool does not: untested or misnamed alerts, dangling names, style."""

import json

from ticketmon.rules import lint, promtool
from ticketmon.rules.catalog import load_catalog


def _lint_all(rules_dir, dashboards=()):
    files = promtool.rule_files(rules_dir)
    catalog = load_catalog(rules_dir / "metrics-catalog.yaml")
    return (lint.lint_rule_style(files, rules_dir.parent)
            + lint.lint_rule_metrics(files, catalog)
            + lint.lint_tests(files, promtool.test_files(rules_dir))
            + lint.lint_dashboards(list(dashboards), catalog, lint.recorded_names(files)))


def test_repository_rules_are_clean(rules_copy):
    # the runbooks live under rules/, so the copy's parent works as the repository root
    assert _lint_all(rules_copy) == []


def test_a_test_naming_a_missing_alert_fails(rules_copy):
    test_file = rules_copy / "tests" / "fraud.test.yml"
    test_file.write_text(test_file.read_text().replace(
        "alertname: FraudBotSurge\n        exp_alerts: []",
        "alertname: FraudBotSurges\n        exp_alerts: []"))
    problems = _lint_all(rules_copy)
    assert any("alert 'FraudBotSurges' does not exist" in p for p in problems), problems
    assert "alert FraudBotSurge has no unit test in which it stays quiet" in problems


def test_an_alert_without_a_firing_test_fails(rules_copy):
    (rules_copy / "extra.yml").write_text("""
groups:
  - name: extra
    rules:
      - alert: BrandNewAlert
        expr: ticketmon_active_users < 1
        labels: {severity: warning, service: sales}
        annotations:
          summary: s
          description: d
          runbook_url: https://github.com/ticketmon/ticketmon/blob/main/rules/runbooks/business.md#brandnewalert
""")
    problems = _lint_all(rules_copy)
    assert "alert BrandNewAlert has no unit test in which it fires" in problems
    assert "alert BrandNewAlert has no unit test in which it stays quiet" in problems
    assert any("has no '## BrandNewAlert' section" in p for p in problems)


def test_style_and_dangling_names(rules_copy):
    (rules_copy / "bad.yml").write_text("""
groups:
  - name: bad
    rules:
      - record: payments_ratio
        expr: ticketmon_payment_total
      - alert: payment_failures
        expr: ticketmon_payments_total{outcome="failure", gateway="x"} > 0
        labels: {severity: page}
        annotations: {summary: s, runbook_url: "http://wiki/payments"}
""")
    problems = [p for p in _lint_all(rules_copy) if p.startswith("bad.yml")]
    expected = [
        "recording rule 'payments_ratio' is not named level:metric:operations",
        "alert names are CamelCase",
        "label severity must be one of",
        "missing annotation description",
        "runbook_url must be https://github.com/ticketmon/ticketmon/blob/main/",
        "dangling metric name ticketmon_payment_total",
        "ticketmon_payments_total has no label 'gateway'",
        "ticketmon_payments_total{outcome} value(s) ['failure']",
    ]
    for fragment in expected:
        assert any(fragment in p for p in problems), (fragment, problems)


def test_firing_case_must_carry_severity_and_service(rules_copy):
    test_file = rules_copy / "tests" / "fraud.test.yml"
    test_file.write_text(test_file.read_text().replace(
        "exp_labels: {severity: warning, service: fraud}", "exp_labels: {severity: warning}", 1))
    problems = _lint_all(rules_copy)
    assert any("firing FraudBotSurge lacks label(s) ['service']" in p for p in problems)


def test_dashboard_dangling_names_and_variables(rules_copy, tmp_path):
    board = {
        "panels": [{"id": 1, "title": "Sold", "type": "timeseries", "targets": [
            {"expr": 'sum(rate(ticketmon_tickets_sold_total{event=~"$event"}[$__rate_interval]))'},
            {"expr": "sum(ticketmon_tickets_unsold)"}]},
            {"id": 2, "type": "row", "panels": [{"id": 3, "targets": [
                {"expr": "slo:error_budget_remaining:ratio"}]}]}],
        "templating": {"list": [
            {"name": "event", "type": "query",
             "query": {"query": "label_values(ticketmon_event_on_sal, event)"}}]},
    }
    path = tmp_path / "board.json"
    path.write_text(json.dumps(board))
    problems = _lint_all(rules_copy, [path])
    assert problems == [
        "board.json: panel 1 'Sold': dangling metric name ticketmon_tickets_unsold",
        "board.json: variable event: dangling metric name ticketmon_event_on_sal",
    ]


def test_unreadable_files_are_named_not_raised(rules_copy, tmp_path, capsys):
    from ticketmon.cli import main

    (rules_copy / "broken.yml").write_text("groups: [name: x\n")
    assert main(["rules", "lint", "--rules-dir", str(rules_copy)]) == 2
    assert "broken.yml: cannot read YAML" in capsys.readouterr().err
    (rules_copy / "broken.yml").write_text("groups: {name: x}\n")
    assert main(["rules", "lint", "--rules-dir", str(rules_copy)]) == 2
    assert "broken.yml: groups must be a list of mappings" in capsys.readouterr().err
    (rules_copy / "broken.yml").unlink()
    board = tmp_path / "bad.json"
    board.write_text("{not json")
    catalog = load_catalog(rules_copy / "metrics-catalog.yaml")
    problems = lint.lint_dashboards([board], catalog, set())
    assert problems[0].startswith("bad.json: not valid JSON")


def test_a_test_over_several_groups_must_fix_their_order(rules_copy):
    test_file = rules_copy / "tests" / "business-longwindow.test.yml"
    test_file.write_text("".join(line for line in test_file.read_text().splitlines(True)
                                 if not line.startswith("group_eval_order")))
    problems = _lint_all(rules_copy)
    assert any(p.startswith("business-longwindow.test.yml: group_eval_order must put "
                            "ticketmon-business-recording before ticketmon-business,")
               for p in problems), problems
    test_file = rules_copy / "tests" / "system.test.yml"
    test_file.write_text(test_file.read_text().replace(
        "[ticketmon-system-recording, ticketmon-system]",
        "[ticketmon-system, ticketmon-system-recording]"))
    assert any(p.startswith("system.test.yml: group_eval_order must put") for p in
               _lint_all(rules_copy))


def _thresholds(rules_dir, jsonnet_dir=None):
    from ticketmon.dashboards import JSONNET_DIR

    return lint.lint_thresholds(promtool.rule_files(rules_dir), jsonnet_dir or JSONNET_DIR)


def test_dashboard_thresholds_equal_the_alerts(rules_copy):
    assert _thresholds(rules_copy) == []


def test_an_alert_threshold_changed_alone_is_named(rules_copy):
    rule_file = rules_copy / "business.yml"
    rule_file.write_text(rule_file.read_text().replace(
        "ratio_rate10m > 0.10", "ratio_rate10m > 0.15"))
    assert _thresholds(rules_copy) == [
        "business.yml: alert PaymentFailureRatioHigh fires at 0.15 but config.libsonnet: "
        "_config.thresholds.paymentFailureRatio is 0.1: dashboards and alerts must turn red "
        "at the same value"]


def test_a_dashboard_threshold_changed_alone_or_unmapped_is_named(rules_copy, tmp_path):
    import shutil

    from ticketmon.dashboards import JSONNET_DIR
    from ticketmon.rules.cli import JSONNET_DIR as CLI_JSONNET_DIR

    assert CLI_JSONNET_DIR == JSONNET_DIR
    jsonnet = tmp_path / "jsonnet"
    shutil.copytree(JSONNET_DIR, jsonnet)
    config = jsonnet / "config.libsonnet"
    config.write_text(config.read_text()
                      .replace("slotLag: 50,", "slotLag: 40,\n      queueDepth: 7,")
                      .replace("'HostHighCPU'", "'HostCPUHigh'"))
    problems = _thresholds(rules_copy, jsonnet)
    assert problems == [
        "config.libsonnet: _config.thresholdAlerts.cpuRatio: alert 'HostCPUHigh' is in no "
        "rule file",
        "config.libsonnet: _config.thresholds.queueDepth: name the alert it mirrors in "
        "_config.thresholdAlerts.queueDepth (null if only panels use it)",
        "blockchain.yml: alert SolanaSlotLagHigh fires at 50 but config.libsonnet: "
        "_config.thresholds.slotLag is 40: dashboards and alerts must turn red at the same "
        "value",
    ]


def test_cli_lint_checks_thresholds_and_names_broken_jsonnet(rules_copy, tmp_path, capsys):
    from ticketmon.cli import main

    rule_file = rules_copy / "system.yml"
    rule_file.write_text(rule_file.read_text().replace(
        "instance:node_cpu_utilisation:ratio_rate5m > 0.80",
        "instance:node_cpu_utilisation:ratio_rate5m > 0.85"))
    assert main(["rules", "lint", "--rules-dir", str(rules_copy)]) == 1
    assert "system.yml: alert HostHighCPU fires at 0.85" in capsys.readouterr().err
    (tmp_path / "config.libsonnet").write_text("{ _config+:: { thresholds: } }")
    assert main(["rules", "lint", "--rules-dir", str(rules_copy),
                 "--jsonnet-dir", str(tmp_path)]) == 2
    assert "config.libsonnet: does not evaluate" in capsys.readouterr().err
