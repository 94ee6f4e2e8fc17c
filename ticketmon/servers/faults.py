"""A bed for fault runs: real Alertmanager nodes posting to gunicorn receivers, escalation
workers paging into a local sink, all on one database, and the counts that prove what a
fault did (alerts sent, held by Alertmanager, stored, lost; incidents; pages; resolves).

Shared by tests/integration/test_faults.py and bench/chaos.py (the bench may not import
from tests/), so the scenarios and their bookkeeping are written once. Every process
binds to 127.0.0.1 and is stopped by FaultBed.close().
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
import sqlalchemy as sa

from ticketmon.servers.alertmanager import Alertmanager
from ticketmon.servers.process import ManagedProcess, ServerError, free_port
from ticketmon.simulator.notification_sink import NotificationSink

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_TOKEN = "fault-bed-webhook-token-0123456789"
SECRET = "fault-bed-signing-secret-0123456789"
CHANNELS = ("pager", "chat")  # PagerDuty over TLS, and a signed webhook
PREFIX = "Chaos"  # alertname prefix: one Alertmanager group per alertname


def _env() -> dict[str, str]:
    """Children import this checkout (a worktree), not whatever the venv points at."""
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}


def wait_until(predicate: Callable[[], object], timeout: float, what: str,
               every: float = 0.2) -> object:
    """The first truthy value of `predicate`, or ServerError naming what never came."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise ServerError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


# -- Alertmanager ----------------------------------------------------------------------

class AlertmanagerNode(Alertmanager):
    """One Alertmanager of an HA cluster gossiping on loopback.

    peer_timeout is how long a node waits per position before sending what a peer may
    have sent already; 0s makes every node post every notification, the worst case
    for the receivers' de-duplication.
    """

    def __init__(self, config_file: Path, workdir: Path, cluster_port: int,
                 peers: Iterable[int], peer_timeout: str = "0s") -> None:
        self.cluster_port = cluster_port
        self.peers = list(peers)
        self.peer_timeout = peer_timeout
        super().__init__(config_file, workdir)

    def arguments(self, config_file: Path, data: Path) -> list[str]:
        args = [a for a in super().arguments(config_file, data)
                if not a.startswith("--cluster.")]
        return [*args, f"--cluster.listen-address=127.0.0.1:{self.cluster_port}",
                f"--cluster.advertise-address=127.0.0.1:{self.cluster_port}",
                *[f"--cluster.peer=127.0.0.1:{p}" for p in self.peers],
                f"--cluster.peer-timeout={self.peer_timeout}",
                "--cluster.gossip-interval=100ms", "--cluster.pushpull-interval=5s",
                "--cluster.settle-timeout=3s"]


def alertmanager_config(receiver_url: str, token_file: Path) -> str:
    """Group per alertname, flush every second, re-send only what changed (or failed)."""
    return f"""
route:
  receiver: ticketmon
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 4h
receivers:
  - name: ticketmon
    webhook_configs:
      - url: {receiver_url}/api/v1/alertmanager
        send_resolved: true
        max_alerts: 0
        http_config:
          authorization: {{type: Bearer, credentials_file: {token_file}}}
"""


def make_alerts(indices: Iterable[int], groups: int, starts_at: datetime | None = None,
                ends_at: datetime | None = None, run: str = "r") -> list[dict]:
    """Alerts for Alertmanager's API; alert i is in group i % groups.

    The same arguments give the same label sets, so posting them again with ends_at in
    the past resolves them.
    """
    starts_at = starts_at or datetime.now(UTC)
    ends_at = ends_at or datetime.now(UTC) + timedelta(hours=4)
    return [{
        "labels": {"alertname": f"{PREFIX}{run}{i % groups:04d}", "instance": f"node-{i:05d}",
                   "severity": "critical", "service": "checkout", "tenant": "acme",
                   "run": run},
        "annotations": {"summary": f"chaos group {i % groups} of run {run}"},
        "startsAt": starts_at.isoformat(), "endsAt": ends_at.isoformat(),
        "generatorURL": "http://127.0.0.1/chaos",
    } for i in indices]


def push(am_urls: Iterable[str], alerts: list[dict], timeout: float = 10.0) -> None:
    """Post alerts to every node, as Prometheus does with an HA pair."""
    for url in am_urls:
        resp = requests.post(f"{url}/api/v2/alerts", json=alerts, timeout=timeout)
        resp.raise_for_status()


