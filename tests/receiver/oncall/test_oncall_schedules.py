"""Rotations, layers, restrictions, overrides and calendars: daylight-saving changes, leap
days, a person in another time zone, and each kind of bad input with its answer."""

from __future__ import annotations

import http.server
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import icalendar
import pytest
import yaml

from receiver.oncall.calendars import export
from receiver.oncall.people import parse_people
from receiver.oncall.schedules import Override, parse_schedules
from receiver.oncall.service import OnCall, OncallSettings
from ticketmon.core.config import ConfigError

PEOPLE = {
    "users": [{"name": n, "slack_id": f"U0{n.upper()[:6]}", "email": f"{n}@example.com",
               "time_zone": "Europe/Berlin"} for n in ("alice", "bob", "carol", "dave")],
    "teams": [{"name": "ops", "members": ["alice", "bob", "carol"]}],
}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def build(*layers: dict, tz: str = "Europe/Berlin"):
    people = parse_people(PEOPLE)
    schedules = parse_schedules({"schedules": [
        {"name": "s", "time_zone": tz, "layers": list(layers)}]}, people)
    return schedules.by_name["s"]


def who(schedule, text: str, overrides=()) -> tuple[str, ...]:
    return schedule.at(utc(text), list(overrides))[0]


DAILY = {"name": "daily", "rotation": "daily", "handoff": "09:00", "start": "2026-03-01",
         "users": ["alice", "bob", "carol"]}


def test_daily_handoff_stays_at_local_time_across_spring_forward():
    s = build(DAILY)
    # Berlin: CET (UTC+1) until 2026-03-29 02:00, then CEST (UTC+2)
    assert who(s, "2026-03-28T07:59:59") == ("carol",)  # 08:59 CET
    assert who(s, "2026-03-28T08:00:00") == ("alice",)  # 09:00 CET
    assert who(s, "2026-03-29T06:59:59") == ("alice",)  # 08:59 CEST
    assert who(s, "2026-03-29T07:00:00") == ("bob",)  # 09:00 CEST: the 23-hour shift ended
    [short] = [x for x in s.final(utc("2026-03-28T00:00"), utc("2026-03-30T00:00"))
               if x.users == ("alice",)]
    assert short.end - short.start == timedelta(hours=23)


def test_daily_handoff_across_fall_back_gives_a_25_hour_shift():
    s = build(DAILY)
    shifts = s.final(utc("2026-10-24T00:00"), utc("2026-10-27T00:00"))
    lengths = {(x.start.isoformat(), x.end - x.start) for x in shifts}
    assert ("2026-10-24T07:00:00+00:00", timedelta(hours=25)) in lengths  # 09:00 CEST -> CET
    assert who(s, "2026-10-25T07:59:59") == who(s, "2026-10-24T07:00:00")
    assert who(s, "2026-10-25T08:00:00") != who(s, "2026-10-24T07:00:00")


def test_weekly_handoff_in_new_york_follows_its_own_dst_date():
    s = build({**DAILY, "rotation": "weekly", "start": "2026-03-02"}, tz="America/New_York")
    # US DST starts 2026-03-08: Monday 09:00 is 14:00 UTC before, 13:00 UTC after
    assert who(s, "2026-03-02T14:00:00") == ("alice",)
    assert who(s, "2026-03-09T12:59:59") == ("alice",)
    assert who(s, "2026-03-09T13:00:00") == ("bob",)


def test_handoff_skipped_by_dst_is_refused_naming_the_key_and_day():
    with pytest.raises(ConfigError) as err:
        build({**DAILY, "handoff": "02:30"})
    text = str(err.value)
    assert "layers[0] (daily): handoff: 02:30 does not exist in Europe/Berlin" in text
    assert "2026-03-29" in text
    # a weekly handoff on Mondays at 02:30 never meets Europe's Sunday change: accepted
    build({**DAILY, "rotation": "weekly", "start": "2026-03-02", "handoff": "02:30"})


def test_ambiguous_handoff_on_fall_back_takes_the_first_of_the_two():
    s = build({**DAILY, "handoff": "02:30"}, tz="America/Sao_Paulo")  # no DST since 2019
    assert who(s, "2026-10-25T05:30:00")
    ny = build({**DAILY, "rotation": "weekly", "start": "2026-11-01", "handoff": "01:30"},
               tz="America/New_York")
    # 2026-11-01 01:30 happens twice in New York; the shift starts at the first (EDT)
    assert who(ny, "2026-11-01T05:29:59") == ()
    assert who(ny, "2026-11-01T05:30:00") == ("alice",)


