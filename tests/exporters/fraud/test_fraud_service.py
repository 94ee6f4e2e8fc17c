"""The service around the patterns: input checks, auth, bounded memory, store, metrics."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from support.promtool import promtool_check_metrics

from exporters.fraud.history import UserHistory
from exporters.fraud.request import parse
from exporters.fraud.settings import FraudSettings
from ticketmon.core.config import ConfigError, load
from ticketmon.servers.process import ManagedProcess, free_port

GOOD = {"user_id": "u1", "event_id": "e1", "quantity": 2}


@pytest.mark.parametrize("body, field", [
    ({"event_id": "e1", "quantity": 1}, "user_id"),
    ({**GOOD, "quantity": 0}, "quantity"),
    ({**GOOD, "quantity": "many"}, "quantity"),
    ({**GOOD, "quantity": "5"}, "quantity"),
    ({**GOOD, "quantity": True}, "quantity"),
    ({**GOOD, "quantity": 2.5}, "quantity"),
    ({**GOOD, "requests_per_minute": "3"}, "requests_per_minute"),
    ({**GOOD, "payment_methods_recent": False}, "payment_methods_recent"),
    ({**GOOD, "geo": {"lat": "1", "lon": 0}}, "geo.lat"),
    ({**GOOD, "user_id": ""}, "user_id"),
    ({**GOOD, "user_id": True}, "user_id"),
    ({**GOOD, "ip": "300.1.2.3"}, "ip"),
    ({**GOOD, "ip": "fe80::1%eth0"}, "ip"),
    ({**GOOD, "ip": 17}, "ip"),
    ({**GOOD, "geo": {"lat": 91, "lon": 0}}, "geo.lat"),
    ({**GOOD, "previous_geo": {"lat": 1, "lon": 2}}, "previous_geo.at"),
    ({**GOOD, "session": {"keystroke_intervals_ms": [1, -5]}}, "session.keystroke_intervals_ms.1"),
    ({**GOOD, "session": {"mouse_movements": 1.5}}, "session.mouse_movements"),
    ({**GOOD, "session": {"keystroke_intervals_ms": [1, True]}},
     "session.keystroke_intervals_ms.1"),
    ({**GOOD, "quantitty": 3}, "quantitty"),
    ([GOOD], "(body)"),
])
def test_bad_input_is_a_400_naming_the_field(client, fraud_app, body, field):
    answer = client.post("/api/v1/fraud/check", json=body)
    assert answer.status_code == 400
    assert field in [f["field"] for f in answer.json["fields"]], answer.json
    fraud_app.extensions["fraud"].recorder.flush()
    assert fraud_app.extensions["fraud"].recorder.written == 0  # nothing recorded


def test_numbers_are_json_numbers_and_integers_as_json_schema_counts_them(client):
    """5.0 and 1e3 are integers in the document's JSON Schema; a float field takes an int."""
    answer = client.post("/api/v1/fraud/check", data=b'{"user_id": 7, "event_id": "e1", '
                         b'"quantity": 2.0, "payment_methods_recent": 1e1, "requests_per_minute"'
                         b': 3, "session": {"mouse_movements": 4.0, "duration_seconds": 9}}',
                         content_type="application/json")
    assert answer.status_code == 200, answer.json
    req = parse(b'{"user_id": 7, "event_id": "e1", "quantity": 2.0, "payment_methods_recent": '
                b'1e1, "requests_per_minute": 3, "session": {"mouse_movements": 4.0}}')
    assert (req.user_id, req.quantity, req.payment_methods_recent) == ("7", 2, 10)
    assert type(req.quantity) is int and type(req.requests_per_minute) is float
    assert type(req.session.mouse_movements) is int


def test_unparseable_and_oversized_bodies(client):
    assert client.post("/api/v1/fraud/check", data=b"{not json",
                       content_type="application/json").status_code == 400
    assert client.post("/api/v1/fraud/check", data=b"x" * 70_000).status_code == 413
    assert client.get("/api/v1/fraud/check").status_code == 405


