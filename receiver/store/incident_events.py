"""In-transaction incident hooks: the extension point for escalation and friends.

A hook runs inside the same database transaction as the state change it reports, so a
notification outbox row written by a hook commits (or rolls back) together with the
incident: nothing is notified that was not stored, and nothing stored goes unnotified.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy.engine import Connection

EventKind = Literal["opened", "acknowledged", "resolved", "severity_raised", "silenced",
                    "unsilenced", "escalated"]


@dataclass(frozen=True)
class IncidentEvent:
    kind: EventKind
    incident_id: int
    group_key: str
    tenant: str
    severity: str
    title: str
    at: datetime
    actor: str
    detail: dict = field(default_factory=dict)


IncidentHook = Callable[[Connection, IncidentEvent], None]
