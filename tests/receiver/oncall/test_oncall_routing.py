"""Steps that page people: schedule, user and team targets through each person's rules,
over the real worker, the `twilio` library and a Slack bot client against the sink."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import escalation_helpers
import pytest
import sqlalchemy as sa
import test_escalation_flow
from oncall_helpers import BOT, SID, TOKEN, person_worker, write_policy
from oncall_helpers import drain_due as drain
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import SecretStr
from test_escalation_flow import open_incident

from receiver.channels.base import Outcome
from receiver.channels.slack_dm import SlackBotSettings, SlackDirect
from receiver.channels.twilio import TwilioPerson, TwilioSettings
from receiver.escalation.tables import notifications
from receiver.escalation.timers import on_incident_event
from receiver.oncall.people import User
from receiver.store import Store, migrate
from ticketmon.core.config import ConfigError

sink = escalation_helpers.sink
store = test_escalation_flow.store  # a migrated store with the escalation hook
n = notifications.c


def rows(store) -> dict[str, tuple[str, str | None]]:
    with store.engine.connect() as conn:
        found = conn.execute(sa.select(n.channel, n.action, n.state, n.last_error)
                             .order_by(n.id)).all()
    return {f"{c}/{a}": (s, e) for c, a, s, e in found}


def test_schedule_target_pages_the_person_through_two_methods_and_ack_stops_the_third(
        store, sink, tmp_path):
    policies = write_policy(tmp_path / "p.yaml", [
        {"after": "0s", "channels": ["chat"], "targets": [{"schedule": "primary"}]}])
    registry = CollectorRegistry()
    worker = person_worker(store.url, sink, policies, tmp_path, registry)
    incident = open_incident(store)
    drain(worker)
    state = rows(store)
    assert state["slack-dm:alice/trigger"][0] == "delivered"
    assert state["sms:alice/trigger"][0] == "delivered"
    assert state["voice:alice/trigger"][0] == "pending"  # her rule: a call after 10 minutes
    [dm] = sink.received("/api/slack/chat.postMessage")
    body = dm.json()
    assert body["channel"] == "U0ALICE01" and "on call for primary" in body["text"]
    [button] = [e for b in body["blocks"] if b["type"] == "actions" for e in b["elements"]
                if e["action_id"] == "ticketmon_ack"]
    assert button["value"] == str(incident)
    assert dm.headers["Authorization"] == f"Bearer {BOT}"
    [sms] = sink.received(f"/twilio/2010-04-01/Accounts/{SID}/Messages.json")
    form = parse_qs(sms.body.decode())
    assert form["To"] == ["+15005550101"] and f"#{incident}" in form["Body"][0]

    store.change_incident(incident, "acknowledge", "alice", "*")
    drain(worker)
    state = rows(store)
    assert state["voice:alice/trigger"] == ("cancelled", "incident acknowledged")
    assert state["slack-dm:alice/acknowledge"][0] == "delivered"  # the DM says who took it
    assert state["sms:alice/acknowledge"][0] == "cancelled"  # nobody is texted an ack
    assert not sink.received(f"/twilio/2010-04-01/Accounts/{SID}/Calls.json")
    metrics = generate_latest(registry).decode()
    assert 'ticketmon_receiver_notifications_total{channel="sms:",outcome="delivered"}' \
        in metrics


def test_user_and_team_targets_and_a_schedule_with_nobody_on_call(sqlite_url, sink, tmp_path):
    migrate.upgrade(sqlite_url)
    store = Store(sqlite_url, hooks=[on_incident_event])
    policies = write_policy(tmp_path / "p.yaml", [
        {"after": "0s", "targets": [{"user": "carol"}, {"team": "ops"},
                                    {"schedule": "weekdays"}]}])
    worker = person_worker(sqlite_url, sink, policies, tmp_path)
    # the step fires now; 'weekdays' only covers 09-17 Berlin on weekdays
    from receiver.oncall.service import now

    nobody = worker.oncall.who("weekdays", now())[0] == ()
    open_incident(store)
    drain(worker)
    state = rows(store)
    assert state["sms:carol/trigger"][0] == "delivered"  # no slack_id: SMS by default
    assert state["slack-dm:bob/trigger"][0] == "delivered"
    assert state["slack-dm:alice/trigger"][0] == "delivered"  # once, though named twice
    assert len([k for k in state if k.startswith("slack-dm:alice")]) == 1
    if nobody:
        assert state["nobody:schedule:weekdays/trigger"] == (
            "dead", "nobody on call in schedule weekdays")
    store.dispose()


def test_unknown_schedule_in_a_policy_refuses_to_start(sqlite_url, sink, tmp_path):
    policies = write_policy(tmp_path / "p.yaml", [
        {"after": "0s", "targets": [{"schedule": "nightshift"}]}])
    with pytest.raises(ConfigError, match="unknown schedule 'nightshift'"):
        person_worker(sqlite_url, sink, policies, tmp_path)
    with pytest.raises(ConfigError, match="exactly one of schedule, user, team or channel"):
        write_policy(tmp_path / "q.yaml", [{"targets": [{"user": "a", "team": "b"}]}])
        person_worker(sqlite_url, sink, tmp_path / "q.yaml", tmp_path)


def _twilio(sink, token: str = TOKEN, sid: str = SID) -> TwilioSettings:
    return TwilioSettings(account_sid=sid, auth_token=token, from_number="+15005550006",
                          base_url=f"{sink.url}/twilio", timeout=2)


def test_twilio_library_meets_twilio_refusals_in_the_sink(sink):
    from escalation_helpers import make_message

    sink.twilio_token = TOKEN
    good = User(name="alice", phone="+15005550101")
    sent = TwilioPerson("voice", _twilio(sink)).send_to(good, make_message(), "test")
    assert sent.outcome == Outcome.DELIVERED and " CA" in sent.detail
    [call] = sink.received("/twilio/")
    assert "<Say>" in parse_qs(call.body.decode())["Twiml"][0]
    wrong = TwilioPerson("sms", _twilio(sink, token="wrong-token")).send_to(
        good, make_message(), "test")
    assert wrong.outcome == Outcome.PERMANENT and "401 error 20003" in wrong.detail
    bad_number = User.model_construct(name="x", phone="+1", notify=())
    refused = TwilioPerson("sms", _twilio(sink)).send_to(bad_number, make_message(), "t")
    assert refused.outcome == Outcome.PERMANENT and "error 21211" in refused.detail
    sink.fail_next(503)
    busy = TwilioPerson("sms", _twilio(sink)).send_to(good, make_message(), "t")
    assert busy.outcome == Outcome.RETRY
    acked = TwilioPerson("sms", _twilio(sink)).send_to(good, make_message("acknowledge"), "t")
    assert acked.detail == "skipped"


def test_slack_web_api_errors_come_back_as_ok_false(sink):
    from escalation_helpers import make_message

    bot = SlackDirect(SlackBotSettings(bot_token=BOT, api_url=f"{sink.url}/api/slack"))
    assert bot.send_to(User(name="a", slack_id="U0A1"), make_message(), "t").outcome \
        == Outcome.DELIVERED
    lost = bot.send_to(User.model_construct(name="a", slack_id="bogus", notify=()),
                       make_message(), "t")
    assert (lost.outcome, lost.detail) == (Outcome.PERMANENT, "slack error channel_not_found")
    forged = SlackDirect(SlackBotSettings.model_construct(
        bot_token=SecretStr("not-a-token"), api_url=f"{sink.url}/api/slack", timeout=2,
        verify=True))
    refused = forged.send_to(User(name="a", slack_id="U0A1"), make_message(), "t")
    assert refused.detail == "slack error invalid_auth"
    answers = [m.json() for m in sink.received("/api/slack/")]
    assert [a for a in answers if a] and all(isinstance(a, dict) for a in answers)
    assert json.loads(sink.received("/api/slack/")[0].body)["channel"] == "U0A1"
