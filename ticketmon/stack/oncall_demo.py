"""The main job's on-call settings: the demo teams in rules/oncall/, and Twilio and a
Slack bot that are the notification sink, so the walkthrough shows who was paged."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO_TWILIO_SID = "AC" + "de" * 16  # any well-formed SID: the sink checks the shape


def worker_oncall(sink: str) -> dict:
    """The worker's `oncall` section; `sink` is the plain-HTTP sink's host:port."""
    return {
        "people_file": str(REPO / "rules" / "oncall" / "people.yaml"),
        "schedules_file": str(REPO / "rules" / "oncall" / "schedules.yaml"),
        "twilio": {"account_sid": DEMO_TWILIO_SID, "auth_token": "demo-twilio-token",
                   "from_number": "+15005550006", "base_url": f"http://{sink}/twilio"},
        "slack_bot": {"bot_token": "xoxb-demo-bot-token", "api_url": f"http://{sink}/api/slack"},
    }
