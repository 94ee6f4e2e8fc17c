"""Known secrets fed through every logger and error path never come out.

Each component is configured the way it runs (YAML through `config.load`), then made to
fail with credentials in the failure: the receiver (API errors, an unhandled exception,
/readyz on a PostgreSQL URL with a password that cannot connect), the worker (a failing
channel delivery whose error quotes its URL, the API's notification listing, its command
on an unreachable database), the exporters (a failing collector's /healthz and log, the
business exporter's --check on a password URL), the fraud service (auth errors, a
database with a password it cannot reach) and gunicorn's own error log as our gunicorn
configs set it up. Every log stream, HTTP body and printed line is then searched for
each secret.
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
from pathlib import Path

import pytest
import requests
import yaml

from ticketmon.core import config, logs
from ticketmon.core.metrics_guard import GuardSettings
from ticketmon.servers.process import free_port

TM_TOKEN = "tm_leakcheck_9f8e7d6c5b4a39281706"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJsZWFrY2hlY2sifQ.bGVha2NoZWNrLXNpZ25hdHVyZQ"
DB_PASSWORD = "Db-Leak-Pw-5e4d3c2b"
SLACK_PATH_SECRET = "LeakSlackPathSecret77"
SLACK_URL = f"https://hooks.slack.com/services/T0LEAK11/B0LEAK22/{SLACK_PATH_SECRET}"
PD_KEY = "0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d"
ROUTING_KEY = "Rk-leak-routing-key-31415926"
SHAPELESS = "nothing-about-me-says-secret-271828"  # a configured SecretStr, no telltale shape
QUERY_TOKEN = "qs-leak-token-161803"
USERINFO_PW = "url-pass-leak-141421"
API_KEY = "ak-leak-173205"
SECRETS = [TM_TOKEN, JWT, DB_PASSWORD, SLACK_PATH_SECRET, PD_KEY, ROUTING_KEY, SHAPELESS,
           QUERY_TOKEN, USERINFO_PW, API_KEY, "bGVha2NoZWNr"]


def _closed_port_url() -> str:
    return f"postgresql+psycopg2://ticketmon:{DB_PASSWORD}@127.0.0.1:{free_port()}/ticketmon"


# what an exception from a library might say about where it was going
QUOTED = (f"POST https://ops:{USERINFO_PW}@hooks.example.com/x?token={QUERY_TOKEN}&page=2 "
          f"failed (Authorization: Bearer {TM_TOKEN}; jwt {JWT}; api_key={API_KEY}; "
          f"{SLACK_URL}; https://events.pagerduty.com/integration/{PD_KEY}/enqueue; "
          f"routing_key={ROUTING_KEY}; {_closed_port_url()}; hmac {SHAPELESS})")


@pytest.fixture
def out(capsys, tmp_path):
    """One place that collects every output; `out.check()` fails on any secret in it."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    logs.setup("debug", stream)
    # SHAPELESS is a configured secret of every process here: its /metrics password
    config.load(GuardSettings, _yaml(tmp_path, "guard", {
        "basic_auth_username": "prometheus", "basic_auth_password": SHAPELESS}), environ={})

    class Out:
        bodies: list[str] = []

        def add(self, body: str | bytes) -> None:
            self.bodies.append(body.decode() if isinstance(body, bytes) else body)

        def check(self) -> str:
            captured = capsys.readouterr()
            text = "\n".join([stream.getvalue(), captured.out, captured.err, *self.bodies])
            leaked = [s for s in SECRETS if s in text]
            assert not leaked, f"leaked {leaked}:\n{text[-6000:]}"
            return text

    yield Out()
    root.handlers[:], level = saved
    root.setLevel(level)


def _yaml(tmp_path: Path, name: str, doc: dict) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_every_logger_masks_message_fields_nested_values_and_tracebacks(out):
    for name in ("receiver", "receiver.escalation.worker", "ticketmon.exporters",
                 "exporters.fraud", "gunicorn.error", "ticketmon.stack", "werkzeug"):
        log = logging.getLogger(name)
        log.warning("delivery failed: %s", QUOTED,
                    extra={"detail": f"token={QUERY_TOKEN}", "url": SLACK_URL,
                           "nested": {"deep": [f"Bearer {TM_TOKEN}", {"password": "x" * 9}],
                                      "headers": {"Authorization": f"Basic {JWT[:12]}"}},
                           "routing_key": ROUTING_KEY, "why": SHAPELESS})
        try:
            raise ConnectionError(QUOTED)
        except ConnectionError:
            log.exception("unexpected", stack_info=True, extra={"dsn": _closed_port_url()})
    text = out.check()
    assert text.count("***") > 50  # masked, not dropped


