"""Steps never wait for deliveries, and one slow channel never holds back another.

The real Worker loop runs in a thread against local recording servers, one of which
answers slowly (a Slack having a bad night); the order in which things reach the
database shows who waited for whom. Also the batched outcome write: each row fenced by
its own lease, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import timedelta

import escalation_helpers
import pytest
import sqlalchemy as sa
from escalation_helpers import firing_payload, write_policies
from prometheus_client import CollectorRegistry, generate_latest
from support.waiting import wait_for
from test_escalation_flow import SECRET, open_incident

from receiver.escalation.outbox import Finished, claim, finish_all, outcome_values
from receiver.escalation.settings import WorkerSettings
from receiver.escalation.tables import notifications
from receiver.escalation.timers import on_incident_event
from receiver.escalation.worker import Worker, utcnow
from receiver.payload import parse
from receiver.store import Store, migrate
from ticketmon.simulator.notification_sink import NotificationSink

sink = escalation_helpers.sink
n = notifications.c


@pytest.fixture
def store(database_url):
    migrate.upgrade(database_url)
    s = Store(database_url, hooks=[on_incident_event])
    yield s
    s.dispose()


@pytest.fixture
def slow_sink():
    server = NotificationSink().start()
    yield server
    server.stall(0)
    server.stop()


def worker_for(store, policies, urls: dict[str, str], registry=None, **extra) -> Worker:
    channels = {name: {"type": "webhook", "url": url, "secret": SECRET, "timeout": 2,
                       "allow_insecure_http": True}
                for name, url in urls.items()}
    settings = WorkerSettings(database_url=store.url, policies_file=policies, channels=channels,
                              metrics_port=0, **{"poll_interval": 0.05, **extra})
    return Worker(settings, registry=registry or CollectorRegistry())


def delivered(store) -> Counter:
    with store.engine.connect() as conn:
        return Counter(conn.execute(sa.select(n.channel).where(n.state == "delivered"))
                       .scalars().all())


class Running:
    """The worker's real loop (step thread + dispatcher) in a background thread."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.thread = threading.Thread(target=worker.run, daemon=True)

    def __enter__(self) -> Worker:
        self.thread.start()
        return self.worker

    def __exit__(self, *exc) -> None:
        self.worker.stop()
        self.thread.join(30)
        assert not self.thread.is_alive(), "worker did not stop"


def test_a_commit_wakes_the_worker_instead_of_its_next_poll(store, sink, tmp_path):
    """A new incident's first step is due at once and a resolve is due when written: with
    a 30 s poll, both still go out at once, because the receiver's commit wakes the worker
    (PostgreSQL NOTIFY, SQLite's data_version)."""
    policies = write_policies(tmp_path / "p.yaml", [("0s", ["pager"])])
    worker = worker_for(store, policies, {"pager": f"{sink.url}/pager"}, poll_interval=30)
    with Running(worker):
        time.sleep(0.5)  # the loops are asleep now: nothing is due, next look in 30 s
        open_incident(store)
        wait_for(lambda: sink.received("/pager"), 5, "the page, well before the next poll")
        store.ingest(parse(json.dumps(firing_payload(1, status="resolved")).encode()))
        wait_for(lambda: len(sink.received("/pager")) == 2, 5, "the resolve")
    assert [m.json()["action"] for m in sink.received("/pager")] == ["trigger", "resolve"]