def test_leap_day_is_a_day_like_any_other():
    s = build({**DAILY, "start": "2028-02-27", "handoff": "00:00"}, tz="UTC")
    assert [who(s, f"2028-{d}T12:00:00") for d in ("02-27", "02-28", "02-29", "03-01")] == [
        ("alice",), ("bob",), ("carol",), ("alice",)]
    weekly = build({**DAILY, "rotation": "weekly", "start": "2028-02-23"}, tz="UTC")
    assert who(weekly, "2028-02-29T12:00:00") == ("alice",)
    assert who(weekly, "2028-03-01T09:00:00") == ("bob",)  # 7 days after the 23rd


def test_restricted_layer_of_a_person_in_another_time_zone_between_the_dst_dates():
    """US clocks change on 2026-03-08, Europe's on 03-29: for three weeks New York is 5
    hours behind Berlin instead of 6. Dave works 09:00-17:00 New York time."""
    s = build(DAILY, {"name": "dave", "rotation": "weekly", "start": "2026-03-02",
                      "users": ["dave"], "time_zone": "America/New_York",
                      "restrictions": [{"days": ["mon", "tue", "wed", "thu", "fri"],
                                        "from": "09:00", "to": "17:00"}]})
    assert who(s, "2026-03-16T13:00:00") == ("dave",)  # 09:00 EDT (a fixed -5 would say 08:00)
    assert who(s, "2026-03-16T12:59:59") != ("dave",)
    assert who(s, "2026-03-16T21:00:00") != ("dave",)  # 17:00 EDT
    assert who(s, "2026-03-14T15:00:00") != ("dave",)  # Saturday: the lower layer shows
    covered = s.final(utc("2026-03-16T00:00"), utc("2026-03-17T00:00"))
    assert sum((x.end - x.start for x in covered), timedelta()) == timedelta(days=1)
    assert [x.layer for x in covered] == ["daily", "daily", "dave", "daily"]


def test_hourly_rotation_counts_elapsed_hours_across_dst():
    s = build({"name": "h", "rotation": "hourly", "every": 12, "handoff": "08:00",
               "start": "2026-03-28", "users": ["alice", "bob"]})
    assert who(s, "2026-03-28T07:00:00") == ("alice",)  # 08:00 CET
    assert who(s, "2026-03-29T07:00:00") == ("alice",)  # 24 elapsed hours later (09:00 CEST)
    assert who(s, "2026-03-29T06:59:59") == ("bob",)


def test_override_beats_every_layer_and_is_in_the_final_schedule():
    s = build(DAILY)
    swap = Override(1, "s", "dave", utc("2026-03-29T06:00"), utc("2026-03-29T10:00"))
    assert who(s, "2026-03-29T08:00:00", [swap]) == ("dave",)
    final = s.final(utc("2026-03-29T05:00"), utc("2026-03-29T11:00"), [swap])
    assert [(x.users, x.layer) for x in final] == [
        (("alice",), "daily"), (("dave",), "override"), (("bob",), "daily")]


def test_coverage_ends_at_the_first_gap():
    s = build({**DAILY, "restrictions": [{"from": "09:00", "to": "17:00"}]})
    now = utc("2026-06-01T08:00:00")  # 10:00 CEST
    assert s.covered_until(now, timedelta(days=7)) == utc("2026-06-01T15:00:00")
    full = build(DAILY)
    assert full.covered_until(now, timedelta(days=7)) == now + timedelta(days=7)


@pytest.mark.parametrize(("people", "message"), [
    ({"users": [{"name": "x", "phone": "0151 123"}]}, "user 'x': phone: '0151 123' is not"),
    ({"users": [{"name": "x", "slack_id": "U0X1", "time_zone": "Mars/Base"}]},
     "user 'x': time_zone: 'Mars/Base' is not a known time zone"),
    ({"users": [{"name": "x", "phone": "+15005550006", "notify": [{"via": "slack"}]}]},
     "notify[0] is via slack but there is no slack_id"),
    ({"users": [{"name": "x"}]}, "user 'x': (entry): no `notify` rules"),
    ({"users": [], "teams": [{"name": "t", "members": ["ghost"]}]},
     "team 't': members: unknown user 'ghost'"),
    ({"users": [{"name": "x", "slack_id": "U0X1", "pager": 1}]}, "user 'x': pager: Extra"),
])
def test_people_errors_name_the_user_and_key(people, message):
    with pytest.raises(ConfigError, match="invalid people") as err:
        parse_people(people)
    assert message in str(err.value)


