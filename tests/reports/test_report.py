"""`ticketmon report` against a real Prometheus holding seven days of known history."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.report_series import DAYS

from ticketmon.cli import main
from ticketmon.core.config import ConfigError
from ticketmon.reports.prometheus import PromClient, PrometheusUnavailable
from ticketmon.reports.run import produce
from ticketmon.reports.spec import ReportSpec, load_report, parse_period
from ticketmon.rules.slo import load_spec


def _period(end: int, days: float = DAYS) -> tuple[datetime, datetime]:
    stop = datetime.fromtimestamp(end, UTC)
    return stop - timedelta(days=days), stop


@pytest.fixture(scope="module")
def week(history):
    prom, end = history
    start, stop = _period(end)
    return produce(ReportSpec(name="sla"), start, stop, prom.url, "html")


def test_week_figures_match_the_known_history(week) -> None:
    report = week.report
    slos = {f.slo.name: f for svc in report.services for f in svc.slos}
    checkout = slos["checkout-availability"]
    # 2 h at 5 % errors, the rest at 0.02 %: about 99.92 %, inside the 99.5 % objective
    assert 0.9985 < checkout.attainment < 0.9995 and checkout.met
    assert len(checkout.violations) == 1
    assert 6000 <= checkout.violation_seconds <= 3 * 3600
    payments = slos["payments-availability"]
    assert len(payments.violations) == 1 and payments.met is False
    assert 0 < checkout.budget_spent < 0.1
    by_service = {s.service: s for s in report.services}
    assert by_service["checkout"].p95_threshold == 0.5
    assert 0.3 < by_service["checkout"].p95 < 0.5
    business = {b.key: b for b in report.business}
    assert business["tickets_sold"].value == pytest.approx(12 * 60 * 24 * DAYS, rel=0.02)
    assert business["revenue"].detail["EUR"] == pytest.approx(
        12 * 60 * 24 * DAYS * 45, rel=0.02)
    assert business["payment_failure_ratio"].value == pytest.approx(0.25 / 12.75, rel=0.05)
    assert business["mint_success"].value == pytest.approx(11.8 / 12, rel=0.01)
    alerts = {a.alertname: a for a in report.alerts}
    assert alerts["ErrorBudgetBurnFast"].count == 2
    assert alerts["ServiceLatencyHigh"].firing_seconds == pytest.approx(3600, abs=600)
    assert not [n for n in report.notes if "no data" in n]


def test_html_is_one_file_with_embedded_charts(week) -> None:
    assert week.text.count("data:image/png;base64,") == 3
    assert "checkout-availability" in week.text and "MISSED" in week.text
    for png in week.charts.values():
        assert png.startswith(b"\x89PNG") and 5_000 < len(png) < 200_000


def test_period_without_data_says_so(history) -> None:
    prom, end = history
    start, stop = _period(end - 30 * 86400, days=1)  # a day long before the history
    produced = produce(ReportSpec(name="sla"), start, stop, prom.url, "json")
    data = json.loads(produced.text)
    attained = [s["attained"] for svc in data["services"] for s in svc["slos"]]
    assert attained and all(a is None for a in attained)
    assert any("no data in this period" in n for n in data["notes"])
    html = produce(ReportSpec(name="sla"), start, stop, prom.url, "html").text
    assert "100.000 %" not in html and "no data" in html


def test_cli_writes_markdown_with_chart_files(history, tmp_path: Path) -> None:
    prom, end = history
    start, stop = _period(end, days=1)
    out = tmp_path / "daily.md"
    rc = main(["report", "sla", "--period", f"{start.isoformat()}..{stop.isoformat()}",
               "--format", "md", "--out", str(out), "--prometheus", prom.url])
    assert rc == 0
    text = out.read_text()
    assert "| checkout | checkout-latency |" in text and "![burn](sla-burn.png)" in text
    assert (tmp_path / "sla-burn.png").stat().st_size > 1000


def test_prometheus_down_fails_with_a_clear_message(capsys, tmp_path: Path) -> None:
    rc = main(["report", "sla", "--period", "1d", "--out", str(tmp_path / "r.html"),
               "--prometheus", "http://127.0.0.1:9"])
    assert rc == 1
    assert "cannot reach Prometheus at http://127.0.0.1:9" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()
    with pytest.raises(PrometheusUnavailable):
        PromClient("http://127.0.0.1:9").ping()


@pytest.mark.parametrize(("text", "key"), [
    ("business: [tickets_sold, profit]\n", "business: unknown figure(s) profit"),
    ("services: [checkout, ticketing]\n", "services.1: unknown service 'ticketing'"),
    ("period: 2 days\n", "period: '2 days' is not a duration"),
    ("recipient: [a@b.c]\n", "recipient: Extra inputs are not permitted"),
    ("schedule: {every: monthly}\n", "schedule.every"),
    ("recipients: [ops]\n", "recipients: not an email address: ops"),
])
def test_bad_definitions_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_report(path, load_spec())
    assert key in str(err.value)


def test_repository_reports_are_valid(repo_root: Path) -> None:
    from ticketmon.reports.spec import load_all

    specs = load_all(repo_root / "reports")
    assert {s.name for s in specs} >= {"sla-daily", "sla-weekly"}
    assert all(s.schedule for s in specs)


def test_periods() -> None:
    now = datetime(2026, 5, 4, 12, tzinfo=UTC)
    assert parse_period("1d", now) == (now - timedelta(days=1), now)
    start, end = parse_period("2026-05-01..2026-05-02T06:00", now)
    assert (end - start) == timedelta(hours=30) and start.tzinfo is not None
    for bad in ("1y", "2026-05-02..2026-05-01", "yesterday..today"):
        with pytest.raises(ConfigError):
            parse_period(bad, now)
