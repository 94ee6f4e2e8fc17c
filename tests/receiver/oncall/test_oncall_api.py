"""The on-call API, the CLI and the iCalendar export: they agree; overrides are audited
and refuse overlaps; Slack's Acknowledge button needs a fresh, valid signature."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import icalendar
import pytest
import yaml
from oncall_helpers import SIGNING, slack_click, write_oncall
from test_escalation_flow import open_incident

from receiver.app import create_app
from receiver.escalation.timers import on_incident_event
from receiver.settings import ReceiverSettings
from receiver.store import migrate
from ticketmon.cli import main as ticketmon

VIEWER, OPERATOR = "viewer-token-0123456789abcdef", "operator-token-0123456789abcdef"


def auth(token: str = VIEWER) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def setup(database_url, tmp_path):
    migrate.upgrade(database_url)
    settings = {"database_url": database_url, "webhook_token": "w" * 32,
                "api_tokens": [{"name": "v", "role": "viewer", "tenant": "acme", "token": VIEWER},
                               {"name": "o", "role": "operator", "tenant": "acme",
                                "token": OPERATOR}],
                "oncall": {**write_oncall(tmp_path), "slack_signing_secret": SIGNING}}
    app = create_app(ReceiverSettings(**settings))
    config = tmp_path / "receiver.yaml"
    config.write_text(yaml.safe_dump({k: v for k, v in settings.items()
                                      if k in ("database_url", "oncall")}))
    yield app, app.test_client(), config
    app.extensions["ticketmon_receiver"].store.dispose()


def cli_who(config, schedule: str, at: str, capsys) -> list[str]:
    assert ticketmon(["oncall", "who", "--schedule", schedule, "--at", at, "--json",
                      "--config", str(config)]) == 0
    return [u["name"] for u in json.loads(capsys.readouterr().out)["users"]]


def ics_who(client, schedule: str, at: datetime) -> list[str]:
    body = client.get(f"/api/v1/schedules/{schedule}.ics?from=2026-03-20T00:00:00Z"
                      "&to=2026-04-10T00:00:00Z", headers=auth()).data
    return [str(e["SUMMARY"]).split(" ")[0] for e in
            icalendar.Calendar.from_ical(body).walk("VEVENT")
            if e["DTSTART"].dt <= at < e["DTEND"].dt]


def test_api_cli_and_export_agree_overrides_included(setup, capsys):
    app, client, config = setup
    created = client.post("/api/v1/schedules/weekdays/overrides", headers=auth(OPERATOR),
                          json={"user": "carol", "start": "2026-03-30T06:00:00Z",
                                "end": "2026-03-30T09:00:00+02:00", "reason": "swap"})
    assert created.status_code == 201, created.json
    instants = ["2026-03-27T07:59:59Z", "2026-03-27T08:00:00Z", "2026-03-28T12:00:00Z",
                "2026-03-30T06:30:00Z", "2026-03-30T07:00:00Z", "2026-03-30T15:00:00Z",
                "2026-03-30T16:00:00Z", "2026-04-01T11:00:00Z"]
    seen = set()
    for at in instants:
        api = [u["name"] for u in client.get(f"/api/v1/schedules/weekdays/oncall?at={at}",
                                             headers=auth()).json["users"]]
        when = datetime.fromisoformat(at.replace("Z", "+00:00"))
        assert api == cli_who(config, "weekdays", at, capsys) == ics_who(client, "weekdays",
                                                                         when), at
        seen.add(tuple(api))
    assert {(), ("carol",), ("alice",), ("bob",)} <= seen  # gaps, override and rotation
    answer = client.get("/api/v1/schedules/weekdays/oncall?at=2026-03-30T06:30:00Z",
                        headers=auth()).json
    assert answer["layer"] == "override" and answer["until"] == "2026-03-30T07:00:00Z"


def test_schedule_list_final_shifts_and_user_feed(setup):
    _, client, _ = setup
    listed = client.get("/api/v1/schedules?at=2026-03-16T10:00:00Z", headers=auth()).json
    assert [s["name"] for s in listed["schedules"]] == ["primary", "weekdays"]
    assert listed["schedules"][0]["oncall_now"] == ["alice"]
    shifts = client.get("/api/v1/schedules/weekdays/shifts?from=2026-03-16T00:00:00Z"
                        "&to=2026-03-21T00:00:00Z", headers=auth()).json
    # daily from 2026-01-01: Monday 03-16 is day 74, carol's (74 % 3 == 2)
    assert [s["users"] for s in shifts["shifts"]] == [["carol"], ["alice"], ["bob"],
                                                      ["carol"], ["alice"]]
    assert shifts["shifts"][0] == {"start": "2026-03-16T08:00:00Z",
                                   "end": "2026-03-16T16:00:00Z", "users": ["carol"],
                                   "layer": "rota"}
    assert shifts["coverage"] == pytest.approx(5 * 8 / (5 * 24))
    feed = client.get("/api/v1/users/alice.ics?from=2026-03-16T00:00:00Z"
                      "&to=2026-03-18T00:00:00Z", headers=auth())
    assert feed.mimetype == "text/calendar"
    summaries = sorted(str(e["SUMMARY"]) for e in
                       icalendar.Calendar.from_ical(feed.data).walk("VEVENT"))
    assert summaries == ["alice on call (primary)", "alice on call (weekdays)"]
    assert client.get("/api/v1/schedules/nope/oncall", headers=auth()).status_code == 404
    bad = client.get("/api/v1/schedules/weekdays/oncall?at=yesterday", headers=auth())
    assert bad.status_code == 400 and bad.json["error"]["field"] == "at"
    assert client.get("/api/v1/schedules").status_code == 401


def test_overrides_refuse_overlaps_and_unknown_people_and_are_audited(setup):
    _, client, _ = setup
    url = "/api/v1/schedules/primary/overrides"
    first = client.post(url, headers=auth(OPERATOR), json={
        "user": "bob", "start": "2026-03-28T00:00:00Z", "end": "2026-03-30T00:00:00Z"})
    assert first.status_code == 201
    clash = client.post(url, headers=auth(OPERATOR), json={
        "user": "carol", "start": "2026-03-29T12:00:00Z", "end": "2026-03-31T00:00:00Z"})
    assert clash.status_code == 409 and clash.json["error"]["code"] == "overlapping_override"
    assert f"overlaps override {first.json['id']} (bob" in clash.json["error"]["message"]
    touching = client.post(url, headers=auth(OPERATOR), json={
        "user": "carol", "start": "2026-03-30T00:00:00Z", "end": "2026-03-31T00:00:00Z"})
    assert touching.status_code == 201  # end is exclusive: back to back is fine
    ghost = client.post(url, headers=auth(OPERATOR), json={
        "user": "mallory", "start": "2026-04-01T00:00:00Z", "end": "2026-04-02T00:00:00Z"})
    assert ghost.status_code == 400 and ghost.json["error"]["field"] == "user"
    backwards = client.post(url, headers=auth(OPERATOR), json={
        "user": "bob", "start": "2026-04-02T00:00:00Z", "end": "2026-04-01T00:00:00Z"})
    assert backwards.status_code == 400
    assert client.post(url, headers=auth(VIEWER), json={}).status_code == 403
    gone = client.delete(f"{url}/{first.json['id']}", headers=auth(OPERATOR))
    assert gone.status_code == 200
    listed = client.get(f"{url}?from=2026-03-01T00:00:00Z&to=2026-05-01T00:00:00Z",
                        headers=auth()).json
    assert [o["user"] for o in listed["overrides"]] == ["carol"]
    assert [(a["action"], a["actor"], a["detail"]["user"]) for a in listed["audit"]] == [
        ("override_deleted", "o", "bob"), ("override_created", "o", "carol"),
        ("override_created", "o", "bob")]


def test_slack_button_acknowledges_only_with_a_fresh_valid_signature(setup):
    app, client, _ = setup
    store = app.extensions["ticketmon_receiver"].store
    store.add_hook(on_incident_event)
    incident = open_incident(store)
    url = "/api/v1/slack/actions"
    for body, headers in (slack_click(incident, "U0ALICE01", age=301),  # stale (replay)
                          slack_click(incident, "U0ALICE01", secret="forged-secret"),
                          (slack_click(incident, "U0ALICE01")[0], {})):  # unsigned
        refused = client.post(url, data=body, headers=headers)
        assert refused.status_code == 401 and refused.json["error"]["code"] == \
            "invalid_signature"
    body, headers = slack_click(incident, "U0ALICE01")
    tampered = body.replace(b"U0ALICE01", b"U0BOB0002")
    assert client.post(url, data=tampered, headers=headers).status_code == 401
    done = client.post(url, data=body, headers=headers)
    assert done.status_code == 200 and done.json["text"].startswith("Acknowledged")
    got = client.get(f"/api/v1/incidents/{incident}", headers=auth()).json["incident"]
    assert got["status"] == "acknowledged" and "slack:alice" in json.dumps(got)


def test_coverage_metric_and_promtool(setup, tmp_path):
    from prometheus_client import generate_latest

    from receiver.oncall.metrics import OncallCollector

    app, _, _ = setup
    oncall = app.extensions["ticketmon_oncall"]
    engine = app.extensions["ticketmon_receiver"].store.engine
    text = generate_latest(_registry(OncallCollector(oncall, engine))).decode()
    assert 'ticketmon_oncall_schedule_covered_seconds_ahead{schedule="primary"} 604800.0' \
        in text
    weekdays = [line for line in text.splitlines()
                if line.startswith('ticketmon_oncall_schedule_covered_seconds_ahead{schedule="we')]
    assert float(weekdays[0].split()[-1]) < 3 * 86400  # 8 hours a weekday: gaps every night
    assert "ticketmon_oncall_config_reload_success 1.0" in text
    start = datetime.now(UTC)
    assert oncall.covered_seconds(oncall.schedule("primary"), start) == \
        timedelta(days=7).total_seconds()


def _registry(collector):
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    registry.register(collector)
    return registry