@pytest.mark.parametrize("size, status", [(1_000, 200), (70_000, 413)])
def test_a_chunked_body_is_read_to_its_end_and_bounded_like_a_sized_one(client, size, status):
    """gunicorn de-chunks and marks the stream terminated; no Content-Length to go by."""
    import io
    import json

    from werkzeug.test import EnvironBuilder, run_wsgi_app

    doc = json.dumps({**GOOD, "user_agent": "x" * size}).encode()
    environ = EnvironBuilder(path="/api/v1/fraud/check", method="POST",
                             headers={"Authorization": client.environ_base["HTTP_AUTHORIZATION"]}
                             ).get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ.update({"wsgi.input": io.BytesIO(doc), "wsgi.input_terminated": True,
                    "HTTP_TRANSFER_ENCODING": "chunked", "CONTENT_TYPE": "application/json"})
    _, answer, _ = run_wsgi_app(client.application, environ)
    assert answer.startswith(str(status)), answer


def test_token_auth_like_the_receiver(fraud_app):
    c = fraud_app.test_client()
    assert c.post("/api/v1/fraud/check", json=GOOD).status_code == 401
    assert c.post("/api/v1/fraud/check", json=GOOD,
                  headers={"Authorization": "Bearer tm_wrong_token_000000000"}).status_code == 401
    viewer = {"Authorization": "Bearer tm_grafana_viewer_0123456789"}
    assert c.post("/api/v1/fraud/check", json=GOOD, headers=viewer).status_code == 403
    assert c.get("/api/v1/fraud/events", headers=viewer).status_code == 200
    assert c.get("/api/v1/fraud/events").status_code == 401


def test_config_needs_auth_and_names_bad_keys(tmp_path):
    path = tmp_path / "fraud.yml"
    path.write_text("auth: {disabled: true}\npatterns: {bulk_purchase: {weight: 150}}\n")
    with pytest.raises(ConfigError, match="patterns.bulk_purchase.weight"):
        load(FraudSettings, path, environ={})
    path.write_text("database_url: sqlite://\n")
    with pytest.raises(ConfigError, match="auth"):
        load(FraudSettings, path, environ={})
    path.write_text("auth: {disabled: true}\nlevels: {review_from: 90, block_from: 80}\n")
    with pytest.raises(ConfigError, match="levels"):
        load(FraudSettings, path, environ={})


def test_history_stays_bounded_under_a_flood_of_distinct_users():
    history = UserHistory(max_users=1000, ttl_seconds=60)
    for i in range(50_000):
        history.record(f"user-{i}", 1000.0 + i * 0.001, (1.0, 2.0))
    assert len(history) == 1000 and history.evicted == 49_000
    # the most recent users are the ones kept, with their data
    earlier, previous = history.record("user-49999", 1100.0, None)
    assert earlier == [1000.0 + 49999 * 0.001] and previous[:2] == (1.0, 2.0)
    earlier, _ = history.record("user-0", 1100.0, None)
    assert earlier == []  # evicted, so a fresh start
    # idle users expire by age even under the cap
    history.record("late", 1000.0 + 3600, None)
    assert len(history) == 1


def test_flood_through_the_api_keeps_memory_bounded(make_fraud_app):
    app = make_fraud_app(history={"max_users": 100})
    c = app.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = "Bearer tm_checkout_token_0123456789"
    for i in range(1500):
        assert c.post("/api/v1/fraud/check", json={**GOOD, "user_id": f"f{i}"}).status_code == 200
    assert len(app.extensions["fraud"].history) == 100


def test_outlier_score_from_a_background_fit(make_fraud_app):
    app = make_fraud_app(outlier={"min_samples": 50})
    service = app.extensions["fraud"]
    c = app.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = "Bearer tm_checkout_token_0123456789"
    first = c.post("/api/v1/fraud/check", json=GOOD).json
    assert first["outlier_score"] is None  # no model yet: the request never fits one
    rng = np.random.default_rng(3)
    for i in range(300):
        c.post("/api/v1/fraud/check", json={
            **GOOD, "user_id": f"n{i}", "quantity": int(rng.integers(1, 4)),
            "session": {"duration_seconds": float(rng.uniform(60, 600)),
                        "mouse_movements": int(rng.integers(50, 500))}})
    assert service.outlier.refit()  # what the background thread does on its schedule
    normal = c.post("/api/v1/fraud/check", json={
        **GOOD, "user_id": "n-x", "quantity": 2,
        "session": {"duration_seconds": 300, "mouse_movements": 200}}).json
    odd = c.post("/api/v1/fraud/check", json={
        **GOOD, "user_id": "odd", "quantity": 400,
        "session": {"duration_seconds": 0.3, "mouse_movements": 0}}).json
    assert 0 <= normal["outlier_score"] < 0.9 and odd["outlier_score"] >= 0.99


