"""External calendars imported as schedule layers, and schedules exported as iCalendar.

An imported calendar (an iCal URL or file: a shared "on call" calendar, a holiday
rota) is a layer whose events name the person on duty in their SUMMARY (user name,
full name or e-mail) or as an ATTENDEE. It is fetched at load and refreshed in the
background; when a fetch fails (unreachable URL, not iCalendar) the last good copy
keeps working and the failure is shown on the schedule and in the metrics.

The export is one VEVENT per shift and person, with UTC times, a stable UID and a
SUMMARY that names the person: what Google Calendar, Outlook and Apple Calendar accept.
"""

from __future__ import annotations

import logging
import time as clock
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import requests

from receiver.oncall.people import People
from receiver.oncall.rotations import Expander, Shift

log = logging.getLogger("receiver.oncall")
PRODID = "-//ticketmon//on-call//EN"
MAX_BYTES = 5 * 1024 * 1024


class CalendarError(Exception):
    """A calendar could not be fetched or read (the message says which and why)."""


def read_calendar(url: str | None, file: Path | None, timeout: float = 10.0) -> bytes:
    """The calendar's bytes from a file or an http(s) URL."""
    if file is not None:
        try:
            return Path(file).read_bytes()
        except OSError as exc:
            raise CalendarError(f"cannot read {file}: {exc.strerror}") from None
    try:
        with requests.get(str(url), timeout=timeout, stream=True,
                          headers={"Accept": "text/calendar"}) as response:
            if response.status_code != 200:
                raise CalendarError(f"{url} answered HTTP {response.status_code}")
            body = response.raw.read(MAX_BYTES + 1, decode_content=True)
    except requests.RequestException as exc:
        raise CalendarError(f"{url} is unreachable: {type(exc).__name__}") from None
    if len(body) > MAX_BYTES:
        raise CalendarError(f"{url} is larger than {MAX_BYTES} bytes")
    return body


def parse_calendar(data: bytes, source: str) -> icalendar.Calendar:
    try:
        calendar = icalendar.Calendar.from_ical(data)
    except (ValueError, KeyError, IndexError) as exc:
        raise CalendarError(f"{source} is not iCalendar: {exc}") from None
    if not isinstance(calendar, icalendar.Calendar) or calendar.name != "VCALENDAR":
        raise CalendarError(f"{source} is not an iCalendar VCALENDAR")
    return calendar


class CalendarLayer:
    """A layer whose shifts come from an external calendar."""

    def __init__(self, name: str, schedule: str, tz: ZoneInfo, people: People,
                 url: str | None, file: Path | None, refresh: float) -> None:
        self.name, self.schedule, self.tz, self.people = name, schedule, tz, people
        self.url, self.file, self.refresh_every = url, file, refresh
        self.source = url or str(file)
        self.expander: Expander | None = None
        self.problem: str | None = "not fetched yet"
        self.unknown: set[str] = set()
        self.fetched_at = 0.0  # monotonic time of the last attempt
        self.good_at: float | None = None  # wall time of the last good copy

    def adopt(self, previous: CalendarLayer) -> None:
        """Keep the previous load's good copy when the configuration is reloaded."""
        if previous.source == self.source and previous.expander is not None:
            self.expander, self.good_at = previous.expander, previous.good_at
            self.problem, self.fetched_at = previous.problem, previous.fetched_at

    def due(self) -> bool:
        return clock.monotonic() - self.fetched_at >= self.refresh_every or not self.fetched_at

    def fetch(self) -> bool:
        """Fetch and parse; on failure keep the last good copy. True when it worked."""
        self.fetched_at = clock.monotonic()
        try:
            calendar = parse_calendar(read_calendar(self.url, self.file), self.source)
        except CalendarError as exc:
            kept = " (keeping the last good copy)" if self.expander else ""
            self.problem = f"calendar {self.source}: {exc}{kept}"
            log.warning("calendar fetch failed", extra={"schedule": self.schedule,
                                                        "layer": self.name, "error": str(exc)})
            return False
        self.unknown = set()
        self.expander = Expander(calendar, timedelta(days=32), self._who, self.tz)
        self.problem, self.good_at = None, clock.time()
        return True

    def _who(self, event: icalendar.Event) -> tuple[str, ...]:
        names = [str(event.get("SUMMARY", ""))]
        attendees = event.get("ATTENDEE") or []
        names += [str(a) for a in (attendees if isinstance(attendees, list) else [attendees])]
        for text in names:
            for part in text.replace(";", ",").split(","):
                user = self.people.find(part.removeprefix("On call:").strip())
                if user is not None:
                    return (user.name,)
        if names[0] not in self.unknown:
            self.unknown.add(names[0])
            log.warning("calendar event names nobody known",
                        extra={"schedule": self.schedule, "summary": names[0]})
        return ()

    def problems(self) -> list[str]:
        found = [self.problem] if self.problem else []
        found += [f"calendar {self.source}: event {s!r} names nobody in people.yaml"
                  for s in sorted(self.unknown)]
        return found

    def between(self, start: datetime, end: datetime) -> list[Shift]:
        if self.expander is None:
            return []
        return [Shift(max(b, start), min(e, end), users, self.name)
                for b, e, users in self.expander.between(start, end)]

    def at(self, when: datetime) -> tuple[str, ...]:
        return self.expander.at(when) if self.expander is not None else ()


def export(name: str, shifts: list[Shift], people: People, now: datetime | None = None,
           mixed: bool = False) -> bytes:
    """One VEVENT per shift and person; SUMMARY names the person and the schedule
    (`mixed`: a person's feed, whose shifts' layer reads 'schedule/layer')."""
    stamp = now or datetime.now(UTC)
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", f"On call: {name}")
    for shift in shifts:
        for user in shift.users:
            person = people.users.get(user)
            event = icalendar.Event()
            schedule = shift.layer.partition("/")[0] if mixed else name
            event.add("uid", f"{schedule}/{user}/{shift.start:%Y%m%dT%H%M%SZ}@ticketmon")
            event.add("dtstamp", stamp)
            event.add("dtstart", shift.start)
            event.add("dtend", shift.end)
            event.add("summary", f"{user} on call ({schedule})")
            event.add("description", f"schedule {schedule}, layer "
                      f"{shift.layer.partition('/')[2] if mixed else shift.layer}")
            event.add("transp", "TRANSPARENT")  # being on call is not being busy
            if person is not None and person.email:
                event.add("attendee", f"mailto:{person.email}",
                          parameters={"CN": person.full_name or user})
            calendar.add_component(event)
    return calendar.to_ical()
