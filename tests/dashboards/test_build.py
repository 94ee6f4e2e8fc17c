"""Dashboards build deterministically from jsonnet and the committed JSON is that build."""

import shutil

import pytest

from ticketmon.cli import main
from ticketmon.dashboards import JSONNET_DIR, build


def test_committed_dashboards_equal_a_fresh_build(capsys):
    assert main(["dashboards", "build", "--check"]) == 0, capsys.readouterr().err
    assert "checked 9 dashboards" in capsys.readouterr().out


def test_build_is_deterministic():
    first = {k: build.render(v) for k, v in build.evaluate().items()}
    second = {k: build.render(v) for k, v in build.evaluate().items()}
    assert first == second


def test_mixin_layout(tmp_path):
    boards = build.evaluate()
    assert sorted(boards) == [f"ticketmon-{n}.json" for n in sorted(
        ["overview", "business", "blockchain", "services", "fraud", "security", "alerts", "slo",
         "self"])]
    for name, board in boards.items():
        assert board["uid"] == name.removesuffix(".json")  # stable uid from the file name


def test_check_reports_stale_missing_and_foreign_files(tmp_path):
    out = tmp_path / "dashboards"
    boards = build.evaluate()
    assert build.build(out_dir=out, boards=boards) == []
    assert build.build(check=True, out_dir=out, boards=boards) == []
    board = out / "ticketmon-fraud.json"
    board.write_text(board.read_text().replace('ticketmon / Fraud', 'ticketmon / Fraud!', 1))
    (out / "ticketmon-slo.json").unlink()
    (out / "hand-made.json").write_text("{}")
    problems = build.build(check=True, out_dir=out, boards=boards)
    assert any(p.startswith("ticketmon-fraud.json differs") for p in problems)
    assert any(p.startswith("ticketmon-slo.json is missing") for p in problems)
    assert any(p.startswith("hand-made.json is not built from jsonnet/") for p in problems)
    assert build.build(out_dir=out, boards=boards) == []  # a build repairs all three
    assert build.build(check=True, out_dir=out, boards=boards) == []
    assert not (out / "hand-made.json").exists()


def test_jsonnet_error_is_reported(tmp_path):
    src = tmp_path / "jsonnet"
    shutil.copytree(JSONNET_DIR, src)
    # the mixin imports ../rules/, so the copy needs the rules beside it
    shutil.copytree(JSONNET_DIR.parent / "rules", tmp_path / "rules")
    (src / "dashboards" / "fraud.libsonnet").write_text("function(c) { panels: [ }")
    with pytest.raises(build.BuildError) as err:
        build.evaluate(src)
    assert "fraud.libsonnet" in str(err.value)


def test_mixin_carries_every_rule_file():
    import json

    import _jsonnet
    import yaml

    from ticketmon.rules import promtool

    groups = json.loads(_jsonnet.evaluate_snippet(
        "alerts", '[g.name for g in (import "mixin.libsonnet").prometheusAlerts.groups]',
        jpathdir=[str(JSONNET_DIR)]))
    expected = [g["name"] for f in promtool.rule_files()
                for g in yaml.safe_load(f.read_text())["groups"]]
    assert sorted(groups) == sorted(expected)