def test_exporter_healthz_and_log_of_a_failing_collector(out):
    from exporters.framework.server import Exporter, HttpSettings
    from exporters.framework.snapshot import SnapshotCollector

    class Failing(SnapshotCollector):
        name = "leaky"

        def __init__(self) -> None:
            super().__init__(interval=0.1, timeout=2.0)

        def collect_snapshot(self):
            raise RuntimeError(QUOTED)

    exporter = Exporter("leaktest", [Failing()], HttpSettings(port=0))
    exporter.start()
    try:
        deadline = time.monotonic() + 10
        while not exporter.collectors[0].health.errors and time.monotonic() < deadline:
            time.sleep(0.05)
        body = requests.get(f"{exporter.url}/healthz", timeout=5).text
        assert json.loads(body)["collectors"]["leaky"]["last_error"].startswith("RuntimeError")
        out.add(body)
    finally:
        exporter.stop()
    out.check()


def test_business_exporter_check_on_a_password_url_that_cannot_connect(out, tmp_path):
    from ticketmon import cli

    cfg = _yaml(tmp_path, "business", {"platform_database_url": _closed_port_url(),
                                       "timeout_seconds": 3, "http": {"port": 0}})
    assert cli.main(["exporter", "business", "--config", str(cfg), "--check"]) == 1
    assert "FAILED" in out.check()


def test_worker_command_on_a_password_url_that_cannot_connect(out, tmp_path):
    from ticketmon import cli

    cfg = _yaml(tmp_path, "worker", {"database_url": _closed_port_url(), "metrics_port": 0})
    assert cli.main(["receiver", "worker", "--config", str(cfg)]) != 0
    out.check()


def _receiver_app(tmp_path: Path, database_url: str):
    from receiver.app import create_app
    from receiver.settings import ReceiverSettings

    cfg = _yaml(tmp_path, "receiver", {
        "database_url": database_url, "webhook_token": "w" * 32,
        "api_tokens": [{"name": "ops", "role": "admin", "tenant": "*",
                        "token": "tm_ops_token_0123456789abcdef"}],
        "jwt": {"hs256_secret": SHAPELESS + "-0123456789abcdef0123"}})
    return create_app(config.load(ReceiverSettings, cfg, environ={}))


def test_receiver_error_bodies_unhandled_errors_and_readyz(out, tmp_path, sqlite_url):
    from receiver.store import migrate

    migrate.upgrade(sqlite_url)
    app = _receiver_app(tmp_path, sqlite_url)

    def boom():
        raise RuntimeError(QUOTED)

    app.add_url_rule("/boom", "boom", boom)
    client = app.test_client()
    for header in (f"Bearer {TM_TOKEN}", f"Bearer {JWT}", f"Basic {JWT}", QUOTED):
        resp = client.get("/api/v1/incidents", headers={"Authorization": header})
        assert resp.status_code == 401
        out.add(resp.data)
    resp = client.get(f"/api/v1/incidents?token={QUERY_TOKEN}&limit={TM_TOKEN}",
                      headers={"Authorization": "Bearer tm_ops_token_0123456789abcdef"})
    out.add(resp.data)
    resp = client.get("/boom")
    assert resp.status_code == 500
    out.add(resp.data)
    app.extensions["ticketmon_receiver"].store.dispose()

    down = _receiver_app(tmp_path, _closed_port_url())
    resp = down.test_client().get("/readyz")
    assert resp.status_code == 503
    out.add(resp.data)
    down.extensions["ticketmon_receiver"].store.dispose()
    out.check()


