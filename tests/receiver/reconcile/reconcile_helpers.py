"""Shared by the reconciliation tests: a store with the escalation hook, a reconciler,
and alerts pushed into a real Alertmanager through its API v2."""

from __future__ import annotations

from datetime import UTC, datetime

import requests
import sqlalchemy as sa
from prometheus_client import CollectorRegistry
from support.receiver import payload

from receiver.escalation.metrics import ReconcileMetrics
from receiver.escalation.timers import on_incident_event
from receiver.reconcile.reconciler import Reconciler
from receiver.reconcile.settings import ReconcileSettings
from receiver.store.tables import events

# receivers without integrations: Alertmanager groups the alerts but posts nothing, as
# if every post to ticketmon were lost
AM_CONFIG = """
route:
  receiver: ticketmon
  group_by: [alertname, service]
  group_wait: 1h
  group_interval: 1h
receivers: [{name: ticketmon}]
"""


def make_reconciler(store, members: list[str], clock=None, **settings) -> Reconciler:
    settings.setdefault("grace", 0)
    settings.setdefault("timeout", 2)
    registry = CollectorRegistry()
    kwargs = {"clock": clock} if clock else {}
    rec = Reconciler(ReconcileSettings(alertmanagers=members or ["http://127.0.0.1:9"],
                                       **settings), members, store.engine,
                     [on_incident_event], "test-worker", ReconcileMetrics(registry), **kwargs)
    rec.registry = registry
    return rec


def metric(rec: Reconciler, name: str, **labels) -> float | None:
    return rec.registry.get_sample_value(name, labels)


def push(am, alerts: list[dict]) -> None:
    """POST alerts into Alertmanager as Prometheus would (no endsAt: firing)."""
    body = [{"labels": a["labels"], "annotations": a.get("annotations", {}),
             "startsAt": a["startsAt"], "generatorURL": a.get("generatorURL", "")}
            for a in alerts]
    resp = requests.post(f"{am.url}/api/v2/alerts", json=body, timeout=5)
    assert resp.status_code == 200, resp.text


def resolve_in(am, alerts: list[dict]) -> None:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    body = [{"labels": a["labels"], "startsAt": a["startsAt"], "endsAt": now} for a in alerts]
    assert requests.post(f"{am.url}/api/v2/alerts", json=body, timeout=5).status_code == 200


def am_alerts(am) -> list[dict]:
    return requests.get(f"{am.url}/api/v2/alerts", timeout=5).json()


def fixture_alerts(name: str) -> list[dict]:
    return payload(name)["alerts"]


def silence(am, matchers: dict[str, str]) -> str:
    now = datetime.now(UTC)
    body = {"matchers": [{"name": k, "value": v, "isRegex": False, "isEqual": True}
                         for k, v in matchers.items()],
            "startsAt": now.isoformat().replace("+00:00", "Z"),
            "endsAt": now.replace(year=now.year + 1).isoformat().replace("+00:00", "Z"),
            "createdBy": "test", "comment": "test"}
    resp = requests.post(f"{am.url}/api/v2/silences", json=body, timeout=5)
    assert resp.status_code == 200, resp.text
    return resp.json()["silenceID"]


def timeline(store, kind: str | None = None) -> list[dict]:
    query = sa.select(events).where(events.c.kind != "reconcile_run").order_by(events.c.id)
    if kind:
        query = query.where(events.c.kind == kind)
    with store.engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]
