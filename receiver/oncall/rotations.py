"""Rotation layers as iCalendar recurrences, expanded by recurring-ical-events.

A rotation of N people with shifts of `every` days (or weeks, or hours) is N recurring
events: person i starts i shifts after the rotation's start and recurs every N shifts.
Daily and weekly handoffs are wall-clock times in the layer's time zone (a shift across
a DST change is 23 or 25 hours long, the handoff stays at 09:00); hourly rotations
count elapsed hours in UTC. Restrictions ("weekdays 09:00-17:00") are weekly
recurrences too, and a layer's shift only counts inside them. No recurrence rule is
computed here: icalendar and recurring-ical-events do that, so the export is the same
calendar the lookups use.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
import recurring_ical_events

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
BYDAY = {d: d[:2].upper() for d in DAYS}
UNIT = {"daily": timedelta(days=1), "weekly": timedelta(days=7), "hourly": timedelta(hours=1)}


@dataclass(frozen=True)
class Shift:
    """Someone (or several people) on call from `start` to `end` (UTC, end exclusive)."""

    start: datetime
    end: datetime
    users: tuple[str, ...]
    layer: str


def local(day: date, at: time, tz: ZoneInfo) -> datetime:
    """A wall-clock time; where it does not exist (a DST gap) zoneinfo moves it forward."""
    return datetime.combine(day, at, tz)


def exists(when: datetime) -> bool:
    """False for a wall-clock time skipped by a DST change (02:30 on the spring day)."""
    back = when.astimezone(UTC).astimezone(when.tzinfo)
    return back.replace(tzinfo=None) == when.replace(tzinfo=None)


@functools.lru_cache(maxsize=256)
def changes(key: str, first: date, years: int) -> tuple[date, ...]:
    """The days on which the zone's offset changes, from `first` for `years` (cached: a
    thousand layers share a handful of zones)."""
    tz, found = ZoneInfo(key), []
    day, end = first, first + timedelta(days=366 * years)
    before = datetime.combine(day, time(0), tz).utcoffset()
    while day < end:
        after = datetime.combine(day + timedelta(days=1), time(0), tz).utcoffset()
        if after != before:
            found.append(day)
        day, before = day + timedelta(days=1), after
    return tuple(found)


def missing_on(tz: ZoneInfo, at: time, first: date, is_day: Callable[[date], bool],
               years: int = 3) -> date | None:
    """The first day (from `first`, for `years`) on which the local time `at` is skipped
    by a DST change and `is_day` says a handoff happens then; None when it always exists."""
    for day in changes(tz.key, first, years):
        if is_day(day) and not exists(local(day, at, tz)):
            return day
    return None


def _event(uid: str, summary: str, start: datetime, rrule: dict | None,
           duration: timedelta | None = None, end: datetime | None = None) -> icalendar.Event:
    event = icalendar.Event()
    event.add("uid", uid)
    event.add("summary", summary)
    event.add("dtstart", start)
    if end is not None:
        event.add("dtend", end)
    else:
        event.add("duration", duration)
    if rrule:
        event.add("rrule", rrule)
    return event


class Expander:
    """Expands one calendar's events into (start, end, summary) in UTC, caching by day
    so a who-is-on-call lookup costs a dictionary hit once warm."""

    def __init__(self, calendar: icalendar.Calendar, longest: timedelta,
                 who: Callable[[icalendar.Event], tuple[str, ...]],
                 tz: ZoneInfo | None = None) -> None:
        self.query = recurring_ical_events.of(calendar)
        self.longest = longest
        self.who = who
        self.tz = tz or ZoneInfo("UTC")  # where an all-day event's day starts
        self._days: dict[int, list[tuple[datetime, datetime, tuple[str, ...]]]] = {}

    def between(self, start: datetime, end: datetime
                ) -> list[tuple[datetime, datetime, tuple[str, ...]]]:
        found = []
        for event in self.query.between(start - self.longest, end):
            begin, finish = _utc(event["DTSTART"].dt, self.tz), _utc(_end(event), self.tz)
            if finish > start and begin < end:
                users = self.who(event)
                if users:
                    found.append((begin, finish, users))
        found.sort()
        return found

    def day(self, at: datetime) -> list[tuple[datetime, datetime, tuple[str, ...]]]:
        key = int(at.timestamp() // 86400)
        hit = self._days.get(key)
        if hit is None:
            if len(self._days) > 512:
                self._days.clear()
            first = datetime.fromtimestamp(key * 86400, UTC)
            hit = self._days[key] = self.between(first, first + timedelta(days=1))
        return hit

    def at(self, when: datetime) -> tuple[str, ...]:
        users: list[str] = []
        for begin, finish, who in self.day(when):
            if begin <= when < finish:
                users.extend(u for u in who if u not in users)
        return tuple(users)


def _utc(value: date | datetime, tz: ZoneInfo) -> datetime:
    """UTC from an event time; floating times and all-day dates are in `tz`."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=tz)).astimezone(UTC)
    return datetime.combine(value, time(0), tz).astimezone(UTC)


