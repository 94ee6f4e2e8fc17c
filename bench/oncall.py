"""Who is on call, per lookup, over 1,000 schedules; step lateness with person targets.

    .venv/bin/python bench/oncall.py [--schedules 1000] [--lookups 20000] [--incidents 1000]

1. 1,000 schedules of three layers each (a weekly rotation, a daily one restricted to
   weekdays 09:00-17:00 in another time zone, an hourly one), every schedule with an
   override, 300 people. Lookups at random instants over 90 days: the first look at a
   day expands its recurrences (cold), later ones hit the per-day cache (warm); p50, p99
   and max per lookup, and the time to load and validate the configuration.
2. bench/escalation.py's burst, with each step paging a schedule's on-call person
   through two methods (Slack DM and SMS via Twilio, both the local sink) besides the
   channels: step lateness at 1,000 open incidents on PostgreSQL (goal p99 <= 1 s).
Ends with a JSON line of the figures.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.escalation import percentile, run_workers  # noqa: E402
from receiver.oncall.people import parse_people  # noqa: E402
from receiver.oncall.schedules import Override, parse_schedules  # noqa: E402
from ticketmon.servers.postgres import PostgresCluster  # noqa: E402
from ticketmon.simulator.notification_sink import NotificationSink  # noqa: E402

ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "UTC"]


def people_doc(count: int) -> dict:
    return {"users": [{"name": f"u{i}", "slack_id": f"U{i:06d}", "phone": f"+1500555{i:04d}",
                       "time_zone": ZONES[i % len(ZONES)],
                       "notify": [{"via": "slack"}, {"via": "sms"}]} for i in range(count)]}


def schedules_doc(count: int, people: int) -> dict:
    rng = random.Random(7)
    items = []
    for i in range(count):
        pick = rng.sample(range(people), 6)
        items.append({"name": f"s{i}", "time_zone": ZONES[i % len(ZONES)], "layers": [
            {"name": "weekly", "rotation": "weekly", "handoff": "09:00", "start": "2026-01-05",
             "users": [f"u{k}" for k in pick[:3]]},
            {"name": "hourly", "rotation": "hourly", "every": 12, "handoff": "08:00",
             "start": "2026-01-01", "users": [f"u{k}" for k in pick[3:5]]},
            {"name": "business", "rotation": "daily", "handoff": "09:00",
             "start": "2026-01-01", "time_zone": ZONES[(i + 1) % len(ZONES)],
             "users": [f"u{pick[5]}"], "restrictions": [
                 {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00",
                  "to": "17:00"}]}]})
    return {"schedules": items}


def lookups(schedules: int, count: int) -> dict:
    started = time.perf_counter()
    people = parse_people(people_doc(300))
    built = parse_schedules(schedules_doc(schedules, 300), people)
    load_s = time.perf_counter() - started
    base = datetime(2026, 3, 1, tzinfo=UTC)
    rng = random.Random(11)
    overrides = {s.name: [Override(i, s.name, "u0", base + timedelta(days=i % 90),
                                   base + timedelta(days=i % 90, hours=8))]
                 for i, s in enumerate(built)}
    names = [s.name for s in built]
    timings, empty = [], 0
    for _ in range(count):
        name = rng.choice(names)
        at = base + timedelta(seconds=rng.uniform(0, 90 * 86400))
        t0 = time.perf_counter()
        users, _ = built.by_name[name].at(at, overrides[name])
        timings.append(time.perf_counter() - t0)
        empty += not users
    return {"schedules": schedules, "layers": 3 * schedules, "lookups": count,
            "load_s": load_s, "lookup_p50_ms": 1000 * percentile(timings, 0.5),
            "lookup_p99_ms": 1000 * percentile(timings, 0.99),
            "lookup_max_ms": 1000 * max(timings), "nobody": empty}


def steps_with_people(incidents: int) -> dict:
    workdir = Path(tempfile.mkdtemp(prefix="ticketmon-bench-oncall-"))
    (workdir / "people.yaml").write_text(yaml.safe_dump(people_doc(10)))
    (workdir / "schedules.yaml").write_text(yaml.safe_dump({"schedules": [
        {"name": "primary", "layers": [{"name": "weekly", "rotation": "weekly",
                                        "start": "2026-01-05", "users": ["u1", "u2"]}]}]}))
    sink = NotificationSink(keep=10 * incidents).start()
    extra = {"oncall": {
        "people_file": str(workdir / "people.yaml"),
        "schedules_file": str(workdir / "schedules.yaml"),
        "twilio": {"account_sid": "AC" + "be" * 16, "auth_token": "bench",
                   "from_number": "+15005550006", "base_url": f"{sink.url}/twilio"},
        "slack_bot": {"bot_token": "xoxb-bench", "api_url": f"{sink.url}/api/slack"}}}
    cluster = PostgresCluster()
    try:
        return run_workers(cluster, "people", 1, incidents, 1, sink, workdir,
                           targets=[{"schedule": "primary"}], extra=extra, per_incident=3)
    finally:
        cluster.stop()
        sink.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedules", type=int, default=1000)
    parser.add_argument("--lookups", type=int, default=20000)
    parser.add_argument("--incidents", type=int, default=1000)
    parser.add_argument("--skip-worker", action="store_true", help="lookups only")
    args = parser.parse_args()
    look = lookups(args.schedules, args.lookups)
    print(f"who is on call: {look['schedules']} schedules x 3 layers + 1 override each; "
          f"configuration loaded and validated in {look['load_s']:.2f} s")
    print(f"  {look['lookups']} lookups at random instants over 90 days: "
          f"p50 {look['lookup_p50_ms']:.3f} ms, p99 {look['lookup_p99_ms']:.3f} ms, "
          f"max {look['lookup_max_ms']:.1f} ms ({look['nobody']} found nobody)")
    result = {"lookups": look}
    if not args.skip_worker:
        steps = steps_with_people(args.incidents)
        result["worker"] = steps
        print(f"step lateness, {args.incidents} incidents due at once, each step = 1 channel "
              f"+ a schedule's person by Slack DM and SMS ({steps['deliveries']} deliveries): "
              f"p50 {steps['step_p50_s']:.3f} s, p99 {steps['step_p99_s']:.3f} s, "
              f"max {steps['step_max_s']:.3f} s "
              f"({'met' if steps['step_p99_s'] <= 1 else 'NOT met'}: p99 <= 1 s); delivery "
              f"p99 {steps['delivery_p99_s']:.3f} s, {steps['per_s']:.0f}/s")
    print(json.dumps({k: {m: round(v, 4) for m, v in r.items()} for k, r in result.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
