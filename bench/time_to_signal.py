"""Time to signal: every demo scenario on the main job, from the break to the page.

    .venv/bin/python bench/time_to_signal.py [--interval 5s] [--workdir DIR]
        [--scenarios service-down,rpc-down] [--budget 900] [--probes 40]

Starts `ticketmon stack up --interval INTERVAL` (or drives the running stack in
--workdir), waits until every target is up, then runs every breaking scenario of
ticketmon/stack/scenario.py through ticketmon/stack/trace.py (lanes at once, each
scenario undone after its page). Per scenario it prints the seconds from the break to
the page (the first notification about its incident, by the sink's clock) beside the
floor the configuration allows:

    floor = collection interval + scrape interval + evaluation interval
            + the rule's `for` + Alertmanager's group_wait for its route

read from the stack's own rule files (demo profile applied) and alertmanager.yml; and
where those seconds went: break -> firing seen in Prometheus, firing -> incident
committed by the receiver (Alertmanager's group_wait and post), committed -> page (the
worker: step pickup and delivery). Rules that compare a rate over a window (or an age
against time(), as the batch rules do) also need the window or the age to cross their
threshold: the floor does not count that, the `window` column says so, and the floor
uses the observed time the condition took to hold. Last,
the receiver's own share over the run, p50 and p99 from its histograms in Prometheus:
post received -> incident committed (ticketmon_receiver_webhook_ingest_duration_seconds),
due -> delivered for notifications (ticketmon_receiver_notification_lateness_seconds),
and for diagnosis one store transaction and escalation step due -> written. The
scenarios alone give a few dozen deliveries, too few for a p99, so `--probes N` (default
40) then sends N critical alerts of their own to Alertmanager, half a second apart,
each its own group (an incident, its pages, then its resolve), and the share is read
over the whole run; the number of posts and deliveries it rests on is printed. Goals:
page <= floor + 2 s for every scenario; p99 post -> committed + due -> delivered
<= 100 ms. Exit status 1 when one is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ticketmon.core.durations import parse_duration  # noqa: E402
from ticketmon.stack import scenario, state, trace  # noqa: E402

SLACK_SECONDS = 2.0
RECEIVER_SHARE = {  # what it measures -> histogram
    "post -> committed": "ticketmon_receiver_webhook_ingest_duration_seconds",
    "due -> delivered": "ticketmon_receiver_notification_lateness_seconds",
    "one store transaction": "ticketmon_receiver_store_duration_seconds",
    "step due -> written": "ticketmon_receiver_escalation_lateness_seconds",
}
RECEIVER_P99_GOAL = 0.100
_MATCHER = re.compile(r'^(\w+)(=~|!=|=)"(.*)"$')


def _matches(matchers: list[str], labels: dict[str, str]) -> bool:
    for matcher in matchers:
        name, op, value = _MATCHER.match(matcher.strip()).groups()
        have = labels.get(name, "")
        if op == "=" and have != value or op == "!=" and have == value or \
                op == "=~" and not re.fullmatch(value, have):
            return False
    return True


def group_wait(route: dict, labels: dict[str, str], inherited: float = 30.0) -> float:
    """Alertmanager's group_wait for an alert: the first matching child route, deepest
    first (no `continue` in our tree), inheriting from its parent."""
    wait = parse_duration(route.get("group_wait", inherited))
    for child in route.get("routes", []):
        if _matches(child.get("matchers", []), labels):
            return group_wait(child, labels, wait)
    return wait


def rules_by_alert(workdir: Path) -> dict[str, dict]:
    found = {}
    for path in sorted((workdir / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    found.setdefault(rule["alert"], rule)
    return found


def windowed(rule: dict) -> bool:
    """A rate or trend over a window, or an age against time() (a batch job's period
    and grace): the condition holds once the window or the age crosses."""
    expr = rule["expr"]
    return bool(re.search(r"\[\d+[smh]\]", expr)) or ":ratio_rate" in expr or "time()" in expr


def floor(rule: dict, am_route: dict, interval: float, condition_after: float) -> float:
    """Detection (3 intervals, or for a windowed rule the observed time its condition
    took to hold) + `for` + group_wait."""
    labels = {**rule.get("labels", {}), "alertname": rule["alert"]}
    detect = max(3 * interval, condition_after) if windowed(rule) else 3 * interval
    return detect + parse_duration(rule.get("for", 0)) + group_wait(am_route, labels)


def probe(doc: dict, count: int, timeout: float = 120) -> None:
    """`count` critical alerts straight to Alertmanager, one group each; back once every
    one has opened an incident and resolved it again (their pages and resolves sent)."""
    client = trace.StackClient(doc)
    tag = f"TimeToSignalProbe{int(time.time())}"
    now = lambda: datetime.now(UTC).isoformat()  # noqa: E731

    def post(i: int, ends: bool) -> None:
        alert = {"labels": {"alertname": f"{tag}{i}", "severity": "critical",
                            "service": "time-to-signal"},
                 "annotations": {"summary": "bench/time_to_signal.py probe"},
                 "startsAt": now(), **({"endsAt": now()} if ends else {})}
        requests.post(f"{doc['alertmanager']}/api/v2/alerts", json=[alert],
                      timeout=10).raise_for_status()

    def ours(status: str) -> int:
        listing = client._get(f"{client.receiver}/api/v1/incidents", status=status, limit=500)
        return sum(1 for i in listing["incidents"]
                   if i.get("group_labels", {}).get("alertname", "").startswith(tag))

    for ends in (False, True):
        for i in range(count):
            post(i, ends)
            time.sleep(0.5)
        status, what = ("open", "probe incidents open") if not ends else \
            ("resolved", "probe incidents resolved")
        trace.wait(lambda s=status: ours(s) >= count, timeout, what)
    time.sleep(5)  # the resolves' deliveries


def increase(prometheus: str, metric: str, seconds: float) -> int:
    query = f"sum(increase({metric}_count[{int(seconds)}s]))"
    result = requests.get(f"{prometheus}/api/v1/query", params={"query": query},
                          timeout=10).json()["data"]["result"]
    return round(float(result[0]["value"][1])) if result else 0


def quantile(prometheus: str, q: float, metric: str, seconds: float) -> float | None:
    query = (f"histogram_quantile({q}, sum by (le) "
             f"(increase({metric}_bucket[{int(seconds)}s])))")
    result = requests.get(f"{prometheus}/api/v1/query", params={"query": query},
                          timeout=10).json()["data"]["result"]
    value = float(result[0]["value"][1]) if result else float("nan")
    return None if value != value else value


@contextlib.contextmanager
def stack(workdir: Path | None, interval: str):
    if workdir is not None:
        yield state.find(workdir)[1]
        return
    own = Path(tempfile.mkdtemp(prefix="ttsig-")) / "stack"
    proc = subprocess.Popen([sys.executable, "-m", "ticketmon", "stack", "up", "--interval",
                             interval, "--workdir", str(own)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        for line in proc.stdout:
            if line.startswith("ready:"):
                break
        else:
            raise SystemExit("the stack did not start")
        yield json.loads(state.state_path(own).read_text())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(90)


def wait_targets(prometheus: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException, ValueError, KeyError):
            active = requests.get(f"{prometheus}/api/v1/targets",
                                  timeout=5).json()["data"]["activeTargets"]
            if active and all(t["health"] == "up" for t in active):
                return
        time.sleep(1)
    raise SystemExit("not every scrape target came up")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--interval", default="5s", help="the stack's scrape/collection interval")
    ap.add_argument("--workdir", type=Path, help="drive this running stack instead")
    ap.add_argument("--scenarios", help="comma-separated names (default: every breaking one)")
    ap.add_argument("--budget", type=float, default=900, help="seconds per scenario wait")
    ap.add_argument("--probes", type=int, default=40,
                    help="critical alerts sent afterwards for the share's sample (0: none)")
    args = ap.parse_args(argv)
    names = args.scenarios.split(",") if args.scenarios else \
        [n for n, s in scenario.SCENARIOS.items() if s.alert and s.undo]
    with stack(args.workdir, args.interval) as doc:
        workdir = Path(doc["workdir"])
        interval = parse_duration(args.interval)
        wait_targets(doc["prometheus"])
        started = time.time()
        traces = trace.run_all(doc, names, timeout=args.budget)
        if args.probes:
            probe(doc, args.probes)
        time.sleep(2 * interval + 1)  # the last histogram samples scraped
        took = time.time() - started + 2 * interval
        share = {name: {q: quantile(doc["prometheus"], q, metric, took) for q in (0.5, 0.99)}
                 for name, metric in RECEIVER_SHARE.items()}
        samples = {name: increase(doc["prometheus"], metric, took)
                   for name, metric in RECEIVER_SHARE.items()}
        ingest, lateness = share["post -> committed"][0.99], share["due -> delivered"][0.99]
        rules = rules_by_alert(workdir)
        route = yaml.safe_load((workdir / "alertmanager.yml").read_text())["route"]

    missed = False
    head = (f"{'scenario':20} {'alert':36} {'page s':>7} {'floor s':>7} {'gap':>6} "
            f"{'->active':>8} {'->firing':>8} {'->commit':>8} {'->page':>7}  window  via")
    print(f"interval {args.interval}; page = first notification in the sink; "
          f"goal page <= floor + {SLACK_SECONDS:g} s")
    print(head)
    print("-" * len(head))
    results = {}
    for name, t in traces.items():
        rule = rules[t.alert]
        if t.error:
            print(f"{name:20} {t.alert:36} FAILED: {t.error}")
            missed = True
            results[name] = {"error": t.error}
            continue
        page = t.paged_at - t.broken_at
        fl = floor(rule, route, interval, t.active_at - t.broken_at)
        ok = page <= fl + SLACK_SECONDS
        missed |= not ok
        print(f"{name:20} {t.alert:36} {page:7.1f} {fl:7.1f} {page - fl:+6.1f} "
              f"{t.active_at - t.broken_at:8.1f} {t.firing_at - t.broken_at:8.1f} "
              f"{t.incident_committed_at - t.firing_at:8.1f} "
              f"{t.paged_at - t.incident_committed_at:7.2f}  "
              f"{'yes' if windowed(rule) else 'no':6}  "
              f"{t.paged_via}{'' if ok else '  <- over floor + 2 s'}")
        results[name] = {"page_s": round(page, 2), "floor_s": fl,
                         "receiver_commit_to_page_s": round(t.paged_at - t.incident_committed_at,
                                                            3)}
    share_ok = ingest is not None and lateness is not None and \
        ingest + lateness <= RECEIVER_P99_GOAL
    missed |= not share_ok
    fmt = (lambda v: "n/a" if v is None else f"{v * 1000:.0f} ms")  # noqa: E731
    print("receiver's own share over the run (from its histograms in Prometheus):")
    for name, values in share.items():
        print(f"  {name:24} p50 {fmt(values[0.5]):>7}  p99 {fmt(values[0.99]):>7}  "
              f"over {samples[name]}")
    print(f"  goal: p99 post -> committed + due -> delivered <= "
          f"{RECEIVER_P99_GOAL * 1000:.0f} ms{'' if share_ok else '  <- missed'}")
    print(json.dumps({"interval": args.interval, "scenarios": results, "samples": samples,
                      "receiver_p99_ingest_s": ingest, "receiver_p99_lateness_s": lateness}))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
