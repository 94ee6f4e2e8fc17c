"""`ticketmon rules backtest` replays alerting rules over real (backfilled) history."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from ticketmon.cli import main
from ticketmon.rules.backtest import AlertRule, parse_rules, replay

RULES = """
groups:
  - name: t
    rules:
      - alert: CheckoutErrors
        expr: |
          sum(rate(http_requests_total{{service="checkout",code="500"}}[5m]))
            / sum(rate(http_requests_total{{service="checkout"}}[5m])) > {threshold}
        for: 10m
        keep_firing_for: 15m
        labels: {{severity: critical}}
      - alert: AnyErrors
        expr: |
          sum by (service) (rate(http_requests_total{{code="500"}}[5m]))
            / sum by (service) (rate(http_requests_total[5m])) > 0.01
        labels: {{severity: warning}}
"""


def rule(for_s: float = 0, keep: float = 0) -> AlertRule:
    return AlertRule("A", "x", for_s, keep, (), "t")


def test_replay_honours_for_and_keep_firing_for() -> None:
    active = np.arange(600, 1800 + 1, 60.0)  # active from t=600 to t=1800
    [f] = replay(active, rule(for_s=300), {}, 60, until=4000)
    assert (f.start, f.end) == (900, 1860)  # fires after 5 min, resolves at the next step
    [f] = replay(active, rule(keep=600), {}, 60, until=4000)
    assert (f.start, f.end) == (600, 2460)  # keeps firing 10 min after the last active
    assert replay(active, rule(for_s=3600), {}, 60, until=4000) == []
    [f] = replay(active, rule(), {}, 60, until=1800)
    assert f.end is None  # still firing at the end of the range


def test_parse_rules_reads_durations() -> None:
    rules = parse_rules(RULES.format(threshold=0.01), "t.yml")
    assert [(r.name, r.for_seconds, r.keep_seconds, r.pages) for r in rules] == [
        ("CheckoutErrors", 600, 900, True), ("AnyErrors", 0, 0, False)]


def test_backtest_finds_the_known_incidents(history, tmp_path: Path, capsys) -> None:
    prom, _ = history
    path = tmp_path / "t.yml"
    path.write_text(RULES.format(threshold=0.01))
    assert main(["rules", "backtest", "--since", "7d", "--prometheus", prom.url,
                 str(path)]) == 0
    out = capsys.readouterr().out
    assert "**1 page(s)**" in out and "3 firing(s) in all" in out
    assert "| AnyErrors | warning | 2 | 2 |" in out
    # 2 h of errors, fires 10 min in, keeps firing 15 min after: 2h05m
    assert "| CheckoutErrors | critical | 1 | 1 | 2h0" in out


def test_diff_against_a_git_ref(history, tmp_path: Path, capsys) -> None:
    prom, _ = history
    repo = tmp_path / "repo"
    (repo / "rules").mkdir(parents=True)
    path = repo / "rules" / "t.yml"
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    path.write_text(RULES.format(threshold=0.5))  # the old rule never fires
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "old"], check=True)
    path.write_text(RULES.format(threshold=0.01))
    assert main(["rules", "backtest", "--prometheus", prom.url, "--diff", "HEAD",
                 "--repo", str(repo), str(path)]) == 0
    out = capsys.readouterr().out
    assert "would have paged 1 time(s) over 168h00m instead of 0" in out
    assert "| CheckoutErrors | critical | 0 | 1 |" in out
    assert "AnyErrors" not in out.split("| alert |")[1]  # unchanged rules are not listed


def test_bad_input(tmp_path: Path, capsys) -> None:
    assert main(["rules", "backtest", "--prometheus", "http://127.0.0.1:9",
                 str(tmp_path / "missing.yml")]) == 2
    path = tmp_path / "t.yml"
    path.write_text(RULES.format(threshold=0.01))
    assert main(["rules", "backtest", "--prometheus", "http://127.0.0.1:9", str(path)]) == 1
    assert "cannot reach Prometheus" in capsys.readouterr().err
    assert main(["rules", "backtest", "--since", "soon", str(path)]) == 2


@pytest.mark.parametrize("expr", ["sum(rate(", "up[5m"])
def test_a_broken_expression_is_reported_not_fatal(history, tmp_path: Path, capsys,
                                                   expr: str) -> None:
    prom, _ = history
    path = tmp_path / "t.yml"
    path.write_text(f"groups:\n- name: t\n  rules:\n  - alert: Broken\n    expr: '{expr}'\n")
    assert main(["rules", "backtest", "--prometheus", prom.url, str(path)]) == 0
    assert "**Broken** (" in capsys.readouterr().out
