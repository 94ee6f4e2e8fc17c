"""The main job's shorter demo windows: applied to the real rules, still valid for
promtool, and refused loudly once they no longer apply."""

from __future__ import annotations

import glob
from pathlib import Path

import pytest
import yaml

from ticketmon.core.config import ConfigError
from ticketmon.rules import promtool
from ticketmon.rules.lint import load_rules
from ticketmon.stack import deploy_config
from ticketmon.stack.demo_rules import DEMO_RULES, load_overrides, write_demo_rules
from ticketmon.stack.up import DEPLOY


def _alerts(globs: list[str]) -> dict[str, dict]:
    files = [p for g in globs for p in glob.glob(g)]
    return {r["alert"]: r for _, _, r in load_rules(Path(f) for f in files) if "alert" in r}


def test_the_main_jobs_rules_get_the_demo_windows_and_pass_promtool(tmp_path):
    cfg = deploy_config.prometheus_config(DEPLOY / "prometheus" / "prometheus.yml", {})
    globs = write_demo_rules(cfg["rule_files"], DEMO_RULES, tmp_path)
    production, demo = _alerts(cfg["rule_files"]), _alerts(globs)
    assert production.keys() == demo.keys()  # every rule file copied, none lost
    overrides = load_overrides(DEMO_RULES)
    for name, rule in demo.items():
        if name not in overrides:
            assert rule == production[name], name
            continue
        assert rule.get("for") == overrides[name].get("for", production[name].get("for"))
        assert rule != production[name]
    assert "[10m] offset 2m" in demo["FraudBotSurge"]["expr"]
    result = promtool.check_rules([Path(p) for g in globs for p in glob.glob(g)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("override,message", [
    ({"alerts": {"NoSuchAlert": {"for": "1m"}}}, "no rule file has alert"),
    ({"alerts": {"FraudBotSurge": {"replace": {"[2h]": "[5m]"}}}}, "not in the expression"),
    ({"alerts": {"FraudBotSurge": {"four": "1m"}}}, "unknown key"),
    ({"alerts": ["FraudBotSurge"]}, "must map alert names"),
])
def test_an_override_that_no_longer_applies_stops_the_start(tmp_path, override, message):
    bad = tmp_path / "demo_rules.yaml"
    bad.write_text(yaml.safe_dump(override))
    cfg = deploy_config.prometheus_config(DEPLOY / "prometheus" / "prometheus.yml", {})
    with pytest.raises(ConfigError, match=message):
        write_demo_rules(cfg["rule_files"], bad, tmp_path / "out")
