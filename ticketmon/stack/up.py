"""`ticketmon stack up`: the whole stack on loopback, nothing to configure.

Starts, in dependency order, the platform simulator (a SQLite ticketing database with
live sales, simulated services, a Solana JSON-RPC simulator, checkout traffic, the
nightly batch jobs on a one-minute schedule pushing to a real Pushgateway), the
receiver (gunicorn), its stream server, its worker and the anomaly job, the four
exporters, node_exporter,
then real Alertmanager and Prometheus fed the repository's own deploy/ config and rules/.
It prints `name url` per component and stops everything on Ctrl-C or SIGTERM.

Least privilege: the work directory is 0700; the run's state (with its admin token)
and every generated file are created 0600 inside it (ticketmon/stack/state.py), and the
scenario command finds the stack through a per-user list of running stacks, so two
stacks on one machine stay apart. The components' /metrics are open: everything
listens on 127.0.0.1 only, and the log says so at start.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ticketmon.core.durations import parse_duration
from ticketmon.servers.alertmanager import Alertmanager
from ticketmon.servers.process import ManagedProcess, ServerError, find_binary, free_port
from ticketmon.servers.prometheus import Prometheus
from ticketmon.servers.pushgateway import Pushgateway
from ticketmon.stack import demo_profile, deploy_config, state
from ticketmon.stack.fraud_keys import fraud_credentials
from ticketmon.stack.oncall_demo import worker_oncall
from ticketmon.stack.scenario import FEE_PAYER, FEE_PAYER_LAMPORTS
from ticketmon.stack.supervisor import Supervisor

log = logging.getLogger("ticketmon.stack")

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SERVICES = {"checkout": 10201, "payments": 10202, "inventory": 10203, "marketplace": 10204}
# Sales of the demo platform: fast enough that every event on sale sells within the demo
# profile's 1-minute window (deploy/demo/profile.yaml), so no quiet event looks stalled.
PLATFORM_KNOBS = {"orders_per_second": 10.0, "payment_failure_ratio": 0.05}


def pick_port(preferred: int, taken: set[int]) -> int:
    """The component's default port when free, so URLs are familiar; else any free one."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            port = preferred
        except OSError:
            port = free_port()
    if port in taken:
        port = free_port()
    taken.add(port)
    return port


