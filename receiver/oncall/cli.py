"""`ticketmon oncall who|shifts|check`: the same answers as the API, from the receiver's
settings (database for overrides, rules/oncall/ for people and schedules)."""

from __future__ import annotations

import json
import sys


def _context(args):
    from receiver.oncall.service import OnCall
    from receiver.settings import ReceiverSettings
    from receiver.store import migrate
    from ticketmon.core import config
    from ticketmon.core.database import make_engine

    settings = config.load(ReceiverSettings, getattr(args, "config", None))
    migrate.require(settings, upgrade_sqlite=True)  # overrides need the table, even if empty
    oncall = OnCall(settings.oncall)
    oncall.refresh_calendars(force=True)
    return oncall, make_engine(settings.database_url, pool_size=1)


def _schedules(oncall, name: str | None) -> list:
    from ticketmon.core.config import ConfigError

    if name is None:
        return list(oncall.schedules)
    schedule = oncall.schedule(name)
    if schedule is None:
        known = ", ".join(s.name for s in oncall.schedules) or "none"
        raise ConfigError(f"unknown schedule {name!r} (schedules: {known})")
    return [schedule]


def who(args) -> int:
    from receiver.oncall import answers

    oncall, engine = _context(args)
    at = answers.parse_time(args.at)
    with engine.connect() as conn:
        found = [answers.who(oncall, conn, s, at) for s in _schedules(oncall, args.schedule)]
    engine.dispose()
    if args.json:
        print(json.dumps(found if args.schedule is None else found[0], indent=1))
        return 0
    for item in found:
        names = ", ".join(u["name"] for u in item["users"]) or "NOBODY"
        until = f" until {item['until']}" if item["until"] else ""
        source = f" [{item['layer']}]" if item["layer"] else ""
        print(f"{item['schedule']}: {names}{until}{source}")
    return 0


def shifts(args) -> int:
    from receiver.oncall import answers

    oncall, engine = _context(args)
    start, end = answers.period(args.start, args.end)
    (schedule,) = _schedules(oncall, args.schedule)
    with engine.connect() as conn:
        if args.ics:
            sys.stdout.write(answers.schedule_ics(oncall, conn, schedule, start, end).decode())
        else:
            print(json.dumps(answers.shifts_json(oncall, conn, schedule, start, end), indent=1))
    engine.dispose()
    return 0


def check(args) -> int:
    from receiver.escalation.policy import load_policies
    from receiver.oncall.routing import check_targets
    from receiver.oncall.service import OnCall, OncallSettings
    from ticketmon.core.config import ConfigError

    oncall = OnCall(OncallSettings(people_file=args.people, schedules_file=args.schedules))
    problems = check_targets(load_policies(args.policies), oncall)
    if problems:
        raise ConfigError("escalation targets:\n  " + "\n  ".join(problems))
    failed = oncall.refresh_calendars(force=True)
    for schedule in oncall.schedules:
        for problem in schedule.problems():
            print(f"{schedule.name}: {problem}", file=sys.stderr)
    print(f"ok: {len(oncall.people.users)} people, {len(oncall.people.teams)} teams, "
          f"{len(oncall.schedules.by_name)} schedules")
    return 1 if failed else 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("oncall", help="who is on call; schedules and people")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("who", help="who is on call now (or --at TIME)")
    p.add_argument("--schedule", help="one schedule (default: all)")
    p.add_argument("--at", help="ISO 8601 time (default now; no offset means UTC)")
    p.add_argument("--json", action="store_true", help="the API's JSON answer")
    p.add_argument("--config", help="receiver settings YAML (default $TICKETMON_CONFIG)")
    p.set_defaults(func=who)
    p = sub.add_parser("shifts", help="the final schedule for a period (JSON or --ics)")
    p.add_argument("--schedule", required=True)
    p.add_argument("--from", dest="start", help="ISO 8601 (default now)")
    p.add_argument("--to", dest="end", help="ISO 8601 (default from + 28 days)")
    p.add_argument("--ics", action="store_true", help="iCalendar instead of JSON")
    p.add_argument("--config", help="receiver settings YAML (default $TICKETMON_CONFIG)")
    p.set_defaults(func=shifts)
    p = sub.add_parser("check", help="validate people, schedules and policy targets")
    p.add_argument("--people", help="default rules/oncall/people.yaml")
    p.add_argument("--schedules", help="default rules/oncall/schedules.yaml")
    p.add_argument("--policies", help="default rules/escalation/policies.yaml")
    p.set_defaults(func=check)
