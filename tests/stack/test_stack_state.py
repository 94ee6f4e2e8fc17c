"""The main job's state without starting a stack: private files, one state per run,
and the scenario command finding the right stack (or refusing to guess)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ticketmon.stack import deploy_config, scenario, state


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def runtime(tmp_path) -> Path:
    path = tmp_path / "runtime"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def other_pid():
    """A live process of ours that is not this one: a second stack's pid."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def fake_stack(tmp_path: Path, name: str, pid: int, runtime: Path) -> Path:
    workdir = state.private_dir(tmp_path / name)
    doc = {"workdir": str(workdir), "pid": pid, "admin_token": f"tm_admin_{name}_0123456789",
           "prometheus": "http://127.0.0.1:1", "receiver_url": "http://127.0.0.1:2",
           "notification-sink": "http://127.0.0.1:3/",
           "platform_knobs": str(workdir / "platform-knobs.json")}
    state.register(workdir, doc, pid=pid, runtime=runtime)
    return workdir


def test_files_are_created_private_even_over_a_wider_one(tmp_path):
    old = os.umask(0o022)
    try:
        wide = tmp_path / "receiver.yaml"
        wide.write_text("old")
        os.chmod(wide, 0o644)
        deploy_config.write_yaml({"api_tokens": [{"token": "tm_x"}]}, wide)
        assert mode(wide) == 0o600 and "tm_x" in wide.read_text()
        assert mode(state.write_private(tmp_path / "webhook-token", "t")) == 0o600
    finally:
        os.umask(old)


def test_symlinks_are_not_followed(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    link = tmp_path / "link"
    link.symlink_to(target)
    state.write_private(link, "secret")  # the link is replaced, its target untouched
    assert target.read_text() == "keep" and not link.is_symlink() and mode(link) == 0o600


def test_workdir_is_private(tmp_path):
    created = state.private_dir(tmp_path / "new")
    assert mode(created) == 0o700
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o755)
    os.chmod(existing, 0o755)
    assert mode(state.private_dir(existing)) == 0o700


def test_runtime_dir_is_private_and_per_user(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    path = state.runtime_dir()
    assert path == tmp_path / "ticketmon" and mode(path) == 0o700
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert state.runtime_dir().name == f"ticketmon-{os.getuid()}"


def test_two_stacks_keep_their_own_state(tmp_path, runtime, other_pid):
    a = fake_stack(tmp_path, "a", os.getpid(), runtime)
    b = fake_stack(tmp_path, "b", other_pid, runtime)
    assert mode(state.state_path(a)) == mode(state.state_path(b)) == 0o600
    assert {r.workdir for r in state.running(runtime)} == {a, b}
    run_a, doc_a = state.find(a, runtime)
    run_b, doc_b = state.find(b, runtime)
    assert doc_a["admin_token"] != doc_b["admin_token"]
    assert (run_a.pid, run_b.pid) == (os.getpid(), other_pid)
    # the runtime entries name the stacks but hold no secret
    for entry in runtime.iterdir():
        assert "tm_" not in entry.read_text() and mode(entry) == 0o600


def test_scenario_refuses_to_guess_between_two_stacks(tmp_path, runtime, other_pid):
    a = fake_stack(tmp_path, "a", os.getpid(), runtime)
    b = fake_stack(tmp_path, "b", other_pid, runtime)
    with pytest.raises(scenario.ScenarioError) as refused:
        scenario.run("sales-stall", None, runtime=runtime)
    message = str(refused.value)
    assert str(a) in message and str(b) in message and "--workdir" in message
    said = scenario.run("sales-stall", None, workdir=b, runtime=runtime)
    assert said.startswith(f"stack: {b} (pid {other_pid})")
    assert json.loads((b / "platform-knobs.json").read_text()) == {"orders_per_second": 0.0}
    assert not (a / "platform-knobs.json").exists()


def test_the_only_running_stack_is_found_and_the_token_is_not_printed(tmp_path, runtime):
    a = fake_stack(tmp_path, "a", os.getpid(), runtime)
    said = scenario.run("sales-stall", None, runtime=runtime)
    assert f"stack: {a}" in said
    assert "tm_admin_a" not in said and str(state.state_path(a)) in said


def test_the_watch_line_names_an_alerts_page_this_prometheus_serves(tmp_path, runtime,
                                                                     start_prometheus):
    """Debian's Prometheus (the one installed here) answers 404 on /alerts."""
    import requests

    prom = start_prometheus("global: {scrape_interval: 15s}\n")
    a = fake_stack(tmp_path, "a", os.getpid(), runtime)
    doc = json.loads(state.state_path(a).read_text())
    state.write_private(state.state_path(a), json.dumps({**doc, "prometheus": prom.url}))
    said = scenario.run("sales-stall", None, runtime=runtime)
    [watch] = [line for line in said.splitlines() if line.startswith("watch: ")]
    page = watch.removeprefix("watch: ").split(",")[0]
    assert page.startswith(prom.url) and page.endswith("alerts")
    assert requests.get(page, timeout=5).status_code == 200
    assert "tm_admin_a" not in said


def test_dead_stacks_are_forgotten(tmp_path, runtime):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    fake_stack(tmp_path, "dead", proc.pid, runtime)
    live = fake_stack(tmp_path, "live", os.getpid(), runtime)
    assert [r.workdir for r in state.running(runtime)] == [live]
    assert not (runtime / f"{proc.pid}.json").exists()
    state.unregister(live, pid=os.getpid(), runtime=runtime)
    assert not state.state_path(live).exists() and list(runtime.iterdir()) == []
    with pytest.raises(state.StackNotFound, match="no running stack"):
        state.find(None, runtime)


def test_token_command_prints_the_token_of_the_chosen_stack(tmp_path, runtime, capsys):
    from ticketmon import cli

    a = fake_stack(tmp_path, "a", os.getpid(), runtime)
    assert cli.main(["stack", "token", "--workdir", str(a)]) == 0
    assert capsys.readouterr().out.strip() == "tm_admin_a_0123456789"