@dataclass
class Stack:
    workdir: Path
    supervisor: Supervisor
    interval: str
    addresses: dict[str, str] = field(default_factory=dict)  # compose host -> 127.0.0.1:port
    state: dict = field(default_factory=dict)
    ports: set[int] = field(default_factory=set)
    secrets: dict[str, str] = field(default_factory=dict)

    @property
    def collect_seconds(self) -> float:
        """Exporters collect as often as Prometheus scrapes: a slower collection only
        adds to the time from a break to its page."""
        return parse_duration(self.interval)

    def port(self, preferred: int) -> int:
        return pick_port(preferred, self.ports)

    def write_config(self, name: str, data: dict) -> Path:
        return deploy_config.write_yaml(data, self.workdir / f"{name}.yaml")

    def spawn(self, name: str, argv: list[str], ready_url: str | None = None,
              ready_log: str | None = None, env: dict[str, str] | None = None,
              url: str | None = None, host: str | None = None) -> ManagedProcess:
        """Start a process, wait until it answers (HTTP or a log line), register it."""
        proc = ManagedProcess(name, argv, self.workdir / f"{name}.log", env=env, cwd=self.workdir)
        try:
            if ready_url:
                proc.wait_http(ready_url, timeout=90)
            elif ready_log:
                proc.wait_until(lambda: ready_log in proc.log_tail(200), timeout=90)
        except Exception:
            proc.stop()
            raise
        shown = url or ready_url or ""
        self.supervisor.add_process(proc, shown)
        self.state[name] = shown
        if host and ready_url:
            self.addresses[host] = ready_url.split("/")[2]
        return proc

    def ticketmon(self, name: str, args: list[str], **kw) -> ManagedProcess:
        return self.spawn(name, [sys.executable, "-m", "ticketmon", *args], **kw)

    def run_once(self, args: list[str], env: dict[str, str]) -> str:
        result = subprocess.run([sys.executable, "-m", "ticketmon", *args], capture_output=True,
                                text=True, env={**os.environ, **env}, cwd=self.workdir)
        if result.returncode != 0:
            raise ServerError(f"ticketmon {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout


def start_simulators(stack: Stack) -> None:
    sink, sink_tls = stack.port(10196), stack.port(10198)
    stack.spawn("notification-sink",
                [sys.executable, "-m", "ticketmon.simulator.notification_sink", "--port",
                 str(sink), "--tls-port", str(sink_tls), "--tls-dir",
                 str(stack.workdir / "sink-tls")],
                ready_url=f"http://127.0.0.1:{sink}/healthz", url=f"http://127.0.0.1:{sink}/")
    stack.addresses["sink"] = f"127.0.0.1:{sink}"
    stack.addresses["sink-tls"] = f"127.0.0.1:{sink_tls}"

    control = stack.port(10200)
    services = []
    for name, preferred in SERVICES.items():
        services.append({"name": name, "port": stack.port(preferred)})
    default_specs = {s["name"]: s for s in _default_service_specs()}
    cfg = stack.write_config("services", {
        "control_port": control,
        "auth_window_seconds": 60,  # the demo's lockout window: attacks clear within a minute
        "services": [{**default_specs[s["name"]], **s} for s in services],
    })
    stack.ticketmon("services", ["simulator", "services", "--config", str(cfg)],
                    ready_url=f"http://127.0.0.1:{control}/control")
    stack.state["services_control"] = f"http://127.0.0.1:{control}"
    for s in services:
        stack.addresses[s["name"]] = f"127.0.0.1:{s['port']}"

    rpc = stack.port(10197)
    cfg = stack.write_config("solana-rpc", {
        "port": rpc,
        "balances": {FEE_PAYER: FEE_PAYER_LAMPORTS,
                     "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM": 950_000_000_000},
        "programs": {"TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA": {}},
    })
    stack.ticketmon("solana-rpc", ["simulator", "solana-rpc", "--config", str(cfg)],
                    ready_url=f"http://127.0.0.1:{rpc}/healthz")

    knobs = stack.workdir / "platform-knobs.json"
    state.write_private(knobs, json.dumps(PLATFORM_KNOBS))
    stack.state["platform_defaults"] = PLATFORM_KNOBS
    cfg = stack.write_config("platform-db", {
        "platform_database_url": f"sqlite:///{stack.workdir / 'platform.db'}",
        "control_file": str(knobs),
    })
    stack.ticketmon("platform-db", ["simulator", "platform-db", "--config", str(cfg)],
                    ready_log="platform database ready",
                    url=f"sqlite:///{stack.workdir / 'platform.db'}")


def start_batch_jobs(stack: Stack) -> None:
    """A real Pushgateway, and the nightly jobs pushing to it every minute (demo schedule)."""
    gateway = Pushgateway(stack.workdir, port=stack.port(9091))
    stack.supervisor.add("pushgateway", gateway.url, gateway.stop, gateway.process.alive,
                         gateway.process.log_path)
    stack.addresses["pushgateway"] = f"127.0.0.1:{gateway.port}"
    stack.state["pushgateway"] = gateway.url
    knobs = stack.workdir / "batch-knobs.json"
    cfg = stack.write_config("batch-jobs", {"pushgateway_url": gateway.url,
                                            "control_file": str(knobs)})
    stack.ticketmon("batch-jobs", ["simulator", "batch-jobs", "--config", str(cfg)],
                    ready_log="batch jobs running", url=f"-> {gateway.url}")
    stack.state["batch_knobs"] = str(knobs)


def _default_service_specs() -> list[dict]:
    from ticketmon.simulator.services import ServicesSettings

    return [s.model_dump() for s in ServicesSettings().services]


def start_receiver(stack: Stack) -> None:
    port, stream_port = stack.port(10190), stack.port(10199)
    db = f"sqlite:///{stack.workdir / 'receiver.db'}"
    stack.secrets.update(webhook_token=secrets.token_urlsafe(24),
                         admin_token="tm_admin_" + secrets.token_urlsafe(24),
                         ack_link_secret=secrets.token_urlsafe(32))
    state.write_private(stack.workdir / "webhook-token", stack.secrets["webhook_token"])
    cfg = stack.write_config("receiver", {
        "database_url": db,
        "api_tokens": [{"name": "stack-admin", "role": "admin", "tenant": "*",
                        "token": stack.secrets["admin_token"]}],
        # live updates come from the stream server below; the console on the receiver's
        # origin reads them with its session cookie
        "stream_url": f"http://127.0.0.1:{stream_port}/api/v1/stream",
        "stream": {"allowed_origins": [f"http://127.0.0.1:{port}"]},
        "overview": {"prometheus_url": f"http://{stack.addresses['prometheus']}"},
    })
    metrics_dir = stack.workdir / "receiver-metrics"
    metrics_dir.mkdir(exist_ok=True)
    env = {"TICKETMON_CONFIG": str(cfg),
           "TICKETMON_WEBHOOK_TOKEN": stack.secrets["webhook_token"],
           "TICKETMON_ACK_LINK_SECRET": stack.secrets["ack_link_secret"],
           "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    stack.run_once(["receiver", "db", "upgrade"], env)
    stack.spawn("receiver",
                [sys.executable, "-m", "gunicorn", "-c", "python:receiver.gunicorn_conf",
                 "-w", "2", "-b", f"127.0.0.1:{port}", "--no-control-socket",
                 "receiver.wsgi:app"],
                ready_url=f"http://127.0.0.1:{port}/readyz", env=env, host="receiver",
                url=f"http://127.0.0.1:{port}/api/v1/incidents")
    stack.state["receiver_url"] = f"http://127.0.0.1:{port}"
    stack.state["db"] = db
    stream_metrics = stack.workdir / "receiver-stream-metrics"
    stream_metrics.mkdir(exist_ok=True)
    stack.spawn("receiver-stream",
                [sys.executable, "-m", "gunicorn", "-c", "python:receiver.stream.gunicorn_conf",
                 "-b", f"127.0.0.1:{stream_port}", "--no-control-socket",
                 "receiver.stream.wsgi:app"],
                ready_url=f"http://127.0.0.1:{stream_port}/readyz",
                env={**env, "PROMETHEUS_MULTIPROC_DIR": str(stream_metrics)},
                host="receiver-stream", url=f"http://127.0.0.1:{stream_port}/api/v1/stream")


def start_worker(stack: Stack, alertmanager_url: str, longest_group_wait: float) -> None:
    port = stack.port(10195)
    sink, tls = stack.addresses["sink"], stack.addresses["sink-tls"]
    hook_secret = secrets.token_urlsafe(24)
    cfg = stack.write_config("worker", {
        "database_url": stack.state["db"],
        "public_url": stack.state["receiver_url"],
        "alertmanager_url": alertmanager_url,
        # an alert's own post, not the reconciler, opens its group's incident: wait
        # past the routes' longest group_wait (info: 5m), as deploy/ticketmon/worker.yaml
        "reconcile": {"new_alert_grace": f"{longest_group_wait + 30:g}s"},
        "ack_link_secret": stack.secrets["ack_link_secret"],
        "metrics_port": port,
        "oncall": worker_oncall(sink),  # demo teams; people are paged into the sink
        "channels": {
            # real shapes, which the sink checks as PagerDuty and Slack would: a 32-character
            # integration key and a /services/T…/B…/<24-character secret> webhook path
            "pagerduty": {"type": "pagerduty", "routing_key": "demoroutingkey" + "0" * 18,
                          "base_url": f"https://{tls}/pagerduty",
                          "verify": str(stack.workdir / "sink-tls" / "sink-cert.pem")},
            # the sink listens on 127.0.0.1 only: plain http is allowed, explicitly
            "slack": {"type": "slack", "webhook_url":
                      f"http://{sink}/slack/services/T0DEMO000/B0DEMO000/demowebhooksecret0000000",
                      "allow_insecure_http": True},
            # The demo has no mail server: email is shown through the sink as a webhook.
            "email": {"type": "webhook", "url": f"http://{sink}/email", "secret": hook_secret,
                      "allow_insecure_http": True},
            "webhook": {"type": "webhook", "url": f"http://{sink}/webhook",
                        "secret": hook_secret, "allow_insecure_http": True},
        },
    })
    stack.ticketmon("worker", ["receiver", "worker", "--config", str(cfg)],
                    ready_url=f"http://127.0.0.1:{port}/metrics", host="receiver-worker")


def start_anomaly(stack: Stack) -> None:
    """The anomaly job in a process of its own, as in docker-compose: inside the worker its
    scoring held the interpreter while pages waited to go out. The demo profile: a fresh
    Prometheus has minutes of history, so series are scored at a 5 s step (first scores
    after ~6 min)."""
    port = stack.port(10189)
    anomaly = yaml.safe_load((REPO / "receiver" / "anomaly" / "demo.yaml").read_text())
    cfg = stack.write_config("anomaly", {
        **anomaly,
        "database_url": stack.state["db"],
        "prometheus_url": f"http://{stack.addresses['prometheus']}",
        "metrics_port": port,  # the capacity forecasts (ticketmon_forecast_*)
    })
    stack.ticketmon("anomaly", ["receiver", "anomaly", "--config", str(cfg)],
                    ready_url=f"http://127.0.0.1:{port}/healthz", host="anomaly")


def start_exporters(stack: Stack) -> None:
    port = stack.port(10191)
    cfg = stack.write_config("business", {
        "http": {"host": "127.0.0.1", "port": port},
        "platform_database_url": f"sqlite:///{stack.workdir / 'platform.db'}",
        "interval_seconds": stack.collect_seconds,
        "counters_start": "beginning",  # the demo's seeded history fits in one run
    })
    stack.ticketmon("business-exporter", ["exporter", "business", "--config", str(cfg)],
                    ready_url=f"http://127.0.0.1:{port}/metrics", host="business-exporter")

    port = stack.port(10192)
    services = [{"name": n, "url": f"http://{stack.addresses[n]}/health"} for n in SERVICES]
    # ticketmon's own components are probed too: the self-dashboard and meta alerts use them
    services += [{"name": f"ticketmon-{n}", "url": f"http://{stack.addresses[n]}/healthz"}
                 for n in ("receiver", "business-exporter")]
    cfg = stack.write_config("system", {
        "http": {"host": "127.0.0.1", "port": port},
        "interval_seconds": stack.collect_seconds,
        "services": services,
        "dependencies": [
            {"name": "receiver", "kind": "http", "url": f"{stack.state['receiver_url']}/readyz"},
            {"name": "receiver-db", "kind": "tcp", "address": stack.addresses["receiver"]},
        ],
    })
    stack.ticketmon("system-exporter", ["exporter", "system", "--config", str(cfg)],
                    ready_url=f"http://127.0.0.1:{port}/metrics", host="system-exporter")

    port = stack.port(10193)
    rpc = stack.state["solana-rpc"].rsplit("/", 1)[0]
    demo = yaml.safe_load((REPO / "exporters" / "blockchain" / "demo.yaml").read_text())
    demo["http"]["port"] = port
    demo["interval"] = stack.collect_seconds
    # a failing node is tried again within three intervals (shipped: up to 2 min), so
    # its recovery, and the resolve, show within seconds
    demo["max_backoff"] = 3 * stack.collect_seconds
    demo["endpoints"] = [{"name": "primary", "url": f"{rpc}/", "timeout": 2},
                         {"name": "reference", "url": f"{rpc}/reference", "timeout": 2}]
    cfg = stack.write_config("blockchain", demo)
    stack.ticketmon("blockchain-exporter", ["exporter", "blockchain", "--config", str(cfg)],
                    ready_url=f"http://127.0.0.1:{port}/metrics", host="blockchain-exporter")

    port = stack.port(10194)
    # the checkout gets an RS256 token (operator, tenant demo); the fraud service only the
    # public key: neither can sign an admin or all-tenant token (fraud_keys.py)
    credentials = fraud_credentials("demo")
    demo = yaml.safe_load((REPO / "exporters" / "fraud" / "demo.yaml").read_text())
    demo.update(port=port, database_url=f"sqlite:///{stack.workdir / 'fraud.db'}")
    demo["auth"]["tokens"] = [{"name": "stack-admin", "role": "admin", "tenant": "*",
                               "token": stack.secrets["admin_token"]}]
    demo["auth"]["jwt"] = credentials.jwt_settings
    cfg = stack.write_config("fraud", demo)
    stack.ticketmon("fraud", ["exporter", "fraud", "--config", str(cfg)],
                    ready_url=f"http://127.0.0.1:{port}/healthz", host="fraud",
                    url=f"http://127.0.0.1:{port}/api/v1/fraud/events")
    knobs = stack.workdir / "checkout-knobs.json"  # `stack scenario bot-attack` writes it
    cfg = stack.write_config("checkout", {
        "url": f"http://127.0.0.1:{port}/api/v1/fraud/check",
        "token": credentials.checkout_token, "tenant": "demo", "control_file": str(knobs),
    })
    stack.state["checkout_knobs"] = str(knobs)
    stack.ticketmon("checkout-traffic", ["simulator", "checkout", "--config", str(cfg)],
                    url=f"-> http://127.0.0.1:{port}/api/v1/fraud/check")


def start_node_exporter(stack: Stack) -> None:
    try:
        binary = find_binary("prometheus-node-exporter", "NODE_EXPORTER",
                             "prometheus-node-exporter")
    except ServerError as exc:
        log.warning("node_exporter not started", extra={"error": str(exc)})
        return
    port = stack.port(9100)
    # Only what the host rules read (CPU, memory, filesystems, load).
    stack.spawn("node-exporter", [binary, f"--web.listen-address=127.0.0.1:{port}",
                                  "--collector.disable-defaults", "--collector.cpu",
                                  "--collector.meminfo", "--collector.filesystem",
                                  "--collector.loadavg"],
                ready_url=f"http://127.0.0.1:{port}/metrics", host="node-exporter")


def start_alertmanager(stack: Stack) -> tuple[str, float]:
    """Its URL, and its routes' longest group_wait in seconds."""
    am_cfg = deploy_config.alertmanager_config(
        DEPLOY / "alertmanager" / "alertmanager.yml", stack.addresses,
        stack.workdir / "webhook-token")
    am_cfg = demo_profile.apply_to_alertmanager(demo_profile.load(), am_cfg)
    am = Alertmanager(deploy_config.write_yaml(am_cfg, stack.workdir / "alertmanager.yml"),
                      stack.workdir, port=stack.port(9093))
    stack.supervisor.add("alertmanager", am.url, am.stop, am.process.alive, am.process.log_path)
    stack.addresses["alertmanager"] = f"127.0.0.1:{am.port}"
    stack.state["alertmanager"] = am.url
    return am.url, deploy_config.longest_group_wait(am_cfg)


def reserve_prometheus_port(stack: Stack) -> None:
    """Prometheus starts last (it scrapes everyone) but others need its address first."""
    stack.addresses["prometheus"] = f"127.0.0.1:{stack.port(9090)}"


def start_prometheus(stack: Stack) -> None:
    port = int(stack.addresses["prometheus"].rsplit(":", 1)[1])
    cfg = deploy_config.prometheus_config(DEPLOY / "prometheus" / "prometheus.yml",
                                          stack.addresses, stack.interval)
    # the shipped rules with the demo profile's shorter windows (deploy/demo/profile.yaml)
    shipped = sorted(Path(p) for pattern in cfg["rule_files"] for p in glob.glob(pattern))
    rules = demo_profile.write_rules(demo_profile.load(), shipped, stack.workdir / "rules")
    cfg["rule_files"] = [str(p) for p in rules]
    prom = Prometheus(deploy_config.write_yaml(cfg, stack.workdir / "prometheus.yml"),
                      stack.workdir, port=port)
    stack.supervisor.add("prometheus", prom.url, prom.stop, prom.process.alive,
                         prom.process.log_path)
    stack.state["prometheus"] = prom.url


def run(workdir: Path | None = None, keep: bool = False, interval: str = "5s") -> int:
    own_dir = workdir is None
    workdir = Path(workdir or tempfile.mkdtemp(prefix="ticketmon-stack-")).resolve()
    state.private_dir(workdir)
    stack = Stack(workdir, Supervisor(), interval)
    print(f"workdir {workdir}", flush=True)
    log.warning("the main job's /metrics endpoints are open (no basic auth): every "
                "component listens on 127.0.0.1 only; production configs in deploy/ guard "
                "them", extra={"workdir": str(workdir)})
    try:
        reserve_prometheus_port(stack)
        start_simulators(stack)
        start_batch_jobs(stack)
        start_receiver(stack)
        start_exporters(stack)
        start_node_exporter(stack)
        am_url, longest_group_wait = start_alertmanager(stack)
        start_worker(stack, am_url, longest_group_wait)
        start_anomaly(stack)
        start_prometheus(stack)
        stack.state.update(workdir=str(workdir), admin_token=stack.secrets["admin_token"],
                           platform_knobs=str(workdir / "platform-knobs.json"),
                           pid=os.getpid())
        state.register(workdir, stack.state)
        # the token stays in the 0600 state file: stdout is often captured by others
        print(f"admin-token in {state.state_path(workdir)} (0600; `ticketmon stack token`)",
              flush=True)
        print("ready: try `ticketmon stack scenario service-down checkout`; Ctrl-C stops "
              "everything", flush=True)
        stack.supervisor.wait()
    finally:
        stack.supervisor.stop_all()
        state.unregister(workdir)
        if own_dir and not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0
