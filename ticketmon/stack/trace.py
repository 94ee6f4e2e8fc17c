"""Follow scenarios through a running stack, from the break to the resolve notification.

For each breaking scenario: break it, wait for its alert to fire in Prometheus, for its
incident in the receiver and for the first notification about that incident in the
notification sink (the page); then run its undo, and wait for the incident to resolve
and for the resolve notification. Scenarios that change the same thing (their lane)
run one after another, the others at once, so a whole list takes about as long as its
longest lane. Lanes must not share what Alertmanager inhibits on: a critical alert
silences the warnings of its `service`. tests/stack/test_scenarios_e2e.py asserts on the traces;
bench/time_to_signal.py prints their times.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import requests

from ticketmon.stack import scenario as scenarios

POLL = 0.25  # seconds between two looks; the page time itself is the sink's own clock


class Timeout(Exception):
    pass


@dataclass
class Trace:
    scenario: str
    target: str | None
    alert: str
    broken_at: float = 0.0
    active_at: float | None = None  # Prometheus: the condition first held (pending)
    firing_at: float | None = None
    incident: dict = field(default_factory=dict)
    incident_committed_at: float | None = None  # the receiver's created_at
    paged_at: float | None = None  # the sink's receipt of the first notification
    paged_via: str = ""
    cleared_at: float | None = None
    resolved_at: float | None = None  # seen resolved in the receiver
    resolve_sent_at: float | None = None  # the sink's receipt of the resolve notification
    error: str | None = None

    def since_break(self, at: float | None) -> float | None:
        return None if at is None else at - self.broken_at


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class StackClient:
    """What a user looks at: Prometheus' alerts, the receiver's incidents, the sink."""

    def __init__(self, state: dict) -> None:
        self.state = state
        self.prometheus = state["prometheus"]
        self.receiver = state["receiver_url"]
        self.sink = state["notification-sink"].rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {state['admin_token']}"

    def _get(self, url: str, **params) -> object:
        resp = self.session.get(url, params=params, timeout=10)
        resp.raise_for_status()
        return resp.json()

    def firing(self, alert: str, labels: dict[str, str]) -> float | None:
        """When the firing alert's condition first held (its activeAt), if it fires."""
        alerts = self._get(f"{self.prometheus}/api/v1/alerts")["data"]["alerts"]
        for a in alerts:
            if a["state"] == "firing" and a["labels"].get("alertname") == alert \
                    and all(a["labels"].get(k) == v for k, v in labels.items()):
                return _epoch(a["activeAt"])
        return None

    def incident(self, alert: str, labels: dict[str, str], since: float) -> dict | None:
        """The newest incident of this alert opened after `since` (its labels match)."""
        doc = self._get(f"{self.receiver}/api/v1/incidents", limit=100)
        for incident in doc["incidents"]:
            common = {**incident.get("common_labels", {}), **incident.get("group_labels", {})}
            if common.get("alertname") == alert and \
                    all(common.get(k) == v for k, v in labels.items()) and \
                    _epoch(incident["created_at"]) >= since:
                return incident
        return None

    def incident_by_id(self, incident_id: int) -> dict:
        return self._get(f"{self.receiver}/api/v1/incidents/{incident_id}")["incident"]

    def messages(self) -> list[dict]:
        return self._get(f"{self.sink}/messages")

    def notifications(self, incident_id: int) -> list[dict]:
        """Sink messages about one incident: they link it (in the console or the API), or
        (a PagerDuty resolve) carry its dedup key."""
        link = re.compile(rf"/(?:ui|api/v1)/incidents/{incident_id}(?![0-9])")
        out = []
        for m in self.messages():
            body = m["body"] if isinstance(m["body"], dict) else {}
            if link.search(json.dumps(m["body"])) or \
                    str(body.get("dedup_key", "")).endswith(f"-{incident_id}"):
                out.append(m)
        return out


def _is_resolve(message: dict) -> bool:
    body = message["body"] if isinstance(message["body"], dict) else {}
    return body.get("event_action") == "resolve" or "Resolved" in json.dumps(body)


def wait(check: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except (requests.RequestException, ValueError, KeyError):
            found = None  # a component busy or restarting: look again
        if found:
            return found
        if time.monotonic() > deadline:
            raise Timeout(f"no {what} within {timeout:g}s")
        time.sleep(POLL)


def break_and_page(client: StackClient, trace: Trace, timeout: float) -> None:
    """Break, then wait for the alert, its incident and its page; always undo."""
    s = scenarios.SCENARIOS[trace.scenario]
    labels = s.alert_labels(trace.target)
    trace.broken_at = time.time()
    scenarios.apply(trace.scenario, trace.target, client.state)
    try:
        trace.active_at = wait(lambda: client.firing(trace.alert, labels), timeout,
                               f"{trace.alert} {labels} firing in Prometheus")
        trace.firing_at = time.time()
        trace.incident = wait(lambda: client.incident(trace.alert, labels, trace.broken_at),
                              timeout, f"{trace.alert} incident in the receiver")
        trace.incident_committed_at = _epoch(trace.incident["created_at"])
        page = wait(lambda: client.notifications(trace.incident["id"]), timeout,
                    f"notification of incident {trace.incident['id']} in the sink")[0]
        trace.paged_at, trace.paged_via = page["at"], page["path"]
    except Timeout as exc:
        trace.error = str(exc)
    finally:
        scenarios.apply(s.undo, trace.target or s.target, client.state)
        trace.cleared_at = time.time()


def resolve(client: StackClient, trace: Trace, timeout: float) -> None:
    """After the undo: the incident resolved and its resolve notification sent."""
    if trace.error:
        return
    incident_id = trace.incident["id"]
    try:
        wait(lambda: client.incident_by_id(incident_id)["status"] == "resolved", timeout,
             f"resolution of incident {incident_id}")
        trace.resolved_at = time.time()
        sent = wait(lambda: [m for m in client.notifications(incident_id) if _is_resolve(m)],
                    timeout, f"resolve notification of incident {incident_id}")
        trace.resolve_sent_at = sent[0]["at"]
    except Timeout as exc:
        trace.error = str(exc)


def run_all(state: dict, names: list[str], timeout: float = 240.0) -> dict[str, Trace]:
    """Every named breaking scenario at its default target, lanes in parallel."""
    client = StackClient(state)
    lanes: dict[str, list[Trace]] = {}
    for name in names:
        s = scenarios.SCENARIOS[name]
        if not s.alert or not s.undo:
            raise ValueError(f"scenario {name} names no alert or no undo")
        lanes.setdefault(s.lane_of(None), []).append(Trace(name, s.target, s.alert))

    def lane(traces: list[Trace]) -> None:
        # the next one waits for the resolve: its alert could be inhibited meanwhile
        # (a critical alert silences the warnings of its service in Alertmanager)
        for trace in traces:
            break_and_page(client, trace, timeout)
            resolve(client, trace, timeout)

    threads = [threading.Thread(target=lane, args=(t,)) for t in lanes.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {t.scenario: t for traces in lanes.values() for t in traces}
