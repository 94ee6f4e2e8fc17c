"""`ticketmon dashboards preview` renders the committed dashboards from a Prometheus."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ticketmon.cli import main
from ticketmon.dashboards.preview import render, substitute, variables
from ticketmon.reports.prometheus import PromClient


def board(repo_root: Path, uid: str) -> dict:
    return json.loads((repo_root / "dashboards" / f"{uid}.json").read_text())


def test_business_dashboard_renders_with_no_data_panels_marked(history, repo_root: Path,
                                                               tmp_path: Path) -> None:
    prom, end = history
    preview = render(PromClient(prom.url), board(repo_root, "ticketmon-business"), 6 * 3600,
                     float(end), tmp_path)
    data = preview.path.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 20_000
    assert preview.panels == 16 and not preview.failed
    # backfilled history has the counters but not the gauges or recorded series
    assert "Active users" in preview.empty and "Tickets sold (1h)" not in preview.empty


def test_template_variables_take_their_defaults(repo_root: Path) -> None:
    values = variables(board(repo_root, "ticketmon-services"), 60, 6 * 3600)
    assert values["service"] == ".*" and values["__rate_interval"] == "75s"
    assert substitute('up{service=~"$service"}[$__rate_interval]', values) == \
        'up{service=~".*"}[75s]'


def test_cli(history, tmp_path: Path, capsys) -> None:
    prom, _ = history
    assert main(["dashboards", "preview", "--since", "1h", "--out", str(tmp_path),
                 "--prometheus", prom.url, "ticketmon-slo"]) == 0
    assert (tmp_path / "ticketmon-slo.png").exists()
    assert "no data:" in capsys.readouterr().out
    assert main(["dashboards", "preview", "nope", "--prometheus", prom.url]) == 2
    started = time.monotonic()
    assert main(["dashboards", "preview", "--prometheus", "http://127.0.0.1:9",
                 "--out", str(tmp_path)]) == 1
    assert time.monotonic() - started < 10
