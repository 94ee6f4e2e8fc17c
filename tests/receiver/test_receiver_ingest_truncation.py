"""Truncated posts (issue #10): alerts no post listed keep the incident open.

Real Alertmanager 0.25 posts to a receiver with `max_alerts: 2` (tests/fixtures/
alertmanager/README.md): `truncated` lists two of three firing alerts, and
`extra-truncated-resolved` is that receiver's final, complete post. Every test runs on
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import copy

from support.receiver import payload, snapshot

from receiver.payload import WebhookPayload
from receiver.store import queries


def ingest(store, body: dict):
    return store.ingest(WebhookPayload.model_validate(body))


def the_incident(store) -> dict:
    rows, _ = store.read(queries.list_incidents, "*", queries.IncidentFilter(), 10)
    [row] = rows
    return store.read(queries.get_incident, "*", row["id"])


def listed_resolved_while_truncated() -> dict:
    """The two listed alerts resolved while the unlisted third still fires."""
    body = copy.deepcopy(payload("extra-truncated-resolved"))
    body.update(status="firing", truncatedAlerts=1)
    return body


def complete_copy_of_the_first_post() -> dict:
    """The first post as if nothing had been hidden: the same alerts, same times."""
    body = copy.deepcopy(payload("truncated"))
    body["truncatedAlerts"] = 0
    return body


def test_listed_alerts_resolving_leave_a_truncated_group_open(store):
    ingest(store, payload("truncated"))
    result = ingest(store, listed_resolved_while_truncated())
    assert result.changed == 2 and result.resolved == []
    inc = the_incident(store)
    assert inc["status"] == "open" and inc["truncated_alerts"] == 1
    assert {a["status"] for a in inc["alerts"]} == {"resolved"}

    done = ingest(store, payload("extra-truncated-resolved"))  # complete, group resolved
    assert done.resolved == [inc["id"]]
    inc = the_incident(store)
    assert inc["status"] == "resolved" and inc["truncated_alerts"] == 0
    assert inc["resolved_at"] == "2026-11-22T04:35:36.660000Z"


def test_a_complete_firing_post_lets_the_incident_resolve(store):
    """truncatedAlerts 0 with the top-level status still firing: nothing hidden any more."""
    ingest(store, payload("truncated"))
    ingest(store, listed_resolved_while_truncated())
    complete = listed_resolved_while_truncated()
    complete["truncatedAlerts"] = 0
    result = ingest(store, complete)
    inc = the_incident(store)
    assert result.resolved == [inc["id"]]
    assert inc["status"] == "resolved" and inc["truncated_alerts"] == 0
    kinds = [e["kind"] for e in inc["timeline"]]
    assert kinds.count("truncated") == 1 and kinds[-1] == "resolved"


def test_a_late_complete_copy_of_an_older_post_does_not_undo_the_truncation(store):
    ingest(store, payload("truncated"))
    ingest(store, listed_resolved_while_truncated())
    before = snapshot(store)
    late = ingest(store, complete_copy_of_the_first_post())  # earlier alert times: older
    assert (late.changed, late.opened, late.resolved) == (0, [], [])
    assert snapshot(store) == before
    inc = the_incident(store)
    assert inc["status"] == "open" and inc["truncated_alerts"] == 1


def test_the_count_follows_the_newest_post_both_ways(store):
    ingest(store, complete_copy_of_the_first_post())
    assert the_incident(store)["truncated_alerts"] == 0
    ingest(store, payload("truncated"))  # same alerts, now one more hidden: not a replay
    inc = the_incident(store)
    assert inc["truncated_alerts"] == 1
    assert inc["truncated_as_of"] == "2026-11-22T04:35:25.660000Z"
    ingest(store, complete_copy_of_the_first_post())  # same alert time, arrived later
    assert the_incident(store)["truncated_alerts"] == 0
    before = snapshot(store)
    ingest(store, complete_copy_of_the_first_post())  # and a repeat is a replay again
    assert snapshot(store) == before


def test_a_truncated_group_first_seen_resolving_opens_an_incident(store):
    """Only resolved alerts listed, yet the group fires: an open incident, not a closed one."""
    result = ingest(store, listed_resolved_while_truncated())
    inc = the_incident(store)
    assert result.opened == [inc["id"]] and result.resolved == []
    assert inc["status"] == "open" and inc["truncated_alerts"] == 1
    ingest(store, payload("extra-truncated-resolved"))
    assert the_incident(store)["status"] == "resolved"


def test_an_untruncated_group_first_seen_resolved_is_stored_resolved(store):
    ingest(store, payload("extra-truncated-resolved"))
    inc = the_incident(store)
    assert inc["status"] == "resolved" and inc["truncated_alerts"] == 0


def test_a_truncated_resolved_post_does_not_speak_for_the_hidden_alerts(store):
    """Alertmanager computes a post's status over the alerts it lists, after truncating
    (notify/webhook in 0.25): `resolved` with truncatedAlerts > 0 can hide a firing
    alert, so only the listed alerts end; reconciliation settles the rest."""
    ingest(store, payload("truncated"))
    hiding = copy.deepcopy(payload("extra-truncated-resolved"))
    hiding["truncatedAlerts"] = 1  # status stays "resolved", one alert unlisted
    result = ingest(store, hiding)
    assert result.resolved == []
    inc = the_incident(store)
    assert inc["status"] == "open" and inc["truncated_alerts"] == 1
    assert {a["status"] for a in inc["alerts"]} == {"resolved"}
