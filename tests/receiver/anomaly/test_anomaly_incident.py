"""Incident enrichment: an incident shows the scores of its related series when it opened."""

from __future__ import annotations

from datetime import UTC, datetime

from support.receiver import payload_bytes

from receiver.anomaly import scores as anomaly_store


def post_firing(client):
    """A payload a real Alertmanager 0.25 posted (dev mode: no token needed)."""
    return client.post("/api/v1/alertmanager", data=payload_bytes("firing"),
                       headers={"Content-Type": "application/json"})


WHY = {"feature": "seasonal", "direction": "below", "past_threshold_spreads": 3.2,
       "summary": "seasonal below its training range by 3.2 spreads",
       "season": {"period_points": 1440, "seasons": 1, "lag_seconds": 86400.0}}


def save(app, name: str, score: float, anomalous: bool, relates_to: list[dict]) -> None:
    store = app.extensions["ticketmon_receiver"].store
    latest = anomaly_store.LatestScore(name, score, anomalous, 1.0,
                                       datetime(2026, 11, 22, tzinfo=UTC), relates_to,
                                       WHY if anomalous else None)
    with store.transaction() as conn:
        anomaly_store.save_score(conn, latest, datetime.now(UTC))


def test_incident_shows_scores_of_related_series_at_open_time(make_app):
    app = make_app(dev=True)
    save(app, "related", 0.9999, True, [{"alertname": "TicketingE2ETrip"}])
    save(app, "by_label", 0.42, False, [{"labels": {"team": "ticketing"}}])
    save(app, "unrelated", 0.99, True, [{"alertname": "Other"},
                                       {"labels": {"team": "payments"}}])
    client = app.test_client()
    assert post_firing(client).status_code == 200
    incident_id = client.get("/api/v1/incidents").get_json()["incidents"][0]["id"]
    save(app, "related", 0.1, False, [{"alertname": "TicketingE2ETrip"}])  # later: no effect
    body = client.get(f"/api/v1/incidents/{incident_id}").get_json()["incident"]
    scores = {s["series"]: (s["score"], s["anomalous"]) for s in body["anomaly_scores"]}
    assert scores == {"related": (0.9999, True), "by_label": (0.42, False)}
    why = {s["series"]: s["explanation"] for s in body["anomaly_scores"]}
    assert why == {"related": WHY, "by_label": None}  # as it was when the incident opened


def test_incident_without_related_series_has_an_empty_list(make_app):
    app = make_app(dev=True)
    client = app.test_client()
    assert post_firing(client).status_code == 200
    incident_id = client.get("/api/v1/incidents").get_json()["incidents"][0]["id"]
    body = client.get(f"/api/v1/incidents/{incident_id}").get_json()["incident"]
    assert body["anomaly_scores"] == []
