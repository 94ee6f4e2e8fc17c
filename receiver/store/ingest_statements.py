"""The ingest hot path's statements, built once per dialect so SQLAlchemy compiles them once."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from receiver import severity as sev
from receiver.payload import Alert
from receiver.store.bulk import dialect_insert
from receiver.store.prepared import Prepared, fetch_all
from receiver.store.tables import alerts, incident_alerts, incidents
from receiver.store.types import UTCDateTime, json_text
from receiver.tenant_groups import tenant_of

UNRESOLVED = sa.text("status != 'resolved'")
# an incident's alerts: alerts joined to their incident links
MEMBERS = alerts.join(incident_alerts, sa.and_(
    incident_alerts.c.fingerprint == alerts.c.fingerprint,
    incident_alerts.c.starts_at == alerts.c.starts_at))

Key = tuple[str, datetime]
# an upserted alert: fingerprint, startsAt, status, received_at, older instance firing?
Upserted = tuple[str, datetime, str, datetime, bool]

# PostgreSQL: a post's alerts as one JSON array of objects, so the statement text never
# changes, SQLAlchemy renders and processes nothing per row, psycopg2 adapts one string
# (not one literal per value) and PostgreSQL parses one value (as jsonb: parsed once,
# its labels and annotations then copied as they are, not parsed again per row: about
# 15 us of server CPU less per storm post than as json); inserted in the posted
# (sorted) order, the order every transaction takes their row locks in. A JSON null
# `extra` is stored as JSON null, as sa.JSON stores None on SQLite. Times are sent as
# ISO text in UTC: a `timestamp` ignores the zone its text names, so none is converted.
# `{only}` (a condition) and `{returning}` (what it returns) differ in STORM.
_UPSERT = """
INSERT INTO alerts (fingerprint, starts_at, ends_at, status, tenant, alertname, severity,
                    labels, annotations, generator_url, extra, received_at, updated_at)
SELECT fingerprint, starts_at, ends_at, status, tenant, alertname, severity,
       labels, annotations, generator_url, coalesce(extra, 'null'), %(now)s, %(now)s
FROM ROWS FROM (jsonb_to_recordset(%(rows)s) AS (
         fingerprint text, starts_at timestamp, ends_at timestamp, status text,
         tenant text, alertname text, severity text, labels jsonb, annotations jsonb,
         generator_url text, extra jsonb))
     WITH ORDINALITY AS posted(fingerprint, starts_at, ends_at, status, tenant, alertname,
                               severity, labels, annotations, generator_url, extra, n)
{only}
ORDER BY n
ON CONFLICT (fingerprint, starts_at) DO UPDATE
   SET status = excluded.status, ends_at = excluded.ends_at,
       annotations = excluded.annotations, updated_at = excluded.updated_at
 WHERE alerts.status = 'firing' AND excluded.status = 'resolved'
