"""The answers the API, the CLI and the calendar export share, so they always agree:
who is on call at a time, the final schedule for a period, the iCalendar of it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Connection

from receiver.oncall import overrides as store
from receiver.oncall.calendars import export
from receiver.oncall.schedules import Schedule, Shift
from receiver.oncall.service import OnCall, now

MAX_PERIOD = timedelta(days=366)
DEFAULT_PERIOD = timedelta(days=28)


class BadTime(ValueError):
    """A time parameter that is not ISO 8601 (the message says which)."""


def parse_time(value: str | None, name: str = "at") -> datetime:
    """ISO 8601 (2026-03-29T09:00:00+02:00, ...Z; no offset means UTC) or 'now'."""
    if value in (None, "", "now"):
        return now()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise BadTime(f"{name} must be an ISO 8601 time like 2026-03-29T09:00:00Z") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def period(start: str | None, end: str | None) -> tuple[datetime, datetime]:
    first = parse_time(start, "from")
    last = parse_time(end, "to") if end else first + DEFAULT_PERIOD
    if last <= first:
        raise BadTime("to must be after from")
    if last - first > MAX_PERIOD:
        raise BadTime("a period is at most 366 days")
    return first, last


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def who(oncall: OnCall, conn: Connection, schedule: Schedule, at: datetime) -> dict:
    """`users` on call at `at`, each with its name, and the shift they are in."""
    overrides = store.active(conn, at - timedelta(seconds=1), at + timedelta(seconds=1),
                             schedule.name)
    users, layer = schedule.at(at, overrides)
    shift = next((s for s in schedule.final(at, at + timedelta(days=35), overrides)
                  if s.start <= at), None)
    return {"schedule": schedule.name, "at": iso(at), "layer": layer or None,
            "until": iso(shift.end) if shift else None,
            "users": [oncall.people.users[u].public() for u in users
                      if u in oncall.people.users]}


def final(conn: Connection, schedule: Schedule, start: datetime, end: datetime) -> list[Shift]:
    return schedule.final(start, end, store.active(conn, start, end, schedule.name))


def shifts_json(oncall: OnCall, conn: Connection, schedule: Schedule, start: datetime,
                end: datetime) -> dict:
    shifts = final(conn, schedule, start, end)
    covered = sum((s.end - s.start).total_seconds() for s in shifts)
    return {"schedule": schedule.name, "from": iso(start), "to": iso(end),
            "time_zone": schedule.config.time_zone,
            "coverage": round(covered / (end - start).total_seconds(), 6),
            "shifts": [{"start": iso(s.start), "end": iso(s.end), "users": list(s.users),
                        "layer": s.layer} for s in shifts]}


def schedule_ics(oncall: OnCall, conn: Connection, schedule: Schedule, start: datetime,
                 end: datetime) -> bytes:
    return export(schedule.name, final(conn, schedule, start, end), oncall.people)


def user_ics(oncall: OnCall, conn: Connection, user: str, start: datetime,
             end: datetime) -> bytes:
    """A person's shifts over every schedule, one event each."""
    mine: list[Shift] = []
    for schedule in oncall.schedules:
        mine += [Shift(s.start, s.end, (user,), f"{schedule.name}/{s.layer}")
                 for s in final(conn, schedule, start, end) if user in s.users]
    return export(user, sorted(mine, key=lambda s: s.start), oncall.people, mixed=True)


def summary(oncall: OnCall, conn: Connection, schedule: Schedule, at: datetime) -> dict:
    answer = who(oncall, conn, schedule, at)
    return {"name": schedule.name, "description": schedule.config.description,
            "team": schedule.config.team, "time_zone": schedule.config.time_zone,
            "layers": [layer.name for layer in schedule.layers],
            "oncall_now": [u["name"] for u in answer["users"]],
            "problems": schedule.problems()}
