"""Fold one Alertmanager notification into alerts and incidents, in the caller's transaction.

The rules (see tests/receiver/test_receiver_ingest.py for each as a scenario):
- an alert is fingerprint + startsAt; the only state change is firing -> resolved, so
  replays and out-of-order posts cannot move it backwards;
- an incident is one episode of one groupKey; it opens when an alert new to the store
  fires and no unresolved incident exists for the group, and it resolves by itself when
  none of its alerts fires any more;
- a fingerprint firing with a newer startsAt ends its older instance (Alertmanager only
  keeps one active instance per fingerprint), and a post whose top-level status is
  `resolved` ends every alert of the group that started before it;
- a truncated firing post (`truncatedAlerts` > 0) means alerts the receiver was never
  shown still fire: while the newest post of the group says so, its incident stays open
  though every alert it knows has resolved, until a complete post (`truncatedAlerts` 0,
  or top-level `resolved`) or reconciliation settles it. The incident keeps the newest
  post's count (`truncated_alerts`) and its alert time (`truncated_as_of`, see
  `alert_time`): posts carry no sequence number, so a post reporting an earlier alert
  time than that is an older one arriving late and leaves the count alone;
- the same payload twice changes nothing: no row is touched, no event is written.

Concurrent posts of one group (an HA pair) meet at the unresolved incident's row lock
(PostgreSQL) or at the write lock (SQLite), and at the partial unique index that allows
one unresolved incident per group.

Cost: most posts are repeats of what is stored, so every post starts with one read (see
Probe) that answers "nothing to do" for them; the rest write only the alerts that move.
In a storm every alert is new: such a post is that read (skipped once the store sees a
storm, see store.STORM_STREAK) and, on PostgreSQL, one prepared statement in autocommit
(`storm`: STORM in ingest_statements.py, prepared.py) that locks the open incident and
writes the alerts, their links, history and live-feed change, when that is all the post
does; otherwise it writes nothing and the post goes step by step, in one transaction:
the incident lock, the upsert, and one statement for its links and history
(ingest_writes.py). The reads for older instances and ended episodes run only when the
upsert and the lock say they may find something (tests/receiver/
test_receiver_ingest_replay.py counts the statements).
Ending incidents, and the truncation rule, live in ingest_resolution.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from receiver import severity as sev
from receiver.payload import Alert, WebhookPayload
from receiver.store.bulk import chunks, dialect_insert
from receiver.store.incident_events import IncidentEvent, IncidentHook
from receiver.store.ingest_adoption import adopt, guessed_incident
from receiver.store.ingest_resolution import Resolution, alert_time
from receiver.store.ingest_statements import UNRESOLVED, Key, statements
from receiver.store.ingest_writes import Writes
from receiver.store.replay import IngestResult, Probe, received
from receiver.store.tables import alerts, incident_alerts, incidents
from receiver.stream import feed
from receiver.tenant_groups import tenant_of


class Ingest(Resolution):
    """One notification's ingest; a class only to share its context between steps."""

    def __init__(self, conn: Connection, payload: WebhookPayload, now: datetime,
                 hooks: Sequence[IncidentHook], seen: Probe | None = None) -> None:
        self.conn = conn
        self.payload = payload
        self.now = now
        self.hooks = hooks
        self.group_key = payload.groupKey
        self.seen = seen or Probe(conn, payload)
        self.alerts = self.seen.alerts
        self.writes = Writes(conn)
        self.event_rows = self.writes.events
        self.linked_now: dict[Key, int] = {}  # links written by this transaction
        self.inserted: set[Key] = set()  # alerts this transaction stored first
        self.result = IngestResult(received=received(payload), duplicates=0)
        self.in_feed: set[int] = set()  # incidents whose change this post already recorded

    # -- steps -------------------------------------------------------------------------
    def run(self) -> IngestResult:
        if self.seen.replay:
            return self.seen.result()
        cur = self.locked_open_incident() or self.adopt_guessed()
        changed, older_firing = self.upsert_alerts()
        self.result.duplicates = len(self.alerts) - len(changed)
        new_firing = [k for k, status in changed.items() if status == "firing"]
        # the upsert saw no older instance firing, and none is posted alongside
        alone = len({fp for fp, _ in new_firing}) == len(new_firing)
        ended = self.end_older_instances(new_firing) if older_firing or not alone else {}
        inserted = self.inserted
        late = (self.link_to_ended_episodes(inserted)
                if inserted and self.may_be_late(cur, inserted) else set())
        new_firing = [k for k in new_firing if k not in late]
        if cur is None and new_firing:
            cur = self.open_incident(new_firing)
        if cur is not None:  # an alert this group links already cannot be linked again
            self.link(cur, {k: a for k, a in self.alerts.items()
                            if k not in late and self.seen.linked_to(k) is None})
        elif set(changed) - late:
            self.place_without_open_incident({k: s for k, s in changed.items() if k not in late})
        if changed or ended:
            self.alert_events({**changed, **ended}, implicit=set(ended), cur=cur)
        if cur is not None and cur["status"] != "resolved":
            uncovered = self.note_truncation(cur)  # what was hidden may have resolved
            self.maybe_resolve(cur, any_resolved=uncovered or bool(ended)
                               or "resolved" in changed.values())
        if (changed or ended) and cur is not None and cur["id"] not in self.in_feed:
            # its alerts moved, its status did not: the live view still has news
            self.writes.changes.append(feed.change_row(cur, "updated", "alertmanager",
                                                       self.now))
        self.writes.flush()
        self.result.changed = len(changed) + len(ended)
        self.result.all_new = len(self.inserted) == len(self.alerts)
        return self.result

    def locked_open_incident(self) -> dict | None:
        return statements(self.conn).lock(self.conn, self.group_key)

    def adopt_guessed(self) -> dict | None:
        """The incident the reconciler opened for this group under a guessed key, now
        under this post's key (ingest_adoption.py); None when there is none."""
        guessed = guessed_incident(self.conn, self.payload, self.group_key, self.alerts)
        if guessed is None:
            return None
        adopt(self.conn, guessed, self.group_key, self.now)
        incident = self.locked_open_incident()
        self.incident_event(incident, "rekeyed", "alertmanager",
                            {"from": guessed["group_key"], "to": self.group_key,
                             "reason": "the group's first post names its real groupKey"},
                            hook=False)
        return incident

    def upsert_alerts(self) -> tuple[dict[Key, str], bool]:
        """Insert new alerts, resolve firing ones; return the rows that changed, and whether
        an older instance of a newly firing fingerprint was seen firing.

        Alerts the probe saw stored and not moving are left out: whatever happened since,
        the upsert could not change them (resolved stays resolved, firing over firing is
        no change), so sending them would only cost binding, JSON and row locks.
        """
        posted = [(key, a) for key, a in self.alerts.items() if not self.seen.unchanged(key)]
        changed: dict[Key, str] = {}
        older = False
        if not posted:
            return changed, older
        for fp, starts_at, status, received_at, older_firing in statements(
                self.conn).upsert(self.conn, posted, self.now):
            changed[(fp, starts_at)] = status
            if received_at == self.now:
                self.inserted.add((fp, starts_at))
                older = older or (status == "firing" and bool(older_firing))
        return changed, older

    def end_older_instances(self, new_firing: list[Key]) -> dict[Key, str]:
        """A fingerprint firing anew means its older firing instance has ended."""
        newest: dict[str, datetime] = {}
        for fp, starts_at in new_firing:
            newest[fp] = max(starts_at, newest.get(fp, starts_at))
        older = self.conn.execute(
            sa.select(alerts.c.id, alerts.c.fingerprint, alerts.c.starts_at)
            .where(alerts.c.fingerprint.in_(sorted(newest)), alerts.c.status == "firing")
            .order_by(alerts.c.id)
        ).all()
        ended: dict[Key, str] = {}
        for alert_id, fp, starts_at in older:
            if starts_at < newest[fp]:
                done = self.conn.execute(  # unless a concurrent post ended it first
                    alerts.update().where(alerts.c.id == alert_id, alerts.c.status == "firing")
                    .values(status="resolved", ends_at=newest[fp], updated_at=self.now)
                ).rowcount
                if done:
                    ended[(fp, starts_at)] = "resolved"
        return ended

    def open_incident(self, new_firing: list[Key], status: str = "open",
                      resolved_at: datetime | None = None) -> dict:
        p = self.payload
        members = [self.alerts[k] for k in new_firing] or list(self.alerts.values())
        first = members[0]
        # a summary shared by the whole group, else the alert name: stable across posts
        title = (p.commonAnnotations.get("summary") or p.commonLabels.get("alertname")
                 or first.annotations.get("summary") or first.labels.get("alertname")
                 or self.group_key)
        tenant = (p.commonLabels.get("tenant") or p.groupLabels.get("tenant")
                  or tenant_of(first.labels))
        values = {
            "group_key": self.group_key, "tenant": tenant[:100], "status": status,
            "severity": sev.highest(a.labels.get("severity", sev.DEFAULT)[:64]
                                    for a in self.alerts.values()),
            "title": title[:1000],
            "service": (p.commonLabels.get("service") or p.groupLabels.get("service") or None),
            "receiver": p.receiver or None, "group_labels": p.groupLabels,
            "common_labels": p.commonLabels, "external_url": p.externalURL,
            "extra": p.unknown_fields(), "truncated_alerts": p.truncatedAlerts,
            "truncated_as_of": alert_time(self.alerts.values()),
            "opened_at": min(a.starts_at for a in members), "created_at": self.now,
            "updated_at": self.now, "resolved_at": resolved_at,
            "resolved_by": "alertmanager" if status == "resolved" else None,
        }
        if values["service"]:
            values["service"] = values["service"][:200]
        ins = dialect_insert(self.conn, incidents).values(values)
        if status != "resolved":
            ins = ins.on_conflict_do_nothing(index_elements=[incidents.c.group_key],
                                             index_where=UNRESOLVED)
        row = self.conn.execute(ins.returning(*incidents.c)).mappings().first()
        if row is None:  # another receiver opened it first: join that incident
            return self.locked_open_incident()
        incident = dict(row)
        self.result.opened.append(incident["id"])
        self.incident_event(incident, "opened", "alertmanager",
                            {"alerts": len(members), "truncated_alerts": p.truncatedAlerts})
        if status == "resolved":
            self.result.resolved.append(incident["id"])
            self.incident_event(incident, "resolved", "alertmanager", {})
        return incident

    def link(self, incident: dict, members: dict[Key, Alert]) -> None:
        """Attach alerts to the incident unless they already belong to one of this group.

        Alerts this transaction stored first have no link anywhere (a link's alert is
        deleted only after it): theirs are held back for the end of the post.
        """
        rows = [{"group_key": self.group_key, "fingerprint": fp, "starts_at": starts_at,
                 "incident_id": incident["id"]} for fp, starts_at in members]
        linked: list[Key] = []
        if rows and self.inserted.issuperset(members):
            self.writes.links.extend(rows)
            linked = list(members)
            for key in linked:
                self.linked_now[key] = incident["id"]
        elif rows:
            linked = [(fp, sa_) for fp, sa_ in
                      self.conn.execute(statements(self.conn).link_alerts, rows)]
            for key in linked:
                self.linked_now[key] = incident["id"]
        if linked and incident["status"] != "resolved":
            self.raise_severity(incident, [members[k] for k in linked])

    @staticmethod
    def may_be_late(cur: dict | None, inserted: set[Key]) -> bool:
        """Could an episode Alertmanager ended claim these alerts? The lock read tells."""
        if cur is None:
            return True
        return cur["last_ended"] is not None and cur["last_ended"] > min(k[1] for k in inserted)

    def link_to_ended_episodes(self, changed: set[Key]) -> set[Key]:
        """Alerts posted late that started before an episode ended belong to that episode.

        Only episodes that Alertmanager ended count: their resolved_at is alert time. A
        hand-resolved incident ends at wall-clock time and must not swallow new alerts.
        """
        ended = self.conn.execute(
            sa.select(incidents).where(incidents.c.group_key == self.group_key,
                                       incidents.c.status == "resolved",
                                       incidents.c.resolved_by == "alertmanager",
                                       incidents.c.resolved_at > min(k[1] for k in changed))
            .order_by(incidents.c.id)
        ).mappings().all()
        placed: dict[int, dict[Key, Alert]] = {}
        for key in changed:
            home = next((i for i in ended if key[1] < i["resolved_at"]), None)
            if home is not None:
                placed.setdefault(home["id"], {})[key] = self.alerts[key]
        for episode in ended:
            if episode["id"] in placed:
                self.link(dict(episode), placed[episode["id"]])
        return {k for members in placed.values() for k in members}

    def place_without_open_incident(self, changed: dict[Key, str]) -> None:
        """Alerts that arrive resolved while the group has no unresolved incident.

        Already linked: a late resolution, nothing to place. Otherwise they belong to the
        group's latest incident if they started before it ended, else to a new episode
        whose firing post has not arrived (or never will): a resolved incident.
        """
        linked = set(self.links_of(changed))
        orphans = {k: self.alerts[k] for k in changed if k not in linked}
        if not orphans:
            return
        latest = self.conn.execute(
            sa.select(incidents).where(incidents.c.group_key == self.group_key)
            .order_by(incidents.c.id.desc()).limit(1)
        ).mappings().first()
        earliest = min(a.starts_at for a in orphans.values())
        if latest is not None and (latest["resolved_at"] is None
                                   or earliest < latest["resolved_at"]):
            self.link(dict(latest), orphans)
            return
        if self.payload.status == "firing" and self.payload.truncatedAlerts:
            incident = self.open_incident(list(orphans))  # what it did not list fires
        else:
            ends = [a.ends_at for a in orphans.values() if a.ends_at] or [self.now]
            incident = self.open_incident(list(orphans), status="resolved",
                                          resolved_at=max(ends))
        self.link(incident, orphans)

    def links_of(self, keys: Iterable[Key]) -> dict[Key, int]:
        keys = list(keys)
        if not keys:
            return {}
        self.writes.flush_links()
        found: dict[Key, int] = {}
        for part in chunks(keys):
            rows = self.conn.execute(
                sa.select(incident_alerts.c.group_key, incident_alerts.c.fingerprint,
                          incident_alerts.c.starts_at, incident_alerts.c.incident_id)
                .where(sa.tuple_(incident_alerts.c.fingerprint, incident_alerts.c.starts_at)
                       .in_(list(part)))
            ).all()
            for group_key, fp, starts_at, incident_id in rows:
                if group_key == self.group_key or (fp, starts_at) not in found:
                    found[(fp, starts_at)] = incident_id
        return found

    def owners(self, keys: Iterable[Key], cur: dict | None) -> dict[Key, int]:
        """The incident each alert belongs to, for its history rows.

        Known without a query: links this transaction wrote, and links the probe saw to
        the open incident we hold locked (links move only when their incident resolves,
        which needs that lock). Anything else is looked up.
        """
        known: dict[Key, int] = {}
        unknown: list[Key] = []
        for key in keys:
            seen = self.seen.linked_to(key)
            if key in self.linked_now:
                known[key] = self.linked_now[key]
            elif cur is not None and seen == cur["id"]:
                known[key] = seen
            else:
                unknown.append(key)
        return {**known, **self.links_of(unknown)} if unknown else known

    def alert_events(self, statuses: dict[Key, str], implicit: set[Key],
                     cur: dict | None) -> None:
        owners = self.owners(statuses, cur)
        for key, status in statuses.items():
            fp, starts_at = key
            detail = {"alertname": self.alerts[key].labels.get("alertname")
                      if key in self.alerts else None}
            if key in implicit:
                detail["reason"] = "a newer instance of this fingerprint fired"
            self.event_rows.append({
                "at": self.now, "incident_id": owners.get(key), "fingerprint": fp,
                "starts_at": starts_at, "kind": f"alert_{status}", "actor": "alertmanager",
                "detail": detail,
            })

    def raise_severity(self, incident: dict, newcomers: list[Alert]) -> None:
        top = sev.highest([incident["severity"]]
                          + [a.labels.get("severity", sev.DEFAULT)[:64] for a in newcomers])
        if sev.rank(top) <= sev.rank(incident["severity"]):
            return
        updates = {"severity": top, "updated_at": self.now}
        self.conn.execute(incidents.update().where(incidents.c.id == incident["id"])
                          .values(**updates))
        before = incident["severity"]
        incident.update(updates)
        self.incident_event(incident, "severity_raised", "alertmanager",
                            {"from": before, "to": top})

    def incident_event(self, incident: dict, kind: str, actor: str, detail: dict,
                       hook: bool = True) -> None:
        self.event_rows.append({"at": self.now, "incident_id": incident["id"],
                                "fingerprint": None, "starts_at": None, "kind": kind,
                                "actor": actor, "detail": detail})
        self.in_feed.add(incident["id"])
        if not hook:
            self.writes.changes.append(feed.change_row(incident, "updated", actor, self.now))
            return
        if self.hooks:
            self.writes.flush_links()  # a hook may read the incident's alerts
        run_hooks(self.conn, self.hooks, incident, kind, actor, self.now, detail)


