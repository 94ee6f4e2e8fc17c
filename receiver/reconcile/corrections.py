"""The reconciler's changes to the store, each in the caller's transaction.

They follow ingest's rules (receiver/store/ingest.py) with one difference of actor:
every row they write says "reconciler", every alert they move gets a
`reconciled_resolved` / `reconciled_firing` event saying why, and incidents open and
resolve through the same incident hooks as ingest (`run_hooks`), so escalation
starts, stops and sends its resolve notifications exactly as for a webhook post.
Locks are taken incident first, then alerts, as ingest does, so the two never deadlock.

One exception to "an alert only moves firing -> resolved": an alert whose resolution
was inferred (by the reconciler: an HA member lagging, an answer that flapped; by
ingest: a group reported resolved, a newer instance) that Alertmanager reports firing
again fires again. One that Alertmanager posted as resolved stays resolved.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from receiver import severity as sev
from receiver.reconcile.alertmanager_api import AmAlert, AmGroup, Key, ms
from receiver.store.bulk import chunks, dialect_insert
from receiver.store.incident_events import IncidentHook
from receiver.store.ingest import run_hooks
from receiver.store.ingest_statements import UNRESOLVED, statements
from receiver.store.tables import alerts, events, incident_alerts, incidents
from receiver.stream import feed
from receiver.tenant_groups import tenant_of

ACTOR = "reconciler"
MACHINE = ("alertmanager", ACTOR)  # who may have ended an episode the reconciler reopens


@dataclass
class Corrections:
    resolved_alerts: int = 0
    fired_alerts: int = 0  # stored or fired again
    linked_alerts: int = 0  # placed into the group's open incident
    resolved_incidents: list[int] = field(default_factory=list)
    opened_incidents: list[int] = field(default_factory=list)
    unfixable: int = 0  # Alertmanager posted it resolved, then reported it firing again

    def add(self, other: Corrections) -> None:
        self.resolved_alerts += other.resolved_alerts
        self.fired_alerts += other.fired_alerts
        self.linked_alerts += other.linked_alerts
        self.resolved_incidents += other.resolved_incidents
        self.opened_incidents += other.opened_incidents
        self.unfixable += other.unfixable


@dataclass
class Stored:
    """A stored alert as the reconciler compares it: its exact key, status and links."""

    key: Key
    status: str
    links: list[tuple[str, int, str, str | None]] = field(default_factory=list)
    # (group_key, incident_id, incident status, resolved_by)

    @property
    def held_open(self) -> bool:
        return any(status != "resolved" for _, _, status, _ in self.links)


def stored_alerts(conn: Connection, wanted: Iterable[AmAlert]) -> dict[Key, Stored]:
    """Stored alerts matching Alertmanager's, by Alertmanager's (millisecond) key."""
    wanted = list(wanted)
    by_ms = {a.key for a in wanted}
    found: dict[Key, Stored] = {}
    for part in chunks(sorted({a.fingerprint for a in wanted})):
        earliest = min(a.key[1] for a in wanted if a.fingerprint in set(part))
        rows = conn.execute(
            sa.select(alerts.c.fingerprint, alerts.c.starts_at, alerts.c.status,
                      incident_alerts.c.group_key, incidents.c.id, incidents.c.status,
                      incidents.c.resolved_by)
            .select_from(alerts.outerjoin(incident_alerts, sa.and_(
                incident_alerts.c.fingerprint == alerts.c.fingerprint,
                incident_alerts.c.starts_at == alerts.c.starts_at))
                .outerjoin(incidents, incidents.c.id == incident_alerts.c.incident_id))
            .where(alerts.c.fingerprint.in_(list(part)), alerts.c.starts_at >= earliest)
        ).all()
        for fp, starts_at, status, group_key, inc_id, inc_status, resolved_by in rows:
            key = (fp, ms(starts_at))
            if key not in by_ms:
                continue
            entry = found.setdefault(key, Stored((fp, starts_at), status))
            if inc_id is not None:
                entry.links.append((group_key, inc_id, inc_status, resolved_by))
    return found


# -- resolving -------------------------------------------------------------------------
def resolve_alerts(conn: Connection, keys: Sequence[Key], now: datetime,
                   hooks: Sequence[IncidentHook], reason: str) -> Corrections:
    """Resolve stored firing alerts no Alertmanager reports, then their emptied incidents."""
    done = Corrections()
    keys = sorted(keys)
    owners: dict[Key, list[int]] = {}
    for part in chunks(keys):
        for fp, starts_at, inc_id in conn.execute(
                sa.select(incident_alerts.c.fingerprint, incident_alerts.c.starts_at,
                          incident_alerts.c.incident_id)
                .where(sa.tuple_(incident_alerts.c.fingerprint,
                                 incident_alerts.c.starts_at).in_(list(part)))):
            owners.setdefault((fp, starts_at), []).append(inc_id)
    locked = lock_unresolved(conn, {i for ids in owners.values() for i in ids})
    rows = []
    for part in chunks(keys):
        rows += conn.execute(
            alerts.update()
            .where(alerts.c.status == "firing",
                   sa.tuple_(alerts.c.fingerprint, alerts.c.starts_at).in_(list(part)))
            .values(status="resolved", ends_at=now, updated_at=now)
            .returning(alerts.c.fingerprint, alerts.c.starts_at, alerts.c.alertname)).all()
    history = []
    for fp, starts_at, alertname in rows:
        for inc_id in owners.get((fp, starts_at)) or [None]:
            history.append(_event(now, inc_id, "reconciled_resolved",
                                  {"alertname": alertname, "reason": reason}, fp, starts_at))
    if history:
        conn.execute(events.insert(), history)
    done.resolved_alerts = len(rows)
    done.resolved_incidents = resolve_empty(
        conn, locked, now, hooks, "none of its alerts fires in Alertmanager any more")
    moved = {e["incident_id"] for e in history} - {None, *done.resolved_incidents}
    feed.record(conn, [feed.change_row(i, "corrected", ACTOR, now) for i in locked
                       if i["id"] in moved])
    return done


def lock_unresolved(conn: Connection, ids: Iterable[int]) -> list[dict]:
    ids = sorted(ids)
    if not ids:
        return []
    found = []
    for part in chunks(ids):
        found += conn.execute(
            sa.select(incidents).where(incidents.c.id.in_(list(part)), UNRESOLVED)
            .order_by(incidents.c.id).with_for_update()).mappings().all()
    return [dict(r) for r in found]


def resolve_empty(conn: Connection, locked: list[dict], now: datetime,
                  hooks: Sequence[IncidentHook], reason: str) -> list[int]:
    """Resolve the locked incidents that hold no firing alert."""
    resolved = []
    for incident in locked:
        if conn.execute(statements(conn).firing_members,
                        {"incident_id": incident["id"]}).first() is not None:
            continue
        values = {"status": "resolved", "resolved_at": now, "resolved_by": ACTOR,
                  "updated_at": now}
        conn.execute(incidents.update().where(incidents.c.id == incident["id"]).values(values))
        incident.update(values)
        detail = {"reason": reason}
        conn.execute(events.insert().values(_event(now, incident["id"], "resolved", detail)))
        run_hooks(conn, hooks, incident, "resolved", ACTOR, now, detail)
        resolved.append(incident["id"])
    return resolved


# -- firing ----------------------------------------------------------------------------
def place_firing(conn: Connection, key: str, group: AmGroup, found: Sequence[AmAlert],
                 now: datetime, hooks: Sequence[IncidentHook],
                 external_url: str | None = None) -> Corrections:
    """Store Alertmanager's firing alerts of one group and hold them in its open incident."""
    done = Corrections()
    cur = conn.execute(statements(conn).lock_open_incident, {"group_key": key}).mappings().first()
    cur = dict(cur) if cur else None
    stored = stored_alerts(conn, found)
    refire = refireable(conn, [s.key for s in stored.values() if s.status == "resolved"])
    place: dict[Key, tuple[AmAlert, str]] = {}  # exact key -> (alert, why)
    move: set[Key] = set()
    for alert in found:
        st = stored.get(alert.key)
        if st is None:
            exact = insert_alert(conn, alert, now)
            if exact is None:
                continue  # stored meanwhile by a webhook post: the next run looks again
            place[exact] = (alert, "Alertmanager reports it firing; no webhook post brought it")
            done.fired_alerts += 1
            continue
        if st.status == "resolved":
            if st.key not in refire:
                done.unfixable += 1
                continue
            conn.execute(alerts.update().where(
                alerts.c.fingerprint == st.key[0], alerts.c.starts_at == st.key[1])
                .values(status="firing", ends_at=None, updated_at=now))
            done.fired_alerts += 1
            why = "its resolution was inferred; Alertmanager reports it firing"
        elif st.held_open:
            continue
        else:
            why = "it fires in Alertmanager but no open incident held it"
        mine = [link for link in st.links if link[0] == key]
        if mine and mine[0][2] == "resolved" and mine[0][3] not in MACHINE:
            continue  # a person resolved that incident: theirs to reopen, not ours
        if mine and (cur is None or mine[0][1] != cur["id"]):
            move.add(st.key)
        place[st.key] = (alert, why)
    if not place:
        return done
    if cur is None:
        cur = open_incident(conn, key, group, [a for a, _ in place.values()], now, hooks,
                            external_url)
        done.opened_incidents.append(cur["id"])
    elif not raise_severity(conn, cur, [a for a, _ in place.values()], now, hooks):
        feed.record(conn, [feed.change_row(cur, "corrected", ACTOR, now)])
    for part in chunks(sorted(move)):
        conn.execute(incident_alerts.update().where(
            incident_alerts.c.group_key == key,
            sa.tuple_(incident_alerts.c.fingerprint, incident_alerts.c.starts_at).in_(list(part)))
            .values(incident_id=cur["id"]))
    new_links = [{"group_key": key, "fingerprint": k[0], "starts_at": k[1],
                  "incident_id": cur["id"]} for k in sorted(place) if k not in move]
    if new_links:
        conn.execute(dialect_insert(conn, incident_alerts).on_conflict_do_nothing(), new_links)
    done.linked_alerts = len(place)
    conn.execute(events.insert(), [
        _event(now, cur["id"], "reconciled_firing",
               {"alertname": a.labels.get("alertname"), "state": a.state, "reason": why},
               k[0], k[1])
        for k, (a, why) in sorted(place.items())])
    return done


