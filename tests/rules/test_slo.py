"""SLO spec -> rules: golden output, validation of bad specs, and the build --check gate."""

from pathlib import Path

import pytest

from ticketmon.core.config import ConfigError
from ticketmon.rules import build, slo
from ticketmon.rules.cli import build as build_cmd

GOLDEN = Path(__file__).parent / "golden"


def test_generated_rules_match_the_golden_file():
    rendered = slo.render(slo.generate(slo.load_spec(GOLDEN / "slos.yaml")))
    assert rendered == (GOLDEN / "slos.yml").read_text()


def test_golden_rules_pass_promtool(tmp_path):
    from ticketmon.rules.promtool import check_rules

    result = check_rules([GOLDEN / "slos.yml"])
    assert result.returncode == 0, result.stderr


def test_burn_tiers_and_windows():
    spec = slo.load_spec(GOLDEN / "slos.yaml")
    group = slo.generate(spec)["groups"][0]
    alerts = {r["alert"]: r for r in group["rules"] if "alert" in r}
    assert alerts["ErrorBudgetBurnFast"]["labels"] == {
        "slo": "api-availability", "service": "api", "severity": "critical", "burn_tier": "page"}
    assert alerts["ErrorBudgetBurnSlow"]["labels"]["burn_tier"] == "ticket"
    fast = alerts["ErrorBudgetBurnFast"]["expr"]
    assert "ratio_rate1h" in fast and "ratio_rate5m" in fast and "(14.4 * 0.001)" in fast
    assert "ratio_rate6h" in fast and "ratio_rate30m" in fast and "(6 * 0.001)" in fast
    slow = alerts["ErrorBudgetBurnSlow"]["expr"]
    assert "ratio_rate1d" in slow and "ratio_rate2h" in slow and "(3 * 0.001)" in slow
    assert "ratio_rate3d" in slow and "(1 * 0.001)" in slow
    records = {r["record"] for r in group["rules"] if "record" in r}
    assert {"slo:sli_error:ratio_rate28d", "slo:error_budget_remaining:ratio",
            "slo:objective:ratio", "slo:error_budget:ratio"} <= records


def test_generation_is_pure():
    spec = slo.load_spec(GOLDEN / "slos.yaml")
    assert slo.generate(spec) == slo.generate(spec)


SLI = "sli: {kind: availability, metric: http_requests_total, bad: 'code=~\"5..\"'}"


@pytest.mark.parametrize("body, key", [
    (f"slos: [{{name: a, service: s, description: d, objective: 99.5, {SLI}}}]",
     "slos.0.objective"),
    (f"slos: [{{name: A B, service: s, description: d, objective: 0.9, {SLI}}}]",
     "slos.0.name"),
    (f"slos: [{{name: a, service: s, description: d, objective: 0.9, window: month, {SLI}}}]",
     "not a duration"),
    ("slos: [{name: a, service: s, description: d, objective: 0.9,"
     " sli: {kind: latency, metric: m}}]", "needs threshold_seconds"),
    ("slos: [{name: a, service: s, description: d, objective: 0.9,"
     " sli: {kind: availability, metric: m}}]", "needs `bad`"),
    (f"slos: [{{name: a, service: s, description: d, objective: 0.9, {SLI}}},"
     f" {{name: a, service: t, description: d, objective: 0.9, {SLI}}}]", "must be unique"),
    ("slos: []", "slos"),
    (f"slos: [{{name: a, service: s, description: d, objective: 0.9, team: x, {SLI}}}]",
     "slos.0.team"),
])
def test_bad_spec_names_the_key(tmp_path, body, key):
    path = tmp_path / "slos.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError) as err:
        slo.load_spec(path)
    assert key in str(err.value)


def test_build_check_catches_a_stale_or_hand_edited_file(rules_copy, capsys):
    class Args:
        rules_dir = rules_copy
        check = True

    assert build_cmd(Args) == 0
    spec = rules_copy / "slo" / "slos.yaml"
    text = spec.read_text()
    assert "objective: 0.99\n" in text
    spec.write_text(text.replace("objective: 0.99\n", "objective: 0.999\n"))
    assert build_cmd(Args) == 1
    assert "-    expr: vector(0.99)" in capsys.readouterr().err
    Args.check = False
    assert build_cmd(Args) == 0
    Args.check = True
    assert build_cmd(Args) == 0
    out = rules_copy / "generated" / "slos.yml"
    out.write_text(out.read_text() + "# hand edit\n")
    assert build.build(check=True, spec_file=spec, output_dir=out.parent)
