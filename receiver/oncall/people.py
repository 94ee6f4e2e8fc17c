"""People and teams as code (rules/oncall/people.yaml).

A person has contact details and their own notification rules: when a step pages them,
each rule fires `after` its delay unless the incident was acknowledged first ("Slack at
once, SMS after 5 min, a phone call after 10 min"). Teams group people for a `team:`
step target and for schedules. Errors name the user or team and the key.
"""

from __future__ import annotations

import re
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ticketmon.core.config import ConfigError
from ticketmon.core.durations import parse_duration

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
SLACK_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
METHODS = ("slack", "sms", "voice")


def zone(value: str) -> str:
    """A named IANA time zone (Europe/Berlin), refused when unknown."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not a known time zone (e.g. Europe/Berlin)") from None
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(_Strict):
    """One of a person's notification rules."""

    after: float = 0.0
    via: Literal["slack", "sms", "voice"]

    _after = field_validator("after", mode="before")(lambda v: parse_duration(v))


class User(_Strict):
    name: str
    full_name: str | None = None
    email: str | None = None
    phone: str | None = None  # E.164, for sms and voice
    slack_id: str | None = None  # the member id (U0123ABCD), for Slack direct messages
    time_zone: str = "UTC"
    notify: tuple[Rule, ...] = ()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError("use lower-case letters, digits, '.', '_' or '-' (a login name)")
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is not None and not E164.match(value):
            raise ValueError(f"{value!r} is not an E.164 number like +4915112345678")
        return value

    @field_validator("slack_id")
    @classmethod
    def _slack(cls, value: str | None) -> str | None:
        if value is not None and not SLACK_ID.match(value):
            raise ValueError(f"{value!r} is not a Slack member id like U0123ABCD")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value):
            raise ValueError(f"{value!r} is not an e-mail address")
        return value

    _zone = field_validator("time_zone")(lambda v: zone(v))

    @model_validator(mode="after")
    def _reachable(self) -> User:
        if not self.notify:  # default: the first method they can be reached by, at once
            via = "slack" if self.slack_id else "sms" if self.phone else None
            if via is None:
                raise ValueError("no `notify` rules and neither slack_id nor phone to "
                                 "reach this person")
            object.__setattr__(self, "notify", (Rule(via=via),))
        for index, rule in enumerate(self.notify):
            if rule.via == "slack" and not self.slack_id:
                raise ValueError(f"notify[{index}] is via slack but there is no slack_id")
            if rule.via in ("sms", "voice") and not self.phone:
                raise ValueError(f"notify[{index}] is via {rule.via} but there is no phone")
        return self

    def public(self) -> dict[str, Any]:
        """What the API shows of a person (contact details are for the worker)."""
        return {"name": self.name, "full_name": self.full_name or self.name,
                "email": self.email, "time_zone": self.time_zone,
                "notify": [{"after": r.after, "via": r.via} for r in self.notify]}


class Team(_Strict):
    name: str
    members: tuple[str, ...] = Field(min_length=1)


class People:
    """Everyone who can be paged, by name (also found by e-mail and Slack id)."""

    def __init__(self, users: list[User], teams: list[Team]) -> None:
        self.users = {u.name: u for u in users}
        self.teams = {t.name: t for t in teams}
        self._aliases = {key.lower(): u.name for u in users
                         for key in (u.name, u.email, u.full_name) if key}
        self.by_slack_id = {u.slack_id: u for u in users if u.slack_id}

    def find(self, text: str) -> User | None:
        """A person from a calendar's SUMMARY or attendee: name, e-mail or full name."""
        key = text.strip().lower().removeprefix("mailto:")
        name = self._aliases.get(key)
        return self.users[name] if name else None

    def __contains__(self, name: str) -> bool:
        return name in self.users


def _problems(exc: ValidationError, label: str) -> list[str]:
    return [f"{label}: {'.'.join(str(p) for p in err['loc']) or '(entry)'}: "
            f"{err['msg'].removeprefix('Value error, ')}" for err in exc.errors()]


def validate_each(model: type[BaseModel], items: Any, kind: str, plural: str,
                  problems: list[str]) -> list[tuple[str, Any]]:
    """(label, entry) for each valid entry; problems name it (`user 'x'`, else `users[3]`)."""
    valid: list[tuple[str, Any]] = []
    for index, raw in enumerate(items or []):
        name = raw.get("name") if isinstance(raw, dict) else None
        label = f"{kind} {name!r}" if isinstance(name, str) else f"{plural}[{index}]"
        try:
            item = model.model_validate(raw)
        except ValidationError as exc:
            problems.extend(_problems(exc, label))
            continue
        if any(v.name == item.name for _, v in valid):
            problems.append(f"{label}: duplicate {kind} name")
        valid.append((label, item))
    return valid


def parse_people(data: Any, source: str = "people") -> People:
    """Validate a loaded people document; errors name the user or team and the key."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping with `users` and `teams`")
    problems: list[str] = []
    extra = set(data) - {"users", "teams"}
    if extra:
        problems.append(f"unknown top-level keys: {', '.join(sorted(extra))}")
    users = [u for _, u in validate_each(User, data.get("users"), "user", "users", problems)]
    known = {u.name for u in users}
    teams = []
    for label, team in validate_each(Team, data.get("teams"), "team", "teams", problems):
        problems.extend(f"{label}: members: unknown user {m!r}"
                        for m in team.members if m not in known)
        teams.append(team)
    if problems:
        raise ConfigError(f"invalid people ({source}):\n  " + "\n  ".join(problems))
    return People(users, teams)