RETURNING alerts.fingerprint, alerts.starts_at, {returning}
"""
UPSERT_ALERTS = _UPSERT.format(only="", returning="""alerts.status, alerts.received_at,
          EXISTS (SELECT FROM alerts AS older
                  WHERE older.fingerprint = alerts.fingerprint AND older.status = 'firing'
                    AND older.starts_at < alerts.starts_at)""")
UPSERT_TYPES = {"now": "timestamp", "rows": "jsonb"}

# A storm post as one statement, so one transaction of its own (autocommit: no BEGIN
# and COMMIT round trips): the group's open incident locked (before any alert row: the
# upsert waits on `joins`, the order every post takes its locks in); then, if all the
# post can do is add alerts to it (`joins`: nothing truncated, no posted severity above
# the incident's: `outranking` names the severities not below the post's highest, NULL
# when any is; no episode Alertmanager ended after the first posted alert started; no
# older instance of a posted fingerprint firing), the upsert, every posted alert's link
# (one stored already may belong to another group), the history of the alerts it
# stored and the live feed's `updated`: what the step-by-step ingest writes for such a
# post (ingest.may_be_storm, tests/receiver/test_receiver_ingest_replay.py). Otherwise
# it writes nothing and says so, and the post takes the step-by-step path. The older
# instances are looked up by a subquery per posted alert (an index probe), not a join:
# the generic plan, made while the table was small, hashed the whole table per post.
STORM = f"""
WITH locked AS (
    SELECT id, tenant, status, severity, truncated_alerts FROM incidents
    WHERE group_key = %(group_key)s AND status != 'resolved'
    FOR UPDATE
), joins AS (
    SELECT id, tenant, status, severity FROM locked
    WHERE truncated_alerts = 0
      AND (%(outranking)s IS NULL OR lower(severity) = ANY (%(outranking)s))
      AND NOT EXISTS (SELECT FROM incidents AS ended
                      WHERE ended.group_key = %(group_key)s AND ended.status = 'resolved'
                        AND ended.resolved_by = 'alertmanager'
                        AND ended.resolved_at > %(first_start)s)
      AND NOT EXISTS (SELECT FROM jsonb_to_recordset(%(rows)s)
                                  AS posted(fingerprint text, starts_at timestamp)
                      WHERE (SELECT true FROM alerts AS older
                             WHERE older.fingerprint = posted.fingerprint
                               AND older.status = 'firing'
                               AND older.starts_at < posted.starts_at LIMIT 1))
), upserted AS ({_UPSERT.format(only="WHERE EXISTS (SELECT FROM joins)",
                                returning="alerts.labels ->> 'alertname' AS alertname")}
), linked AS (
    INSERT INTO incident_alerts (group_key, fingerprint, starts_at, incident_id)
    SELECT %(group_key)s, posted.fingerprint, posted.starts_at, joins.id
    FROM jsonb_to_recordset(%(rows)s) AS posted(fingerprint text, starts_at timestamp),
         joins
    ON CONFLICT DO NOTHING
), history AS (
    INSERT INTO events (at, incident_id, fingerprint, starts_at, kind, actor, detail)
    SELECT %(now)s, joins.id, upserted.fingerprint, upserted.starts_at, 'alert_firing',
           'alertmanager', jsonb_build_object('alertname', upserted.alertname)
    FROM upserted, joins
), changed AS (
    INSERT INTO incident_changes (at, incident_id, tenant, change, status, severity, actor)
    SELECT %(now)s, id, tenant, 'updated', status, severity, 'alertmanager'
    FROM joins WHERE EXISTS (SELECT FROM upserted)
)
SELECT EXISTS (SELECT FROM joins), (SELECT count(*) FROM upserted)
"""
STORM_TYPES = {"group_key": "text", "now": "timestamp", "rows": "jsonb",
               "first_start": "timestamp", "outranking": "text[]"}
# the incident row's times, stored naive UTC, handed out aware (as UTCDateTime does)
INCIDENT_TIMES = tuple(c.name for c in incidents.c if isinstance(c.type, UTCDateTime)) + (
    "last_ended",)


def upsert_row(key: Key, a: Alert) -> dict:
    """An alert as the alerts table's columns (SQLite's path: Core binds each row)."""
    fingerprint, starts_at = key
    return {"fingerprint": fingerprint, "starts_at": starts_at, "ends_at": a.ends_at,
            "status": a.status, "tenant": tenant_of(a.labels),
            "alertname": a.labels.get("alertname", "")[:200],
            "severity": a.labels.get("severity", sev.DEFAULT)[:64],
            "labels": a.labels, "annotations": a.annotations,
            "generator_url": a.generatorURL, "extra": a.unknown_fields()}


def _rows_json(posted: list[tuple[Key, Alert]]) -> str:
    """The posted alerts as UPSERT_ALERTS's JSON rows (their times UTC already:
    receiver/payload.py)."""
    return json_text([upsert_row(key, a) for key, a in posted])


def _naive(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC).replace(tzinfo=None)


def _array_literal(values: list[str]) -> str:
    """A PostgreSQL array of text, every element quoted (so none reads as NULL)."""
    if not values:
        return "{}"
    return '{"' + '","'.join(v.replace("\\", "\\\\").replace('"', '\\"') for v in values) + '"}'


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)


class Statements:
    """The hot-path statements, built once per dialect so SQLAlchemy compiles them once.

    Executed with a list of parameter sets, SQLAlchemy's "insertmanyvalues" turns them
    into multi-row INSERT … ON CONFLICT … RETURNING batches. On PostgreSQL the two that
    every post that is not a replay runs, the probe and the upsert, are plain SQL (the
    probe over two arrays, the upsert over one JSON array of rows): SQLAlchemy's per-row
    parameter processing was most of their client CPU.
    """

    def __init__(self, conn: Connection) -> None:
        ins = dialect_insert(conn, alerts)
        # does an older instance of the fingerprint still fire? (one index probe per row;
        # a second instance posted alongside is not seen by the same statement)
        # (the row's own columns spelled out: RETURNING does not correlate in SQLAlchemy)
        older = alerts.alias("older")
        older_firing = sa.exists().where(
            older.c.fingerprint == sa.literal_column("alerts.fingerprint"),
            older.c.status == "firing",
            older.c.starts_at < sa.literal_column("alerts.starts_at"))
        self.upsert_alerts = ins.on_conflict_do_update(
            index_elements=[alerts.c.fingerprint, alerts.c.starts_at],
            set_={"status": ins.excluded.status, "ends_at": ins.excluded.ends_at,
                  "annotations": ins.excluded.annotations,
                  "updated_at": ins.excluded.updated_at},
            where=sa.and_(alerts.c.status == "firing", ins.excluded.status == "resolved"),
        ).returning(alerts.c.fingerprint, alerts.c.starts_at, alerts.c.status,
                    alerts.c.received_at, older_firing.label("older_firing"))
        self.link_alerts = dialect_insert(conn, incident_alerts).on_conflict_do_nothing(
        ).returning(incident_alerts.c.fingerprint, incident_alerts.c.starts_at)
        # the open incident, locked, and when the group's latest episode that Alertmanager
        # ended did end: alerts that started before then may belong to that episode
        ended = incidents.alias("ended")
        last_ended = sa.select(sa.func.max(ended.c.resolved_at)).where(
            ended.c.group_key == sa.bindparam("group_key"), ended.c.status == "resolved",
            ended.c.resolved_by == "alertmanager").scalar_subquery()
        self.lock_open_incident = sa.select(incidents, last_ended.label("last_ended")).where(
            incidents.c.group_key == sa.bindparam("group_key"), UNRESOLVED,
        ).with_for_update(of=incidents)
        self.firing_members = (
            sa.select(alerts.c.fingerprint, alerts.c.starts_at).select_from(MEMBERS)
            .where(incident_alerts.c.incident_id == sa.bindparam("incident_id"),
                   alerts.c.status == "firing"))
        # what a replay check needs, in one snapshot: each posted alert's stored status,
        # whether this group already links it, and the truncation count of the group's
        # open incident (NULL: none open; the partial unique index allows one at most)
        link = incident_alerts.c
        open_truncated = sa.select(incidents.c.truncated_alerts).where(
            incidents.c.group_key == sa.bindparam("group_key"), UNRESOLVED).scalar_subquery()
        # the link as a subquery per found alert (a primary-key lookup), not a join: no
        # join order to plan, and no hash over all of a large group's links
        linked = sa.select(link.incident_id).where(
            link.group_key == sa.bindparam("group_key"),
            link.fingerprint == alerts.c.fingerprint,
            link.starts_at == alerts.c.starts_at).scalar_subquery()
        found = (linked.label("incident_id"), open_truncated.label("open_truncated"))
        self.arrays = conn.dialect.name == "postgresql"
        if self.arrays:
            # the keys as two array literals, unnested side by side: each row names its
            # key by position (no crossed pairs, no timestamps to parse back), and two
            # string parameters cost psycopg2 far less than 20 elements adapted one by one
            # (measured per 10-alert post: client 100 -> 62 us, execution 0.13 -> 0.06 ms).
            # PostgreSQL runs it as plain SQL: this one statement answers most posts, and
            # SQLAlchemy's per-call cache-key and bind processing would double its client CPU
            from sqlalchemy.dialects.postgresql import ARRAY

            keys = sa.func.unnest(
                sa.bindparam("fps", type_=ARRAY(sa.String)),
                sa.bindparam("starts", type_=ARRAY(UTCDateTime)),
            ).table_valued("fp", "st", with_ordinality="i").render_derived(name="k")
            self.probe_sql = str(sa.select(keys.c.i, alerts.c.status, *found).select_from(
                keys.join(alerts, sa.and_(alerts.c.fingerprint == keys.c.fp,
                                          alerts.c.starts_at == keys.c.st))
            ).compile(dialect=conn.dialect))
        else:
            self.replay_probe = sa.select(
                alerts.c.fingerprint, alerts.c.starts_at, alerts.c.status, *found,
            ).where(sa.tuple_(alerts.c.fingerprint, alerts.c.starts_at).in_(
                sa.bindparam("keys", expanding=True)))
        if self.arrays:  # the write path's statements, prepared (receiver/store/prepared.py)
            dialect = conn.dialect
            self.lock_prepared = Prepared.from_core("ticketmon_lock_open_incident",
                                                    self.lock_open_incident, dialect)
            self.upsert_prepared = Prepared("ticketmon_upsert_alerts", UPSERT_ALERTS,
                                            UPSERT_TYPES)
            self.storm_prepared = Prepared("ticketmon_storm", STORM, STORM_TYPES)

    def lock(self, conn: Connection, group_key: str) -> dict | None:
        """The group's open incident, locked, with `last_ended` (see lock_open_incident)."""
        if not self.arrays:
            row = conn.execute(self.lock_open_incident, {"group_key": group_key}
                               ).mappings().first()
            return dict(row) if row else None
        incident = self.lock_prepared.first(conn, {"group_key": group_key})
        if incident is None:
            return None
        for name in INCIDENT_TIMES:
            if incident[name] is not None:
                incident[name] = _aware(incident[name])
        return incident

    def upsert(self, conn: Connection, posted: list[tuple[Key, Alert]],
               now: datetime) -> Iterable[Upserted]:
        """Insert new alerts, resolve firing ones; the rows that changed (see UPSERT_ALERTS)."""
        if not self.arrays:
            return conn.execute(self.upsert_alerts, [
                {**upsert_row(key, a), "received_at": now, "updated_at": now}
                for key, a in posted])
        result = self.upsert_prepared(conn, {"now": _naive(now), "rows": _rows_json(posted)})
        return ((fp, _aware(starts), status, _aware(received), older)
                for fp, starts, status, received, older in result)

    def storm(self, conn: Connection, group_key: str, alerts: dict[Key, Alert],
              now: datetime) -> int | None:
        """PostgreSQL, in an autocommit connection: a storm post as one statement (see
        STORM). How many alerts it stored, or None when it wrote nothing."""
        top = max(sev.rank(a.labels.get("severity", sev.DEFAULT)[:64])
                  for a in alerts.values())
        outranking = [name for name, rank in sev.RANKS.items() if rank >= top] if top else None
        [(joined, stored)] = self.storm_prepared(conn, {
            "group_key": group_key, "now": _naive(now), "rows": _rows_json(list(alerts.items())),
            "first_start": _naive(min(k[1] for k in alerts)), "outranking": outranking})
        return stored if joined else None

    def probe(self, conn: Connection, group_key: str,
              keys: list[Key]) -> Iterable[tuple[str, datetime, str, int | None, int | None]]:
        if not self.arrays:
            return conn.execute(self.replay_probe, {"group_key": group_key, "keys": keys})
        rows = fetch_all(conn, self.probe_sql, {
            "group_key": group_key, "fps": _array_literal([fp for fp, _ in keys]),
            "starts": _array_literal([_naive(starts).isoformat() for _, starts in keys])})
        return ((*keys[i - 1], status, incident, truncated)
                for i, status, incident, truncated in rows)


_STATEMENTS: dict[str, Statements] = {}


def statements(conn: Connection) -> Statements:
    name = conn.dialect.name
    if name not in _STATEMENTS:
        _STATEMENTS[name] = Statements(conn)
    return _STATEMENTS[name]
