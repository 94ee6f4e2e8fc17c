"""Each pattern fires on its signal and stays quiet without it, through the real API."""

from __future__ import annotations

import pytest

HUMAN = {
    "user_id": "alice", "event_id": "evt-1", "quantity": 2,
    "requests_per_minute": 4, "payment_methods_recent": 1,
    "ip": "203.0.113.7", "geo": {"lat": 48.85, "lon": 2.35},
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0",
    "session": {"duration_seconds": 240, "mouse_movements": 311,
                "keystroke_intervals_ms": [130, 95, 210, 160, 120]},
}


def check(client, **changes):
    body = {**HUMAN, **changes}
    answer = client.post("/api/v1/fraud/check", json=body)
    assert answer.status_code == 200, answer.json
    return answer.json


def fired(answer) -> set[str]:
    return {p["pattern"] for p in answer["patterns"]}


def test_a_human_purchase_is_allowed_with_full_confidence(client):
    answer = check(client)
    assert answer["patterns"] == [] and answer["risk_score"] == 0
    assert answer["risk_level"] == "low" and answer["decision"] == "allow"
    assert answer["confidence"] == pytest.approx(7 / 9, abs=0.01)  # no travel, no timing yet


@pytest.mark.parametrize("pattern, fires, quiet, weight", [
    ("rapid_requests", {"requests_per_minute": 61}, {"requests_per_minute": 60}, 30),
    ("many_payment_methods", {"payment_methods_recent": 4}, {"payment_methods_recent": 3}, 25),
    ("bulk_purchase", {"quantity": 11}, {"quantity": 10}, 35),
    ("bot_user_agent", {"user_agent": "Mozilla/5.0 (compatible; Googlebot/2.1)"},
     {"user_agent": "Mozilla/5.0 (Macintosh) Safari/605.1.15"}, 50),
    ("bot_user_agent", {"user_agent": "python-requests/2.31.0"},
     {"user_agent": "Mozilla/5.0 (iPhone) Mobile/15E148"}, 50),
    ("no_mouse_movement", {"session": {"mouse_movements": 0}},
     {"session": {"mouse_movements": 1}}, 30),
    ("inhuman_typing", {"session": {"keystroke_intervals_ms": [4, 5, 3, 6, 4]}},
     {"session": {"keystroke_intervals_ms": [40, 55, 30, 62, 48]}}, 25),
    ("short_session", {"session": {"duration_seconds": 4.9}},
     {"session": {"duration_seconds": 5}}, 20),
])
def test_pattern_fires_above_its_threshold_only(client, pattern, fires, quiet, weight):
    hit = check(client, user_id="hit", **fires)
    assert fired(hit) == {pattern}
    assert hit["risk_score"] == weight
    assert hit["patterns"][0]["contribution"] == weight and hit["patterns"][0]["detail"]
    miss = check(client, user_id="miss", **quiet)
    assert fired(miss) == set()


def test_impossible_travel_uses_given_or_remembered_location(client, clock):
    paris, new_york = {"lat": 48.85, "lon": 2.35}, {"lat": 40.71, "lon": -74.0}
    # previous location sent by the checkout: 5800 km in 30 minutes
    answer = check(client, user_id="t1", geo=new_york,
                   previous_geo={**paris, "at": clock.now - 1800})
    assert fired(answer) == {"impossible_travel"} and answer["risk_score"] == 20
    # the same trip in 9 hours is a flight, not fraud
    answer = check(client, user_id="t2", geo=new_york,
                   previous_geo={**paris, "at": clock.now - 9 * 3600})
    assert fired(answer) == set()
    # remembered from the user's previous check
    check(client, user_id="t3", geo=paris)
    clock.advance(600)
    assert fired(check(client, user_id="t3", geo=new_york)) == {"impossible_travel"}
    # fast but short: Paris to Lyon (390 km) in 10 minutes is under the distance threshold
    check(client, user_id="t4", geo=paris)
    clock.advance(600)
    assert fired(check(client, user_id="t4", geo={"lat": 45.76, "lon": 4.84})) == set()


def test_machine_regular_timing_fires_for_metronomes_not_people(client, clock):
    for _ in range(5):
        assert "machine_timing" not in fired(check(client, user_id="bot"))
        clock.advance(2.0)
    assert "machine_timing" in fired(check(client, user_id="bot"))  # 5 gaps of exactly 2 s
    for gap in (3.1, 7.4, 1.2, 12.9, 4.4, 2.2):
        clock.advance(gap)
        assert "machine_timing" not in fired(check(client, user_id="person"))


def test_request_rate_falls_back_to_the_users_own_checks(client, clock):
    body = {k: v for k, v in HUMAN.items() if k != "requests_per_minute"}
    for _ in range(8):
        answer = client.post("/api/v1/fraud/check", json={**body, "user_id": "burst"}).json
        clock.advance(0.5 + 0.3 * (_ % 3))  # irregular, so only the rate fires
    assert "rapid_requests" in fired(answer)


def test_missing_optional_signals_lower_confidence_not_fail(client):
    answer = client.post("/api/v1/fraud/check",
                         json={"user_id": 42, "event_id": 7, "quantity": 1}).json
    assert answer["decision"] == "allow" and answer["confidence"] == pytest.approx(1 / 9,
                                                                                    abs=0.01)


def test_scores_add_up_to_levels_and_decisions(client):
    bot = check(client, user_id="scalper", quantity=40, requests_per_minute=300,
                user_agent="HeadlessChrome/120", payment_methods_recent=6)
    assert bot["risk_score"] == 100 and bot["risk_level"] == "critical"
    assert bot["decision"] == "block"
    mid = check(client, user_id="mid", quantity=11, session={"duration_seconds": 2})
    assert mid["risk_score"] == 55 and mid["risk_level"] == "medium"
    assert mid["decision"] == "review"


def test_weights_and_thresholds_come_from_config(make_fraud_app):
    app = make_fraud_app(patterns={"bulk_purchase": {"tickets_above": 4, "weight": 90},
                                   "bot_user_agent": {"enabled": False}})
    c = app.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = "Bearer tm_checkout_token_0123456789"
    answer = check(c, quantity=5, user_agent="curl/8.0")
    assert fired(answer) == {"bulk_purchase"} and answer["decision"] == "block"


def test_outlier_fires_like_a_pattern_only_at_or_above_its_threshold():
    from exporters.fraud.patterns import Evaluation, add_outlier
    from exporters.fraud.settings import Outlier

    cfg = Outlier(weight=50, above=0.95)
    for score, fires in ((None, False), (0.2, False), (0.9499, False), (0.95, True), (1.0, True)):
        ev = Evaluation()
        add_outlier(ev, score, cfg)
        assert [f.contribution for f in ev.fired] == ([50] if fires else []), score
    ev = Evaluation()
    add_outlier(ev, 1.0, Outlier(weight=0))
    assert ev.fired == []


def test_labelled_mix_draws_every_kind_with_its_share():
    import random

    from ticketmon.simulator.checkout import KINDS, CheckoutSettings, labelled

    rng = random.Random(1)
    kinds = [labelled(rng, {"bot": 0.1, "scalper": 0.1, "evasive_bot": 0.1},
                      CheckoutSettings())[0] for _ in range(2000)]
    assert set(kinds) == set(KINDS)
    assert 0.6 < kinds.count("human") / len(kinds) < 0.8
