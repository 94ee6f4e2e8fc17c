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

import fcntl
import logging
import os
import signal
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, Field, SecretStr, model_validator

from receiver.anomaly.settings import AnomalyJobSettings
from receiver.channels.base import DeliveryResult, Message, Outcome
from receiver.channels.registry import ChannelSettings
from receiver.escalation.policy import parse_duration
from ticketmon.config import Settings

log = logging.getLogger("receiver.worker")

Duration = Annotated[float, BeforeValidator(parse_duration)]


class WorkerSettings(Settings):
    database_url: str = "sqlite:///ticketmon-receiver.db"
    policies_file: Path | None = None  # default: rules/escalation/policies.yaml
    templates_dir: Path | None = None
    channels: dict[str, ChannelSettings] = {}
    public_url: str = "http://127.0.0.1:10190"  # the receiver, for incident and ack links
    grafana_url: str | None = None
    alertmanager_url: str | None = None  # for silences; None: no silences
    silence_on_ack: bool = True
    silence_duration: Duration = 4 * 3600.0
    ack_link_secret: SecretStr | None = None  # the receiver must have the same one
    ack_link_ttl: Duration = 24 * 3600.0
    poll_interval: Duration = 0.5
    batch_size: int = Field(default=250, ge=1, le=10_000)  # escalation timers per transaction
    concurrency: int = Field(default=4, ge=1, le=64)  # deliveries in flight per channel
    lease: Duration = 120.0
    retry_base: Duration = 2.0
    retry_cap: Duration = 300.0
    max_age: Duration = 6 * 3600.0
    max_attempts: int = Field(default=25, ge=1)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=10195, ge=0, le=65535)  # 0: no /metrics
    worker_id: str | None = None
    log_level: str = "info"
    anomaly: AnomalyJobSettings | None = None  # also run the anomaly job; None: off

    @model_validator(mode="after")
    def _lease_outlives_a_delivery(self) -> WorkerSettings:
        slowest = max((getattr(c, "timeout", 0) for c in self.channels.values()), default=0)
        if self.lease <= slowest * 2:
            raise ValueError(f"lease must be longer than twice the slowest channel timeout "
                             f"({slowest}s)")
        return self


def utcnow() -> datetime:
    return datetime.now(UTC)


class Worker:
    def __init__(self, settings: WorkerSettings, registry=None) -> None:
        from receiver.channels.registry import build_channels
        from receiver.channels.templates import Templates
        from receiver.escalation.ack_links import AckLinks
        from receiver.escalation.dispatch import Dispatcher
        from receiver.escalation.hooks import ALERTMANAGER
        from receiver.escalation.metrics import WorkerMetrics
        from receiver.escalation.outbox import RetryPolicy
        from receiver.escalation.policy import load_policies
        from receiver.escalation.silences import Silencer
        from receiver.store.engine import make_engine

        self.settings = settings
        self.policies = load_policies(settings.policies_file)
        self.policies.check_channels(set(settings.channels))
        self.templates = Templates(settings.templates_dir)
        self.channels = build_channels(settings.channels, self.templates)
        self.ack_links = (AckLinks(settings.ack_link_secret.get_secret_value(),
                                   settings.public_url, settings.ack_link_ttl)
                          if settings.ack_link_secret else None)
        self.silencer = (Silencer(settings.alertmanager_url, settings.silence_duration)
                         if settings.alertmanager_url and settings.silence_on_ack else None)
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
        from receiver.escalation.outbox import advance_escalations

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
        if row["action"] == "silence":
            if self.silencer is None:
                return DeliveryResult(Outcome.PERMANENT, "skipped"), None
            return self.silencer.silence(incident, row["actor"])
        if row["action"] == "unsilence":
            if self.silencer is None:
                return DeliveryResult(Outcome.PERMANENT, "skipped"), None
            return self.silencer.expire(item.silence_id), None
        channel = self.channels.get(row["channel"])
        if channel is None:
            return DeliveryResult(Outcome.PERMANENT,
                                  f"channel {row['channel']!r} is not configured"), None
        return channel.send(self.message(row, incident)), None

    def message(self, row: dict, incident: dict) -> Message:
        opened = incident.get("opened_at")
        data = {
            "id": str(incident["id"]), "title": incident["title"],
            "severity": incident["severity"], "service": incident.get("service") or "",
            "tenant": incident["tenant"], "status": incident["status"],
            "started_at": opened.timestamp() if opened else None,
            "labels": incident.get("common_labels") or {},
            "summary": (incident.get("common_labels") or {}).get("alertname", ""),
        }
        links = {"incident": f"{self.settings.public_url}/api/v1/incidents/{incident['id']}"}
        if self.settings.grafana_url:
            links["grafana"] = self.settings.grafana_url
        if incident.get("external_url"):
            links["alertmanager"] = incident["external_url"]
        if self.ack_links and row["action"] == "trigger":
            links["ack"] = self.ack_links.url(str(incident["id"]), row["channel"])
        return Message(action=row["action"], incident=data, delivery_id=row["key"],
                       step=row["step"], round=row["round"], actor=row["actor"], links=links)

    # -- loop --------------------------------------------------------------------------
    def failed(self, exc: Exception) -> None:
        log.warning("worker pass failed: %s", type(exc).__name__)
        self.metrics.errors.inc()

    def run(self) -> None:
        log.info("worker started", extra={"worker": self.owner,
                                          "channels": sorted(self.channels),
                                          "policies": [p.name for p in self.policies.policies]})
        from receiver.anomaly.background import AnomalyThread

        anomaly = AnomalyThread.start(self.settings.anomaly, self.settings.database_url)
        steps = threading.Thread(target=self.step_loop, name="steps", daemon=True)
        steps.start()
        self.dispatcher.run(self.stopping, self.failed)
        steps.join()
        if anomaly:
            anomaly.stop()
        self.engine.dispose()
        log.info("worker stopped", extra={"worker": self.owner})


def single_worker_lock(database_url: str):
    """On SQLite only one worker may run: hold an exclusive lock beside the database."""
    if not database_url.startswith("sqlite"):
        return None
    path = database_url.split("///", 1)[-1] or "ticketmon-receiver.db"
    handle = open(f"{path}.worker.lock", "w")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log.info("another worker holds %s.worker.lock: waiting (SQLite runs one worker)", path)
        fcntl.flock(handle, fcntl.LOCK_EX)
    return handle


def main(args) -> int:
    from prometheus_client import CollectorRegistry, start_http_server

    from receiver.store import migrate
    from ticketmon import config, logs

    settings = config.load(WorkerSettings, getattr(args, "config", None))
    logs.setup(settings.log_level)
    lock = single_worker_lock(settings.database_url)  # noqa: F841 - kept open until exit
    if settings.database_url.startswith("sqlite"):
        migrate.upgrade(settings.database_url)
    registry = CollectorRegistry()
    worker = Worker(settings, registry)
    if settings.metrics_port:
        start_http_server(settings.metrics_port, settings.metrics_host, registry=registry)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stopping.set())
    worker.run()
    return 0


def register(subparsers) -> None:
    """Adds `worker` to the `ticketmon receiver` group."""
    parser = subparsers.add_parser("worker", help="escalate incidents and deliver notifications")
    parser.add_argument("--config", help="YAML settings (default $TICKETMON_CONFIG)")
    parser.set_defaults(func=main)
