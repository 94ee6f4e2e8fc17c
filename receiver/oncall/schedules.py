"""Schedules as code (rules/oncall/schedules.yaml): layers stacked, overrides on top.

A schedule has layers, listed bottom to top: at any moment the highest layer that has
someone on call decides (a restricted layer lets the one below show through outside
its hours), and an override (a person for a period, set through the API) beats every
layer. Layers are rotations (rotations.py) or imported calendars (calendars.py).
Errors name the schedule, the layer and the key: an unknown user, a handoff time that
a DST change skips, an unknown time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from receiver.oncall.calendars import CalendarLayer
from receiver.oncall.people import People, validate_each, zone
from receiver.oncall.rotations import DAYS, RotationLayer, Shift, Window, missing_on
from ticketmon.core.config import ConfigError
from ticketmon.core.durations import parse_duration


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Restriction(_Strict):
    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = DAYS
    start: time = Field(alias="from")
    end: time = Field(alias="to")

    @model_validator(mode="after")
    def _not_empty(self) -> Restriction:
        if self.start == self.end:
            raise ValueError("`from` and `to` are equal: the window would be empty")
        if not self.days:
            raise ValueError("days: name at least one day")
        return self


class CalendarSource(_Strict):
    url: str | None = None
    file: Path | None = None
    refresh: float = 900.0

    _refresh = field_validator("refresh", mode="before")(lambda v: parse_duration(v))

    @model_validator(mode="after")
    def _one(self) -> CalendarSource:
        if (self.url is None) == (self.file is None):
            raise ValueError("give exactly one of `url` or `file`")
        if self.url is not None and not self.url.startswith(("https://", "http://")):
            raise ValueError("url must be an http(s) URL")
        return self


class LayerConfig(_Strict):
    name: str
    rotation: Literal["daily", "weekly", "hourly"] | None = None
    every: int = Field(default=1, ge=1, le=1000)  # shift length in rotation units
    handoff: time = time(9, 0)  # local time in the layer's time zone
    start: date | None = None  # the first user's first shift starts that day at handoff
    time_zone: str | None = None  # default: the schedule's
    users: tuple[str, ...] = ()
    restrictions: tuple[Restriction, ...] = ()
    calendar: CalendarSource | None = None

    _zone = field_validator("time_zone")(lambda v: v if v is None else zone(v))

    @model_validator(mode="after")
    def _kind(self) -> LayerConfig:
        if self.calendar is None:
            if self.rotation is None or self.start is None or not self.users:
                raise ValueError("a rotation layer needs `rotation`, `start` and `users` "
                                 "(or give a `calendar`)")
        elif self.rotation is not None or self.users:
            raise ValueError("a calendar layer takes its people from the calendar: "
                             "no `rotation` or `users`")
        return self


class ScheduleConfig(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
    description: str = ""
    team: str | None = None
    time_zone: str = "UTC"
    layers: tuple[LayerConfig, ...] = Field(min_length=1)

    _zone = field_validator("time_zone")(lambda v: zone(v))


@dataclass(frozen=True)
class Override:
    """A person on call for a period in place of the layers (kept in the database)."""

    id: int
    schedule: str
    user: str
    start: datetime
    end: datetime
    reason: str = ""
    created_by: str = ""


class Schedule:
    def __init__(self, config: ScheduleConfig, layers: list) -> None:
        self.config = config
        self.name = config.name
        self.tz = ZoneInfo(config.time_zone)
        self.layers = layers  # bottom first

    def problems(self) -> list[str]:
        return [p for layer in self.layers if isinstance(layer, CalendarLayer)
                for p in layer.problems()]

    def calendars(self) -> list[CalendarLayer]:
        return [layer for layer in self.layers if isinstance(layer, CalendarLayer)]

    def at(self, when: datetime, overrides: list[Override] = ()) -> tuple[tuple[str, ...], str]:
        """Who is on call at `when` and which layer (or 'override') says so."""
        for override in overrides:
            if override.schedule == self.name and override.start <= when < override.end:
                return (override.user,), "override"
        for layer in reversed(self.layers):
            users = layer.at(when)
            if users:
                return users, layer.name
        return (), ""

    def final(self, start: datetime, end: datetime,
              overrides: list[Override] = ()) -> list[Shift]:
        """The final schedule for [start, end): every layer and override resolved, adjacent
        pieces with the same people and source merged; gaps are left out."""
        mine = [o for o in overrides if o.schedule == self.name and o.end > start
                and o.start < end]
        per_layer = [layer.between(start, end) for layer in self.layers]
        cuts = {start, end}
        for shifts in per_layer:
            for shift in shifts:
                cuts.update((shift.start, shift.end))
        for o in mine:
            cuts.update((max(o.start, start), min(o.end, end)))
        points = sorted(c for c in cuts if start <= c <= end)
        result: list[Shift] = []
        for lo, hi in zip(points, points[1:], strict=False):
            users, source = self._segment(lo, per_layer, mine)
            if not users:
                continue
            last = result[-1] if result else None
            if last and last.end == lo and last.users == users and last.layer == source:
                result[-1] = Shift(last.start, hi, users, source)
            else:
                result.append(Shift(lo, hi, users, source))
        return result

    def _segment(self, at: datetime, per_layer: list[list[Shift]],
                 overrides: list[Override]) -> tuple[tuple[str, ...], str]:
        for o in overrides:
            if o.start <= at < o.end:
                return (o.user,), "override"
        for layer, shifts in zip(reversed(self.layers), reversed(per_layer), strict=True):
            users: list[str] = []
            for shift in shifts:
                if shift.start <= at < shift.end:
                    users.extend(u for u in shift.users if u not in users)
            if users:
                return tuple(users), layer.name
        return (), ""

    def covered_until(self, now: datetime, horizon: timedelta,
                      overrides: list[Override] = ()) -> datetime:
        """The first moment in [now, now + horizon) with nobody on call (or the horizon)."""
        end = now + horizon
        cursor = now
        for shift in self.final(now, end, overrides):
            if shift.start > cursor:
                return cursor
            cursor = max(cursor, shift.end)
        return min(cursor, end)


class Schedules:
    def __init__(self, schedules: list[Schedule]) -> None:
        self.by_name = {s.name: s for s in schedules}

    def __iter__(self):
        return iter(self.by_name.values())

    def calendars(self) -> list[CalendarLayer]:
        return [c for s in self for c in s.calendars()]


def _check_layer(label: str, layer: LayerConfig, tz: ZoneInfo, people: People) -> list[str]:
    problems = [f"{label}: users: unknown user {u!r} (not in people.yaml)"
                for u in layer.users if u not in people]
    if layer.rotation in ("daily", "weekly") and layer.start is not None:
        step = layer.every * (7 if layer.rotation == "weekly" else 1)

        def handoff_day(day: date) -> bool:
            return (day - layer.start).days % step == 0

        skipped = missing_on(tz, layer.handoff, layer.start, handoff_day)
        if skipped:
            problems.append(
                f"{label}: handoff: {layer.handoff:%H:%M} does not exist in {tz.key} on "
                f"{skipped} (the clocks skip it for daylight saving time); choose a "
                "time outside the change, such as 09:00")
    for index, window in enumerate(layer.restrictions):
        for key, at in (("from", window.start), ("to", window.end)):
            skipped = missing_on(tz, at, layer.start or date.today(),
                                 lambda d, w=window: DAYS[d.weekday()] in w.days)
            if skipped:
                problems.append(f"{label}: restrictions[{index}].{key}: {at:%H:%M} does "
                                f"not exist in {tz.key} on {skipped} (daylight saving time)")
    return problems


def parse_schedules(data: Any, people: People, source: str = "schedules",
                    previous: Schedules | None = None) -> Schedules:
    """Validate and build every schedule; errors name the schedule, layer and key.
    Imported calendars keep the good copy of `previous` (a reload) until refetched."""
    if not isinstance(data, dict) or not isinstance(data.get("schedules", []), list):
        raise ConfigError(f"{source}: expected a mapping with a `schedules` list")
    problems: list[str] = []
    extra = set(data) - {"schedules"}
    if extra:
        problems.append(f"unknown top-level keys: {', '.join(sorted(extra))}")
    built: list[Schedule] = []
    for label, config in validate_each(ScheduleConfig, data.get("schedules"), "schedule",
                                       "schedules", problems):
        if config.team and config.team not in people.teams:
            problems.append(f"{label}: team: unknown team {config.team!r}")
        layers, names = [], set()
        for position, layer in enumerate(config.layers):
            where = f"{label}: layers[{position}] ({layer.name})"
            if layer.name in names:
                problems.append(f"{where}: duplicate layer name")
            names.add(layer.name)
            tz = ZoneInfo(layer.time_zone or config.time_zone)
            found = _check_layer(where, layer, tz, people)
            problems.extend(found)
            if found:
                continue
            layers.append(_build(config.name, layer, tz, people, previous))
        built.append(Schedule(config, layers))
    if problems:
        raise ConfigError(f"invalid schedules ({source}):\n  " + "\n  ".join(problems))
    return Schedules(built)


def _build(schedule: str, layer: LayerConfig, tz: ZoneInfo, people: People,
           previous: Schedules | None):
    if layer.calendar is None:
        windows = [Window(r.days, r.start, r.end) for r in layer.restrictions]
        return RotationLayer(layer.name, schedule, layer.rotation, layer.every, layer.handoff,
                             layer.start, tz, list(layer.users), windows)
    source = layer.calendar
    built = CalendarLayer(layer.name, schedule, tz, people, source.url, source.file,
                          source.refresh)
    old = previous.by_name.get(schedule) if previous else None
    for candidate in (old.calendars() if old else []):
        if candidate.name == layer.name:
            built.adopt(candidate)
    return built


def utc(value: datetime) -> datetime:
    """Naive times are UTC; aware ones are converted."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
