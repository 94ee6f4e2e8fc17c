"""A live ticketmon stack for the dashboards' query test: the real exporters, receiver,
worker and simulators as CLI processes, node_exporter, and a real Alertmanager and
Prometheus fed the repository's deploy/ config and rules/ (as the main job runs them).

A component whose `ticketmon` subcommand does not exist yet is left out, and the
catalog sources it serves count as absent, so its panels are not expected to have data.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import yaml
from support.waiting import wait_for

from ticketmon.cli import build_parser
from ticketmon.servers.alertmanager import Alertmanager
from ticketmon.servers.process import ManagedProcess, ServerError, find_binary, free_port
from ticketmon.servers.prometheus import Prometheus
from ticketmon.servers.pushgateway import Pushgateway
from ticketmon.stack import deploy_config

REPO = Path(__file__).resolve().parents[2]
DEMO_WALLETS = {"fee_payer": "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T",
                "treasury": "9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM"}
MINT_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
CHECKOUT_TOKEN = "tm_test_checkout_token_0123456789"
GRAFANA_FRAUD_TOKEN = "tm_test_grafana_fraud_0123456789"  # Grafana's viewer of fraud events


@dataclass
class LiveStack:
    workdir: Path
    prometheus: Prometheus | None = None
    sources: set[str] = field(default_factory=lambda: {"prometheus"})
    endpoints: dict[str, tuple[str, set[str]]] = field(default_factory=dict)  # name -> url, sources
    receiver_url: str | None = None
    fraud_url: str | None = None
    fraud_viewer_token: str = GRAFANA_FRAUD_TOKEN
    procs: list[ManagedProcess] = field(default_factory=list)
    servers: list = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)

    def has_command(self, *argv: str) -> bool:
        """Whether `ticketmon ARGV…` exists in the real parser (it grows as work lands)."""
        parser = build_parser()
        for word in argv:
            subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
            if not subs or word not in subs[0].choices:
                return False
            parser = subs[0].choices[word]
        return True

    def start(self, name: str, argv: list[str], ready: str | None = None,
              env: dict[str, str] | None = None, ticketmon: bool = True) -> ManagedProcess:
        command = [sys.executable, "-m", "ticketmon", *argv] if ticketmon else argv
        proc = ManagedProcess(name, command, self.workdir / f"{name}.log", env=env,
                              cwd=self.workdir)
        self.procs.append(proc)
        if ready:
            proc.wait_http(ready, timeout=90)
        return proc

    def config(self, name: str, data: dict) -> str:
        path = self.workdir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(data))
        return str(path)

    def spend_fees(self, control_url: str, wallet: str) -> None:
        """The simulated fee payer pays 0.01 SOL a second, as minting would."""
        def spend() -> None:
            lamports = 4_200_000_000
            while not self.stopping.wait(1.0):
                lamports -= 10_000_000
                try:
                    requests.post(control_url, json={"balance": {
                        "address": wallet, "lamports": lamports}}, timeout=2)
                except requests.RequestException:
                    pass

        threading.Thread(target=spend, daemon=True, name="spend-fees").start()

    def stop(self) -> None:
        """Stop everything at once: some components take seconds to drain on SIGTERM."""
        self.stopping.set()
        stoppers = [*(p.stop for p in self.procs), *(s.stop for s in self.servers)]
        with ThreadPoolExecutor(len(stoppers) or 1) as pool:
            list(pool.map(lambda stop: stop(), stoppers))


def _start_services(stack: LiveStack, addresses: dict[str, str]) -> dict[str, int]:
    from ticketmon.simulator.services import ServicesSettings

    control = free_port()
    specs = [s.model_copy(update={"port": free_port()}) for s in ServicesSettings().services]
    cfg = stack.config("services", {
        "control_port": control, "tick_seconds": 0.25,
        "services": [s.model_dump(mode="json") for s in specs]})
    stack.start("services", ["simulator", "services", "--config", cfg],
                ready=f"http://127.0.0.1:{control}/healthz")
    for spec in specs:
        addresses[spec.name] = f"127.0.0.1:{spec.port}"
    # checkout fails (its SLOs burn, alerts fire), payments degrades
    for service, mode in (("checkout", "failing"), ("payments", "degraded")):
        requests.post(f"http://127.0.0.1:{control}/control/{service}", json={"mode": mode},
                      timeout=5).raise_for_status()
    stack.sources.add("platform_services")
    return {s.name: s.port for s in specs} | {"control": control}


def _start_exporters(stack: LiveStack, addresses: dict[str, str], services: dict[str, int],
                     postgres_url: str) -> None:
    if stack.has_command("simulator", "platform-db") and stack.has_command("exporter",
                                                                            "business"):
        db = f"sqlite:///{stack.workdir / 'platform.db'}"
        stack.start("platform-db", ["simulator", "platform-db", "--config", stack.config(
            "platform-db", {"platform_database_url": db, "history_hours": 2,
                            "history_orders_per_hour": 300, "orders_per_second": 20,
                            "payment_failure_ratio": 0.2})])
        # the exporter only reads: it refuses a database the simulator has not made yet
        wait_for(lambda: (stack.workdir / "platform.db").exists(), 60, "the platform database")
        port = free_port()
        stack.start("business", ["exporter", "business", "--config", stack.config(
            "business", {"platform_database_url": db, "http": {"port": port},
                         "interval_seconds": 1, "counters_start": "beginning"})],
            ready=f"http://127.0.0.1:{port}/healthz")
        addresses["business-exporter"] = f"127.0.0.1:{port}"
        stack.endpoints["business"] = (f"http://127.0.0.1:{port}/metrics", {"business"})
    else:
        stack.missing.append("business")

    if stack.has_command("exporter", "system"):
        port = free_port()
        stack.start("system", ["exporter", "system", "--config", stack.config("system", {
            "http": {"port": port}, "interval_seconds": 1, "probe_timeout_seconds": 1,
            "services": [{"name": n, "url": f"http://127.0.0.1:{p}/health"}
                         for n, p in services.items() if n != "control"],
            "dependencies": [
                {"name": "platform-pg", "kind": "postgres", "url": postgres_url},
                {"name": "services-control", "kind": "http",
                 "url": f"http://127.0.0.1:{services['control']}/healthz"}]})],
            ready=f"http://127.0.0.1:{port}/healthz")
        addresses["system-exporter"] = f"127.0.0.1:{port}"
        stack.endpoints["system"] = (f"http://127.0.0.1:{port}/metrics", {"system"})
    else:
        stack.missing.append("system")

    if stack.has_command("simulator", "solana-rpc") and stack.has_command("exporter",
                                                                           "blockchain"):
        rpc = free_port()
        stack.start("solana-rpc", ["simulator", "solana-rpc", "--config", stack.config(
            "solana-rpc", {"port": rpc, "nodes": [{"name": "primary"},
                                                   {"name": "reference", "lag_slots": 3}],
                           "balances": {DEMO_WALLETS["fee_payer"]: 4_200_000_000,
                                        DEMO_WALLETS["treasury"]: 350_000_000_000},
                           "programs": {MINT_PROGRAM: {"transactions_per_second": 5,
                                                       "failure_ratio": 0.1}}})])
        port = free_port()
        stack.start("blockchain", ["exporter", "blockchain", "--config", stack.config(
            "blockchain", {"http": {"port": port}, "interval": 1, "timeout": 3,
                           "endpoints": [{"name": "primary", "url": f"http://127.0.0.1:{rpc}/",
                                          "timeout": 1},
                                         {"name": "reference", "timeout": 1,
                                          "url": f"http://127.0.0.1:{rpc}/reference"}],
                           "wallets": DEMO_WALLETS, "programs": {"ticket_mint": MINT_PROGRAM}})],
            ready=f"http://127.0.0.1:{port}/healthz")
        addresses["blockchain-exporter"] = f"127.0.0.1:{port}"
        stack.spend_fees(f"http://127.0.0.1:{rpc}/control", DEMO_WALLETS["fee_payer"])
        stack.endpoints["blockchain"] = (f"http://127.0.0.1:{port}/metrics", {"blockchain"})
    else:
        stack.missing.append("blockchain")

    if stack.has_command("exporter", "fraud") and stack.has_command("simulator", "checkout"):
        port = free_port()
        stack.start("fraud", ["exporter", "fraud", "--config", stack.config("fraud", {
            "port": port, "workers": 1,
            "database_url": f"sqlite:///{stack.workdir / 'fraud.db'}",
            "auth": {"tokens": [{"name": "checkout", "role": "operator", "tenant": "demo",
                                 "token": CHECKOUT_TOKEN},
                                {"name": "grafana", "role": "viewer", "tenant": "demo",
                                 "token": GRAFANA_FRAUD_TOKEN}]},
            "outlier": {"min_samples": 50, "refit_seconds": 5}})],
            ready=f"http://127.0.0.1:{port}/healthz")
        stack.start("checkout", ["simulator", "checkout", "--config", stack.config("checkout", {
            "url": f"http://127.0.0.1:{port}/api/v1/fraud/check", "token": CHECKOUT_TOKEN,
            "checks_per_second": 20, "bot_share": 0.3, "seed": 7})])
        addresses["fraud"] = f"127.0.0.1:{port}"
        stack.fraud_url = f"http://127.0.0.1:{port}"
        stack.endpoints["fraud"] = (f"http://127.0.0.1:{port}/metrics", {"fraud"})
    else:
        stack.missing.append("fraud")


def _start_receiver(stack: LiveStack, addresses: dict[str, str]) -> None:
    if not stack.has_command("receiver", "serve"):
        stack.missing.append("receiver")
        return
    env = {"TICKETMON_DATABASE_URL": f"sqlite:///{stack.workdir / 'receiver.db'}"}
    port = free_port()
    stack.start("receiver", ["receiver", "serve", "--dev", "--port", str(port)],
                ready=f"http://127.0.0.1:{port}/healthz", env=env)
    stack.receiver_url = f"http://127.0.0.1:{port}"
    addresses["receiver"] = f"127.0.0.1:{port}"
    stack.endpoints["receiver"] = (f"{stack.receiver_url}/metrics", {"receiver", "anomaly"})
    if stack.has_command("receiver", "worker"):
        dead = free_port()  # nothing listens: every delivery fails and is retried
        metrics = free_port()
        stack.start("worker", ["receiver", "worker", "--config", stack.config("worker", {
            "database_url": env["TICKETMON_DATABASE_URL"], "metrics_port": metrics,
            "poll_interval": 0.5, "retry_base": 1,
            "channels": {
                "pagerduty": {"type": "pagerduty", "routing_key": "R" * 32, "timeout": 1,
                              "base_url": f"https://127.0.0.1:{dead}"},
                "slack": {"type": "slack", "webhook_url": f"http://127.0.0.1:{dead}/slack",
                          "timeout": 1, "allow_insecure_http": True},
                "email": {"type": "email", "host": "127.0.0.1", "port": dead,
                          "security": "none", "from_addr": "tm@example.com",
                          "to": ["oncall@example.com"], "timeout": 1},
                "webhook": {"type": "webhook", "url": f"http://127.0.0.1:{dead}/hook",
                            "secret": "s" * 32, "timeout": 1, "allow_insecure_http": True}}})],
            ready=f"http://127.0.0.1:{metrics}/metrics")
        addresses["receiver-worker"] = f"127.0.0.1:{metrics}"
        stack.endpoints["worker"] = (f"http://127.0.0.1:{metrics}/metrics", {"worker"})
    else:
        stack.missing.append("worker")


def _start_batch_jobs(stack: LiveStack, addresses: dict[str, str]) -> None:
    """A real Pushgateway and the nightly jobs pushing to it with the real client."""
    gateway = Pushgateway(stack.workdir)
    stack.servers.append(gateway)
    cfg = stack.config("batch-jobs", {"pushgateway_url": gateway.url, "jobs": [
        {"name": n, "interval_seconds": 2, "grace_seconds": 1, "duration_seconds": 0.1}
        for n in ("settlement", "nft-reconciliation")]})
    stack.start("batch-jobs", ["simulator", "batch-jobs", "--config", cfg])
    addresses["pushgateway"] = f"127.0.0.1:{gateway.port}"
    stack.sources.add("batch_jobs")


def _fast_routes(route: dict) -> None:
    for key in ("group_wait", "group_interval"):
        if key in route:
            route[key] = "1s"
    for child in route.get("routes", []):
        _fast_routes(child)


def _start_prometheus_side(stack: LiveStack, addresses: dict[str, str]) -> None:
    node_port = free_port()
    node = ManagedProcess("node-exporter", [
        find_binary("prometheus-node-exporter", "NODE_EXPORTER", "prometheus-node-exporter"),
        f"--web.listen-address=127.0.0.1:{node_port}"], stack.workdir / "node-exporter.log")
    stack.procs.append(node)
    node.wait_http(f"http://127.0.0.1:{node_port}/metrics")
    addresses["node-exporter"] = f"127.0.0.1:{node_port}"
    stack.sources.add("node_exporter")

    token = stack.workdir / "webhook-token"
    token.write_text("test-webhook-token")
    am_cfg = deploy_config.alertmanager_config(
        REPO / "deploy/alertmanager/alertmanager.yml", addresses, token)
    am_cfg["route"]["group_wait"] = am_cfg["route"]["group_interval"] = "1s"
    _fast_routes(am_cfg["route"])
    am_dir = stack.workdir / "am"
    am_dir.mkdir()
    am = Alertmanager(deploy_config.write_yaml(am_cfg, am_dir / "alertmanager.yml"), am_dir)
    stack.servers.append(am)
    addresses["alertmanager"] = f"127.0.0.1:{am.port}"
    stack.sources.add("alertmanager")

    prom_port = free_port()
    addresses["prometheus"] = f"127.0.0.1:{prom_port}"
    cfg = deploy_config.prometheus_config(REPO / "deploy/prometheus/prometheus.yml",
                                          addresses, interval="1s")
    prom_dir = stack.workdir / "prom"
    prom_dir.mkdir()
    stack.prometheus = Prometheus(deploy_config.write_yaml(cfg, prom_dir / "prometheus.yml"),
                                  prom_dir, port=prom_port)
    stack.servers.append(stack.prometheus)


def _wait_targets_up(prom: Prometheus, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    down: list = []
    while time.monotonic() < deadline:
        targets = requests.get(f"{prom.url}/api/v1/targets", timeout=5).json()["data"]
        down = [(t["labels"]["job"], t["lastError"]) for t in targets["activeTargets"]
                if t["health"] != "up"]
        if not down:
            return
        time.sleep(0.5)
    raise ServerError(f"targets not up after {timeout}s: {down}")


def _run_anomaly_job(stack: LiveStack) -> None:
    if not stack.has_command("receiver", "anomaly"):
        stack.missing.append("anomaly")
        return
    # Two series scored as the job would, over the few seconds of history this Prometheus
    # has: before its first scrape a series counts as 0 (`or vector(0)`), which gives the
    # detector the points it needs to train.
    short = {"step_seconds": 1, "history_seconds": 900, "season_seconds": 0,
             "min_train": 10, "min_scores": 20}
    cfg = stack.config("anomaly", {"series": [
        {"name": "ticket_sales_rate", **short,
         "query": "sum(rate(ticketmon_tickets_sold_total[1m])) or vector(0)"},
        {"name": "fraud_checks_rate", **short,
         "query": "sum(rate(ticketmon_fraud_checks_total[1m])) or vector(0)"}]})
    proc = stack.start("anomaly", [
        "receiver", "anomaly", "--once", "--config", cfg, "--prometheus-url",
        stack.prometheus.url],
        env={"TICKETMON_DATABASE_URL": f"sqlite:///{stack.workdir / 'receiver.db'}"})
    try:
        proc.proc.wait(timeout=120)
    except Exception:
        proc.stop()
    try:
        stack.prometheus.wait_for("ticketmon_anomaly_score", timeout=15)
        stack.sources.add("anomaly")
    except ServerError:
        stack.missing.append(f"anomaly (wrote no score: {proc.log_tail(5)})")


@pytest.fixture(scope="module")
def live_stack(postgres_cluster, tmp_path_factory) -> LiveStack:
    stack = LiveStack(tmp_path_factory.mktemp("live-stack"))
    addresses: dict[str, str] = {}
    try:
        services = _start_services(stack, addresses)
        _start_exporters(stack, addresses, services, postgres_cluster.url())
        _start_receiver(stack, addresses)
        _start_batch_jobs(stack, addresses)
        _start_prometheus_side(stack, addresses)
        prom = stack.prometheus
        _wait_targets_up(prom)
        for _, sources in stack.endpoints.values():
            stack.sources |= sources - {"anomaly"}
        if stack.endpoints.keys() & {"business", "system", "blockchain"}:
            stack.sources.add("exporters")
        # checkout fails from the start: its fast burn fires, Alertmanager posts it to the
        # receiver, which opens an incident the worker then tries to escalate
        prom.wait_for('ALERTS{alertname="ErrorBudgetBurnFast", alertstate="firing"}', 60)
        if stack.receiver_url:
            prom.wait_for("ticketmon_receiver_incidents_open > 0", 60)
        if "worker" in stack.endpoints:
            try:  # the panel test reports it if the worker never delivers
                prom.wait_for("ticketmon_receiver_notifications_total", 30)
            except ServerError:
                pass
        _run_anomaly_job(stack)
        time.sleep(3)  # a few more scrapes for every rate()
        (stack.workdir / "sources.json").write_text(json.dumps(sorted(stack.sources)))
        yield stack
    finally:
        stack.stop()
