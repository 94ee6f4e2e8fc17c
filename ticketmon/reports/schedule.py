"""The worker's report job: each scheduled report, once per period, by email.

Every poll, each report with a schedule names its due period (the last daily or weekly
boundary, once `at` has passed) and inserts its history row with ON CONFLICT DO
NOTHING: the worker whose insert lands builds and sends it, any other worker skips.
A run that failed for a passing reason (Prometheus down, SMTP 4xx) is retried with
backoff by whichever worker next claims the row with a conditional UPDATE.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

import sqlalchemy as sa
from pydantic import Field

from receiver.store.bulk import dialect_insert
from ticketmon.core.config import Settings
from ticketmon.core.durations import Duration
from ticketmon.reports.history import report_runs
from ticketmon.reports.spec import WEEKDAYS, ReportSpec, Schedule

log = logging.getLogger("receiver.reports")


class ReportScheduleSettings(Settings):
    """`reports:` in the worker's settings; absent: the worker sends no reports."""

    reports_dir: Path | None = None  # default: the repository's reports/
    prometheus_url: str = "http://127.0.0.1:9090"
    output_dir: Path = Path("report-files")  # rendered reports, listed by the API
    poll_interval: Duration = 60.0
    lease: Duration = 900.0  # a run not finished by then is taken over
    retry_base: Duration = 60.0
    retry_cap: Duration = 3600.0
    max_attempts: int = Field(default=12, ge=1)


def utcnow() -> datetime:
    return datetime.now(UTC)


def due_period(schedule: Schedule, period: float, now: datetime) -> tuple[datetime, datetime]:
    """The period whose report is due at `now`: it ends at the last boundary whose
    send time (boundary + at) has passed."""
    hours, minutes = (int(x) for x in schedule.at.split(":"))
    after = timedelta(hours=hours, minutes=minutes)
    boundary = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if schedule.every == "weekly":
        boundary -= timedelta(days=(boundary.weekday() - WEEKDAYS.index(schedule.weekday)) % 7)
        if boundary + after > now:
            boundary -= timedelta(days=7)
    elif boundary + after > now:
        boundary -= timedelta(days=1)
    return boundary - timedelta(seconds=period), boundary


