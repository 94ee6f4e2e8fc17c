"""Shared fixtures: real PostgreSQL, Prometheus and Alertmanager on loopback.

Servers start on free 127.0.0.1 ports with temporary storage and stop when the
fixture's scope ends. Other test packages build on these instead of starting their own.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ticketmon.servers.alertmanager import Alertmanager
from ticketmon.servers.postgres import PostgresCluster
from ticketmon.servers.process import LoopbackServer, free_port
from ticketmon.servers.prometheus import Prometheus

REPO = Path(__file__).resolve().parents[1]
# the team's reference folder sits beside a developer's clone; a user's clone has none,
# so a test that reads it would pass here and fail for them (tests/test_self_contained.py)
_BESIDE = os.path.join(os.path.dirname(REPO), "shared", "")


def _refuse_reads_beside_the_clone(event: str, args: tuple) -> None:
    if event in ("open", "os.listdir", "os.scandir") and args:
        path = args[0]
        if isinstance(path, str | os.PathLike):
            path = os.path.abspath(os.fspath(path))
            if isinstance(path, str) and (path + os.sep).startswith(_BESIDE):
                raise PermissionError(f"{path} is outside the repository: copy what the "
                                      "tests need into tests/fixtures/")


sys.addaudithook(_refuse_reads_beside_the_clone)

_db_counter = itertools.count()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One throw-away cluster per test session (initdb + pg_ctl, not the system one)."""
    cluster = PostgresCluster()
    yield cluster
    cluster.stop()


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> str:
    """A fresh, empty PostgreSQL database for one test."""
    return postgres_cluster.create_database(f"t{next(_db_counter)}")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ticketmon.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run a store test on both backends: the embedded default and production's."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ticketmon.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ticketmon-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _start_servers(workdir: Path, server: type[LoopbackServer], config_name: str):
    """A factory starting `server` from config text (plus files written beside it)."""
    started: list[LoopbackServer] = []

    def start(config: str, files: dict[str, str] | None = None) -> LoopbackServer:
        d = workdir / f"{server.name}{len(started)}"
        d.mkdir()
        for name, text in (files or {}).items():
            (d / name).write_text(text)
        (d / config_name).write_text(config)
        started.append(server(d / config_name, d))
        return started[-1]

    return start, started


@pytest.fixture
def start_prometheus(workdir: Path) -> Iterator[Callable[..., Prometheus]]:
    """Factory: a real Prometheus from config text, with rule files written beside it."""
    start, started = _start_servers(workdir, Prometheus, "prometheus.yml")
    yield lambda config, rules=None: start(config, rules)
    for server in started:
        server.stop()


@pytest.fixture
def start_alertmanager(workdir: Path) -> Iterator[Callable[[str], Alertmanager]]:
    """Factory: a real single-node Alertmanager from config text."""
    start, started = _start_servers(workdir, Alertmanager, "alertmanager.yml")
    yield start
    for server in started:
        server.stop()


@pytest.fixture(autouse=True)
def _no_stale_log_handler() -> Iterator[None]:
    """An in-process `ticketmon …` call (ticketmon.core.logs.setup) points the root logger
    at this test's captured stderr, which pytest closes afterwards; a later record from
    a server thread (aiosmtpd's) then printed "Logging error ... I/O operation on closed
    file". Drop such handlers when the test ends; pytest's own are subclasses."""
    root = logging.getLogger()
    before = set(root.handlers)
    yield
    for handler in root.handlers[:]:
        if type(handler) is logging.StreamHandler and handler not in before:
            root.removeHandler(handler)


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook turns the marks into groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`./dev test`: `-n 2 --dist loadgroup`) each module stays on one
    worker, so its module fixtures (a live stack, a cluster) start once; the modules
    that run the whole main job name one group, so two stacks never race for ports."""
    for item in items:
        if not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Stop at once if xdist lost the groups: a split module races its twin for ports and
    fails far from the cause (it did with pytest 9.2, pytest-dev/pytest-xdist#1386)."""
    if getattr(session.config.option, "loadgroup", False):  # set on xdist workers only
        ungrouped = [item.nodeid for item in session.items if "@" not in item.nodeid]
        if ungrouped:
            raise pytest.UsageError(
                f"--dist loadgroup is not grouping ({len(ungrouped)} tests without a group, "
                f"e.g. {ungrouped[0]}); check the pytest and pytest-xdist versions")
