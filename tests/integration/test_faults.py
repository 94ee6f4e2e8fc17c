"""Faults with the real components (issue #10, "Proof"): a real Alertmanager posts to the
receiver under gunicorn while the receiver is SIGKILLed, while PostgreSQL restarts, and
as an HA pair posting to two receivers with two workers. Each test counts alerts sent,
held by Alertmanager, stored and lost, incidents and pages, then resolves everything and
counts the resolve notifications. bench/chaos.py runs the same scenarios for longer.

Alertmanager retries 5xx and connection errors within a flush and re-sends whatever was
not delivered at every group_interval (1 s here), so after a fault the store must
converge to exactly what Alertmanager holds.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from support.waiting import wait_for

from ticketmon.servers.faults import Counts, FaultBed, probe_payload
from ticketmon.servers.postgres import PostgresCluster

ALERTS, GROUPS = 300, 60
CONVERGE = 120.0  # seconds; a loaded 2-core box is slow, the assertions are about counts
FAILED = "alertmanager_notification_requests_failed_total"
POSTS = "alertmanager_notification_requests_total"


@pytest.fixture
def beds(workdir):
    """Factory of started FaultBeds on a database; every process stops at the end."""
    started: list[FaultBed] = []

    def start(url: str, **kw) -> FaultBed:
        bed = FaultBed(workdir / f"bed{len(started)}", url, **kw)
        started.append(bed)
        return bed.start()

    yield start
    for bed in started:
        bed.close()


def report(name: str, phase: str, counts: Counts, **extra) -> None:
    """One JSON line per phase (pytest -s shows it): the figures the issue asks for."""
    print(json.dumps({"test": name, "phase": phase, **counts.row(), **extra}))


def stored_incidents(bed: FaultBed) -> int:
    return len(bed.ledger.store()[1])


def assert_firing(c: Counts) -> None:
    assert c.held == c.sent == ALERTS
    assert c.lost == 0, c.lost_fingerprints[:5]
    assert c.stored == c.firing == ALERTS
    assert c.open_incidents == GROUPS and c.duplicate_incidents == 0
    assert c.pages == GROUPS * 2 and c.duplicate_pages == 0 and c.unpaged == 0
    assert c.dead == 0


def resolve_all(bed: FaultBed, starts: datetime, name: str) -> Counts:
    bed.resolve(ALERTS, GROUPS, starts)
    c = bed.settle(bed.converged_resolved, CONVERGE, "every incident and page resolved")
    report(name, "resolved", c)
    assert c.resolved_incidents == c.incidents == GROUPS and c.duplicate_incidents == 0
    assert c.stored == ALERTS and c.firing == 0
    assert c.resolves == c.pages == GROUPS * 2
    assert c.duplicate_resolves == 0 and c.missing_resolves == 0 and c.duplicate_pages == 0
    assert c.dead == 0
    return c


def test_receiver_sigkilled_under_load_loses_no_alert_and_pages_once(beds, postgres_url):
    bed = beds(postgres_url, run="kill")
    receiver = bed.receivers[0]
    starts = datetime.now(UTC) - timedelta(minutes=1)
    first = bed.pusher(ALERTS * 2 // 3, GROUPS, starts, spread=3.0)
    first.start()
    wait_for(lambda: stored_incidents(bed) >= GROUPS // 4, 60, "a quarter of the groups",
             every=0.05)
    receiver.kill()  # master and workers, while Alertmanager posts and alerts arrive
    first.finish()
    failed = sum(bed.am_metric(FAILED))
    # the rest arrive while nothing listens: Alertmanager must keep them and re-send
    bed.pusher(ALERTS - ALERTS * 2 // 3, GROUPS, starts, start=ALERTS * 2 // 3,
               spread=0.5).push_here()
    wait_for(lambda: sum(bed.am_metric(FAILED)) > failed, 60,
             "Alertmanager failing to post to the dead receiver", every=0.2)
    receiver.start()
    c = bed.settle(lambda: bed.converged_firing(GROUPS), CONVERGE, "convergence after the kill")
    report("sigkill", "firing", c, kills=receiver.kills,
           am_failed_posts=sum(bed.am_metric(FAILED)))
    assert_firing(c)
    resolve_all(bed, starts, "sigkill")


@pytest.fixture
def own_postgres():
    """A cluster of its own: a restart must not disturb the session's cluster. Requested
    before `beds`, so the bed's processes stop before the cluster does."""
    cluster = PostgresCluster()
    yield cluster
    cluster.stop()


def test_postgres_restarted_under_load_503_then_loses_nothing(own_postgres, beds):
    cluster = own_postgres
    bed = beds(cluster.create_database("faults"), run="pg")
    receiver = bed.receivers[0]
    starts = datetime.now(UTC) - timedelta(minutes=1)
    first = bed.pusher(ALERTS * 2 // 3, GROUPS, starts, spread=3.0)
    first.start()
    wait_for(lambda: stored_incidents(bed) >= GROUPS // 4, 60, "a quarter of the groups",
             every=0.05)
    cluster.halt("fast")  # ends every session, rolls back what is in flight
    statuses: list[int] = []
    wait_for(lambda: statuses.append(receiver.post(probe_payload()).status_code)
             or statuses[-1] == 503, 30, "503 while PostgreSQL is down", every=0.2)
    assert set(statuses) == {503}, statuses  # never a 2xx without a commit
    first.finish()
    failed = sum(bed.am_metric(FAILED))
    bed.pusher(ALERTS - ALERTS * 2 // 3, GROUPS, starts, start=ALERTS * 2 // 3,
               spread=0.5).push_here()
    wait_for(lambda: sum(bed.am_metric(FAILED)) > failed, 60,
             "Alertmanager's posts failing while PostgreSQL is down", every=0.2)
    assert receiver.post(probe_payload()).status_code == 503
    cluster.start()
    c = bed.settle(lambda: bed.converged_firing(GROUPS), CONVERGE,
                   "convergence after the restart")
    report("postgres-restart", "firing", c, am_failed_posts=sum(bed.am_metric(FAILED)),
           probe_statuses=statuses)
    assert_firing(c)
    resolve_all(bed, starts, "postgres-restart")


def test_alertmanager_ha_pair_two_receivers_two_workers_one_incident_one_page(
        beds, postgres_url):
    bed = beds(postgres_url, receivers=2, workers=2, run="ha")
    starts = datetime.now(UTC) - timedelta(minutes=1)
    bed.pusher(ALERTS, GROUPS, starts, spread=3.0).push_here()
    c = bed.settle(lambda: bed.converged_firing(GROUPS), CONVERGE, "convergence of the pair")
    posts = bed.am_metric(POSTS)
    report("ha-pair", "firing", c, posts_per_node=posts)
    assert all(n > 0 for n in posts), posts  # both nodes posted: the receivers de-duplicate
    assert_firing(c)
    resolve_all(bed, starts, "ha-pair")
