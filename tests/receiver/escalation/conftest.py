"""Local far ends for the channels: a recording HTTP(S) sink and a real SMTP server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
        actor="alice" if action != "trigger" else None,
    )