def refireable(conn: Connection, keys: list[Key]) -> set[Key]:
    """Resolved alerts whose resolution was inferred, not reported: by the reconciler, or
    by ingest from a group-level "resolved" post (Alertmanager computes a truncated
    post's status from the alerts it lists) or from a newer instance. Only an alert
    Alertmanager itself posted as resolved stays resolved whatever it reports later."""
    last: dict[Key, bool] = {}
    for part in chunks(keys):
        for fp, starts_at, kind, detail in conn.execute(
                sa.select(events.c.fingerprint, events.c.starts_at, events.c.kind,
                          events.c.detail)
                .where(sa.tuple_(events.c.fingerprint, events.c.starts_at).in_(list(part)),
                       events.c.kind.in_(("alert_resolved", "reconciled_resolved")))
                .order_by(events.c.id)):
            last[(fp, starts_at)] = (kind == "reconciled_resolved"
                                     or bool((detail or {}).get("reason")))
    return {k for k, inferred in last.items() if inferred}


def insert_alert(conn: Connection, a: AmAlert, now: datetime) -> Key | None:
    row = conn.execute(dialect_insert(conn, alerts).values(
        fingerprint=a.fingerprint, starts_at=a.starts_at, ends_at=None, status="firing",
        tenant=tenant_of(a.labels)[:100], alertname=a.labels.get("alertname", "")[:200],
        severity=a.labels.get("severity", sev.DEFAULT)[:64], labels=a.labels,
        annotations=a.annotations, generator_url=a.generator_url,
        extra={"source": "alertmanager api", "state": a.state},
        received_at=now, updated_at=now,
    ).on_conflict_do_nothing().returning(alerts.c.fingerprint, alerts.c.starts_at)).first()
    return (row[0], row[1]) if row else None


