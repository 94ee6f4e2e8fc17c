"""Shared by the escalation tests: local far ends (recording HTTP(S) sink) and a sample message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.receiver import payload_bytes

from receiver.channels.base import Message
from receiver.channels.templates import Templates
from ticketmon.simulator.notification_sink import NotificationSink


@pytest.fixture
def sink() -> Iterator[NotificationSink]:
    server = NotificationSink().start()
    yield server
    server.stop()


@pytest.fixture
def tls_sink(tmp_path: Path) -> Iterator[NotificationSink]:
    """HTTPS with a self-signed certificate: the PagerDuty client refuses http://."""
    server = NotificationSink(tls_dir=tmp_path / "tls").start()
    yield server
    server.stop()


@pytest.fixture
def templates() -> Templates:
    return Templates()


INSTALLATION = "5c1d2a8e-0000-4000-8000-000000000001"


def make_message(action: str = "trigger", **incident) -> Message:
    base = {
        "id": "42", "title": "Checkout error rate above 5%", "severity": "critical",
        "service": "sales", "tenant": "acme", "status": "open", "started_at": 1_000.0,
        "labels": {"alertname": "CheckoutErrors", "severity": "critical"},
        "summary": "5.3% of checkouts fail",
    }
    base.update(incident)
    return Message(
        action=action, incident=base, delivery_id=f"42/0/0/0/x/{action}", now=1_000.0 + 3_900,
        links={"incident": "http://127.0.0.1:10190/incidents/42",
               "grafana": "http://grafana/d/x", "alertmanager": "http://127.0.0.1:9093/#/alerts",
               "ack": "http://127.0.0.1:10190/ack/TOKEN"},
        actor="alice" if action != "trigger" else None, installation=INSTALLATION,
    )




def firing_payload(n: int, severity: str = "critical", service: str = "sales",
                   status: str = "firing") -> dict:
    """A real Alertmanager 0.25 payload made unique per n (group, alert, fingerprint)."""
    import copy
    import json

    doc = json.loads(payload_bytes("firing"))
    doc = copy.deepcopy(doc)
    name = f"CheckoutErrors{n}"
    labels = {**doc["commonLabels"], "alertname": name, "severity": severity,
              "service": service, "tenant": "acme"}
    alert = doc["alerts"][0]
    alert.update(labels=labels, fingerprint=f"{n:016x}", status=status)
    if status == "resolved":
        alert["endsAt"] = "2026-11-22T04:10:00Z"
    doc.update(status=status, commonLabels=labels,
               groupLabels={"alertname": name, "env": "e2e"},
               groupKey=f'{{}}:{{alertname="{name}", env="e2e"}}')
    return doc


def write_policies(path: Path, steps: list[tuple[str, list[str]]], repeat: dict | None = None,
                   severity: str = "critical") -> Path:
    import yaml

    policy = {"name": severity, "match": {"severity": severity},
              "steps": [{"after": after, "channels": chans} for after, chans in steps]}
    if repeat:
        policy["repeat"] = repeat
    path.write_text(yaml.safe_dump({"policies": [policy]}))
    return path
