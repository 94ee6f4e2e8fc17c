"""`ticketmon receiver worker`: escalates by policy and delivers the notification outbox.

A separate process from the web app; any number of them may share one PostgreSQL (on
SQLite, one at a time). Two loops that never wait for each other: the step loop turns
due escalation steps into outbox rows in batches (one transaction per batch, waking
when the next step falls due), and the dispatcher (escalation.dispatch) claims and
delivers notifications with a share of threads per channel. A backlog of deliveries
therefore never delays a step, and one slow channel never holds back another. All
state is in the database, so a restart loses nothing; its own /metrics (default port
10195) shows deliveries, step and delivery lateness.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import threading
from datetime import UTC, datetime

from receiver.channels.base import DeliveryResult, Message, Outcome
from receiver.escalation.messages import build_message
from receiver.escalation.settings import WorkerSettings
from receiver.store import queries

log = logging.getLogger("receiver.worker")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Worker:
    def __init__(self, settings: WorkerSettings, registry=None) -> None:
        from receiver.channels.registry import build_channels
        from receiver.channels.templates import Templates
        from receiver.escalation.ack_links import AckLinks
        from receiver.escalation.dispatch import Dispatcher
        from receiver.escalation.metrics import WorkerMetrics
        from receiver.escalation.outbox import RetryPolicy
        from receiver.escalation.policy import load_policies
        from receiver.escalation.silences import Silencer
        from receiver.escalation.timers import ALERTMANAGER
        from ticketmon.core.database import make_engine

        self.settings = settings
        self.policies = load_policies(settings.policies_file)
        self.policies.check_channels(set(settings.channels))
        self.templates = Templates(settings.templates_dir)
        self.channels = build_channels(settings.channels, self.templates)
        self.ack_links = (AckLinks(settings.ack_link_secret.get_secret_value(),
                                   settings.public_url, settings.ack_link_ttl)
                          if settings.ack_link_secret else None)
        self.silencer = (Silencer(settings.alertmanager_url, settings.silence_duration)
                         if settings.alertmanager_url else None)
        self.retry = RetryPolicy(settings.retry_base, settings.retry_cap, settings.max_age,
                                 settings.max_attempts)
        self.owner = settings.worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.engine = make_engine(settings.database_url, pool_size=2)
        self.metrics = WorkerMetrics(registry)
        self.stopping = threading.Event()
        self.dispatcher = Dispatcher(
            self.engine, self.owner, [*self.channels, ALERTMANAGER], settings.concurrency,
            settings.lease, self.retry, self.send, self.recorded, settings.poll_interval,
            rounds=self.claim_rounds())

    def claim_rounds(self) -> int:
        """How many rows per delivery thread a channel may hold: a claimed row is done
        within rounds x the slowest timeout, which must stay within half the lease."""
        timeouts = [getattr(c, "timeout", 0.0) for c in self.settings.channels.values()]
        if self.silencer is not None:
            timeouts.append(self.silencer.timeout)
        slowest = max(timeouts, default=0.0) or 1.0
        return max(1, min(4, int(self.settings.lease / (2 * slowest))))

    # -- escalation steps --------------------------------------------------------------
    def fire_due_steps(self) -> int:
        """Carry out every due step, a batch per transaction; returns steps fired."""
        from receiver.escalation.steps import advance_escalations

        fired = 0
        try:
            while True:
                with self.engine.begin() as conn:
                    batch = advance_escalations(conn, self.policies, utcnow(),
                                                self.settings.batch_size)
                written = utcnow()
                for due in batch.fired:
                    self.metrics.step_lateness.observe(
                        max(0.0, (written - due).total_seconds()))
                fired += len(batch.fired)
                if batch.taken < self.settings.batch_size or self.stopping.is_set():
                    return fired
                # more steps are due: they come before new deliveries compete for the
                # CPU and the database (outcomes of those in flight are still written)
                self.dispatcher.hold.set()
        finally:
            self.dispatcher.hold.clear()
            if fired:
                self.dispatcher.nudge()

    def next_step_in(self) -> float:
        """Seconds until the next step falls due, capped by the poll interval (new
        incidents appear in the database without telling us)."""
        import sqlalchemy as sa

        from receiver.escalation.tables import escalations

        e = escalations.c
        with self.engine.connect() as conn:
            due = conn.execute(sa.select(sa.func.min(e.due_at)).where(
                e.state == "active")).scalar()
        if due is None:
            return self.settings.poll_interval
        wait = (due - utcnow()).total_seconds()
        # due but not ours (another worker holds it): look again shortly
        return min(self.settings.poll_interval, max(wait, 0.05))

    def step_loop(self) -> None:
        while not self.stopping.is_set():
            try:
                self.fire_due_steps()
                wait = self.next_step_in()
            except Exception as exc:  # database away: keep trying, state is in the DB
                self.failed(exc)
                wait = self.settings.poll_interval
            self.stopping.wait(wait)

    # -- one pass (tests) ----------------------------------------------------------------
    def run_once(self) -> int:
        """Fire due steps, then deliver one round and write the outcomes; returns how
        much work was done."""
        fired = self.fire_due_steps()
        self.dispatcher.nudge()
        claimed = self.dispatcher.pump()
        self.dispatcher.settle()
        return fired + claimed

    # -- deliveries --------------------------------------------------------------------
    def recorded(self, done, state: str | None) -> None:
        row = done.item.row
        if state is None:
            log.warning("lease on %s lost before its outcome was written", row["key"])
            return
        self.metrics.record(row, state, done.outcome, done.at)
        log.info("notification %s", state, extra={
            "notification": row["id"], "incident": row["incident_id"],
            "channel": row["channel"], "action": row["action"], "attempt": row["attempts"],
            "detail": done.result.detail})

    def send(self, item) -> tuple[DeliveryResult, str | None]:
        row, incident = item.row, item.incident
        if incident is None:
            return DeliveryResult(Outcome.PERMANENT, "incident no longer exists"), None
        if row["action"] in ("silence", "unsilence"):
            if self.silencer is None:
                return DeliveryResult(Outcome.PERMANENT, "no alertmanager_url is configured: "
                                      "cannot silence"), None
            if row["action"] == "unsilence":
                return self.silencer.expire(item.silence_id), None
            duration = (row.get("detail") or {}).get("duration_seconds")
            return self.silencer.silence(incident, row["actor"], duration=duration,
                                         replaces=item.silence_id)
        channel = self.channels.get(row["channel"])
        if channel is None:
            return DeliveryResult(Outcome.PERMANENT,
                                  f"channel {row['channel']!r} is not configured"), None
        return channel.send(self.message(row, incident)), None

    def message(self, row: dict, incident: dict) -> Message:
        return build_message(row, incident, self.settings.public_url,
                             self.settings.grafana_url, self.ack_links, self.installation)

    @functools.cached_property
    def installation(self) -> str:
        """This installation's id, read once (a delivery only happens with the DB up)."""
        with self.engine.connect() as conn:
            return queries.installation_id(conn)

    def start_reports(self):
        """The scheduled reports job (ticketmon.reports.schedule), when configured."""
        if self.settings.reports is None:
            return None
        from ticketmon.reports.schedule import ReportScheduler, ReportThread

        thread = ReportThread(ReportScheduler(self.settings.reports, self.engine,
                                              self.channels, self.owner))
        thread.start()
        return thread

    # -- loop --------------------------------------------------------------------------
    def failed(self, exc: Exception) -> None:
        log.warning("worker pass failed: %s", type(exc).__name__)
        self.metrics.errors.inc()

    def run(self) -> None:
        log.info("worker started", extra={"worker": self.owner,
                                          "channels": sorted(self.channels),
                                          "policies": [p.name for p in self.policies.policies]})
        from receiver.anomaly.background import AnomalyThread
        from receiver.reconcile.reconciler import ReconcileThread

        anomaly = AnomalyThread.start(self.settings.anomaly, self.settings.database_url)
        reconcile = ReconcileThread.start(self.settings.reconcile, self.settings.alertmanager_url,
                                          self.settings.database_url, self.owner,
                                          self.metrics.reconcile)
        reports = self.start_reports()
        steps = threading.Thread(target=self.step_loop, name="steps", daemon=True)
        steps.start()
        self.dispatcher.run(self.stopping, self.failed)
        steps.join()
        if anomaly:
            anomaly.stop()
        if reconcile:
            reconcile.stop()
        if reports:
            reports.stop()
        self.engine.dispose()
        log.info("worker stopped", extra={"worker": self.owner})
