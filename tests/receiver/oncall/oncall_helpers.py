"""Shared by the on-call tests: people and schedules on disk, a worker whose Twilio and
Slack bot are the local sink, signed Slack requests."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import urlencode

import yaml
from prometheus_client import CollectorRegistry

from receiver.escalation.settings import WorkerSettings
from receiver.escalation.worker import Worker
from receiver.oncall.slack_signature import sign

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "twilio-auth-token-0123"
BOT = "xoxb-1-test-bot-token"
SIGNING = "slack-signing-secret-0123456789"
WEBHOOK_SECRET = "webhook-signing-secret-0123456789"

PEOPLE = {
    "users": [
        {"name": "alice", "phone": "+15005550101", "slack_id": "U0ALICE01",
         "time_zone": "Europe/Berlin",
         "notify": [{"after": "0m", "via": "slack"}, {"after": "0m", "via": "sms"},
                    {"after": "10m", "via": "voice"}]},
        {"name": "bob", "phone": "+15005550102", "slack_id": "U0BOB0002",
         "notify": [{"after": "0m", "via": "slack"}]},
        {"name": "carol", "phone": "+15005550103", "time_zone": "America/New_York"},
    ],
    "teams": [{"name": "ops", "members": ["alice", "bob"]}],
}
SCHEDULES = {"schedules": [
    {"name": "primary", "team": "ops", "time_zone": "Europe/Berlin", "layers": [
        {"name": "always-alice", "rotation": "weekly", "start": "2026-01-05",
         "users": ["alice"]}]},
    {"name": "weekdays", "time_zone": "Europe/Berlin", "layers": [
        {"name": "rota", "rotation": "daily", "start": "2026-01-01", "handoff": "09:00",
         "users": ["alice", "bob", "carol"],
         "restrictions": [{"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00",
                           "to": "17:00"}]}]},
]}


def write_oncall(directory: Path, people: dict = PEOPLE, schedules: dict = SCHEDULES
                 ) -> dict:
    (directory / "people.yaml").write_text(yaml.safe_dump(people))
    (directory / "schedules.yaml").write_text(yaml.safe_dump(schedules))
    return {"people_file": str(directory / "people.yaml"),
            "schedules_file": str(directory / "schedules.yaml")}


def oncall_settings(directory: Path, sink_url: str, **extra) -> dict:
    return {**write_oncall(directory),
            "twilio": {"account_sid": SID, "auth_token": TOKEN, "from_number": "+15005550006",
                       "base_url": f"{sink_url}/twilio", "timeout": 2},
            "slack_bot": {"bot_token": BOT, "api_url": f"{sink_url}/api/slack", "timeout": 2},
            **extra}


def person_worker(database_url: str, sink, policies: Path, directory: Path,
                  registry: CollectorRegistry | None = None) -> Worker:
    settings = WorkerSettings(
        database_url=database_url, policies_file=policies, metrics_port=0,
        channels={"chat": {"type": "webhook", "url": f"{sink.url}/chat",
                           "secret": WEBHOOK_SECRET, "timeout": 2,
                           "allow_insecure_http": True}},  # loopback sink
        retry_base=0.01, retry_cap=0.02, oncall=oncall_settings(directory, sink.url))
    return Worker(settings, registry=registry or CollectorRegistry())


def write_policy(path: Path, steps: list[dict]) -> Path:
    path.write_text(yaml.safe_dump({"policies": [
        {"name": "critical", "match": {"severity": "critical"}, "steps": steps}]}))
    return path


def slack_click(incident_id: int, slack_user: str, secret: str = SIGNING,
                age: float = 0.0) -> tuple[bytes, dict]:
    """The body and headers Slack sends when the Acknowledge button is clicked."""
    payload = {"type": "block_actions", "user": {"id": slack_user, "username": "x"},
               "actions": [{"action_id": "ticketmon_ack", "value": str(incident_id),
                            "type": "button"}],
               "response_url": "https://hooks.slack.com/actions/T0/1/x"}
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(time.time() - age))
    return body, {"X-Slack-Request-Timestamp": stamp,
                  "X-Slack-Signature": sign(secret, stamp, body),
                  "Content-Type": "application/x-www-form-urlencoded"}


def drain_due(worker: Worker, passes: int = 30) -> None:
    """Run the worker until nothing due is left (a person's later rules stay pending)."""
    from datetime import UTC, datetime

    import sqlalchemy as sa

    from receiver.escalation.tables import notifications

    n = notifications.c
    for _ in range(passes):
        worker.run_once()
        with worker.engine.connect() as conn:
            busy = conn.execute(sa.select(sa.func.count()).select_from(notifications).where(
                n.state.in_(("pending", "delivering")),
                n.next_attempt_at <= datetime.now(UTC))).scalar()
        if not busy:
            return
        worker.stopping.wait(0.03)
    raise AssertionError("outbox did not drain")
