"""Scheduled reports: sent once across workers by email, retried when Prometheus is down,
listed by the API under the tenant rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from receiver.app import create_app
from receiver.channels.email import EmailChannel, EmailSettings
from receiver.settings import ReceiverSettings
from receiver.store import migrate
from ticketmon.core.database import make_engine
from ticketmon.reports.history import report_runs
from ticketmon.reports.schedule import ReportScheduler, ReportScheduleSettings, due_period
from ticketmon.reports.spec import ReportSpec, Schedule
from ticketmon.servers.process import free_port


class Recorder:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope.content)
        return "250 Message accepted"


@pytest.fixture
def smtp():
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, recorder
    controller.stop()


def test_due_period() -> None:
    daily = Schedule(every="daily", at="06:00")
    at = datetime(2026, 5, 6, 7, 0, tzinfo=UTC)  # a Wednesday, after 06:00
    assert due_period(daily, 86400, at) == (datetime(2026, 5, 5, tzinfo=UTC),
                                            datetime(2026, 5, 6, tzinfo=UTC))
    early = at.replace(hour=5)  # before 06:00: still yesterday's report
    assert due_period(daily, 86400, early)[1] == datetime(2026, 5, 5, tzinfo=UTC)
    weekly = Schedule(every="weekly", weekday="monday", at="07:00")
    assert due_period(weekly, 7 * 86400, at) == (datetime(2026, 4, 27, tzinfo=UTC),
                                                 datetime(2026, 5, 4, tzinfo=UTC))
    monday_early = datetime(2026, 5, 4, 6, 59, tzinfo=UTC)
    assert due_period(weekly, 7 * 86400, monday_early)[1] == datetime(2026, 4, 27, tzinfo=UTC)


def scheduler(url: str, prometheus: str, smtp_port: int, owner: str, clock, out: Path,
              tenant: str = "*") -> ReportScheduler:
    channel = EmailChannel("email", EmailSettings(
        type="email", host="127.0.0.1", port=smtp_port, security="none",
        from_addr="ticketmon@example.com", to=["ops@example.com"]), None)
    spec = ReportSpec(name="sla-daily", period="1d", tenant=tenant,
                      schedule=Schedule(every="daily", at="00:05"))
    settings = ReportScheduleSettings(prometheus_url=prometheus, output_dir=out,
                                      retry_base="1m")
    return ReportScheduler(settings, make_engine(url, pool_size=2), {"email": channel}, owner,
                           [spec], clock=clock)


def test_sent_once_across_workers_and_listed(history, database_url: str, smtp,
                                             tmp_path: Path) -> None:
    prom, end = history
    controller, recorder = smtp
    migrate.upgrade(database_url)
    now = datetime.fromtimestamp(end, UTC).replace(hour=1, minute=0)

    def make(owner: str) -> ReportScheduler:
        return scheduler(database_url, prom.url, controller.port, owner, lambda: now,
                         tmp_path, tenant="acme")

    first, second = make("w1"), make("w2")
    assert [state for _, state in first.run_once()] == ["delivered"]
    assert second.run_once() == [] and first.run_once() == []
    assert len(recorder.messages) == 1
    assert b"Content-Type: text/html" in recorder.messages[0]
    assert b"SLA report" in recorder.messages[0]
    app = create_app(ReceiverSettings(database_url=database_url, webhook_token="w" * 20,
                                      api_tokens=[
        {"name": "acme", "role": "viewer", "tenant": "acme", "token": "acme-viewer-token-1"},
        {"name": "other", "role": "viewer", "tenant": "other", "token": "other-viewer-tok-1"}]))
    client = app.test_client()
    acme = {"Authorization": "Bearer acme-viewer-token-1"}
    [run] = client.get("/api/v1/reports", headers=acme).get_json()["reports"]
    assert run["report"] == "sla-daily" and run["state"] == "delivered" and run["has_file"]
    assert run["period_end"].startswith(now.replace(hour=0).isoformat()[:19])
    got = client.get(f"/api/v1/reports/{run['id']}/file", headers=acme)
    assert got.status_code == 200 and b"data:image/png;base64," in got.data
    other = {"Authorization": "Bearer other-viewer-tok-1"}
    assert client.get("/api/v1/reports", headers=other).get_json()["reports"] == []
    assert client.get(f"/api/v1/reports/{run['id']}/file", headers=other).status_code == 404
    assert client.get("/api/v1/reports?state=sent", headers=acme).status_code == 400
    assert client.get("/api/v1/reports").status_code == 401
    app.extensions["ticketmon_receiver"].store.dispose()


def test_prometheus_down_is_retried(history, sqlite_url: str, smtp, tmp_path: Path) -> None:
    prom, end = history
    controller, recorder = smtp
    migrate.upgrade(sqlite_url)
    now = [datetime.fromtimestamp(end, UTC).replace(hour=1)]
    down = scheduler(sqlite_url, "http://127.0.0.1:9", controller.port, "w1",
                     lambda: now[0], tmp_path)
    assert [state for _, state in down.run_once()] == ["retry"]
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        row = conn.execute(sa.select(report_runs)).one()
    assert "cannot reach Prometheus" in row.detail and row.attempts == 1
    assert row.next_attempt_at == now[0] + timedelta(minutes=1)
    assert down.run_once() == []  # not due yet
    up = scheduler(sqlite_url, prom.url, controller.port, "w2", lambda: now[0], tmp_path)
    now[0] += timedelta(minutes=2)
    assert [state for _, state in up.run_once()] == ["delivered"]
    with engine.connect() as conn:
        row = conn.execute(sa.select(report_runs)).one()
    assert row.attempts == 2 and row.state == "delivered" and Path(row.file).exists()
    assert len(recorder.messages) == 1
    engine.dispose()
