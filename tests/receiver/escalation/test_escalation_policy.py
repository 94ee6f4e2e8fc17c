"""Policies as code: matching, schedules, and start-up errors that name the policy."""

from __future__ import annotations

import pytest
import yaml

from receiver import severity
from receiver.escalation.policy import load_policies, parse_policies
from ticketmon.core.config import ConfigError
from ticketmon.core.durations import parse_duration


def test_shipped_policies_follow_the_defaults():
    policies = load_policies()
    critical = policies.match({"severity": "critical", "service": "sales"})
    assert critical.name == "critical"
    assert [s.after for s in critical.steps] == [0, 300, 900, 1800]
    error = policies.match({"severity": "error"})
    assert [s.after for s in error.steps] == [900, 3600]
    warning = policies.match({"severity": "warning"})
    assert len(warning.steps) == 1 and warning.steps[0].channels == ["slack"]
    assert warning.repeat is None and warning.next_position(0, 0) is None
    # an SLO page-tier burn pages whatever its severity label says
    assert policies.match({"severity": "warning", "burn_tier": "page"}).name == "slo-fast-burn"
    assert policies.match({"severity": "info"}) is None


def test_shipped_policies_match_label_values_the_rules_really_set(repo_root):
    """A policy keyed on a value no alert carries would never escalate anything."""
    emitted: dict[str, set[str]] = {}
    for path in [*repo_root.glob("rules/*.yml"), *repo_root.glob("rules/generated/*.yml")]:
        for group in yaml.safe_load(path.read_text()).get("groups", []):
            for rule in group["rules"]:
                for key, value in rule.get("labels", {}).items() if "alert" in rule else ():
                    emitted.setdefault(key, set()).add(str(value))
    emitted["severity"] = emitted.get("severity", set()) | set(severity.KNOWN)
    for policy in load_policies().policies:
        for key, wanted in policy.match.items():
            if key in ("severity", "burn_tier"):
                values = wanted if isinstance(wanted, list) else [wanted]
                assert set(values) & emitted.get(key, set()), (policy.name, key, values)


def test_match_on_several_labels_and_lists():
    policies = parse_policies({"policies": [
        {"name": "acme-payments", "match": {"tenant": "acme", "service": ["payments", "sales"]},
         "steps": [{"channels": ["pd"]}]},
        {"name": "everything-else", "steps": [{"channels": ["chat"]}]},
    ]})
    assert policies.match({"tenant": "acme", "service": "sales"}).name == "acme-payments"
    assert policies.match({"tenant": "acme", "service": "search"}).name == "everything-else"
    assert policies.match({}).name == "everything-else"


def test_repeat_schedule_until_the_limit():
    policy = parse_policies({"policies": [{
        "name": "p",
        "steps": [{"after": "0s", "channels": ["a"]}, {"after": "5m", "channels": ["b"]}],
        "repeat": {"every": "1h", "times": 2},
    }]}).policies[0]
    positions, pos = [], (0, 0)
    while pos is not None:
        positions.append((pos, policy.due_offset(*pos)))
        pos = policy.next_position(*pos)
    assert positions == [((0, 0), 0), ((1, 0), 300), ((0, 1), 3600), ((1, 1), 3900),
                         ((0, 2), 7200), ((1, 2), 7500)]


@pytest.mark.parametrize("doc, expected", [
    ({"policies": [{"name": "p", "steps": []}]}, "policy 'p': steps: List should have at least 1"),
    ({"policies": [{"name": "p", "steps": [{"after": "soon", "channels": ["a"]}]}]},
     "policy 'p': steps.0.after: Value error, 'soon' is not a duration"),
    ({"policies": [{"name": "p", "steps": [{"after": "5m", "channels": ["a"]},
                                           {"after": "1m", "channels": ["a"]}]}]},
     "policy 'p': (policy): Value error, steps must be in order"),
    ({"policies": [{"name": "p", "steps": [{"after": "1h", "channels": ["a"]}],
                    "repeat": {"every": "30m"}}]}, "repeat.every must be longer"),
    ({"policies": [{"name": "p", "match": {"bad-label": "x"}, "steps": [{"channels": ["a"]}]}]},
     "policy 'p': match: Value error, 'bad-label' is not a label name"),
    ({"policies": [{"name": "p", "stepz": [{"channels": ["a"]}]}]}, "policy 'p': stepz: Extra"),
    ({"policies": [{"steps": [{"channels": ["a"]}]}]}, "policies[0]: name: Field required"),
    ({"policies": [{"name": "p", "steps": [{"channels": ["a"]}]},
                   {"name": "p", "steps": [{"channels": ["a"]}]}]}, "duplicate policy name"),
    ({"policy": []}, "expected a mapping with a `policies` list"),
    ([1, 2], "expected a mapping with a `policies` list"),
])
def test_errors_name_the_policy(doc, expected):
    with pytest.raises(ConfigError) as exc:
        parse_policies(doc, "policies.yaml")
    assert expected in str(exc.value)
    assert "policies.yaml" in str(exc.value)


def test_unknown_channel_fails_start_naming_policy_and_channel():
    policies = load_policies()
    with pytest.raises(ConfigError) as exc:
        policies.check_channels({"slack", "email", "webhook"})
    assert "policy 'critical': unknown channel 'pagerduty'" in str(exc.value)
    policies.check_channels({"slack", "email", "webhook", "pagerduty"})


def test_bad_yaml_file_is_a_config_error(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("policies: [ {name: x\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_policies(path)
    path.write_text(yaml.safe_dump({"policies": [{"name": "x", "steps": [{"channels": ["a"]}]}]}))
    assert load_policies(path).by_name["x"].steps[0].after == 0


def test_durations():
    """One syntax for every duration (ticketmon.core.durations), days and weeks too."""
    assert [parse_duration(v) for v in ("30s", "5m", "1h30m", "0s", 12, "1.5s", "1d",
                                        "2w1d")] == [30, 300, 5400, 0, 12, 1.5, 86400,
                                                     15 * 86400]
    for bad in ("", "5 minutes", "-1s", -3, True, None, "1h1d", "d"):
        with pytest.raises(ValueError):
            parse_duration(bad)
