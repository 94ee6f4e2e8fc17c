"""Escalation policies as code: which incidents, which channels, when.

A policy file (YAML, versioned with the alerting rules) lists policies in order; the
first whose `match` fits an incident's labels (severity, service, tenant, burn_tier or
any other label) wins. Each step names channels and when it fires, counted from the
moment the incident opened (`after: 5m`). With `repeat`, the whole schedule starts
again every `every` until someone acknowledges, at most `times` more rounds (no limit
when omitted). Everything is checked at start, and errors name the policy.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ticketmon.core.config import ConfigError, read_yaml
from ticketmon.core.durations import parse_duration

REPO = Path(__file__).resolve().parents[2]
DEFAULT_POLICY_FILE = REPO / "rules" / "escalation" / "policies.yaml"

_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Target(_Strict):
    """A step target: a channel as in `channels`, or people (receiver/oncall/routing.py)."""

    schedule: str | None = None
    user: str | None = None
    team: str | None = None
    channel: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Target:
        given = [k for k in ("schedule", "user", "team", "channel") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("a target names exactly one of schedule, user, team or channel")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("schedule", "user", "team", "channel") if getattr(self, k))

    @property
    def name(self) -> str:
        return getattr(self, self.kind)


class Step(_Strict):
    after: float = 0.0
    channels: list[str] = []
    targets: list[Target] = []  # people: {schedule: NAME}, {user: NAME}, {team: NAME}

    _after = field_validator("after", mode="before")(lambda v: parse_duration(v))

    @model_validator(mode="after")
    def _somebody(self) -> Step:
        if not self.channels and not self.targets:
            raise ValueError("a step needs `channels` or `targets`")
        for target in self.targets:  # a channel target is a channel like the others
            if target.channel and target.channel not in self.channels:
                self.channels.append(target.channel)
        return self

    def person_targets(self) -> list[Target]:
        return [t for t in self.targets if t.kind != "channel"]


class Repeat(_Strict):
    every: float
    times: int | None = Field(default=None, ge=1)

    _every = field_validator("every", mode="before")(lambda v: parse_duration(v))


class Policy(_Strict):
    name: str = Field(min_length=1)
    match: dict[str, str | list[str]] = {}
    steps: list[Step] = Field(min_length=1)
    repeat: Repeat | None = None

    @field_validator("match")
    @classmethod
    def _label_names(cls, value: dict) -> dict:
        for key in value:
            if not _LABEL.match(key):
                raise ValueError(f"{key!r} is not a label name")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Policy:
        afters = [step.after for step in self.steps]
        if afters != sorted(afters):
            raise ValueError("steps must be in order of `after`")
        if self.repeat and self.repeat.every <= afters[-1]:
            raise ValueError("repeat.every must be longer than the last step's `after`")
        return self

    def matches(self, labels: dict[str, str]) -> bool:
        for key, want in self.match.items():
            have = labels.get(key)
            if isinstance(want, list) and have not in want:
                return False
            if isinstance(want, str) and have != want:
                return False
        return True

    def due_offset(self, step: int, round_: int) -> float | None:
        """Seconds after the start at which (step, round) is due; None when past the end."""
        if step >= len(self.steps):
            return None
        if round_ and (self.repeat is None or (self.repeat.times and round_ > self.repeat.times)):
            return None
        period = self.repeat.every if self.repeat else 0.0
        return round_ * period + self.steps[step].after

    def next_position(self, step: int, round_: int) -> tuple[int, int] | None:
        """The (step, round) after this one, or None when the policy is exhausted."""
        if step + 1 < len(self.steps):
            return step + 1, round_
        if self.due_offset(0, round_ + 1) is None:
            return None
        return 0, round_ + 1

    def channels(self) -> set[str]:
        return {channel for step in self.steps for channel in step.channels}


class PolicySet:
    def __init__(self, policies: list[Policy]) -> None:
        self.policies = policies
        self.by_name = {p.name: p for p in policies}

    def match(self, labels: dict[str, str]) -> Policy | None:
        return next((p for p in self.policies if p.matches(labels)), None)

    def check_channels(self, known: set[str]) -> None:
        """Fail start-up when a policy names a channel that is not configured."""
        problems = [
            f"policy {p.name!r}: unknown channel {c!r}"
            for p in self.policies for c in sorted(p.channels() - known)
        ]
        if problems:
            configured = ", ".join(sorted(known)) or "none"
            raise ConfigError("\n".join(problems) + f"\n(configured channels: {configured})")


def parse_policies(data: Any, source: str = "policies") -> PolicySet:
    """Validate a loaded policy document; errors name the policy and the key."""
    if not isinstance(data, dict) or not isinstance(data.get("policies"), list):
        raise ConfigError(f"{source}: expected a mapping with a `policies` list")
    policies, problems, seen = [], [], set()
    for index, raw in enumerate(data["policies"]):
        name = raw.get("name") if isinstance(raw, dict) else None
        label = f"policy {name!r}" if isinstance(name, str) else f"policies[{index}]"
        try:
            policy = Policy.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                key = ".".join(str(p) for p in err["loc"]) or "(policy)"
                problems.append(f"{label}: {key}: {err['msg']}")
            continue
        if policy.name in seen:
            problems.append(f"{label}: duplicate policy name")
        seen.add(policy.name)
        policies.append(policy)
    extra = set(data) - {"policies"}
    if extra:
        problems.append(f"unknown top-level keys: {', '.join(sorted(extra))}")
    if problems:
        raise ConfigError(f"invalid escalation policies ({source}):\n  " + "\n  ".join(problems))
    return PolicySet(policies)


def load_policies(path: str | Path | None = None) -> PolicySet:
    path = Path(path) if path else DEFAULT_POLICY_FILE
    return parse_policies(read_yaml(path), str(path))
