"""`ticketmon stack up`: the whole stack on loopback, nothing to configure.

Starts, in dependency order, the platform simulator, the receiver, the exporters,
then real Alertmanager and Prometheus fed the repository's own deploy/ config and
rules/, prints `name url` per component, and stops everything on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ticketmon.servers.alertmanager import Alertmanager
from ticketmon.servers.process import ManagedProcess, free_port
from ticketmon.servers.prometheus import Prometheus
from ticketmon.stack import deploy_config
from ticketmon.stack.supervisor import Supervisor

log = logging.getLogger("ticketmon.stack")

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
STATE_FILE = "stack.json"


def pick_port(preferred: int) -> int:
    """The component's default port when free, so URLs are familiar; else any free one."""
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


@dataclass
class Stack:
    workdir: Path
    supervisor: Supervisor
    interval: str
    addresses: dict[str, str] = field(default_factory=dict)  # compose host -> 127.0.0.1:port
    state: dict = field(default_factory=dict)

    def ticketmon(self, name: str, args: list[str], host: str, port: int, ready_path: str,
                  env: dict[str, str] | None = None, url_path: str = "") -> str:
        """Start one `ticketmon …` process, wait until it answers, register it."""
        url = f"http://127.0.0.1:{port}"
        proc = ManagedProcess(name, [sys.executable, "-m", "ticketmon", *args],
                              self.workdir / f"{name}.log", env=env, cwd=self.workdir)
        try:
            proc.wait_http(url + ready_path, timeout=60)
        except Exception:
            proc.stop()
            raise
        self.supervisor.add_process(proc, url + url_path)
        self.addresses[host] = f"127.0.0.1:{port}"
        self.state[name] = url
        return url

    def write_state(self) -> None:
        (self.workdir / STATE_FILE).write_text(json.dumps(self.state, indent=2))


def start_prometheus_and_alertmanager(stack: Stack) -> None:
    token_file = stack.workdir / "webhook-token"
    am_cfg = deploy_config.alertmanager_config(
        DEPLOY / "alertmanager" / "alertmanager.yml", stack.addresses, token_file
    )
    am = Alertmanager(deploy_config.write_yaml(am_cfg, stack.workdir / "alertmanager.yml"),
                      stack.workdir, port=pick_port(9093))
    stack.supervisor.add("alertmanager", am.url, am.stop, am.process.alive, am.process.log_path)
    stack.addresses["alertmanager"] = f"127.0.0.1:{am.port}"
    stack.state["alertmanager"] = am.url

    prom_port = pick_port(9090)
    stack.addresses["prometheus"] = f"127.0.0.1:{prom_port}"
    prom_cfg = deploy_config.prometheus_config(
        DEPLOY / "prometheus" / "prometheus.yml", stack.addresses, stack.interval
    )
    prom = Prometheus(deploy_config.write_yaml(prom_cfg, stack.workdir / "prometheus.yml"),
                      stack.workdir, port=prom_port)
    stack.supervisor.add("prometheus", prom.url, prom.stop, prom.process.alive,
                         prom.process.log_path)
    stack.state["prometheus"] = prom.url


def run(workdir: Path | None = None, keep: bool = False, interval: str = "5s") -> int:
    own_dir = workdir is None
    workdir = Path(workdir or tempfile.mkdtemp(prefix="ticketmon-stack-"))
    workdir.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor()
    stack = Stack(workdir, supervisor, interval)
    webhook_token = secrets.token_urlsafe(24)
    (workdir / "webhook-token").write_text(webhook_token)
    print(f"workdir {workdir}", flush=True)
    try:
        start_prometheus_and_alertmanager(stack)
        stack.write_state()
        print("ready: Ctrl-C stops everything", flush=True)
        supervisor.wait()
    finally:
        supervisor.stop_all()
        if own_dir and not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0
