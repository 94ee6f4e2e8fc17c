"""Default series name real alerts; settings files are checked key by key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from receiver.anomaly.settings import DEFAULT_SERIES, AlertSelector, AnomalyJobSettings

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


DEMO = Path(__file__).resolve().parents[3] / "receiver" / "anomaly" / "demo.yaml"


def test_demo_profile_scores_every_default_series_within_six_minutes():
    from receiver.anomaly.job import first_score_after, stream_config

    section = yaml.safe_load(DEMO.read_text())
    settings = AnomalyJobSettings.model_validate(
        {**section, "prometheus_url": "http://127.0.0.1:9090"})
    assert [s.name for s in settings.series] == [s.name for s in DEFAULT_SERIES]
    assert [s.query for s in settings.series] == [s.query for s in DEFAULT_SERIES]
    for s in settings.series:
        assert s.step_seconds == 5
        # the settings' arithmetic is the stream's (whose first score a stream test checks)
        assert s.points_before_first_score == first_score_after(stream_config(s))
        assert s.points_before_first_score * s.step_seconds <= 360
    # the production defaults need hours: that is why the demo has its own profile
    assert DEFAULT_SERIES[0].points_before_first_score * DEFAULT_SERIES[0].step_seconds > 3600


def test_demo_profile_forecasts_every_capacity_within_three_minutes():
    from receiver.anomaly.forecast_settings import DEFAULT_FORECASTS

    section = yaml.safe_load(DEMO.read_text())
    settings = AnomalyJobSettings.model_validate(section)
    assert [(f.name, f.query, f.by) for f in settings.forecasts] == [
        (f.name, f.query, f.by) for f in DEFAULT_FORECASTS]
    for f in settings.forecasts:
        assert f.step_seconds == 5 and f.min_points * f.step_seconds <= 180


def test_all_forecasts_that_do_not_fit_say_which_and_why():
    with pytest.raises(ValueError, match="all_forecasts does not fit forecast "
                                         "'ticket_inventory': history_seconds"):
        AnomalyJobSettings(all_forecasts={"step_seconds": 1})


def test_all_series_only_overrides_what_it_sets():
    settings = AnomalyJobSettings(all_series={"step_seconds": 120})
    assert {s.step_seconds for s in settings.series} == {120}
    assert [s.relates_to for s in settings.series] == [s.relates_to for s in DEFAULT_SERIES]
    assert AnomalyJobSettings().series == DEFAULT_SERIES
