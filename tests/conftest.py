"""Shared fixtures: real PostgreSQL, Prometheus and Alertmanager on loopback.

Servers start on free 127.0.0.1 ports with temporary storage and stop when the
fixture's scope ends. Other test packages build on these instead of starting their own.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ticketmon.servers.alertmanager import Alertmanager
from ticketmon.servers.postgres import PostgresCluster
from ticketmon.servers.process import free_port
from ticketmon.servers.prometheus import Prometheus

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
PAYLOADS = SHARED / "payloads"

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


@pytest.fixture
def start_prometheus(workdir: Path) -> Iterator[Callable[..., Prometheus]]:
    """Factory: start a real Prometheus from config text (and rule files written beside it)."""
    started: list[Prometheus] = []

    def start(config: str, rules: dict[str, str] | None = None) -> Prometheus:
        d = workdir / f"prom{len(started)}"
        d.mkdir()
        for name, text in (rules or {}).items():
            (d / name).write_text(text)
        cfg = d / "prometheus.yml"
        cfg.write_text(config)
        prom = Prometheus(cfg, d)
        started.append(prom)
        return prom

    yield start
    for prom in started:
        prom.stop()


@pytest.fixture
def start_alertmanager(workdir: Path) -> Iterator[Callable[[str], Alertmanager]]:
    """Factory: start a real single-node Alertmanager from config text."""
    started: list[Alertmanager] = []

    def start(config: str) -> Alertmanager:
        d = workdir / f"am{len(started)}"
        d.mkdir()
        cfg = d / "alertmanager.yml"
        cfg.write_text(config)
        am = Alertmanager(cfg, d)
        started.append(am)
        return am

    yield start
    for am in started:
        am.stop()


@pytest.fixture
def port() -> int:
    return free_port()
