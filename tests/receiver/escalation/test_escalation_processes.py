"""Real processes: a worker killed mid-delivery, and 2 web + 2 workers on one PostgreSQL."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter

import escalation_helpers
import requests
import sqlalchemy as sa
import yaml
from escalation_helpers import firing_payload, write_policies

from receiver.escalation.tables import notifications
from receiver.store import migrate
from ticketmon.servers.process import ManagedProcess, free_port

sink = escalation_helpers.sink
SECRET = "webhook-signing-secret-0123456789"
WEBHOOK_TOKEN = "webhook-token-for-tests-0123456789"
OPERATOR_TOKEN = "operator-token-for-tests-0123456789"


def worker_config(path, url, sink, policies, channels=("chat", "pager"), **extra):
    cfg = {
        "database_url": url, "policies_file": str(policies), "metrics_port": free_port(),
        "poll_interval": "0.1s", "retry_base": "0.05s", "retry_cap": "0.2s",
        "channels": {name: {"type": "webhook", "url": f"{sink.url}/{name}", "secret": SECRET,
                            "timeout": 1.0, "allow_insecure_http": True} for name in channels},
        **extra,
    }
    path.write_text(yaml.safe_dump(cfg))
    return path, cfg["metrics_port"]


def start_worker(workdir, config, name="worker") -> ManagedProcess:
    return ManagedProcess(name, [sys.executable, "-m", "ticketmon", "receiver", "worker",
                                 "--config", str(config)], workdir / f"{name}.log")


def wait_for(predicate, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def rows(url) -> list[dict]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(notifications)).mappings()]
    finally:
        engine.dispose()


def test_worker_killed_mid_delivery_loses_nothing(sqlite_url, sink, tmp_path):
    from receiver.escalation.timers import on_incident_event
    from receiver.payload import parse
    from receiver.store import Store

    migrate.upgrade(sqlite_url)
    store = Store(sqlite_url, hooks=[on_incident_event])
    store.ingest(parse(json.dumps(firing_payload(1)).encode()))
    store.dispose()
    policies = write_policies(tmp_path / "p.yaml", [("0s", ["chat"])])
    config, _ = worker_config(tmp_path / "w.yaml", sqlite_url, sink, policies, lease="3s")
    sink.stall(3)  # the first delivery is in flight when the worker dies, however busy the box
    first = start_worker(tmp_path, config, "worker1")
    try:
        wait_for(lambda: rows(sqlite_url) and rows(sqlite_url)[0]["state"] == "delivering",
                 what="a delivery in flight")
        time.sleep(0.2)
        first.proc.kill()  # SIGKILL: no clean-up of any kind
        first.proc.wait()
    finally:
        first.stop()
    assert rows(sqlite_url)[0]["state"] == "delivering"
    sink.stall(0)
    second = start_worker(tmp_path, config, "worker2")
    try:
        wait_for(lambda: rows(sqlite_url)[0]["state"] == "delivered", 20, "re-delivery")
    finally:
        second.stop()
    [row] = rows(sqlite_url)
    assert row["attempts"] == 2
    deliveries = {m.headers["X-Ticketmon-Delivery"] for m in sink.received("/chat")}
    # the same delivery id both times (installation + outbox key): the far end drops a repeat
    [delivery] = deliveries
    assert delivery.endswith("/" + row["key"]) and len(delivery) > len(row["key"]) + 30


def test_two_web_processes_two_workers_200_incidents_each_step_exactly_once(
        postgres_url, sink, tmp_path):
    migrate.upgrade(postgres_url)
    policies = write_policies(tmp_path / "p.yaml", [("0s", ["chat", "pager"]),
                                                    ("1s", ["chat"]), ("2s", ["pager"])])
    web_cfg = tmp_path / "receiver.yaml"
    web_cfg.write_text(yaml.safe_dump({
        "database_url": postgres_url, "webhook_token": WEBHOOK_TOKEN, "auto_migrate": False,
        "api_tokens": [{"name": "ops", "role": "operator", "tenant": "acme",
                        "token": OPERATOR_TOKEN}]}))
    webs, workers = [], []
    try:
        for i in range(2):
            port = free_port()
            proc = ManagedProcess(f"web{i}", [sys.executable, "-m", "ticketmon", "receiver",
                                              "serve", "--config", str(web_cfg),
                                              "--port", str(port)], tmp_path / f"web{i}.log")
            webs.append((proc, f"http://127.0.0.1:{port}"))
        for i in range(2):
            config, mport = worker_config(tmp_path / f"w{i}.yaml", postgres_url, sink, policies,
                                          worker_id=f"w{i}")
            workers.append((start_worker(tmp_path, config, f"worker{i}"), mport))
        for proc, url in webs:
            proc.wait_http(url + "/healthz")
        session = requests.Session()
        auth = {"Authorization": f"Bearer {WEBHOOK_TOKEN}"}
        for n in range(200):
            url = webs[n % 2][1]
            resp = session.post(f"{url}/api/v1/alertmanager", json=firing_payload(n),
                                headers=auth, timeout=10)
            assert resp.status_code == 200, resp.text
        expected_triggers = 200 * 4
        wait_for(lambda: sum(r["action"] == "trigger" and r["state"] == "delivered"
                             for r in rows(postgres_url)) == expected_triggers, 40,
                 "every step of every incident")
        ids = sorted({r["incident_id"] for r in rows(postgres_url)})
        op = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        for i, incident in enumerate(ids):
            resp = session.post(f"{webs[i % 2][1]}/api/v1/incidents/{incident}/resolve",
                                headers=op, timeout=10)
            assert resp.status_code == 200, resp.text
        wait_for(lambda: sum(r["state"] == "delivered" for r in rows(postgres_url))
                 == expected_triggers + 400, 40, "every resolve")
        per_worker = []
        for _, mport in workers:
            text = requests.get(f"http://127.0.0.1:{mport}/metrics", timeout=5).text
            per_worker.append(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                                  if line.startswith("ticketmon_receiver_notifications_total{")
                                  # attempts by outcome: a retry under load is one more
                                  and 'outcome="delivered"' in line))
    finally:
        for proc, _ in workers:
            proc.stop()
        for proc, _ in webs:
            proc.stop()
    received = Counter(m.headers["X-Ticketmon-Delivery"] for m in sink.received("/"))
    assert len(received) == expected_triggers + 400
    assert set(received.values()) == {1}, [k for k, v in received.items() if v > 1][:5]
    steps = Counter((json.loads(m.body)["incident"]["id"], json.loads(m.body)["step"],
                     m.path) for m in sink.received("/") if json.loads(m.body)["action"]
                    == "trigger")
    assert len(steps) == expected_triggers and set(steps.values()) == {1}
    assert all(count > 0 for count in per_worker), per_worker  # both workers shared the work
    assert sum(per_worker) == expected_triggers + 400
