"""What CI runs: `ticketmon rules check|test|build --check|lint` on the repository."""

import pytest

from ticketmon.cli import main
from ticketmon.rules import lint, promtool


@pytest.mark.parametrize("argv", [["check"], ["test"], ["build", "--check"], ["lint"]])
def test_repository_passes(argv, capsys):
    assert main(["rules", *argv]) == 0, capsys.readouterr()


def test_every_alert_counted(capsys):
    files = promtool.rule_files()
    alerts = lint.alert_names(files)
    assert len(alerts) >= 25
    assert main(["rules", "lint"]) == 0
    assert f"({len(alerts)} alerts," in capsys.readouterr().out


def test_a_broken_threshold_fails_the_unit_tests(rules_copy, capsys):
    business = rules_copy / "business.yml"
    business.write_text(business.read_text().replace(
        "provider:ticketmon_payments_failed:ratio_rate10m > 0.10",
        "provider:ticketmon_payments_failed:ratio_rate10m > 0.30"))
    result = promtool.test_rules([rules_copy / "tests" / "business.test.yml"])
    assert result.returncode != 0
    assert "alertname: PaymentFailureRatioHigh" in result.stdout + result.stderr


def test_a_syntax_error_fails_check(rules_copy, capsys):
    (rules_copy / "broken.yml").write_text(
        "groups: [{name: x, rules: [{record: 'a:b:c', expr: 'sum(('}]}]\n")
    assert main(["rules", "check", "--rules-dir", str(rules_copy)]) == 1


def test_missing_promtool_says_how_to_install(monkeypatch, capsys):
    monkeypatch.setenv("PROMTOOL", "/nonexistent/promtool")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert main(["rules", "check"]) == 1
    assert "apt-get install prometheus" in capsys.readouterr().err
