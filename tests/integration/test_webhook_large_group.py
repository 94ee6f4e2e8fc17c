"""Issue #10 with real components: Alertmanager 0.25 groups 1,000 alerts with
~350-character labels into one post of several MiB, which the old 1 MiB limit refused
(413) at every flush, silently; the receiver under gunicorn now stores all of them in
one incident, and a receiver still configured with 1 MiB logs what it refused."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

from receiver.store import migrate
from ticketmon.servers.process import ManagedProcess, free_port

WEBHOOK_TOKEN = "integration-webhook-token-0123"
ALERTS = 1000


def alertmanager_config(receiver_url: str, small_url: str, token_file: Path) -> str:
    return f"""
route:
  receiver: ticketmon
  group_by: [alertname]
  group_wait: 2s
  group_interval: 5s
  repeat_interval: 1h
receivers:
  - name: ticketmon
    webhook_configs:
      - url: {receiver_url}/api/v1/alertmanager
        http_config:
          authorization: {{type: Bearer, credentials_file: {token_file}}}
      - url: {small_url}/api/v1/alertmanager
        http_config:
          authorization: {{type: Bearer, credentials_file: {token_file}}}
"""


def start_receiver(workdir: Path, name: str, **env: str) -> tuple[ManagedProcess, str, Path]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    db = workdir / f"{name}.db"
    migrate.upgrade(f"sqlite:///{db}")
    env.update({"TICKETMON_DATABASE_URL": f"sqlite:///{db}",
                "TICKETMON_WEBHOOK_TOKEN": WEBHOOK_TOKEN,
                "PROMETHEUS_MULTIPROC_DIR": str(workdir / f"{name}-metrics")})
    proc = ManagedProcess(
        name,
        [str(Path(sys.executable).parent / "gunicorn"), "-c", "python:receiver.gunicorn_conf",
         "-w", "2", "-b", f"127.0.0.1:{port}", "--no-control-socket", "receiver.wsgi:app"],
        workdir / f"{name}.log", env=env)
    proc.wait_http(f"{url}/readyz", timeout=30)
    return proc, url, db


def stored(db: Path) -> tuple[int, int]:
    with sqlite3.connect(db) as conn:
        return (conn.execute("SELECT count(*) FROM alerts").fetchone()[0],
                conn.execute("SELECT count(*) FROM incidents").fetchone()[0])


def test_alertmanager_posts_a_1000_alert_group_of_long_labels_and_all_are_stored(
        workdir, start_alertmanager):
    receiver, url, db = start_receiver(workdir, "receiver")
    # the same receiver with the old 1 MiB limit: what happened before issue #10
    small, small_url, small_db = start_receiver(workdir, "small",
                                                TICKETMON_MAX_BODY_BYTES=str(1 << 20))
    try:
        token_file = workdir / "webhook-token"
        token_file.write_text(WEBHOOK_TOKEN)
        am = start_alertmanager(alertmanager_config(url, small_url, token_file))
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        alerts = [{"labels": {"alertname": "BigGroup", "severity": "warning",
                              "tenant": "acme", "instance": f"host-{i}",
                              **{name: f"{name}-{i}-" + "x" * 340
                                 for name in ("pod", "image", "route")}},
                   "annotations": {"summary": "one of a large group"},
                   "startsAt": now} for i in range(ALERTS)]
        resp = requests.post(f"{am.url}/api/v2/alerts", json=alerts, timeout=30)
        assert resp.status_code == 200, resp.text

        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and (
                stored(db)[0] < ALERTS or "refused" not in small.log_path.read_text()):
            time.sleep(0.5)
        assert stored(db) == (ALERTS, 1)
        log = receiver.log_path.read_text()
        assert "refused" not in log and WEBHOOK_TOKEN not in log

        # the small one refused it, and now says so: size, group key and reason
        assert stored(small_db) == (0, 0)
        [line] = [json.loads(x) for x in small.log_path.read_text().splitlines()
                  if '"reason": "body_too_large"' in x][:1]
        assert line["reason"] == "body_too_large" and line["status"] == 413
        assert line["size_bytes"] > 1 << 20 and line["group_key"] == '{}:{alertname="BigGroup"}'
        metrics = requests.get(f"{small_url}/metrics", timeout=5).text
        assert 'ticketmon_receiver_webhook_refused_total{reason="body_too_large"}' in metrics
    finally:
        small.stop()
        receiver.stop()
