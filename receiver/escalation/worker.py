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
        self.oncall, self.people_channels = self._oncall(settings)
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
        # the worker acts for every tenant: its sessions' row-level security scope is '*'
        self.engine = make_engine(settings.database_url, pool_size=2, tenant="*")
        self.registry = registry
        self.metrics = WorkerMetrics(registry)
        if registry is not None:
            from receiver.oncall.metrics import OncallCollector

            registry.register(OncallCollector(self.oncall, self.engine))
        self.stopping = threading.Event()
        self.dispatcher = Dispatcher(
            self.engine, self.owner, [*self.channels, ALERTMANAGER, *self.person_lanes()],
            settings.concurrency,
            settings.lease, self.retry, self.send, self.recorded, settings.poll_interval,
            rounds=self.claim_rounds())

    def _oncall(self, settings: WorkerSettings):
        """People, schedules and the contact methods that reach people (receiver.oncall)."""
        from receiver.channels.slack_dm import SlackDirect
        from receiver.channels.twilio import TwilioPerson
        from receiver.oncall.routing import check_targets
        from receiver.oncall.service import OnCall
        from ticketmon.core.config import ConfigError

        oncall = OnCall(settings.oncall)
        problems = check_targets(self.policies, oncall)
        if problems:
            raise ConfigError("escalation targets:\n  " + "\n  ".join(problems))
        methods: dict[str, object] = {}
        if settings.oncall.slack_bot:
            methods["slack"] = SlackDirect(settings.oncall.slack_bot)
        if settings.oncall.twilio:
            methods["sms"] = TwilioPerson("sms", settings.oncall.twilio)
            methods["voice"] = TwilioPerson("voice", settings.oncall.twilio)
        return oncall, methods

    def person_lanes(self) -> list[str]:
        from receiver.oncall.routing import METHOD_CHANNEL

        return [f"{METHOD_CHANNEL[m]}:" for m in self.people_channels]

    def claim_rounds(self) -> int:
        """How many rows per delivery thread a channel may hold: a claimed row is done
        within rounds x the slowest timeout, which must stay within half the lease."""
        timeouts = [getattr(c, "timeout", 0.0) for c in self.settings.channels.values()]
        timeouts += [getattr(c, "timeout", 0.0) for c in self.people_channels.values()]
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
                                                self.settings.batch_size, self.router)
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

    def router(self, conn, now):
        """Expands the person targets of a batch of steps (receiver.oncall.routing)."""
        from receiver.oncall.routing import Router

        return Router(self.oncall, conn, now)

    def due_in(self) -> float | None:
        """Seconds until the earliest active timer falls due (<= 0: due now), None when
        there is none. A plain read: an idle look never takes SQLite's write lock."""
        import sqlalchemy as sa

        from receiver.escalation.tables import escalations

        e = escalations.c
        with self.engine.execution_options(readonly=True).begin() as conn:
            due = conn.execute(sa.select(sa.func.min(e.due_at)).where(
                e.state == "active")).scalar()
        return None if due is None else (due - utcnow()).total_seconds()

    def next_step_in(self) -> float:
        """Seconds until the next step falls due, capped by the poll interval (a commit
        wakes the loop sooner: step_loop)."""
        wait = self.due_in()
        if wait is None:
            return self.settings.poll_interval
        # due but not ours (another worker holds it): look again shortly
        return min(self.settings.poll_interval, max(wait, 0.05))

    def step_loop(self) -> None:
        """Fire what is due, then sleep until the next step falls due or anything commits
        (a new incident's first step is due at once; a resolve waits in the outbox)."""
        from receiver.store.commit_watch import CommitWatch

        watch = CommitWatch(self.engine, self.stopping)
        try:
            while not self.stopping.is_set():
                try:
                    due = self.due_in()
                    if due is not None and due <= 0:
                        self.fire_due_steps()
                    wait = self.next_step_in()
                except Exception as exc:  # database away: keep trying, state is in the DB
                    self.failed(exc)
                    wait = self.settings.poll_interval
                if watch.wait(wait):
                    self.dispatcher.nudge()
        finally:
            watch.close()

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
        from receiver.oncall.routing import person_channel

        if person_channel(row["channel"]):  # one series per method, not per person
            row = {**row, "channel": row["channel"].partition(":")[0] + ":"}
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
        if channel is None and ":" in row["channel"]:
            return self.send_person(row, incident), None
        if channel is None:
            return DeliveryResult(Outcome.PERMANENT,
                                  f"channel {row['channel']!r} is not configured"), None
        return channel.send(self.message(row, incident)), None

    def send_person(self, row: dict, incident: dict) -> DeliveryResult:
        """A page (or its acknowledge/resolve) to one person by one of their methods."""
        from receiver.oncall.routing import NOBODY, person_channel

        why = (row.get("detail") or {}).get("why", "")
        if row["channel"].startswith(NOBODY):
            return DeliveryResult(Outcome.PERMANENT, why or "nobody on call")
        found = person_channel(row["channel"])
        if found is None:
            return DeliveryResult(Outcome.PERMANENT,
                                  f"channel {row['channel']!r} is not configured")
        method, name = found
        user = self.oncall.people.users.get(name)
        if user is None:
            return DeliveryResult(Outcome.PERMANENT, f"user {name!r} is not in people.yaml")
        sender = self.people_channels.get(method)
        if sender is None:
            setting = "oncall.slack_bot" if method == "slack" else "oncall.twilio"
            return DeliveryResult(Outcome.PERMANENT,
                                  f"{method} is not configured ({setting}): cannot reach {name}")
        return sender.send_to(user, self.message(row, incident), why)

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
    def stop(self) -> None:
        """Finish what is in flight and return from run(), without waiting out a poll."""
        self.stopping.set()
        self.dispatcher.wakeup.set()

    def failed(self, exc: Exception) -> None:
        log.warning("worker pass failed: %s", type(exc).__name__)
        self.metrics.errors.inc()

    def run(self) -> None:
        log.info("worker started", extra={"worker": self.owner,
                                          "channels": sorted(self.channels),
                                          "policies": [p.name for p in self.policies.policies]})
        from receiver.anomaly.background import AnomalyThread
        from receiver.reconcile.reconciler import ReconcileThread

        anomaly = AnomalyThread.start(self.settings.anomaly, self.settings.database_url,
                                      self.registry)
        reconcile = ReconcileThread.start(self.settings.reconcile, self.settings.alertmanager_url,
                                          self.settings.database_url, self.owner,
                                          self.metrics.reconcile)
        self.oncall.start_background()
        reports = self.start_reports()
        steps = threading.Thread(target=self.step_loop, name="steps", daemon=True)
        steps.start()
        self.dispatcher.run(self.stopping, self.failed)
        steps.join()
        self.oncall.stop()
        if anomaly:
            anomaly.stop()
        if reconcile:
            reconcile.stop()
        if reports:
            reports.stop()
        self.engine.dispose()
        log.info("worker stopped", extra={"worker": self.owner})