def test_checks_are_recorded_and_high_risk_ones_listed(make_fraud_app, database_url, clock):
    app = make_fraud_app(database_url=database_url)
    service = app.extensions["fraud"]
    c = app.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = "Bearer tm_checkout_token_0123456789"
    c.post("/api/v1/fraud/check", json=GOOD)
    clock.advance(5)
    bad = c.post("/api/v1/fraud/check", json={**GOOD, "user_id": "scalper", "quantity": 50,
                                               "user_agent": "curl/8.1"}).json
    assert bad["risk_level"] == "critical" and bad["risk_score"] == 85
    service.recorder.flush()
    assert service.recorder.written == 2
    events = c.get("/api/v1/fraud/events").json
    assert [e["check_id"] for e in events] == [bad["check_id"]]
    assert events[0]["time"] == int(clock.now * 1000)
    assert set(events[0]["tags"]) >= {"fraud", "block", "bulk_purchase", "bot_user_agent"}
    assert len(c.get("/api/v1/fraud/events?min_level=low").json) == 2
    ms = int((clock.now - 1) * 1000)  # Grafana sends epoch milliseconds
    assert len(c.get(f"/api/v1/fraud/events?from={ms}&min_level=low").json) == 1
    for query in ("limit=0", "limit=abc", "since=yesterday", "min_level=extreme", "until=-5"):
        answer = c.get(f"/api/v1/fraud/events?{query}")
        assert answer.status_code == 400 and answer.json["error"], query


def test_full_write_queue_drops_and_counts_instead_of_blocking(make_fraud_app, tmp_path):
    app = make_fraud_app(recorder={"queue_size": 5})
    service = app.extensions["fraud"]
    c = app.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = "Bearer tm_checkout_token_0123456789"
    c.post("/api/v1/fraud/check", json=GOOD)  # starts the writer, then we stop it
    service.recorder.flush()
    service.recorder.stop()
    for i in range(20):
        assert c.post("/api/v1/fraud/check", json={**GOOD, "user_id": f"q{i}"}).status_code == 200
    text = c.get("/metrics").data.decode()
    assert "ticketmon_fraud_records_dropped_total 15.0" in text


def test_metrics_pass_promtool(client):
    client.post("/api/v1/fraud/check", json={**GOOD, "quantity": 20})
    client.post("/api/v1/fraud/check", json={"bad": 1})
    text = client.get("/metrics").data
    assert b'ticketmon_fraud_checks_total{decision="allow",risk_level="medium"} 1.0' in text
    assert b'ticketmon_fraud_patterns_total{pattern="bulk_purchase"} 1.0' in text
    assert b"ticketmon_fraud_invalid_requests_total 1.0" in text
    assert promtool_check_metrics(text) == ""


def test_gunicorn_workers_share_one_metrics_view(tmp_path, sqlite_url):
    port = free_port()
    cfg = tmp_path / "fraud.yml"
    cfg.write_text(f"port: {port}\nworkers: 2\ndatabase_url: '{sqlite_url}'\n"
                   "auth: {tokens: [{name: c, role: operator, tenant: acme,"
                   " token: tm_checkout_token_0123456789}]}\n"
                   "metrics: {basic_auth_username: prom, basic_auth_password: scrape-secret}\n"
                   "outlier: {min_samples: 20, refit_seconds: 0.5}\n")
    proc = ManagedProcess("fraud", [sys.executable, "-m", "ticketmon", "exporter", "fraud",
                                    "--config", str(cfg)], tmp_path / "fraud.log")
    try:
        base = f"http://127.0.0.1:{port}"
        proc.wait_http(base + "/healthz", timeout=60)
        headers = {"Authorization": "Bearer tm_checkout_token_0123456789"}
        with requests.Session() as session:
            for i in range(40):  # new connections: spread over both workers
                r = requests.post(base + "/api/v1/fraud/check", headers=headers, timeout=10,
                                  json={**GOOD, "user_id": f"g{i}"})
                assert r.status_code == 200
            assert session.get(base + "/metrics", timeout=10).status_code == 401
        # each worker folds its tallies into the shared files within a second: a scrape
        # may miss the other worker's last second, then every scrape agrees on all 40
        low_allow = 'ticketmon_fraud_checks_total{decision="allow",risk_level="low"}'
        deadline, seen = time.monotonic() + 10, []
        while time.monotonic() < deadline:
            text = requests.get(base + "/metrics", auth=("prom", "scrape-secret"), timeout=10).text
            seen.append([x for x in text.splitlines() if x.startswith(low_allow)][0])
            if seen[-3:] == [f"{low_allow} 40.0"] * 3:
                break
            time.sleep(0.3)
        assert seen[-3:] == [f"{low_allow} 40.0"] * 3, seen
        assert promtool_check_metrics(text) == ""
        # one refitter for the service, started by the master; workers fit through it
        # and never map PyOD's stack (scikit-learn, numba's llvmlite)
        children = _children(proc.pid)
        refitters = [p for p, cmd in children.items() if "exporters.fraud.refitter" in cmd]
        workers = [p for p in children if p not in refitters]
        assert len(refitters) == 1 and len(workers) == 2, children
        # no access line per check unless TICKETMON_FRAUD_ACCESS_LOG asks for them
        assert "POST /api/v1/fraud/check" not in (tmp_path / "fraud.log").read_text()
        deadline = time.monotonic() + 30
        while requests.get(base + "/healthz", timeout=10).json()["outlier_model_fits"] == 0:
            assert time.monotonic() < deadline, "no worker fitted through the refitter"
            time.sleep(0.3)
        assert "llvmlite" in _maps(refitters[0]) and "sklearn" in _maps(refitters[0])
        for pid in workers:
            assert "llvmlite" not in _maps(pid) and "sklearn" not in _maps(pid)
    finally:
        proc.stop()


