"""Most webhook posts repeat what is stored (HA pairs, repeat and group intervals): the
replay probe answers them with one read and no write."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from receiver.payload import Alert, WebhookPayload
from receiver.store.ingest_statements import Key, statements


@dataclass
class IngestResult:
    received: dict[str, int]
    duplicates: int
    changed: int = 0
    opened: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    all_new: bool = False  # the store held none of the post's alerts before it

    @staticmethod
    def total(parts: list[IngestResult]) -> IngestResult:
        """One post's result from its parts' (a group split by tenant)."""
        if len(parts) == 1:
            return parts[0]
        return IngestResult(
            received={s: sum(p.received.get(s, 0) for p in parts) for s in parts[0].received},
            duplicates=sum(p.duplicates for p in parts), changed=sum(p.changed for p in parts),
            opened=[i for p in parts for i in p.opened],
            resolved=[i for p in parts for i in p.resolved],
            all_new=all(p.all_new for p in parts))


def distinct_alerts(payload: WebhookPayload) -> dict[Key, Alert]:
    """One alert per key (a resolved copy wins), in key order.

    Sorted keys: every transaction locks rows in the same order, so none deadlock.
    """
    by_key: dict[Key, Alert] = {}
    for alert in payload.alerts:
        key = alert.key
        prev = by_key.get(key)
        if prev is None or (prev.status == "firing" and alert.status == "resolved"):
            by_key[key] = alert
    return {k: by_key[k] for k in sorted(by_key)}


class Probe:
    """Would ingesting this post write anything? Decided by one read, without locks.

    It writes nothing when every posted alert is stored already, none of them moves
    firing -> resolved, each is linked to an incident of this group (nothing to link,
    place or raise severity for), and, while an incident of the group is open, the post
    neither reports the group resolved (that would end it) nor a truncation count other
    than the incident's (that may be newer). The probe is one statement, so one
    snapshot: a post that would write nothing on that snapshot is the same as that post
    committed at that instant, before any concurrent writer; so on PostgreSQL it runs
    outside any transaction (no BEGIN/COMMIT round trips). Replays (HA pairs, repeat
    and group intervals) are most posts, so most posts cost just this read.

    When the post does change something, what the probe saw still holds in the write
    transaction, whenever it runs: a stored alert stays stored and a resolved one stays
    resolved, and a link stays in its group (only retention deletes alerts and links,
    90 days after they ended). Ingest uses that to skip unchanged alerts and known links.
    """

    def __init__(self, conn: Connection, payload: WebhookPayload) -> None:
        self.payload = payload
        self.alerts = distinct_alerts(payload)
        # stored status, and this group's incident if the group links the alert
        self.stored: dict[Key, tuple[str, int | None]] = {}
        rows = statements(conn).probe(conn, payload.groupKey, list(self.alerts))
        self.replay = True
        for fp, starts_at, status, incident_id, open_truncated in rows:
            self.stored[(fp, starts_at)] = (status, incident_id)
            if incident_id is None or self.moves((fp, starts_at), status):
                self.replay = False
            if open_truncated is not None and (payload.status == "resolved"
                                               or open_truncated != payload.truncatedAlerts):
                self.replay = False
        if len(self.stored) != len(self.alerts):
            self.replay = False

    @classmethod
    def unread(cls, payload: WebhookPayload) -> Probe:
        """The probe without its read: as if it had seen none of the post's alerts.

        Always a safe answer: the write path relies only on what the probe did see
        (stored, resolved, linked), and an alert it missed may have been stored by a
        concurrent post since anyway. A post whose alerts are stored then just takes
        the write path, and its upsert and links write nothing twice."""
        probe = cls.__new__(cls)
        probe.payload = payload
        probe.alerts = distinct_alerts(payload)
        probe.stored = {}
        probe.replay = False
        return probe

    def moves(self, key: Key, stored_status: str) -> bool:
        """Posting this alert changes its stored row: firing -> resolved is the only move."""
        return stored_status == "firing" and self.alerts[key].status == "resolved"

    def unchanged(self, key: Key) -> bool:
        seen = self.stored.get(key)
        return seen is not None and not self.moves(key, seen[0])

    def linked_to(self, key: Key) -> int | None:
        return self.stored.get(key, ("", None))[1]

    def result(self) -> IngestResult:
        """What ingesting a replay reports: every alert a duplicate."""
        return IngestResult(received=received(self.payload), duplicates=len(self.alerts))


def received(payload: WebhookPayload) -> dict[str, int]:
    counts = {"firing": 0, "resolved": 0}
    for alert in payload.alerts:
        counts[alert.status] += 1
    return counts
