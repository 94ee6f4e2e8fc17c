"""Property: whatever happens to a group's webhook posts, reconciliation converges.

A model of Alertmanager's truth (fire, resolve, flush a group into a post, truncated to
max_alerts) produces real-shaped posts from the group-3 fixture and from generated
alerts; the store receives any of them, in any order, any number of times, or never,
with reconciliation rounds in between. After a final round the store must say what
Alertmanager says: each alert firing or resolved as Alertmanager holds it, a group
with firing alerts has exactly one open incident holding them, a group without has
none. The group's route is the root's or a child route's: the reconciler can only guess
the route part of a group's key, so with the child route its guess is wrong until a
post names the real key. The unit under test is the receiver's state machine, so the
Alertmanager here is a model; tests/receiver/reconcile/test_reconcile_alertmanager.py
uses the real one.
"""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from reconcile_helpers import make_reconciler
from support.receiver import payload

from receiver.escalation.timers import on_incident_event
from receiver.payload import WebhookPayload
from receiver.reconcile.alertmanager_api import AmAlert, AmGroup, MemberView
from receiver.store import Store, migrate
from receiver.store.tables import alerts, incident_alerts, incidents
from receiver.tenant_groups import tenant_group_key

FIXTURE = payload("group-3-firing")
LABELS_PART = FIXTURE["groupKey"][len("{}"):]  # ':{alertname=..., service=...}'
ROUTES = ["{}", '{}/{team="web"}']  # the root route (the reconciler's guess), a child
BASE = datetime(2026, 11, 22, 4, 35, 25, 660000, tzinfo=UTC)
ZERO = "0001-01-01T00:00:00Z"


def fixture_pool() -> dict[str, dict]:
    """The fixture's three alerts and five generated ones of the same group."""
    pool = {a["fingerprint"]: a for a in FIXTURE["alerts"]}
    for i in range(4, 9):
        a = copy.deepcopy(FIXTURE["alerts"][0])
        a["labels"]["instance"] = f"checkout-{i}:8080"
        a["labels"]["severity"] = "critical" if i % 3 == 0 else "warning"
        a["fingerprint"] = hashlib.sha256(str(sorted(a["labels"].items())).encode()
                                          ).hexdigest()[:16]
        pool[a["fingerprint"]] = a
    return pool


POOL = fixture_pool()
FPS = sorted(POOL)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


class ModelAlertmanager:
    """One Alertmanager's truth for one route and group: instances, group, flushes."""

    def __init__(self) -> None:
        self.group_key = FIXTURE["groupKey"]  # the machine's first step may pick a route
        self.active: dict[str, datetime] = {}  # fingerprint -> startsAt of its instance
        self.group: dict[str, tuple[datetime, datetime | None]] = {}  # fp -> (start, end)

    def fire(self, fp: str, at: datetime) -> None:
        if fp not in self.active:
            self.active[fp] = at
            self.group[fp] = (at, None)

    def resolve(self, fp: str, at: datetime) -> None:
        if fp in self.active:
            self.group[fp] = (self.active.pop(fp), at)

    def flush(self, max_alerts: int) -> dict | None:
        """The post a flush sends (AM 0.25: status from the alerts listed after
        truncation), then resolved alerts leave the group."""
        if not self.group:
            return None
        listed = []
        for fp in sorted(self.group, key=lambda f: POOL[f]["labels"]["instance"]):
            start, end = self.group[fp]
            a = copy.deepcopy(POOL[fp])
            a.update(status="firing" if end is None else "resolved", startsAt=iso(start),
                     endsAt=ZERO if end is None else iso(end))
            listed.append(a)
        shown = listed[:max_alerts] if max_alerts else listed
        post = dict(copy.deepcopy(FIXTURE), alerts=shown, groupKey=self.group_key,
                    truncatedAlerts=len(listed) - len(shown),
                    status="firing" if any(a["status"] == "firing" for a in shown)
                    else "resolved")
        self.group = {fp: v for fp, v in self.group.items() if v[1] is None}
        return post

    def view(self, url: str) -> MemberView:
        found = {}
        for fp, start in self.active.items():
            a = POOL[fp]
            alert = AmAlert(fp, start, a["labels"], a["annotations"], a["generatorURL"],
                            "active", (FIXTURE["receiver"],))
            found[alert.key] = alert
        groups = [AmGroup(FIXTURE["receiver"], FIXTURE["groupLabels"], tuple(sorted(
            self.active)))] if self.active else []
        return MemberView(url, found, groups)


class FakeClient:
    def __init__(self, am: ModelAlertmanager) -> None:
        self.am = am

    def view(self) -> MemberView:
        return self.am.view("model")


def wipe(store: Store) -> None:
    with store.engine.begin() as conn:
        names = [t for t in sa.inspect(conn).get_table_names() if t != "alembic_version"]
        for name in names:
            conn.execute(sa.text(f"DELETE FROM {name}"))