def test_a_slow_channel_does_not_hold_back_another(store, sink, slow_sink, tmp_path):
    policies = write_policies(tmp_path / "p.yaml", [("0s", ["chat", "pager"])])
    worker = worker_for(store, policies, {"chat": f"{slow_sink.url}/chat",
                                          "pager": f"{sink.url}/pager"}, concurrency=1)
    slow_sink.stall(0.25)  # 12 chat messages on one thread: 3 s
    for i in range(12):
        open_incident(store, i)
    with Running(worker):
        counts = wait_for(lambda: (c := delivered(store))["pager"] == 12 and c, 20,
                          "every page")
        assert counts["chat"] <= 6, counts  # the pages did not queue behind the chat backlog
        slow_sink.stall(0)
        wait_for(lambda: delivered(store)["chat"] == 12, 20, "the chat backlog")
    ids = Counter(m.headers["X-Ticketmon-Delivery"] for m in sink.received("/")
                  + slow_sink.received("/"))
    assert len(ids) == 24 and set(ids.values()) == {1}


def test_steps_are_written_while_deliveries_back_up(store, slow_sink, tmp_path):
    policies = write_policies(tmp_path / "p.yaml", [("0s", ["chat"])])
    registry = CollectorRegistry()
    worker = worker_for(store, policies, {"chat": f"{slow_sink.url}/chat"}, registry,
                        concurrency=1, batch_size=5)
    slow_sink.stall(0.5)
    for i in range(30):
        open_incident(store, i)
    with Running(worker):
        def all_steps_written() -> bool:
            with store.engine.connect() as conn:
                return conn.execute(sa.select(sa.func.count()).select_from(notifications)
                                    ).scalar() == 30
        wait_for(all_steps_written, 20, "every step in the outbox")
        assert delivered(store)["chat"] <= 5  # 30 steps went through 6 batches meanwhile
        slow_sink.stall(0)
    text = generate_latest(registry).decode()
    assert "ticketmon_receiver_escalation_lateness_seconds_count 30.0" in text


def test_outcomes_written_together_are_each_fenced_by_their_lease(store, sink, tmp_path):
    policies = write_policies(tmp_path / "p.yaml", [("0s", ["chat", "pager", "mail", "sms"])])
    worker = worker_for(store, policies, {name: f"{sink.url}/{name}"
                                          for name in ("chat", "pager", "mail", "sms")})
    open_incident(store)
    worker.fire_due_steps()
    now = utcnow()
    with store.engine.begin() as conn:
        # a lane per channel, and None for every channel not named
        items = claim(conn, "me", now, 60.0, {"chat": 1, "pager": 0, None: 5})
    assert sorted(i.row["channel"] for i in items) == ["chat", "mail", "sms"]
    assert all(i.incident is not None and i.incident["severity"] == "critical" for i in items)
    by_channel = {i.row["channel"]: i.row for i in items}
    with store.engine.begin() as conn:  # the lease on sms ran out and another worker took it
        conn.execute(notifications.update().where(n.id == by_channel["sms"]["id"])
                     .values(lease_owner="other"))
    outcomes = [
        Finished(by_channel["chat"], outcome_values(by_channel["chat"], now, "delivered", "",
                                                    worker.retry)),
        Finished(by_channel["mail"], outcome_values(by_channel["mail"], now, "retry",
                                                    "HTTP 503", worker.retry, 30.0)),
        Finished(by_channel["sms"], outcome_values(by_channel["sms"], now, "delivered", "",
                                                   worker.retry)),
    ]
    with store.engine.begin() as conn:
        assert finish_all(conn, "me", outcomes) == ["delivered", "pending", None]
    with store.engine.connect() as conn:
        rows = {r["channel"]: r for r in conn.execute(sa.select(notifications)).mappings()}
    assert rows["chat"]["state"] == "delivered" and rows["chat"]["finished_at"] == now
    assert rows["chat"]["lease_owner"] is None
    assert rows["mail"]["state"] == "pending" and rows["mail"]["last_error"] == "HTTP 503"
    assert rows["mail"]["next_attempt_at"] >= now + timedelta(seconds=30)
    assert rows["mail"]["finished_at"] is None and rows["mail"]["lease_owner"] is None
    assert (rows["sms"]["state"], rows["sms"]["lease_owner"]) == ("delivering", "other")
    assert rows["pager"]["state"] == "pending"  # its lane had no room
