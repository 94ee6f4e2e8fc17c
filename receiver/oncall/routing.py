"""Escalation steps that page people: `schedule:`, `user:` and `team:` targets.

When a step falls due, its person targets become outbox rows, one per person and
notification rule, due at the step's time plus the rule's delay ("SMS after 5 min").
They are ordinary outbox rows, so the existing acknowledge already stops the rest: it
cancels every pending trigger of the incident, and these are pending until their time.
A person row's channel is `<method>:<user>` (slack-dm:alice, sms:alice, voice:alice);
a schedule with nobody on call writes a `nobody:<schedule>` row that the worker
refuses at once, so the gap shows as a dead letter instead of passing in silence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.engine import Connection

from receiver.oncall.overrides import active
from receiver.oncall.schedules import Override
from receiver.oncall.service import OnCall

METHOD_CHANNEL = {"slack": "slack-dm", "sms": "sms", "voice": "voice"}
PERSON_LANES = tuple(f"{c}:" for c in METHOD_CHANNEL.values())  # dispatcher lanes (prefixes)
NOBODY = "nobody:"


@dataclass(frozen=True)
class Page:
    """One outbox row a person target turns into."""

    channel: str
    after: float  # seconds after the step's due time
    suffix: str | None  # keeps keys unique when one method appears twice in a person's rules
    detail: dict = field(default_factory=dict)


def person_channel(channel: str) -> tuple[str, str] | None:
    """('sms', 'alice') from 'sms:alice'; None for a configured channel."""
    method, sep, user = channel.partition(":")
    if not sep:
        return None
    for rule_method, name in METHOD_CHANNEL.items():
        if name == method:
            return rule_method, user
    return None


def check_targets(policies, oncall: OnCall) -> list[str]:
    """Problems with the person targets of the policies (unknown schedule, user, team)."""
    known = {"schedule": oncall.schedules.by_name, "user": oncall.people.users,
             "team": oncall.people.teams}
    return [f"policy {p.name!r}: steps[{i}]: unknown {t.kind} {t.name!r}"
            for p in policies.policies for i, step in enumerate(p.steps)
            for t in step.person_targets() if t.name not in known[t.kind]]


class Router:
    """Expands person targets for one batch of steps; overrides are read once, lazily."""

    def __init__(self, oncall: OnCall, conn: Connection, now: datetime) -> None:
        self.oncall, self.conn, self.now = oncall, conn, now
        self._overrides: list[Override] | None = None

    def overrides(self, at: datetime) -> list[Override]:
        if self._overrides is None or not self.now - timedelta(hours=1) <= at \
                <= self.now + timedelta(hours=1):
            window = (min(at, self.now) - timedelta(hours=1), max(at, self.now)
                      + timedelta(hours=1))
            self._overrides = active(self.conn, *window)
        return self._overrides

    def people(self, kind: str, name: str, at: datetime) -> tuple[list[str], str]:
        """Who a target names at `at`, and why (for the message)."""
        if kind == "user":
            return [name], f"user {name}"
        if kind == "team":
            team = self.oncall.people.teams.get(name)
            return (list(team.members) if team else []), f"team {name}"
        users, layer = self.oncall.who(name, at, self.overrides(at))
        return list(users), f"on call for {name}" + (" (override)" if layer == "override"
                                                    else "")

    def expand(self, targets, at: datetime) -> list[Page]:
        pages: list[Page] = []
        seen: set[str] = set()
        for target in targets:
            names, why = self.people(target.kind, target.name, at)
            if not names:
                pages.append(Page(f"{NOBODY}{target.kind}:{target.name}"[:100], 0.0, None,
                                  {"why": f"nobody on call in {target.kind} {target.name}"}))
                continue
            for name in names:
                user = self.oncall.people.users.get(name)
                if user is None or name in seen:  # paged once per step, whoever names them
                    continue
                seen.add(name)
                counts: dict[str, int] = {}
                for rule in user.notify:
                    channel = f"{METHOD_CHANNEL[rule.via]}:{name}"
                    nth = counts[channel] = counts.get(channel, 0) + 1
                    pages.append(Page(channel, rule.after, None if nth == 1 else str(nth),
                                      {"why": why, "user": name}))
        return pages