class ReportScheduler:
    def __init__(self, settings: ReportScheduleSettings, engine: sa.Engine, channels: dict,
                 owner: str, specs: list[ReportSpec] | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        from ticketmon.reports import REPORTS_DIR
        from ticketmon.reports.spec import load_all

        self.settings = settings
        self.engine = engine
        self.channels = channels
        self.owner = owner
        self.clock = clock
        self.specs = {s.name: s for s in
                      (specs if specs is not None else load_all(settings.reports_dir or
                                                                REPORTS_DIR))
                      if s.schedule is not None}
        for spec in self.specs.values():
            if spec.channel not in channels or not hasattr(channels[spec.channel], "deliver"):
                raise ValueError(f"report {spec.name}: channel {spec.channel!r} is not a "
                                 "configured email channel")

    # -- claims ----------------------------------------------------------------------
    def claim_new(self, spec: ReportSpec, now: datetime) -> int | None:
        """Insert this period's row; None when another worker (or an earlier pass) has."""
        start, end = due_period(spec.schedule, spec.period_seconds, now)  # type: ignore[arg-type]
        with self.engine.begin() as conn:
            row = conn.execute(dialect_insert(conn, report_runs).values(
                report=spec.name, tenant=spec.tenant, period_start=start, period_end=end,
                state="running", attempts=1, owner=self.owner, created_at=now,
                lease_until=now + timedelta(seconds=self.settings.lease),
                format=spec.format, recipients=spec.recipients,
            ).on_conflict_do_nothing(index_elements=["report", "period_start", "period_end"])
                .returning(report_runs.c.id)).first()
        return row[0] if row else None

    def claim_retries(self, now: datetime) -> list[int]:
        """Rows due for another attempt, or whose worker died: a conditional UPDATE each."""
        r = report_runs.c
        due = sa.or_(sa.and_(r.state == "retry", r.next_attempt_at <= now),
                     sa.and_(r.state == "running", r.lease_until < now))
        taken = []
        with self.engine.begin() as conn:
            ids = conn.execute(sa.select(r.id).where(due, r.report.in_(list(self.specs)))
                               .order_by(r.id).limit(20)).scalars().all()
            for run_id in ids:
                hit = conn.execute(report_runs.update().where(r.id == run_id, due).values(
                    state="running", owner=self.owner, attempts=r.attempts + 1,
                    lease_until=now + timedelta(seconds=self.settings.lease)))
                if hit.rowcount == 1:
                    taken.append(run_id)
        return taken

    # -- one run -----------------------------------------------------------------------
    def execute(self, run_id: int) -> str:
        from ticketmon.reports.prometheus import PrometheusUnavailable, QueryError
        from ticketmon.reports.run import produce

        with self.engine.connect() as conn:
            row = conn.execute(sa.select(report_runs).where(report_runs.c.id == run_id)).one()
        spec = self.specs[row.report]
        retry, detail, file = True, "", None
        try:
            produced = produce(spec, row.period_start, row.period_end,
                               self.settings.prometheus_url,
                               database_url=str(self.engine.url.render_as_string(False)))
            file = self.write(spec, row.period_end, produced.text)
            result = self.channels[spec.channel].deliver(self.mail(spec, produced))
            retry = result.outcome == "retry"
            state = "delivered" if result.outcome == "delivered" else "failed"
            detail = result.detail
        except PrometheusUnavailable as exc:
            state, detail = "failed", str(exc)
        except QueryError as exc:  # a bug, not a passing problem: do not hammer
            state, detail, retry = "failed", f"query refused: {exc}", False
        except Exception as exc:  # keep the worker alive; the row says what happened
            log.exception("report %s failed", spec.name)
            state, detail = "failed", f"{type(exc).__name__}: {exc}"
        now = self.clock()
        values: dict = {"detail": detail[:2000], "file": file, "lease_until": None}
        if state == "failed" and retry and row.attempts < self.settings.max_attempts:
            delay = min(self.settings.retry_cap,
                        self.settings.retry_base * 2 ** (row.attempts - 1))
            state = "retry"
            values["next_attempt_at"] = now + timedelta(seconds=delay)
        else:
            values["finished_at"] = now
        values["state"] = state
        with self.engine.begin() as conn:
            conn.execute(report_runs.update().where(report_runs.c.id == run_id,
                                                    report_runs.c.owner == self.owner)
                         .values(values))
        log.info("report %s", state, extra={"report": spec.name, "run": run_id,
                                              "detail": detail})
        return state

    def write(self, spec: ReportSpec, end: datetime, text: str) -> str:
        out = self.settings.output_dir
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{spec.name}-{end:%Y%m%dT%H%M}.{spec.format}"
        path.write_text(text, encoding="utf-8")
        return str(path)

    def mail(self, spec: ReportSpec, produced) -> EmailMessage:
        from ticketmon.reports.render import heading

        channel = self.channels[spec.channel]
        mail = EmailMessage()
        mail["Subject"] = heading(produced.report)
        mail["From"] = channel.settings.from_addr
        mail["To"] = ", ".join(spec.recipients or channel.settings.to)
        mail["Date"] = formatdate(self.clock().timestamp())
        if spec.format == "html":
            mail.set_content("This report is HTML: open it in a mail client that shows "
                             "HTML.\n")
            mail.add_alternative(produced.text, subtype="html")
        else:
            mail.set_content(produced.text)
        return mail

    def run_once(self) -> list[tuple[int, str]]:
        """One pass: new periods, then retries. Returns (run id, final state) per run."""
        now = self.clock()
        done = []
        for spec in self.specs.values():
            run_id = self.claim_new(spec, now)
            if run_id is not None:
                done.append((run_id, self.execute(run_id)))
        for run_id in self.claim_retries(now):
            done.append((run_id, self.execute(run_id)))
        return done


class ReportThread(threading.Thread):
    """Runs the scheduler every poll_interval inside the worker process."""

    def __init__(self, scheduler: ReportScheduler) -> None:
        super().__init__(name="reports", daemon=True)
        self.scheduler = scheduler
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.scheduler.run_once()
            except Exception as exc:  # database away: the rows keep the state
                log.warning("report pass failed: %s", type(exc).__name__)
            self.stopping.wait(self.scheduler.settings.poll_interval)

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)
