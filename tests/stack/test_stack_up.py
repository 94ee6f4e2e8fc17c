"""The main job end to end: `ticketmon stack up` starts everything, a scenario makes a
real alert travel Prometheus -> Alertmanager -> receiver -> worker -> notification sink,
the README walkthrough (acknowledge, bring the service back) ends with the incident
resolved and PagerDuty's resolve in the sink, and SIGTERM stops every process it
started. The run's state and secret-bearing configs are 0600 in its 0700 work directory,
and the stack is found there, not through a shared file."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time

import psutil
import pytest
import requests
from support.sse import SseClient
from support.stack import running_stack, wait_targets_up
from support.waiting import wait_for

from ticketmon.stack import scenario, state


@pytest.fixture
def stack(tmp_path):
    workdir = tmp_path / "stack"
    with running_stack(workdir) as (proc, urls, doc):
        # only the owner may read what holds the admin token
        assert stat.S_IMODE(workdir.stat().st_mode) == 0o700
        for name in ("stack.json", "receiver.yaml", "fraud.yaml", "worker.yaml",
                     "checkout.yaml", "webhook-token"):
            assert stat.S_IMODE((workdir / name).stat().st_mode) == 0o600, name
        assert "tm_" not in urls["admin-token"]  # the token is not printed
        assert doc["pid"] == proc.pid
        yield proc, urls, doc


# the main job: one xdist worker runs every module that starts it (tests/conftest.py)
pytestmark = pytest.mark.xdist_group("main-job")

def test_stack_up_runs_everything_and_the_walkthrough_ends_resolved(stack):
    proc, urls, state = stack
    for name in ["prometheus", "alertmanager", "receiver", "worker", "anomaly",
                 "business-exporter", "system-exporter", "blockchain-exporter", "fraud",
                 "notification-sink"]:
        assert urls[name].startswith("http://127.0.0.1:"), name
    prom = urls["prometheus"]

    health = wait_targets_up(prom)
    assert len(health) >= 12

    headers = {"Authorization": f"Bearer {state['admin_token']}"}
    live = SseClient(state["receiver-stream"], headers)  # the console's live updates
    assert live.status == 200
    said = scenario.run("service-down", "checkout", workdir=tmp_workdir(state))
    assert state["admin_token"] not in said and str(tmp_workdir(state)) in said
    print(said)

    def incident():
        resp = requests.get(f"{state['receiver_url']}/api/v1/incidents", headers=headers,
                            params={"status": "open"}, timeout=5)
        resp.raise_for_status()
        return [i for i in resp.json()["incidents"] if "ServiceDown" in json.dumps(i)]

    found = wait_for(incident, 150, "a ServiceDown incident in the receiver", every=1)
    assert found[0]["severity"] == "critical"

    def pagerduty_events() -> list[dict]:
        msgs = requests.get(f"{state['notification-sink'].rstrip('/')}/messages", timeout=5).json()
        return [m["body"] for m in msgs if m["path"].startswith("/pagerduty")
                and isinstance(m["body"], dict)]

    def paged():
        return [e for e in pagerduty_events() if e.get("event_action") == "trigger"
                and "checkout" in json.dumps(e)]

    [trigger, *_] = wait_for(paged, 60, "a PagerDuty event for checkout in the sink", every=1)

    def people_paged() -> list[dict]:  # the ops-primary person, by Slack DM (rules/oncall/)
        msgs = requests.get(f"{state['notification-sink'].rstrip('/')}/messages", timeout=5).json()
        return [m["body"] for m in msgs if m["path"] == "/api/slack/chat.postMessage"
                and "on call for ops-primary" in json.dumps(m["body"])]

    wait_for(people_paged, 60, "a Slack DM to the ops-primary person in the sink", every=1)

    # the README walkthrough: acknowledge, bring checkout back -> resolved, resolve paged
    incident_id = found[0]["id"]
    seen_live(live, incident_id, "opened")
    acked = requests.post(f"{state['receiver_url']}/api/v1/incidents/{incident_id}/acknowledge",
                          headers=headers, timeout=5)
    assert acked.status_code == 200 and acked.json()["incident"]["status"] == "acknowledged"
    seen_live(live, incident_id, "acknowledged")
    live.close()
    print(scenario.run("service-ok", "checkout", workdir=tmp_workdir(state)))

    def resolved():
        resp = requests.get(f"{state['receiver_url']}/api/v1/incidents/{incident_id}",
                            headers=headers, timeout=5)
        return resp.json()["incident"]["status"] == "resolved"

    wait_for(resolved, 150, "the acknowledged incident to resolve", every=1)
    # PagerDuty's resolve names only the dedup_key: the trigger's, this installation's
    assert trigger["dedup_key"].startswith("ticketmon-")
    wait_for(lambda: [e for e in pagerduty_events() if e.get("event_action") == "resolve"
                      and e.get("dedup_key") == trigger["dedup_key"]],
             60, "PagerDuty's resolve in the sink", every=1)


def seen_live(client: SseClient, incident_id: int, change: str) -> None:
    """The stream server told the client of this change (other events may come first)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        [event] = client.events(1, deadline - time.monotonic())
        if (event.data["id"], event.data["change"]) == (incident_id, change):
            return
    raise AssertionError(f"no {change} event for incident {incident_id}")


def tmp_workdir(doc: dict):
    from pathlib import Path

    return Path(doc["workdir"])


def test_scenario_without_a_stack_says_so(tmp_path):
    with pytest.raises(scenario.ScenarioError, match="no running stack"):
        scenario.run("service-down", None, workdir=tmp_path / "absent")
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    with pytest.raises(scenario.ScenarioError, match="no running stack"):
        scenario.run("service-down", None, runtime=runtime)
    with pytest.raises(scenario.ScenarioError, match="unknown scenario"):
        scenario.run("meteor", None)


def test_sigterm_during_start_up_stops_what_was_started(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "ticketmon", "stack", "up", "--workdir", str(tmp_path / "s")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    # wait for the first component, then interrupt the start-up
    assert proc.stdout.readline().startswith("workdir")
    proc.stdout.readline()
    children = psutil.Process(proc.pid).children(recursive=True)
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(60)
    _, alive = psutil.wait_procs(children, timeout=15)
    assert not alive
    assert not state.state_path(tmp_path / "s").exists()
    assert not (state.runtime_dir() / f"{proc.pid}.json").exists()
