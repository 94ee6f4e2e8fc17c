"""A real `ticketmon stack up` for the stack tests: started in its own session,
stopped with SIGTERM, and every process it started checked gone."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from support.waiting import wait_for
from ticketmon.stack import state


def _lines_until_ready(proc: subprocess.Popen, timeout: float = 180) -> dict[str, str]:
    urls: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            pytest.fail(f"stack exited early ({proc.poll()}):\n{proc.stderr.read()[-4000:]}")
        name, _, rest = line.strip().partition(" ")
        if name == "ready:":
            return urls
        urls[name] = rest
    pytest.fail("stack not ready in time")


@contextlib.contextmanager
def running_stack(workdir: Path, interval: str = "1s") -> Iterator[tuple]:
    """(process, printed name -> url, the run's state document) of a ready stack."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ticketmon", "stack", "up", "--interval", interval,
         "--workdir", str(workdir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        urls = _lines_until_ready(proc)
        yield proc, urls, json.loads(state.state_path(workdir).read_text())
    finally:
        if proc.poll() is None:
            children = psutil.Process(proc.pid).children(recursive=True)
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
            _, alive = psutil.wait_procs(children, timeout=15)
            for p in alive:
                p.kill()
            assert not alive, f"left running after SIGTERM: {[p.cmdline() for p in alive]}"


def wait_targets_up(prometheus: str, timeout: float = 90) -> dict[str, str]:
    """Every active target's health once all are up; else fail naming the ones that are not."""
    seen: dict[str, str] = {}

    def targets_up():
        active = requests.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]
        seen.clear()
        seen.update({t["scrapeUrl"]: f'{t["health"]} {t["lastError"]}'.strip()
                     for t in active["activeTargets"]})
        health = {t["scrapeUrl"]: t["health"] for t in active["activeTargets"]}
        return health if health and all(h == "up" for h in health.values()) else None

    try:
        return wait_for(targets_up, timeout, "every scrape target up", every=1)
    except AssertionError as exc:
        down = {url: h for url, h in seen.items() if not h.startswith("up")}
        raise AssertionError(f"{exc}; not up: {down or 'no targets at all'}") from None
