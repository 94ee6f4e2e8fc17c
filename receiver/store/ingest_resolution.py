"""How an ingest ends incidents: by their alerts, by a complete group post, never while
truncated.

A mixin of receiver.store.ingest.Ingest, which owns the context (connection, payload,
held-back writes, result) and the incident events these steps append.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from receiver import severity as sev
from receiver.payload import Alert
from receiver.store.ingest_statements import MEMBERS, Key, statements
from receiver.store.tables import alerts, incident_alerts, incidents


def alert_time(alerts: Iterable[Alert]) -> datetime:
    """How new a post is, as far as it tells: the latest startsAt or resolved endsAt.

    A later post of a group reports its alerts' starts and ends as they were then, so it
    never reports less, except when truncation lists other alerts: a newer post then
    looks older, and its count is ignored until a post with later times comes (the one
    that resolves the last alert carries that alert's endsAt).
    """
    return max((a.ends_at or a.starts_at) if a.status == "resolved" else a.starts_at
               for a in alerts)


class Resolution:
    """The steps of Ingest that resolve an incident or keep it open."""

    def note_truncation(self, incident: dict) -> bool:
        """Keep the newest post's truncation count on the open incident; True if cleared.

        A post with an earlier alert time than the stored one is older: skipped. While
        the count is 0 the time is not moved forward (no write per post): a late post
        may then raise the count, which only keeps the incident open until a newer post.
        """
        count, as_of = self.payload.truncatedAlerts, alert_time(self.alerts.values())
        stored = incident["truncated_as_of"]
        if stored is not None and as_of < stored:
            return False
        before = incident["truncated_alerts"]
        if count == before and (count == 0 or as_of == stored):
            return False
        updates = {"truncated_alerts": count, "truncated_as_of": as_of, "updated_at": self.now}
        self.conn.execute(incidents.update().where(incidents.c.id == incident["id"])
                          .values(**updates))
        incident.update(updates)
        if count != before:
            self.incident_event(incident, "truncated", "alertmanager",
                                {"truncated_alerts": count, "from": before}, hook=False)
        return count == 0 and before > 0

    def maybe_resolve(self, incident: dict, any_resolved: bool) -> None:
        # Alertmanager computes a post's status over the alerts it lists, after truncating
        # (notify/webhook): a truncated "resolved" may hide firing alerts, so only a
        # complete post speaks for the whole group; reconciliation settles the rest
        group_resolved = self.payload.status == "resolved" and not self.payload.truncatedAlerts
        if not (any_resolved or group_resolved):
            return
        ended_at = max((a.ends_at for a in self.alerts.values() if a.ends_at),
                       default=self.now)
        if group_resolved and incident["opened_at"] > ended_at:
            # a late copy of an earlier episode's "resolved" (HA peer, retry): this
            # episode began after that one ended, so the post says nothing about it
            group_resolved = False
            if not any_resolved:
                return
        if not group_resolved and incident["truncated_alerts"]:
            return  # the group still fires alerts no post listed
        self.writes.flush_links()
        if group_resolved:
            self.end_incident_alerts(incident, ended_at)
        firing = self.conn.execute(statements(self.conn).firing_members,
                                   {"incident_id": incident["id"]}).all()
        if firing and not group_resolved:
            return
        if firing:  # alerts that started after the group ended are the next episode
            self.resolve(incident, ended_at)
            self.open_successor(incident, [(fp, starts_at) for fp, starts_at in firing])
            return
        last_end = self.conn.execute(
            sa.select(sa.func.max(alerts.c.ends_at))
            .select_from(MEMBERS)
            .where(incident_alerts.c.incident_id == incident["id"])
        ).scalar()
        self.resolve(incident, last_end or ended_at)

    def open_successor(self, incident: dict, keys: list[Key]) -> None:
        """Move alerts still firing into a new incident of the same group."""
        member = sa.tuple_(alerts.c.fingerprint, alerts.c.starts_at).in_(keys)
        starts, severities = zip(*self.conn.execute(
            sa.select(alerts.c.starts_at, alerts.c.severity).where(member)).all(), strict=True)
        values = {c: incident[c] for c in (
            "group_key", "tenant", "title", "service", "receiver", "group_labels",
            "common_labels", "external_url", "extra", "truncated_alerts",
            "truncated_as_of")}
        values.update(status="open", severity=sev.highest(severities), opened_at=min(starts),
                      created_at=self.now, updated_at=self.now)
        successor = dict(self.conn.execute(
            incidents.insert().values(values).returning(*incidents.c)).mappings().one())
        self.conn.execute(
            incident_alerts.update()
            .where(incident_alerts.c.incident_id == incident["id"],
                   sa.tuple_(incident_alerts.c.fingerprint,
                             incident_alerts.c.starts_at).in_(keys))
            .values(incident_id=successor["id"])
        )
        self.result.opened.append(successor["id"])
        self.incident_event(successor, "opened", "alertmanager",
                            {"alerts": len(keys), "split_from": incident["id"]})

    def end_incident_alerts(self, incident: dict, ended_at: datetime) -> None:
        """The group resolved: every alert of it that started before then has ended."""
        member = sa.select(incident_alerts.c.fingerprint, incident_alerts.c.starts_at).where(
            incident_alerts.c.incident_id == incident["id"])
        rows = self.conn.execute(
            alerts.update()
            .where(alerts.c.status == "firing", alerts.c.starts_at <= ended_at,
                   sa.tuple_(alerts.c.fingerprint, alerts.c.starts_at).in_(member))
            .values(status="resolved", ends_at=ended_at, updated_at=self.now)
            .returning(alerts.c.fingerprint, alerts.c.starts_at)
        ).all()
        for fp, starts_at in rows:
            self.event_rows.append({
                "at": self.now, "incident_id": incident["id"], "fingerprint": fp,
                "starts_at": starts_at, "kind": "alert_resolved", "actor": "alertmanager",
                "detail": {"reason": "the group was reported resolved"},
            })

    def resolve(self, incident: dict, resolved_at: datetime) -> None:
        self.conn.execute(
            incidents.update().where(incidents.c.id == incident["id"]).values(
                status="resolved", resolved_at=resolved_at, resolved_by="alertmanager",
                updated_at=self.now)
        )
        incident.update(status="resolved", resolved_at=resolved_at,
                        resolved_by="alertmanager")
        self.result.resolved.append(incident["id"])
        self.incident_event(incident, "resolved", "alertmanager", {})
