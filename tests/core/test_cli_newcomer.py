"""Every `ticketmon` command as a newcomer runs it: from an empty directory, without --config.

Each one either works on its documented defaults or stops before touching anything, with
one line on stderr that says what to pass: no file left behind, no traceback.
"""

from __future__ import annotations

import os
import random
import re
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from ticketmon.servers.process import free_port
from ticketmon.simulator.platform_db import seed

CHECK_LINE = re.compile(r"^[a-z][a-z0-9_-]*: (ok|FAILED: \S.*)$")


def ticketmon(args: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETMON_")}
    return subprocess.run([sys.executable, "-m", "ticketmon", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def assert_stops_with_one_line(done: subprocess.CompletedProcess, says: str) -> None:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert len(lines) == 1 and lines[0].startswith("ticketmon: "), done.stderr
    assert says in lines[0]


@pytest.fixture
def empty(tmp_path) -> Path:
    cwd = tmp_path / "empty"
    cwd.mkdir()
    return cwd


@pytest.mark.parametrize("args,says", [
    (["receiver", "token", "create", "--name", "ci", "--role", "admin"], "--config FILE"),
    (["receiver", "token", "rotate", "1"], "ticketmon receiver db upgrade"),
    (["receiver", "prune", "--older-than", "90d"], "database_url"),
    (["receiver", "serve"], "TICKETMON_WEBHOOK_TOKEN"),
    (["receiver", "worker"], "channels"),
    (["receiver", "anomaly", "--once"], "--config FILE"),
    (["oncall", "who"], "--config FILE"),
    (["oncall", "shifts", "--schedule", "ops-primary"], "--config FILE"),
    (["exporter", "business"], "platform_database_url"),
    (["exporter", "business", "--check"], "platform_database_url"),
    (["exporter", "system", "--check"], "services:"),
    (["exporter", "fraud", "--check"], "auth"),
])
def test_without_config_a_command_stops_before_touching_anything(empty, args, says):
    done = ticketmon(args, empty)
    assert_stops_with_one_line(done, says)
    assert list(empty.iterdir()) == []


def test_the_default_database_works_once_db_upgrade_made_it(empty):
    """The README's order: `db upgrade`, then `token create`, in the same directory."""
    (empty / "ticketmon-receiver.db").touch()  # an empty file is no schema
    done = ticketmon(["receiver", "token", "create", "--name", "ci", "--role", "admin"], empty)
    assert_stops_with_one_line(done, "has schema none")
    assert ticketmon(["receiver", "db", "upgrade"], empty).returncode == 0
    done = ticketmon(["receiver", "token", "create", "--name", "ci", "--role", "admin"], empty)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("tm_")
    with sqlite3.connect(empty / "ticketmon-receiver.db") as conn:
        assert conn.execute("SELECT name FROM api_tokens").fetchall() == [("ci",)]


@pytest.fixture
def taken_port():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize("component,config", [
    (["exporter", "system"],
     "http: {{port: {port}}}\nservices: [{{name: a, url: 'http://127.0.0.1:9/health'}}]\n"),
    (["exporter", "blockchain"], "http: {{port: {port}}}\n"),
    (["exporter", "fraud"], "port: {port}\nauth: {{disabled: true}}\n"),
    (["simulator", "services"],
     "control_port: {port}\nservices: [{{name: a, port: 0, routes: [/a]}}]\n"),
    (["simulator", "solana-rpc"], "port: {port}\n"),
    (["receiver", "serve"], "port: {port}\nwebhook_token: webhook-token-0123456789\n"),
])
def test_a_port_already_in_use_is_one_line_not_a_traceback(tmp_path, empty, taken_port,
                                                           component, config):
    cfg = tmp_path / "settings.yaml"
    cfg.write_text(config.format(port=taken_port))
    done = ticketmon([*component, "--config", str(cfg)], empty)
    assert_stops_with_one_line(done, f"127.0.0.1:{taken_port} is already in use")
    assert list(empty.iterdir()) == []


def test_every_exporter_check_prints_one_line_per_collector(tmp_path, empty):
    """Same shape everywhere: `name: ok` or `name: FAILED: reason`, exit 1 on a failure."""
    platform = tmp_path / "platform.db"
    seed(create_engine(f"sqlite:///{platform}"), history_hours=1, orders_per_hour=20,
         rng=random.Random(3))
    closed = free_port()
    broken = tmp_path / "broken.yaml"  # its error is several lines of SQL: shown on one
    broken.write_text("queries: [{name: broken_sql, metric: ticketmon_broken, type: gauge, "
                      "help: Missing table., sql: 'SELECT count(*) AS value FROM nowhere'}]\n")
    configs = {
        "business": (f"platform_database_url: sqlite:///{platform}\n"
                     f"query_files: ['{broken}']\n", 1),
        "system": (f"services: [{{name: a, url: 'http://127.0.0.1:{closed}/health'}}]\n", 0),
        "blockchain": (f"endpoints: [{{name: primary, url: 'http://127.0.0.1:{closed}/'}}]\n",
                       0),
        "fraud": (f"auth: {{disabled: true}}\ndatabase_url: sqlite:///{tmp_path / 'f.db'}\n", 0),
    }
    for exporter, (text, code) in configs.items():
        cfg = tmp_path / f"{exporter}.yaml"
        cfg.write_text(text)
        done = ticketmon(["exporter", exporter, "--config", str(cfg), "--check"], empty)
        lines = done.stdout.splitlines()
        assert done.returncode == code, (exporter, done.stdout, done.stderr)
        assert lines and all(CHECK_LINE.match(line) for line in lines), (exporter, lines)
        assert sum("FAILED" in line for line in lines) == code, (exporter, lines)
        assert "Traceback" not in done.stderr
        if exporter == "business":
            assert "broken_sql: FAILED: OperationalError" in done.stdout
            assert "tickets_sold: ok" in lines
    assert list(empty.iterdir()) == []