def run_hooks(conn: Connection, hooks: Sequence[IncidentHook], incident: dict, kind: str,
              actor: str, at: datetime, detail: dict) -> None:
    """Record the change in the live feed (receiver/stream/feed.py: always, it is no
    plug-in), then run the plug-ins, all in the caller's transaction."""
    feed.record(conn, [feed.change_row(incident, feed.change_of(kind, actor), actor, at)])
    if not hooks:
        return
    event = IncidentEvent(kind=kind, incident_id=incident["id"],
                          group_key=incident["group_key"], tenant=incident["tenant"],
                          severity=incident["severity"], title=incident["title"], at=at,
                          actor=actor, detail=dict(detail))
    for hook in hooks:
        hook(conn, event)


def may_be_storm(seen: Probe) -> bool:
    """Can this post be a storm post, one that `storm` (PostgreSQL) may ingest alone?

    A complete firing post whose alerts are all firing, one instance per fingerprint,
    none seen stored. STORM (ingest_statements.py) checks the rest against
    the open incident: then Ingest would only link the alerts to it, write the history
    of those it stored and one live-feed `updated` (no hook runs, nothing resolves, no
    severity rises, no older instance ends), and the statement writes just that.
    """
    payload, alerts = seen.payload, seen.alerts
    return (not seen.stored and payload.status == "firing"
            and not payload.truncatedAlerts
            and all(a.status == "firing" for a in alerts.values())
            and len({fp for fp, _ in alerts}) == len(alerts))


def storm(conn: Connection, seen: Probe, now: datetime) -> IngestResult | None:
    """Ingest a post may_be_storm allowed in one statement of its own (autocommit: it
    commits as it returns); None when it is more than a storm post and wrote nothing."""
    stored = statements(conn).storm(conn, seen.payload.groupKey, seen.alerts, now)
    if stored is None:
        return None
    return IngestResult(received=received(seen.payload), duplicates=len(seen.alerts) - stored,
                        changed=stored, all_new=stored == len(seen.alerts))


def ingest(conn: Connection, payload: WebhookPayload, now: datetime,
           hooks: Sequence[IncidentHook] = (), seen: Probe | None = None) -> IngestResult:
    """Apply one notification; the caller owns the transaction.

    `seen` is a Probe of this payload read earlier (outside the transaction is fine);
    without one the probe runs first, inside.
    """
    return Ingest(conn, payload, now, hooks, seen).run()