def _end(event: icalendar.Event) -> date | datetime:
    if "DTEND" in event:
        return event["DTEND"].dt
    return event["DTSTART"].dt + event["DURATION"].dt


@dataclass(frozen=True)
class Window:
    """A restriction: the layer counts only on these days between these local times
    (`end` before `start` runs through midnight)."""

    days: tuple[str, ...]
    start: time
    end: time


class RotationLayer:
    """One rotation layer, compiled to recurring events once at load."""

    def __init__(self, name: str, schedule: str, kind: str, every: int, handoff: time,
                 first: date, tz: ZoneInfo, users: list[str],
                 windows: Iterable[Window] = ()) -> None:
        self.name, self.schedule, self.kind, self.every = name, schedule, kind, every
        self.tz = tz
        self.users = users
        self.windows = tuple(windows)
        self.length = UNIT[kind] * every
        self.calendar = icalendar.Calendar()
        if kind == "hourly":  # elapsed hours: the recurrence runs in UTC
            begin = local(first, handoff, tz).astimezone(UTC)
            rule = {"freq": "hourly", "interval": every * len(users)}
            starts = [begin + i * self.length for i in range(len(users))]
        else:
            unit = "daily" if kind == "daily" else "weekly"
            rule = {"freq": unit, "interval": every * len(users)}
            starts = [local(first + i * self.length, handoff, tz) for i in range(len(users))]
        for index, (user, begin) in enumerate(zip(users, starts, strict=True)):
            # a nominal P1D / P7D keeps the handoff at the same wall-clock time over DST
            duration = (timedelta(days=self.length.days) if kind != "hourly"
                        else self.length)
            self.calendar.add_component(_event(
                f"{schedule}/{name}/{index}", user, begin, rule, duration=duration))
        self.shifts = Expander(self.calendar, self.length + timedelta(hours=2),
                               lambda event: (str(event["SUMMARY"]),))
        self.restricted = None
        if self.windows:
            restrictions = icalendar.Calendar()
            anchor = first - timedelta(days=7)
            for index, window in enumerate(self.windows):
                day = next(anchor + timedelta(days=k) for k in range(7)
                           if DAYS[(anchor + timedelta(days=k)).weekday()] in window.days)
                finish_day = day if window.end > window.start else day + timedelta(days=1)
                restrictions.add_component(_event(
                    f"{schedule}/{name}/restriction/{index}", "restriction",
                    local(day, window.start, tz), {"freq": "weekly", "byday": [
                        BYDAY[d] for d in window.days]},
                    end=local(finish_day, window.end, tz)))
            self.restricted = Expander(restrictions, timedelta(days=1, hours=2),
                                       lambda event: ("*",))

    def between(self, start: datetime, end: datetime) -> list[Shift]:
        shifts = [Shift(max(b, start), min(e, end), users, self.name)
                  for b, e, users in self.shifts.between(start, end)]
        if self.restricted is None:
            return shifts
        windows = [(max(b, start), min(e, end)) for b, e, _ in
                   self.restricted.between(start, end)]
        clipped = []
        for shift in shifts:
            for b, e in windows:
                lo, hi = max(b, shift.start), min(e, shift.end)
                if lo < hi:
                    clipped.append(Shift(lo, hi, shift.users, self.name))
        return clipped

    def at(self, when: datetime) -> tuple[str, ...]:
        if self.restricted is not None and not self.restricted.at(when):
            return ()
        return self.shifts.at(when)
