"""One reconciliation run, and the worker thread that repeats it every `period`.

A run asks every configured Alertmanager what it holds (alertmanager_api), then:
1. resolves stored firing alerts that no reachable member reports, then the incidents
   left without a firing alert;
2. stores the alerts members report firing and active (not silenced, not inhibited)
   that the store lacks, or holds resolved by the reconciler, or holds without an open
   incident, into their group's incident;
3. resolves any other unresolved incident without a firing alert.
A difference is corrected only once it has been seen for `grace` (`new_alert_grace` for
an alert the store lacks, if longer; first sighting kept
in memory, so a restart only delays), and a stored alert only counts as missing if it
was stored before Alertmanager was asked. Nobody answering changes nothing.

Reads are bounded: max_alerts per member, store rows in pages of batch_size, one
transaction per page or group. Several workers on one PostgreSQL take turns through
a claim (an advisory lock around one `reconcile_run` row in `events`): one run per
period, by the same worker while it keeps its turn; on SQLite one worker runs anyway.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from receiver.reconcile import corrections as fix
from receiver.reconcile.alertmanager_api import AlertmanagerClient, AmAlert, AmGroup, Truth, ms
from receiver.reconcile.groups import group_key, group_of
from receiver.reconcile.settings import ReconcileSettings
from receiver.store.bulk import chunks
from receiver.store.incident_events import IncidentHook
from receiver.store.ingest_statements import UNRESOLVED, statements
from receiver.store.tables import alerts, events, incidents
from receiver.tenant_groups import tenant_of

log = logging.getLogger("receiver.reconcile")

CLAIM_KIND = "reconcile_run"
CLAIM_LOCK = 0x7469636B6D6F6E  # pg_advisory_xact_lock key: "tickmon"
# a run that comes a moment early (timer wake-up, clock slew) still counts as `grace`
# after the first sighting: with grace == period, a difference is corrected one run
# after it was seen, never two
GRACE_SLACK = 0.5


def utcnow() -> datetime:
    return datetime.now(UTC)


def load_hooks(specs: Iterable[str]) -> list[IncidentHook]:
    """"module:function" plug-ins, as the receiver's incident_hooks setting names them."""
    hooks = []
    for spec in specs:
        module, _, name = spec.partition(":")
        hooks.append(getattr(importlib.import_module(module), name))
    return hooks