def _children(parent: int) -> dict[int, str]:
    out = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1]
                                            .split()[1]) == parent:
                out[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ") \
                    .decode()
        except OSError:
            continue
    return out


def _maps(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def test_outlier_score_takes_part_in_the_decision_with_its_weight(make_fraud_app):
    def odd_and_normal(weight: int):
        app = make_fraud_app(outlier={"min_samples": 50, "weight": weight, "above": 0.95})
        c = app.test_client()
        c.environ_base["HTTP_AUTHORIZATION"] = "Bearer tm_checkout_token_0123456789"
        rng = np.random.default_rng(3)
        for i in range(300):
            c.post("/api/v1/fraud/check", json={
                **GOOD, "user_id": f"n{i}", "quantity": int(rng.integers(1, 4)),
                "session": {"duration_seconds": float(rng.uniform(60, 600)),
                            "mouse_movements": int(rng.integers(50, 500))}})
        assert app.extensions["fraud"].outlier.refit()
        # under every pattern's threshold, but unlike every recent check
        odd = c.post("/api/v1/fraud/check", json={
            **GOOD, "user_id": "odd", "quantity": 10,
            "session": {"duration_seconds": 6, "mouse_movements": 1}}).json
        normal = c.post("/api/v1/fraud/check", json={
            **GOOD, "user_id": "n-x", "quantity": 2,
            "session": {"duration_seconds": 300, "mouse_movements": 200}}).json
        return odd, normal

    odd, normal = odd_and_normal(50)
    assert odd["outlier_score"] >= 0.95
    assert odd["decision"] == "review" and odd["risk_score"] == 50
    assert odd["patterns"] == [{"pattern": "outlier", "contribution": 50,
                                "detail": odd["patterns"][0]["detail"]}]
    assert normal["decision"] == "allow" and normal["patterns"] == []
    ignored, _ = odd_and_normal(0)  # weight 0: the score is reported, the patterns decide
    assert ignored["outlier_score"] >= 0.95 and ignored["decision"] == "allow"
    assert ignored["patterns"] == []


@pytest.mark.parametrize("module, env", [
    ("exporters.fraud.gunicorn_conf", "TICKETMON_FRAUD_ACCESS_LOG"),
    ("receiver.gunicorn_conf", "TICKETMON_RECEIVER_ACCESS_LOG"),
])
def test_access_lines_only_when_asked(monkeypatch, tmp_path, module, env):
    import importlib

    from gunicorn.config import Config

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))  # what the confs set up
    logger = importlib.import_module(module).logger_class
    monkeypatch.delenv(env, raising=False)
    assert not logger(Config()).access_log_enabled
    monkeypatch.setenv(env, "1")
    assert logger(Config()).access_log_enabled
    monkeypatch.delenv(env)
    explicit = Config()
    explicit.set("accesslog", "-")  # `--access-logfile -` on the command line
    assert logger(explicit).access_log_enabled