def held(am_url: str, run: str) -> set[str]:
    """Fingerprints of the active alerts of this run that Alertmanager holds."""
    resp = requests.get(f"{am_url}/api/v2/alerts", timeout=10, params={
        "active": "true", "silenced": "true", "inhibited": "true", "unprocessed": "true",
        "filter": f'run="{run}"'})
    resp.raise_for_status()
    return {a["fingerprint"] for a in resp.json()}


class Pusher(threading.Thread):
    """Pushes alerts start..start+count-1 in batches over about `spread` seconds, in
    `order` if given (a shuffled order gives each group its last change at another
    moment, so a fault meets some group's final notification)."""

    def __init__(self, am_urls: list[str], count: int, groups: int, run: str,
                 starts_at: datetime, batch: int = 20, spread: float = 4.0,
                 start: int = 0, order: list[int] | None = None) -> None:
        super().__init__(name="alert-pusher", daemon=True)
        self.am_urls, self.count, self.groups, self.run_id = am_urls, count, groups, run
        self.starts_at, self.batch = starts_at, batch
        self.order = order if order is not None else list(range(start, start + count))
        assert len(self.order) == count
        self.pause = spread / max(1, -(-count // batch))
        self.pushed = 0
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            for offset in range(0, self.count, self.batch):
                part = self.order[offset:offset + self.batch]
                push(self.am_urls, make_alerts(part, self.groups, self.starts_at,
                                               run=self.run_id))
                self.pushed += len(part)
                time.sleep(self.pause)
        except Exception as exc:  # reported by finish()
            self.error = exc

    def push_here(self) -> int:
        """Push in the calling thread instead; raises what went wrong."""
        self.run()
        if self.error:
            raise self.error
        return self.pushed

    def finish(self, timeout: float = 60.0) -> int:
        self.join(timeout)
        if self.is_alive():
            raise ServerError("alert pusher did not finish")
        if self.error:
            raise self.error
        return self.pushed


def probe_payload(run: str = "probe") -> dict:
    """A valid webhook post outside any counted run, to ask the receiver for its status."""
    now = datetime.now(UTC).isoformat()
    labels = {"alertname": f"Probe{run}", "severity": "critical", "run": run}
    return {"version": "4", "groupKey": f'{{}}:{{alertname="Probe{run}"}}', "status": "firing",
            "receiver": "ticketmon", "groupLabels": {"alertname": f"Probe{run}"},
            "commonLabels": labels, "commonAnnotations": {}, "externalURL": "http://127.0.0.1",
            "truncatedAlerts": 0,
            "alerts": [{"status": "firing", "labels": labels, "annotations": {},
                        "startsAt": now, "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "http://127.0.0.1", "fingerprint": "0123456789abcdef"}]}


# -- receivers and workers ---------------------------------------------------------------

class Receiver:
    """The receiver under gunicorn on a fixed port, so it can be killed and come back."""

    def __init__(self, workdir: Path, database_url: str, name: str = "receiver",
                 workers: int = 2) -> None:
        self.workdir, self.database_url, self.name, self.workers = (
            workdir, database_url, name, workers)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = workdir / f"{name}.yml"
        self.config.write_text("auto_migrate: false\n")
        self.process: ManagedProcess | None = None
        self.starts = 0
        self.kills = 0

    def start(self, timeout: float = 60.0) -> None:
        self.starts += 1
        env = {**_env(), "TICKETMON_CONFIG": str(self.config),
               "TICKETMON_DATABASE_URL": self.database_url,
               "TICKETMON_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
               "PROMETHEUS_MULTIPROC_DIR": str(self.workdir / f"{self.name}-metrics")}
        self.process = ManagedProcess(
            self.name, [str(Path(sys.executable).parent / "gunicorn"),
                        "-c", "python:receiver.gunicorn_conf", "-w", str(self.workers),
                        "-b", f"127.0.0.1:{self.port}", "--no-control-socket",
                        "receiver.wsgi:app"],
            self.workdir / f"{self.name}.log", env=env)
        self.process.wait_http(f"{self.url}/readyz", timeout=timeout)

    def kill(self) -> None:
        """SIGKILL gunicorn's master and workers at once: no graceful anything."""
        if self.process is None:
            return
        self.kills += 1
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.proc.wait(10)
        self.process.stop()
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def post(self, body: dict, timeout: float = 10.0) -> requests.Response:
        return requests.post(f"{self.url}/api/v1/alertmanager", json=body, timeout=timeout,
                             headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}"})


class Worker:
    """`ticketmon receiver worker` paging every critical incident on CHANNELS at once."""

    def __init__(self, workdir: Path, database_url: str, pager: NotificationSink,
                 chat: NotificationSink, name: str = "worker", lease: float = 30.0,
                 reconcile: dict | None = None) -> None:
        import yaml

        self.workdir, self.name = workdir, name
        policies = workdir / "policies.yaml"
        policies.write_text(yaml.safe_dump({"policies": [{
            "name": "critical", "match": {"severity": "critical"},
            "steps": [{"after": "0s", "channels": list(CHANNELS)}]}]}))
        self.metrics_port = free_port()
        self.config = workdir / f"{name}.yaml"
        self.config.write_text(yaml.safe_dump({
            "database_url": database_url, "policies_file": str(policies),
            "metrics_port": self.metrics_port, "worker_id": name,
            "poll_interval": "0.2s", "retry_base": "0.2s", "retry_cap": "2s",
            "lease": f"{lease}s",
            # without Alertmanagers to ask, the worker does not reconcile
            **({"reconcile": reconcile} if reconcile is not None else {}),
            "channels": {
                "pager": {"type": "pagerduty", "routing_key": "R" * 32, "timeout": 5.0,
                          "base_url": f"{pager.url}/pagerduty", "verify": str(pager.cert_file)},
                "chat": {"type": "webhook", "url": f"{chat.url}/chat", "secret": SECRET,
                         "timeout": 5.0, "allow_insecure_http": True},  # loopback sink
            }}))
        self.process: ManagedProcess | None = None

    def start(self) -> None:
        self.process = ManagedProcess(
            self.name, [sys.executable, "-m", "ticketmon", "receiver", "worker",
                        "--config", str(self.config)],
            self.workdir / f"{self.name}.log", env=_env())
        self.process.wait_http(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=60)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None


# -- counting ------------------------------------------------------------------------------

@dataclass
class Counts:
    """What one phase ended with. `lost` is what Alertmanager holds and the store has not;
    a duplicate incident is a second incident of one group, a duplicate page a second
    trigger (resolve) delivery of one incident on one channel."""

    sent: int = 0
    held: int = 0
    stored: int = 0
    firing: int = 0  # stored alerts whose status is firing
    lost: int = 0
    groups: int = 0
    incidents: int = 0
    open_incidents: int = 0
    duplicate_incidents: int = 0
    pages: int = 0
    duplicate_pages: int = 0
    unpaged: int = 0
    resolved_incidents: int = 0
    resolves: int = 0
    duplicate_resolves: int = 0
    missing_resolves: int = 0
    outbox_busy: int = 0
    dead: int = 0
    lost_fingerprints: list[str] = field(default_factory=list)

    def row(self) -> dict:
        doc = asdict(self)
        doc.pop("lost_fingerprints")
        return doc


class Ledger:
    """Reads the store and the sinks to count one run (alertnames of `run` only)."""

    def __init__(self, database_url: str, pager: NotificationSink, chat: NotificationSink,
                 run: str) -> None:
        self.engine = sa.create_engine(database_url, pool_size=1, max_overflow=1)
        self.pager, self.chat, self.run = pager, chat, run

    def close(self) -> None:
        self.engine.dispose()

    def store(self) -> tuple[dict[str, str], list[tuple[int, str, str]], Counter]:
        like = f"{PREFIX}{self.run}%"
        with self.engine.connect() as conn:
            alerts = dict(conn.execute(sa.text(
                "SELECT fingerprint, status FROM alerts WHERE alertname LIKE :p"), {"p": like}
            ).all())
            incidents = [tuple(r) for r in conn.execute(sa.text(
                "SELECT id, group_key, status FROM incidents WHERE group_key LIKE :p"),
                {"p": f"%{like}%"}).all()]
            outbox = Counter(dict(conn.execute(sa.text(
                "SELECT state, count(*) FROM notifications GROUP BY state")).all()))
        return alerts, incidents, outbox

    def deliveries(self) -> Counter:
        """(incident id, channel, action) -> deliveries the sinks accepted."""
        seen: Counter = Counter()
        for m in self.pager.received("/pagerduty"):
            body = m.json() or {}
            # dedup_key is ticketmon-<installation>-<incident id>
            incident = str(body.get("dedup_key")).rsplit("-", 1)[-1]
            seen[(incident, "pager", body.get("event_action"))] += 1
        for m in self.chat.received("/chat"):
            body = m.json() or {}
            seen[(str(body.get("incident", {}).get("id")), "chat", body.get("action"))] += 1
        return seen

    def count(self, sent: int, am_held: set[str]) -> Counts:
        alerts, incidents, outbox = self.store()
        seen = self.deliveries()
        mine = {str(i) for i, _, _ in incidents}
        per_group = Counter(g for _, g, _ in incidents)
        open_per_group = Counter(g for _, g, s in incidents if s != "resolved")
        c = Counts(sent=sent, held=len(am_held), stored=len(alerts),
                   firing=sum(s == "firing" for s in alerts.values()), groups=len(per_group),
                   incidents=len(incidents),
                   open_incidents=sum(open_per_group.values()),
                   resolved_incidents=sum(s == "resolved" for _, _, s in incidents),
                   outbox_busy=outbox["pending"] + outbox["delivering"], dead=outbox["dead"])
        c.lost_fingerprints = sorted(am_held - set(alerts))
        c.lost = len(c.lost_fingerprints)
        c.duplicate_incidents = sum(n - 1 for n in per_group.values())
        for (incident, _channel, action), n in seen.items():
            if incident not in mine:
                continue
            if action == "trigger":
                c.pages += n
                c.duplicate_pages += n - 1
            elif action == "resolve":
                c.resolves += n
                c.duplicate_resolves += n - 1
        paged = {(i, ch) for (i, ch, a) in seen if a == "trigger" and i in mine}
        c.unpaged = sum((str(i), ch) not in paged for i, _, _ in incidents for ch in CHANNELS)
        resolved = {str(i) for i, _, s in incidents if s == "resolved"}
        c.missing_resolves = sum(1 for i, ch in paged
                                 if i in resolved and not seen[(i, ch, "resolve")])
        return c


# -- the bed -----------------------------------------------------------------------------

class FaultBed:
    """Sinks, `receivers` gunicorn receivers, `workers` workers and one Alertmanager per
    receiver (clustered when more than one), on one database that must be empty.

    `reconcile` (the worker's `reconcile:` settings) makes the workers reconcile with
    every Alertmanager; `am_token` is the bearer token Alertmanager sends (another than
    WEBHOOK_TOKEN: every post is refused with 401, which Alertmanager never retries).

    Stop it with close(), also when start() failed half-way.
    """

    def __init__(self, workdir: Path, database_url: str, receivers: int = 1,
                 workers: int = 1, run: str = "r", lease: float = 30.0,
                 reconcile: dict | None = None, am_token: str = WEBHOOK_TOKEN) -> None:
        self.workdir, self.database_url, self.run = Path(workdir), database_url, run
        self.n_receivers, self.n_workers, self.lease = receivers, workers, lease
        self.reconcile, self.am_token = reconcile, am_token
        self.pager: NotificationSink | None = None
        self.chat: NotificationSink | None = None
        self.receivers: list[Receiver] = []
        self.workers: list[Worker] = []
        self.alertmanagers: list[Alertmanager] = []
        self.ledger: Ledger | None = None
        self.sent = 0

    def __enter__(self) -> FaultBed:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def am_urls(self) -> list[str]:
        return [am.url for am in self.alertmanagers]

    def start(self) -> FaultBed:
        from receiver.store import migrate

        self.workdir.mkdir(parents=True, exist_ok=True)
        migrate.upgrade(self.database_url)
        self.pager = NotificationSink(tls_dir=self.workdir / "tls", keep=1_000_000).start()
        self.chat = NotificationSink(keep=1_000_000).start()
        self.ledger = Ledger(self.database_url, self.pager, self.chat, self.run)
        for i in range(self.n_receivers):
            receiver = Receiver(self.workdir, self.database_url, f"receiver{i}")
            self.receivers.append(receiver)
            receiver.start()
        token = self.workdir / "webhook-token"
        token.write_text(self.am_token)
        cluster = [free_port() for _ in self.receivers] if len(self.receivers) > 1 else []
        for i, receiver in enumerate(self.receivers):
            d = self.workdir / f"alertmanager{i}"
            d.mkdir(exist_ok=True)
            config = d / "alertmanager.yml"
            config.write_text(alertmanager_config(receiver.url, token))
            if cluster:
                node = AlertmanagerNode(config, d, cluster[i],
                                        [p for p in cluster if p != cluster[i]])
            else:
                node = Alertmanager(config, d)
            self.alertmanagers.append(node)
        if cluster:
            wait_until(self._clustered, 60, "the Alertmanager cluster to form")
        reconcile = (None if self.reconcile is None
                     else {**self.reconcile, "alertmanagers": self.am_urls})
        for i in range(self.n_workers):
            worker = Worker(self.workdir, self.database_url, self.pager, self.chat,
                            f"worker{i}", self.lease, reconcile)
            self.workers.append(worker)
            worker.start()
        return self

    def _clustered(self) -> bool:
        for url in self.am_urls:
            status = requests.get(f"{url}/api/v2/status", timeout=5).json()
            peers = (status.get("cluster") or {}).get("peers") or []
            if len(peers) < len(self.alertmanagers):
                return False
        return True

    def close(self) -> None:
        for group in (self.alertmanagers, self.receivers, self.workers):
            for proc in group:
                try:
                    proc.stop()
                except Exception:  # stop the rest regardless
                    pass
        for sink in (self.pager, self.chat):
            if sink is not None:
                sink.stop()
        if self.ledger is not None:
            self.ledger.close()

    # -- load ------------------------------------------------------------------------
    def pusher(self, count: int, groups: int, starts_at: datetime, **kw) -> Pusher:
        self.sent += count
        return Pusher(self.am_urls, count, groups, self.run, starts_at, **kw)

    def held(self) -> set[str]:
        """What every node holds (each node gets every alert: the union must equal each)."""
        found: set[str] = set()
        for url in self.am_urls:
            found |= held(url, self.run)
        return found

    def am_metric(self, name: str) -> list[float]:
        """One figure per node: the sum of `name`'s webhook series (posts, failures)."""
        figures = []
        for url in self.am_urls:
            text = requests.get(f"{url}/metrics", timeout=5).text
            figures.append(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                               if line.startswith(name + "{")
                               and 'integration="webhook"' in line))
        return figures

    def resolve(self, count: int, groups: int, starts_at: datetime, batch: int = 200) -> None:
        """Post every alert again with endsAt in the past: Alertmanager resolves them."""
        ended = datetime.now(UTC) - timedelta(seconds=1)
        for offset in range(0, count, batch):
            push(self.am_urls, make_alerts(range(offset, min(count, offset + batch)), groups,
                                           starts_at, ended, run=self.run))

    # -- convergence -----------------------------------------------------------------
    def count(self) -> Counts:
        return self.ledger.count(self.sent, self.held())

    def converged_firing(self, groups: int) -> Counts | None:
        """Everything Alertmanager holds is stored, one open incident per group is paged
        on every channel, and the outbox has nothing left to do."""
        c = self.count()
        done = (c.held == c.sent and c.lost == 0 and c.open_incidents >= groups
                and c.unpaged == 0 and c.outbox_busy == 0)
        return c if done else None

    def converged_resolved(self) -> Counts | None:
        """Every incident resolved, every page resolved, the outbox idle."""
        c = self.ledger.count(self.sent, set())
        done = (c.incidents and c.resolved_incidents == c.incidents and c.firing == 0
                and c.missing_resolves == 0 and c.outbox_busy == 0)
        return c if done else None

    def settle(self, check: Callable[[], Counts | None], timeout: float, what: str) -> Counts:
        """Wait for `check` to hold; on timeout the error carries the last counts."""
        last: list[Counts | None] = [None]

        def probe():
            try:
                value = check()
            except (requests.RequestException, sa.exc.DBAPIError):
                return None
            last[0] = value if value is not None else self.count_quietly()
            return value

        try:
            return wait_until(probe, timeout, what, every=0.5)
        except ServerError as exc:
            counts = last[0].row() if last[0] else None
            raise ServerError(f"{exc}; last counts: {json.dumps(counts)}") from None

    def count_quietly(self) -> Counts | None:
        try:
            return self.count()
        except (requests.RequestException, sa.exc.DBAPIError):
            return None
