"""The production shape: gunicorn with two workers on PostgreSQL.

An Alertmanager HA pair posts the same notification at the same moment; whichever
workers take them, one incident results. /metrics sums both workers' counters.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import requests
from support.receiver import WEBHOOK_TOKEN, count, payload_bytes

from receiver.store import Store, migrate
from ticketmon.servers.process import ManagedProcess, free_port


def test_same_post_to_two_workers_at_once_makes_one_incident(postgres_url, tmp_path):
    migrate.upgrade(postgres_url)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = ManagedProcess(
        "receiver",
        [str(Path(sys.executable).parent / "gunicorn"), "-c", "python:receiver.gunicorn_conf",
         "-w", "2", "-b", f"127.0.0.1:{port}", "--no-control-socket", "receiver.wsgi:app"],
        tmp_path / "gunicorn.log",
        env={"TICKETMON_DATABASE_URL": postgres_url, "TICKETMON_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
             "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")})
    try:
        proc.wait_http(f"{url}/readyz")
        body = payload_bytes("group-3-firing")
        barrier = threading.Barrier(12)
        codes: list[int] = []

        def post() -> None:
            with requests.Session() as session:
                barrier.wait()
                codes.append(session.post(
                    f"{url}/api/v1/alertmanager", data=body, timeout=30,
                    headers={"Authorization": f"Bearer {WEBHOOK_TOKEN}",
                             "Content-Type": "application/json"}).status_code)

        threads = [threading.Thread(target=post) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert codes == [200] * 12
        store = Store(postgres_url)
        assert count(store, "incidents") == 1 and count(store, "alerts") == 3
        assert count(store, "events", "kind = 'opened'") == 1
        store.dispose()

        metrics = requests.get(f"{url}/metrics", timeout=10).text
        lines = dict(line.rsplit(" ", 1) for line in metrics.splitlines()
                     if line and not line.startswith("#"))
        assert float(lines['ticketmon_receiver_alerts_received_total{status="firing"}']) == 36
        assert float(lines["ticketmon_receiver_alerts_duplicate_total"]) == 33
    finally:
        proc.stop()


def test_every_line_gunicorn_writes_is_json(sqlite_url, tmp_path):
    """The README's promise: gunicorn's own start-up, access and shutdown lines included."""
    import json

    migrate.upgrade(sqlite_url)
    port = free_port()
    log_file = tmp_path / "gunicorn.log"  # stdout and stderr, as a container runtime sees them
    proc = ManagedProcess(
        "receiver",
        [str(Path(sys.executable).parent / "gunicorn"), "-c", "python:receiver.gunicorn_conf",
         "-w", "2", "-b", f"127.0.0.1:{port}", "--access-logfile", "-", "receiver.wsgi:app"],
        log_file,
        env={"TICKETMON_DATABASE_URL": sqlite_url, "TICKETMON_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
             "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")})
    try:
        proc.wait_http(f"http://127.0.0.1:{port}/healthz")
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        proc.stop()
    lines = [line for line in log_file.read_text().splitlines() if line.strip()]
    docs = [json.loads(line) for line in lines]  # a plain line fails here, naming itself
    assert all({"ts", "level", "logger", "msg"} <= set(doc) for doc in docs)
    said = [(doc["logger"], doc["msg"]) for doc in docs]
    assert any(lg == "gunicorn.error" and m.startswith("Starting gunicorn") for lg, m in said)
    assert any(lg == "gunicorn.error" and m.startswith("Booting worker") for lg, m in said)
    assert any(lg == "gunicorn.access" and "/healthz" in m for lg, m in said)
