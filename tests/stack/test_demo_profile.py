"""The demo profile (deploy/demo/profile.yaml) turns the shipped rules and Alertmanager
configuration into valid ones with the demo's short windows, and refuses a profile that
would silently stop shortening anything."""

from __future__ import annotations

import glob
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from ticketmon.rules import promtool
from ticketmon.stack import demo_profile, deploy_config
from ticketmon.stack.up import DEPLOY

REPO = Path(__file__).resolve().parents[2]


def _alerts(files: list[Path]) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for path in files:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    found.setdefault(rule["alert"], []).append(rule)
    return found


def test_demo_rules_pass_promtool_and_shorten_what_the_profile_names(tmp_path):
    profile = demo_profile.load()
    written = demo_profile.write_rules(profile, promtool.rule_files(), tmp_path / "rules")
    checked = promtool.check_rules(written)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    shipped, demo = _alerts(promtool.rule_files()), _alerts(written)
    assert set(shipped) == set(demo)
    for name, override in profile.alerts.items():
        for before, after in zip(shipped[name], demo[name], strict=True):
            if override.for_ is not None:
                assert after["for"] == f"{int(override.for_)}s"
            for old, new in override.replace.items():
                assert old not in after["expr"] and new in after["expr"], name
            assert after["labels"] == before["labels"]  # routing and inhibition unchanged
    untouched = set(shipped) - set(profile.alerts)
    assert all(shipped[n] == demo[n] for n in untouched)
    # the rule files say so where each overridden alert is written (the generated SLO
    # rules in their spec)
    sources = "".join(p.read_text() for p in promtool.rule_files())
    spec = (REPO / "rules" / "slo" / "slos.yaml").read_text()
    for name in profile.alerts:
        marked = re.search(rf"# demo profile: .*\n\s*- alert: {name}\n", sources)
        assert marked or re.search(rf"# demo profile: .*\b{name}\b", spec), name


def test_the_profile_covers_every_rule_file_the_main_job_loads():
    cfg = deploy_config.prometheus_config(DEPLOY / "prometheus" / "prometheus.yml", {})
    loaded = sorted(Path(p).resolve() for g in cfg["rule_files"] for p in glob.glob(g))
    assert loaded == sorted(p.resolve() for p in promtool.rule_files())


def test_demo_alertmanager_config_passes_amtool(tmp_path):
    shipped = yaml.safe_load((REPO / "deploy" / "alertmanager" / "alertmanager.yml").read_text())
    cfg = demo_profile.apply_to_alertmanager(demo_profile.load(), shipped)
    assert cfg["route"]["group_interval"] == "15s"
    assert {r.get("group_interval", "15s") for r in cfg["route"]["routes"]} == {"15s"}
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(cfg))
    result = subprocess.run(["amtool", "check-config", str(path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("alerts, message", [
    ({"ServiceDown": {"replace": {"not in the expression": "x"}}}, "does not contain"),
    ({"NoSuchAlert": {"for": "1m"}}, "no rule file has"),
    ({"ServiceDown": {}}, "give `for` or `replace`"),
    ({"ServiceDown": {"for": "soon"}}, "not a duration"),
    ({"ServiceDown": {"four": "1m"}}, "Extra inputs are not permitted"),
    (["ServiceDown"], "valid dictionary"),
])
def test_a_profile_that_would_change_nothing_is_refused(tmp_path, alerts, message):
    with pytest.raises(ValueError, match=message):
        profile = demo_profile.DemoProfile.model_validate({"alerts": alerts})
        demo_profile.write_rules(profile, promtool.rule_files(), tmp_path / "rules")