def check_converged(store: Store, am: ModelAlertmanager, history: set[tuple[str, datetime]]
                    ) -> None:
    # the fixture's alerts are all acme's, and its group is not grouped by tenant
    group_key = tenant_group_key(am.group_key, FIXTURE["groupLabels"], "acme")
    guess = tenant_group_key(FIXTURE["groupKey"], FIXTURE["groupLabels"], "acme")
    with store.engine.connect() as conn:
        stored = {(r.fingerprint, r.starts_at): r.status for r in conn.execute(
            sa.select(alerts.c.fingerprint, alerts.c.starts_at, alerts.c.status))}
        open_incidents = conn.execute(
            sa.select(incidents.c.id, incidents.c.group_key, incidents.c.extra)
            .where(incidents.c.status != "resolved")).all()
        held = {(r.fingerprint, r.starts_at) for r in conn.execute(
            sa.select(incident_alerts.c.fingerprint, incident_alerts.c.starts_at)
            .join(incidents, sa.and_(incidents.c.id == incident_alerts.c.incident_id,
                                     incidents.c.group_key == incident_alerts.c.group_key))
            .where(incidents.c.status != "resolved"))}
    firing = {(fp, start) for fp, start in am.active.items()}
    for key in history:
        if key in firing:
            assert stored.get(key) == "firing", f"{key} fires in Alertmanager"
        elif key in stored:
            assert stored[key] == "resolved", f"{key} has resolved in Alertmanager"
    assert {k for k, s in stored.items() if s == "firing"} == firing
    if firing:
        [(_, key, extra)] = open_incidents
        # the real key, or the reconciler's guess that no post has named since
        assert key == group_key or (key == guess and extra == {"opened_by": "reconciler"}), (
            open_incidents)
        assert firing <= held
    else:
        assert open_incidents == []


def machine_for(store: Store):
    class WebhookMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            wipe(store)
            self.am = ModelAlertmanager()
            self.t = 0
            self.posts: list[dict] = []
            self.history: set[tuple[str, datetime]] = set()
            self.reconciler = make_reconciler(store, ["http://model.invalid"], clock=self.now)
            self.reconciler.clients = [FakeClient(self.am)]

        @initialize(route=st.sampled_from(ROUTES))
        def route(self, route):
            self.am.group_key = route + LABELS_PART

        def now(self) -> datetime:
            return BASE + timedelta(seconds=self.t)

        def tick(self) -> datetime:
            self.t += 1
            return self.now()

        @rule(fp=st.sampled_from(FPS))
        def fire(self, fp):
            self.am.fire(fp, self.tick())
            self.history.add((fp, self.am.active[fp]))

        @rule(fp=st.sampled_from(FPS))
        def resolve(self, fp):
            self.am.resolve(fp, self.tick())

        @rule(max_alerts=st.sampled_from([0, 0, 1, 2]))
        def flush(self, max_alerts):
            post = self.am.flush(max_alerts)
            if post is not None:
                self.posts.append(post)

        @precondition(lambda self: self.posts)
        @rule(pick=st.integers(min_value=0), consume=st.booleans())
        def deliver(self, pick, consume):
            """Any pending post: reordered (any index), duplicated (kept), or never."""
            i = pick % len(self.posts)
            post = self.posts.pop(i) if consume else self.posts[i]
            store.ingest(WebhookPayload.model_validate(post), now=self.tick())

        @rule()
        def reconcile(self):
            self.tick()
            report = self.reconciler.run_once(claim_turn=False)
            assert report.outcome == "ok"

        @invariant()
        def one_open_incident_per_group(self):  # the model has one group
            with store.engine.connect() as conn:
                n = conn.execute(sa.select(sa.func.count()).select_from(incidents).where(
                    incidents.c.status != "resolved")).scalar()
            assert n <= 1

        def teardown(self):
            self.tick()
            self.reconciler.run_once(claim_turn=False)
            check_converged(store, self.am, self.history)

    return WebhookMachine


def run_machine(url: str, examples: int) -> None:
    from hypothesis.stateful import run_state_machine_as_test

    migrate.upgrade(url)
    store = Store(url, hooks=[on_incident_event])
    try:
        run_state_machine_as_test(machine_for(store), settings=settings(
            max_examples=examples, stateful_step_count=25, deadline=None,
            suppress_health_check=list(HealthCheck), database=None))
    finally:
        store.dispose()


def test_posts_in_any_order_then_reconciliation_converge_sqlite(sqlite_url):
    run_machine(sqlite_url, 300)


@pytest.mark.parametrize("_", ["postgresql"])
def test_posts_in_any_order_then_reconciliation_converge_postgresql(postgres_url, _):
    run_machine(postgres_url, 60)