def open_incident(conn: Connection, key: str, group: AmGroup, members: list[AmAlert],
                  now: datetime, hooks: Sequence[IncidentHook],
                  external_url: str | None) -> dict:
    common = dict(members[0].labels)
    for a in members[1:]:
        common = {k: v for k, v in common.items() if a.labels.get(k) == v}
    summaries = {a.annotations.get("summary") for a in members}
    summary = summaries.pop() if len(summaries) == 1 else None
    service = common.get("service") or group.labels.get("service")
    values = {
        "group_key": key, "status": "open",
        "tenant": (common.get("tenant") or group.labels.get("tenant")
                   or tenant_of(members[0].labels))[:100],
        "severity": sev.highest(a.labels.get("severity", sev.DEFAULT)[:64] for a in members),
        "title": (summary or common.get("alertname") or key)[:1000],
        "service": service[:200] if service else None, "receiver": group.receiver[:200],
        "group_labels": group.labels, "common_labels": common, "external_url": external_url,
        "extra": {"opened_by": ACTOR}, "truncated_alerts": 0,
        "opened_at": min(a.starts_at for a in members), "created_at": now, "updated_at": now,
    }
    row = conn.execute(dialect_insert(conn, incidents).values(values).on_conflict_do_nothing(
        index_elements=[incidents.c.group_key], index_where=UNRESOLVED)
        .returning(*incidents.c)).mappings().first()
    if row is None:  # a webhook post opened it meanwhile: join it
        return dict(conn.execute(statements(conn).lock_open_incident,
                                 {"group_key": key}).mappings().one())
    incident = dict(row)
    detail = {"alerts": len(members),
              "reason": "Alertmanager reports alerts of this group firing that no open "
                        "incident held"}
    conn.execute(events.insert().values(_event(now, incident["id"], "opened", detail)))
    run_hooks(conn, hooks, incident, "opened", ACTOR, now, detail)
    return incident


def raise_severity(conn: Connection, incident: dict, newcomers: list[AmAlert],
                   now: datetime, hooks: Sequence[IncidentHook]) -> bool:
    """Raise the incident's severity to its newcomers' highest; True if it rose."""
    top = sev.highest([incident["severity"]] + [a.labels.get("severity", sev.DEFAULT)[:64]
                                                for a in newcomers])
    if sev.rank(top) <= sev.rank(incident["severity"]):
        return False
    detail = {"from": incident["severity"], "to": top}
    conn.execute(incidents.update().where(incidents.c.id == incident["id"])
                 .values(severity=top, updated_at=now))
    incident.update(severity=top)
    conn.execute(events.insert().values(_event(now, incident["id"], "severity_raised", detail)))
    run_hooks(conn, hooks, incident, "severity_raised", ACTOR, now, detail)
    return True


def _event(at: datetime, incident_id: int | None, kind: str, detail: dict,
           fingerprint: str | None = None, starts_at: datetime | None = None) -> dict:
    return {"at": at, "incident_id": incident_id, "fingerprint": fingerprint,
            "starts_at": starts_at, "kind": kind, "actor": ACTOR, "detail": detail}
