"""Every demo scenario end to end on one real `ticketmon stack up` (1 s intervals, the
demo profile): break -> its alert fires in Prometheus -> an incident in the receiver ->
a notification in the sink -> undo -> the incident resolves and the resolve
notification is sent. The scenarios run at once, those changing the same thing one
after another (ticketmon/stack/trace.py), so the module takes about its longest lane.
A scenario added to ticketmon/stack/scenario.py without the alert it proves and its undo
fails here. Before the scenarios, the quiet demo's dashboards: every panel shows data
(0 where zero is the truth) unless its description says why it cannot yet."""

from __future__ import annotations

import time

import pytest
from support.dashboard_queries import empty_panels
from support.stack import running_stack, wait_targets_up

from ticketmon.dashboards import build
from ticketmon.stack import scenario, trace

# the main job: one xdist worker runs every module that starts it (tests/conftest.py)
pytestmark = [pytest.mark.timeout(600), pytest.mark.xdist_group("main-job")]
QUIET_SECONDS = 5  # at 1 s intervals: every rate window of the panels (1m) has samples

# platform-ok restores what payments-ok and sales-ok restore, in one step
COMBINED_UNDOS = {"platform-ok": ("payments-ok", "sales-ok")}
UNDOS = {s.undo for s in scenario.SCENARIOS.values() if s.undo}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """One stack for the module: what its quiet dashboards showed, then the traces."""
    with running_stack(tmp_path_factory.mktemp("e2e") / "stack") as (_, _, doc):
        wait_targets_up(doc["prometheus"])
        time.sleep(QUIET_SECONDS)
        quiet = empty_panels(doc["prometheus"], build.evaluate())
        names = [n for n, s in scenario.SCENARIOS.items() if s.alert and s.undo]
        traces = trace.run_all(doc, names, timeout=180)
        yield quiet, traces, empty_panels(doc["prometheus"], build.evaluate())


@pytest.fixture(scope="module")
def traces(stack):
    return stack[1]


@pytest.mark.parametrize("when", ["quiet", "after the scenarios"])
def test_every_empty_panel_says_why(stack, when):
    empty = stack[0] if when == "quiet" else stack[2]
    undocumented = [name for name, documented in empty if not documented]
    print(f"{when}: {len(empty)} panels empty, each saying why in its description:",
          *(name for name, _ in empty), sep="\n  ")
    assert undocumented == [], (f"panels with no data ({when}); show 0 where zero is the "
                                "truth, or say 'Shows no data until/while ...'")


@pytest.mark.parametrize("name", list(scenario.SCENARIOS))
def test_scenario_end_to_end(name, traces):
    s = scenario.SCENARIOS[name]
    if s.alert is None:
        assert name in UNDOS or set(COMBINED_UNDOS.get(name, ())) <= UNDOS, (
            f"scenario {name} has no e2e expectation: give it the alert it proves and its "
            "undo, or make it another scenario's undo")
        return
    assert s.undo in scenario.SCENARIOS, f"scenario {name} has no undo"
    t = traces[name]
    assert t.error is None, f"{name}: {t.error}"
    # break < firing < incident committed <= paged; undo < resolved <= resolve sent
    assert t.broken_at < t.firing_at and t.broken_at < t.incident_committed_at <= t.paged_at
    assert t.cleared_at < t.resolved_at and t.cleared_at < t.resolve_sent_at
    assert t.paged_via.startswith(("/pagerduty", "/slack", "/api/slack", "/email"))
    print(f"{name}: paged after {t.paged_at - t.broken_at:.1f}s via {t.paged_via}, "
          f"resolve sent {t.resolve_sent_at - t.cleared_at:.1f}s after the undo")