def test_unknown_user_in_a_schedule_is_refused():
    with pytest.raises(ConfigError) as err:
        build({**DAILY, "users": ["alice", "mallory"]})
    assert "schedule 's': layers[0] (daily): users: unknown user 'mallory'" in str(err.value)


def _calendar(path: Path, summary: str, day: str = "20260601") -> Path:
    path.write_text(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:a@test\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:{day}"
        f"\r\nDTEND;VALUE=DATE:20260602\r\nSUMMARY:On call: {summary}\r\n"
        "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:b@test\r\nDTSTAMP:20260101T000000Z\r\n"
        "DTSTART:20260610T080000Z\r\nDTEND:20260610T100000Z\r\nSUMMARY:Holiday\r\n"
        "ATTENDEE;CN=Dave:mailto:dave@example.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    return path


def _oncall(tmp_path: Path, layers: list[dict]) -> OnCall:
    (tmp_path / "people.yaml").write_text(yaml.safe_dump(PEOPLE))
    (tmp_path / "schedules.yaml").write_text(yaml.safe_dump({"schedules": [
        {"name": "s", "time_zone": "Europe/Berlin", "layers": layers}]}))
    return OnCall(OncallSettings(people_file=tmp_path / "people.yaml",
                                 schedules_file=tmp_path / "schedules.yaml",
                                 reload_interval=0))


def test_imported_calendar_names_people_by_summary_or_attendee(tmp_path):
    ics = _calendar(tmp_path / "cal.ics", "Bob")
    oncall = _oncall(tmp_path, [DAILY, {"name": "ext", "calendar": {"file": str(ics)}}])
    assert oncall.refresh_calendars(force=True) == 0
    # yearly on Feb 29 only: the event's own date, then leap years
    assert oncall.who("s", utc("2028-02-29T12:00:00"))[0] == ("bob",)
    assert oncall.who("s", utc("2027-03-01T12:00:00"))[1] == "daily"
    assert oncall.who("s", utc("2026-06-10T09:00:00")) == (("dave",), "ext")


class _Feed(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):  # noqa: N802 - the stdlib's name
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


def test_unreachable_calendar_url_keeps_the_last_good_copy(tmp_path):
    _Feed.body = _calendar(tmp_path / "c.ics", "carol@example.com").read_bytes()
    server = http.server.HTTPServer(("127.0.0.1", 0), _Feed)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/oncall.ics"
    oncall = _oncall(tmp_path, [DAILY, {"name": "ext", "calendar": {"url": url}}])
    assert oncall.refresh_calendars(force=True) == 0
    at = utc("2026-06-10T09:00:00")
    server.shutdown()
    server.server_close()
    assert oncall.refresh_calendars(force=True) == 1  # connection refused now
    [problem] = oncall.schedule("s").problems()
    assert "is unreachable" in problem and "keeping the last good copy" in problem
    assert oncall.who("s", at) == (("dave",), "ext")
    # a reload of the configuration keeps the fetched copy too
    assert oncall.reload()
    assert oncall.who("s", at) == (("dave",), "ext")


def test_bad_edit_is_refused_and_the_last_good_schedule_keeps_working(tmp_path):
    oncall = _oncall(tmp_path, [DAILY])
    at = utc("2026-03-29T07:00:00")
    assert oncall.who("s", at)[0] == ("bob",)
    (tmp_path / "schedules.yaml").write_text(yaml.safe_dump({"schedules": [
        {"name": "s", "layers": [{**DAILY, "users": ["nobody"]}]}]}))
    oncall.maybe_reload()
    assert not oncall.reloaded_ok and "unknown user 'nobody'" in oncall.last_error
    assert oncall.who("s", at)[0] == ("bob",)


def test_export_is_one_event_per_shift_naming_the_person():
    s = build(DAILY)
    shifts = s.final(utc("2026-03-28T00:00"), utc("2026-03-31T00:00"))
    data = export("s", shifts, parse_people(PEOPLE))
    calendar = icalendar.Calendar.from_ical(data)
    events = list(calendar.walk("VEVENT"))
    assert len(events) == len(shifts)
    for event, shift in zip(events, shifts, strict=True):
        assert event["SUMMARY"].startswith(shift.users[0])
        assert event["DTSTART"].dt == shift.start and event["DTEND"].dt == shift.end
        assert {"UID", "DTSTAMP"} <= set(event)
    assert calendar["VERSION"] == "2.0" and "PRODID" in calendar
