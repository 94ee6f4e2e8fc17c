"""Default series name real alerts; settings files are checked key by key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from receiver.anomaly.settings import DEFAULT_SERIES, AlertSelector

RULES = Path(__file__).resolve().parents[3] / "rules"


def alerting_rules() -> list[dict]:
    """Every alerting rule of rules/*.yml and rules/generated/*.yml."""
    found = []
    for path in sorted([*RULES.glob("*.yml"), *RULES.glob("generated/*.yml")]):
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups", []):
            found += [r for r in group.get("rules", []) if "alert" in r]
    return found


def unmatched(selector: AlertSelector, rules: list[dict]) -> str | None:
    """Why no alert of `rules` can match the selector (None if one can).

    A rule can match when its name is the selector's alertname (if any) and none of
    its fixed labels contradicts the selector's; a selector without an alertname
    must find every one of its labels fixed on some rule, or it may match nothing.
    """
    candidates = [r for r in rules if selector.alertname in (None, r["alert"])]
    if not candidates:
        return f"no alert named {selector.alertname!r} in rules/"
    for rule in candidates:
        fixed = rule.get("labels") or {}
        agrees = all(fixed.get(k, v) == v for k, v in selector.labels.items())
        pinned = selector.alertname or all(k in fixed for k in selector.labels)
        if agrees and pinned:
            return None
    return f"no alert in rules/ carries labels {selector.labels}"


def test_rules_have_alerts_to_match():
    names = {r["alert"] for r in alerting_rules()}
    assert {"TicketSalesStalled", "PaymentFailureRatioHigh"} <= names


@pytest.mark.parametrize("series", DEFAULT_SERIES, ids=lambda s: s.name)
def test_every_default_relates_to_selector_matches_an_alert_in_rules(series):
    assert series.relates_to, "a default series should relate to some alert"
    rules = alerting_rules()
    problems = [unmatched(sel, rules) for sel in series.relates_to]
    assert [p for p in problems if p] == []


def test_the_check_catches_names_and_labels_that_match_nothing():
    rules = alerting_rules()
    assert "NoSuchAlert" in unmatched(AlertSelector(alertname="NoSuchAlert"), rules)
    assert "labels" in unmatched(AlertSelector(labels={"domain": "business"}), rules)
    assert "labels" in unmatched(
        AlertSelector(alertname="TicketSalesStalled", labels={"service": "payments"}), rules)
    assert unmatched(AlertSelector(alertname="ServiceLatencyP95High",
                                   labels={"service": "checkout"}), rules) is None