def test_failing_channel_delivery_last_error_in_the_api_and_the_log(out, tmp_path, sqlite_url):
    import sqlalchemy as sa

    from receiver.channels.base import DeliveryResult, Outcome
    from receiver.escalation.settings import WorkerSettings
    from receiver.escalation.tables import notifications
    from receiver.escalation.worker import Worker
    from receiver.payload import parse
    from receiver.store import migrate

    migrate.upgrade(sqlite_url)
    app = _receiver_app(tmp_path, sqlite_url)
    policies = tmp_path / "policies.yaml"
    policies.write_text(yaml.safe_dump({"policies": [{
        "name": "all", "match": {}, "steps": [{"after": "0s", "channels": ["hook", "slack"]}]}]}))
    cfg = _yaml(tmp_path, "worker", {
        "database_url": sqlite_url, "policies_file": str(policies), "metrics_port": 0,
        "retry_base": 0.01, "retry_cap": 0.02, "max_attempts": 2,
        "channels": {
            # nothing listens there: a real connection failure
            "hook": {"type": "webhook", "secret": SHAPELESS, "timeout": 2,
                     "url": f"https://ops:{USERINFO_PW}@127.0.0.1:{free_port()}/h?token="
                            f"{QUERY_TOKEN}"},
            "slack": {"type": "slack", "webhook_url": SLACK_URL, "timeout": 2}}})
    from prometheus_client import CollectorRegistry

    worker = Worker(config.load(WorkerSettings, cfg, environ={}), registry=CollectorRegistry())
    # a channel whose error text quotes what it was sending to (a library's message)
    worker.channels["slack"].send = lambda message: DeliveryResult(Outcome.PERMANENT, QUOTED)
    store = app.extensions["ticketmon_receiver"].store
    doc = json.loads((Path(__file__).parents[1] / "fixtures" / "alertmanager" /
                      "alertmanager-0.25-firing.json").read_text())
    store.ingest(parse(json.dumps(doc).encode()))
    for _ in range(40):
        worker.run_once()
        with worker.engine.connect() as conn:
            busy = conn.execute(sa.select(sa.func.count()).select_from(notifications).where(
                notifications.c.state.in_(("pending", "delivering")))).scalar()
        if not busy:
            break
        time.sleep(0.05)
    client = app.test_client()
    headers = {"Authorization": "Bearer tm_ops_token_0123456789abcdef"}
    resp = client.get("/api/v1/dead-letters", headers=headers)
    dead = resp.json["notifications"]
    assert {d["channel"] for d in dead} == {"hook", "slack"}, dead
    assert all(d["last_error"] for d in dead)
    out.add(resp.data)
    worker.stopping.set()
    store.dispose()
    out.check()


def _gunicorn_logger(conf: str):
    """gunicorn's own logger, set up from one of our gunicorn configs."""
    import importlib

    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    before = dict(os.environ)  # importing a gunicorn config sets PROMETHEUS_MULTIPROC_DIR,
    try:                       # which would switch later tests' metrics to multiprocess mode
        module = importlib.import_module(conf)
    finally:
        os.environ.clear()
        os.environ.update(before)
    cfg = Config()
    cfg.set("logconfig_dict", module.logconfig_dict)
    return Logger(cfg)


def test_fraud_service_auth_errors_and_an_unreachable_password_database(out, tmp_path,
                                                                         sqlite_url):
    from exporters.fraud.app import create_app
    from exporters.fraud.settings import FraudSettings

    def settings(database_url: str) -> FraudSettings:
        return config.load(FraudSettings, _yaml(tmp_path, "fraud", {
            "database_url": database_url,
            "auth": {"tokens": [{"name": "checkout", "role": "operator", "tenant": "acme",
                                 "token": "tm_checkout_token_0123456789"}],
                     "jwt": {"hs256_secret": SHAPELESS + "-0123456789abcdef0123"}},
            "recorder": {"flush_seconds": 0.05}, "outlier": {"min_samples": 50}}), environ={})

    app = create_app(settings(sqlite_url))
    try:
        client = app.test_client()
        for header in (f"Bearer {TM_TOKEN}", f"Bearer {JWT}", QUOTED):
            resp = client.post("/api/v1/fraud/check", json={"user_id": "u", "event_id": "e",
                                                            "quantity": 1},
                               headers={"Authorization": header})
            assert resp.status_code == 401
            out.add(resp.data)
        out.add(client.get("/healthz").data)
    finally:
        app.extensions["fraud"].stop()

    # a database it cannot reach: the worker fails to boot, gunicorn logs why
    log = _gunicorn_logger("exporters.fraud.gunicorn_conf")
    with pytest.raises(Exception) as failed:
        create_app(settings(_closed_port_url()))
    try:
        raise failed.value
    except Exception:
        log.exception("Exception in worker process")
    assert "Exception in worker process" in out.check()


@pytest.mark.parametrize("conf", ["receiver.gunicorn_conf", "exporters.fraud.gunicorn_conf"])
def test_gunicorn_error_log_as_our_configs_set_it_up(out, conf):
    logger = _gunicorn_logger(conf)
    try:
        raise OSError(QUOTED)
    except OSError:
        logger.exception("Error handling request %s", f"/x?token={QUERY_TOKEN}")
    logger.error("Worker failed: %s", QUOTED)
    text = out.check()
    assert "Error handling request" in text and '"level": "error"' in text