def claim(conn, owner: str, now: datetime, period: float) -> bool:
    """Take this period's run. The last claimer keeps its turn (claims after 0.9 period);
    another worker takes over when that claimer has missed half a period."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": CLAIM_LOCK})
    last = conn.execute(sa.select(events.c.at, events.c.detail)
                        .where(events.c.kind == CLAIM_KIND)
                        .order_by(events.c.at.desc()).limit(1)).first()
    if last is not None:
        mine = (last.detail or {}).get("owner") == owner
        if now < last.at + timedelta(seconds=period * (0.9 if mine else 1.5)):
            return False
    conn.execute(events.delete().where(events.c.kind == CLAIM_KIND))
    conn.execute(events.insert().values(at=now, kind=CLAIM_KIND, actor=fix.ACTOR,
                                        detail={"owner": owner}))
    return True


@dataclass
class RunReport:
    outcome: str  # ok, partial (a member down), unreachable, skipped (another worker's turn)
    down: dict[str, str] = field(default_factory=dict)
    done: fix.Corrections = field(default_factory=fix.Corrections)
    unplaced: int = 0  # firing in Alertmanager but not grouped yet: next run
    suppressed: int = 0  # firing, not in an open incident, but silenced or inhibited


class Reconciler:
    def __init__(self, settings: ReconcileSettings, members: list[str], engine: Engine,
                 hooks: list[IncidentHook], owner: str, metrics=None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.clients = [AlertmanagerClient(url, settings.timeout, settings.receiver,
                                           settings.filter, settings.max_alerts,
                                           settings.max_response_bytes) for url in members]
        self.engine = engine
        self.hooks = hooks
        self.owner = owner
        self.metrics = metrics
        self.clock = clock
        self.first_seen: dict[Hashable, datetime] = {}  # difference -> when first seen
        self.seen_now: dict[Hashable, datetime] = {}

    # -- the run -----------------------------------------------------------------------
    def run_once(self, claim_turn: bool = True) -> RunReport:
        now = self.clock()
        if claim_turn:
            with self.engine.begin() as conn:
                if not claim(conn, self.owner, now, self.settings.period):
                    return self._finish(RunReport("skipped"), now)
        truth = Truth.union([c.view() for c in self.clients])
        report = RunReport("ok", down={m.url: m.error for m in truth.members if not m.up})
        for url, why in report.down.items():
            log.warning("alertmanager %s does not count this run: %s", url, why)
        if not truth.up:
            report.outcome = "unreachable"
            log.warning("no alertmanager answered: reconciliation changes nothing")
            return self._finish(report, now, truth)
        if report.down:
            report.outcome = "partial"
        self.seen_now = {}
        self.resolve_missing(truth, now, report)
        self.place_firing(truth, now, report)
        self.resolve_empty(now, report)
        self.first_seen = self.seen_now  # differences gone since are forgotten
        return self._finish(report, now, truth)

    def due(self, difference: Hashable, now: datetime, grace: float | None = None) -> bool:
        first = self.first_seen.get(difference, now)
        self.seen_now[difference] = first
        wait = self.settings.grace if grace is None else grace
        return (now - first).total_seconds() >= wait - GRACE_SLACK

    def resolve_missing(self, truth: Truth, now: datetime, report: RunReport) -> None:
        after = 0
        a = alerts.c
        while True:
            with self.engine.begin() as conn:
                page = conn.execute(
                    sa.select(a.id, a.fingerprint, a.starts_at, a.received_at)
                    .where(a.status == "firing", a.id > after).order_by(a.id)
                    .limit(self.settings.batch_size)).all()
            if not page:
                return
            after = page[-1].id
            due = [(r.fingerprint, r.starts_at) for r in page
                   if (r.fingerprint, ms(r.starts_at)) not in truth.firing
                   and r.received_at < now
                   and self.due(("resolve", r.fingerprint, r.starts_at), now)]
            if due:
                asked = ", ".join(m.url for m in truth.members if m.up)
                with self.engine.begin() as conn:
                    report.done.add(fix.resolve_alerts(
                        conn, due, now, self.hooks,
                        f"no reachable Alertmanager reports it firing (asked {asked})"))
            if len(page) < self.settings.batch_size:
                return

    def place_firing(self, truth: Truth, now: datetime, report: RunReport) -> None:
        unseen = max(self.settings.grace, self.settings.new_alert_grace or 0.0)
        for part in chunks(sorted(truth.firing.values(), key=lambda x: x.key),
                           self.settings.batch_size):
            with self.engine.begin() as conn:
                stored = fix.stored_alerts(conn, part)
                refire = fix.refireable(conn, [s.key for s in stored.values()
                                               if s.status == "resolved"])
            by_group: dict[tuple, tuple[AmGroup, list[AmAlert]]] = {}
            for alert in part:
                st = stored.get(alert.key)
                if st is not None and st.status == "resolved" and st.key not in refire:
                    report.done.unfixable += 1
                    continue
                if st is not None and st.status == "firing" and st.held_open:
                    continue
                if alert.state != "active":
                    # silenced or inhibited (or not yet processed): Alertmanager keeps it
                    # from notifying, so a page for it must not come from here either
                    report.suppressed += 1
                    continue
                if not self.due(("fire", alert.key), now, unseen if st is None else None):
                    continue
                group = group_of(alert, truth)
                if group is None:
                    report.unplaced += 1
                    continue
                tenant = tenant_of(alert.labels)  # one incident per tenant, as the webhook
                ident = (group.receiver, tuple(sorted(group.labels.items())), tenant)
                by_group.setdefault(ident, (group, []))[1].append(alert)
            external = next(m.url for m in truth.members if m.up)
            for (_, _, tenant), (group, found) in by_group.items():
                with self.engine.begin() as conn:
                    key = group_key(conn, group, tenant)
                    report.done.add(fix.place_firing(conn, key, group, found, now,
                                                     self.hooks, external))

    def resolve_empty(self, now: datetime, report: RunReport) -> None:
        after = 0
        i = incidents.c
        while True:
            with self.engine.begin() as conn:
                page = conn.execute(
                    sa.select(i.id, i.created_at).where(UNRESOLVED, i.id > after)
                    .order_by(i.id).limit(self.settings.batch_size)).all()
                empty = [r.id for r in page if r.created_at < now and conn.execute(
                    statements(conn).firing_members, {"incident_id": r.id}).first() is None]
            if not page:
                return
            after = page[-1].id
            due = [x for x in empty if self.due(("empty", x), now)]
            if due:
                with self.engine.begin() as conn:
                    locked = fix.lock_unresolved(conn, due)
                    report.done.resolved_incidents += fix.resolve_empty(
                        conn, locked, now, self.hooks,
                        "no alert of it fires (its alerts were resolved elsewhere)")
            if len(page) < self.settings.batch_size:
                return

    # -- reporting ---------------------------------------------------------------------
    def _finish(self, report: RunReport, now: datetime, truth: Truth | None = None
                ) -> RunReport:
        d = report.done
        if truth is not None and report.outcome != "skipped":
            if d.resolved_alerts or d.fired_alerts or d.linked_alerts or d.resolved_incidents \
                    or d.opened_incidents:
                log.info("reconciled with alertmanager", extra={
                    "resolved_alerts": d.resolved_alerts, "fired_alerts": d.fired_alerts,
                    "linked_alerts": d.linked_alerts,
                    "resolved_incidents": d.resolved_incidents,
                    "opened_incidents": d.opened_incidents})
            if d.unfixable:
                log.info("%d alerts fire in alertmanager but were resolved by it before: "
                         "left resolved", d.unfixable)
        if self.metrics is not None:
            self.metrics.observe(report, truth, now)
        return report


class ReconcileThread:
    """The reconciler as a background thread of the worker, with its own connection."""

    def __init__(self, reconciler: Reconciler, period: float) -> None:
        self.reconciler = reconciler
        self.period = period
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="reconcile", daemon=True)

    @classmethod
    def start(cls, settings: ReconcileSettings | None, alertmanager_url: str | None,
              database_url: str, owner: str, metrics=None) -> ReconcileThread | None:
        """Start reconciling if enabled and an Alertmanager is known; else None."""
        from ticketmon.core.database import make_engine

        members = settings.members(alertmanager_url) if settings else []
        if settings is None or not settings.enabled or not members:
            return None
        engine = make_engine(database_url, pool_size=1)
        runner = cls(Reconciler(settings, members, engine, load_hooks(settings.incident_hooks),
                                owner, metrics), settings.period)
        runner.thread.start()
        log.info("reconciliation started", extra={"alertmanagers": members,
                                                  "period": settings.period,
                                                  "grace": settings.grace,
                                                  "new_alert_grace": settings.new_alert_grace})
        return runner

    def _run(self) -> None:
        try:
            while not self.stopping.is_set():
                started = time.monotonic()
                try:
                    self.reconciler.run_once()
                except Exception as exc:  # database away, a bug: the next run tries again
                    log.warning("reconciliation run failed: %s: %s", type(exc).__name__,
                                str(exc).splitlines()[0][:200] if str(exc) else "")
                    if self.reconciler.metrics is not None:
                        self.reconciler.metrics.runs.labels("error").inc()
                self.stopping.wait(max(0.0, self.period - (time.monotonic() - started)))
        finally:
            self.reconciler.engine.dispose()

    def stop(self, timeout: float = 15.0) -> None:
        self.stopping.set()
        self.thread.join(timeout)
