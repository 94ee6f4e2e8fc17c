"""Issue #10: any well-formed Alertmanager post is accepted whole.

Alertmanager drops a post answered 4xx for good, so a big group or one odd label must
not cost the group: bodies up to max_body_bytes are taken, strings the store cannot hold
are repaired (and the repair is visible and counted), and only bodies that are not an
Alertmanager payload are refused - each refusal logged and counted. Every store test
runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import logging
import os

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.receiver import WEBHOOK_TOKEN, count, payload, post_webhook

from receiver.payload import NAME_MAX, VALUE_MAX, WebhookPayload, repair
from receiver.store.tables import alerts, incidents
from ticketmon.rules.catalog import load_catalog

MARKER = "…[truncated by ticketmon: "


def store_of(app):
    return app.extensions["ticketmon_receiver"].store


def admin(app) -> dict:
    _, secret = store_of(app).create_token("test-admin", "admin", "*")
    return {"Authorization": f"Bearer {secret}"}


def metric(client, name: str, **labels) -> float:
    for line in client.get("/metrics").data.decode().splitlines():
        if line.split("{")[0].split(" ")[0] == name and all(
                f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def group(n: int, label_chars: int = 0, group_key: str = "{}:{alertname=\"Big\"}") -> dict:
    """One Alertmanager post of n firing alerts shaped like the captured ones."""
    body = copy.deepcopy(payload("group-3-firing"))
    template = body["alerts"][0]
    body["alerts"] = []
    for i in range(n):
        alert = copy.deepcopy(template)
        alert["fingerprint"] = f"{i + 1:016x}"
        alert["labels"]["instance"] = f"host-{i}:8080"
        for name in ("pod", "container_image", "route"):
            alert["labels"][name] = f"{name}-{i}-" + "x" * max(0, label_chars - 12)
        body["alerts"].append(alert)
    body["groupKey"] = group_key
    return body


def stored_alerts(app) -> dict[str, dict]:
    with store_of(app).engine.connect() as conn:
        rows = conn.execute(sa.select(alerts.c.fingerprint, alerts.c.labels,
                                      alerts.c.annotations, alerts.c.extra, alerts.c.id))
        return {r.fingerprint: r._asdict() for r in rows}


@pytest.fixture
def app(make_app, database_url):
    return make_app(database_url=database_url)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def sqlite_client(make_app):
    return make_app().test_client()


# -- accepted whole -------------------------------------------------------------------
def test_a_1000_alert_group_with_350_char_labels_is_stored_whole(app, client):
    body = group(1000, label_chars=350)
    raw = json.dumps(body).encode()
    assert len(raw) > 1_048_576  # the old limit refused this group at every flush
    resp = post_webhook(client, raw)
    assert resp.status_code == 200, resp.json
    assert resp.json["alerts"] == 1000 and resp.json["incidents_opened"] == [1]
    stored = stored_alerts(app)
    assert len(stored) == 1000 and count(store_of(app), "incidents") == 1
    for alert in body["alerts"]:
        row = stored[alert["fingerprint"]]
        assert row["labels"] == alert["labels"] and row["extra"] is None
    assert metric(client, "ticketmon_receiver_payload_repairs_total") == 0


def test_an_overlong_label_value_is_cut_with_a_marker_and_its_neighbours_kept(app, client):
    body = group(3)
    long_value = "abc" + "y" * 19_997
    body["alerts"][1]["labels"]["pod"] = long_value
    resp = post_webhook(client, body)
    assert resp.status_code == 200, resp.json
    stored = stored_alerts(app)
    assert len(stored) == 3
    for i in (0, 2):  # the neighbours are stored exactly as sent
        assert stored[body["alerts"][i]["fingerprint"]]["labels"] == body["alerts"][i]["labels"]
    cut = stored[body["alerts"][1]["fingerprint"]]
    value = cut["labels"]["pod"]
    assert len(value) <= VALUE_MAX and value.startswith("abcyyy")
    assert f"{MARKER}20000 chars, sha256:" in value
    assert {k: v for k, v in cut["labels"].items() if k != "pod"} == {
        k: v for k, v in body["alerts"][1]["labels"].items() if k != "pod"}
    # visible on the alert as the API returns it, and counted
    api = client.get(f"/api/v1/alerts/{cut['id']}", headers=admin(app)).json["alert"]
    assert api["labels"]["pod"] == value
    assert api["extra"]["ticketmon_repairs"] == {"count": 1, "repairs": [
        {"field": "labels.pod", "repair": "value_truncated", "original_chars": 20_000}]}
    assert metric(client, "ticketmon_receiver_payload_repairs_total",
                  kind="value_truncated") == 1
    # the next flush of the same group is a plain duplicate
    again = post_webhook(client, body)
    assert again.status_code == 200 and again.json["duplicates"] == 3


def test_nul_in_a_label_name_value_and_annotation_is_replaced(app, client):
    body = group(2)
    labels = body["alerts"][0]["labels"]
    labels["team\x00x"] = "pay\x00ments"
    body["alerts"][0]["annotations"]["summary"] = "disk\x00full"
    body["alerts"][0]["routeLabels"] = {"k": "v\x00"}  # an unknown field (Alertmanager 0.34)
    resp = post_webhook(client, body)
    assert resp.status_code == 200, resp.json
    row = stored_alerts(app)[body["alerts"][0]["fingerprint"]]
    assert row["labels"]["team\ufffdx"] == "pay\ufffdments"
    assert row["annotations"]["summary"] == "disk\ufffdfull"
    assert row["extra"]["routeLabels"] == {"k": "v\ufffd"}
    fields = [(r["field"], r["repair"]) for r in row["extra"]["ticketmon_repairs"]["repairs"]]
    assert fields == [("labels.team\ufffdx", "nul_replaced"),  # its name, then its value
                      ("labels.team\ufffdx", "nul_replaced"),
                      ("annotations.summary", "nul_replaced"),
                      ("routeLabels.k", "nul_replaced")]
    assert stored_alerts(app)[body["alerts"][1]["fingerprint"]]["extra"] is None
    assert metric(client, "ticketmon_receiver_payload_repairs_total", kind="nul_replaced") == 4


def test_names_lone_surrogates_and_odd_numbers_are_repaired_not_refused(app, client):
    body = group(1)
    body["alerts"][0]["labels"]["n" * 500] = "long name"
    body["alerts"][0]["annotations"]["s"] = "\ud800 lone"
    body["notification_reason"] = 1e400  # NaN and Infinity cannot be stored as JSON
    raw = json.dumps(body).encode().replace(b"Infinity", b"1e400")
    assert b"\\ud800" in raw
    resp = post_webhook(client, raw)
    assert resp.status_code == 200, resp.json
    row = stored_alerts(app)[body["alerts"][0]["fingerprint"]]
    [name] = [k for k in row["labels"] if k.startswith("nnn")]
    assert len(name) <= NAME_MAX and MARKER + "500 chars" in name
    assert row["labels"][name] == "long name"
    assert row["annotations"]["s"] == "\ufffd lone"
    with store_of(app).engine.connect() as conn:
        extra = conn.execute(sa.select(incidents.c.extra)).scalar_one()
    assert extra["notification_reason"] == "inf"
    assert {r["repair"] for r in extra["ticketmon_repairs"]["repairs"]} == {
        "number_replaced", "surrogate_replaced"}


def test_a_long_group_key_receiver_and_tenant_fit_the_store(app, client):
    # random text does not compress: a PostgreSQL index entry holds at most 2704 bytes
    group_key = "{}:{instance=\"" + base64.b64encode(os.urandom(6000)).decode() + "é\"}"
    body = group(2, group_key=group_key)
    body["receiver"] = "r" * 300
    for alert in body["alerts"]:
        alert["labels"]["tenant"] = "t" * 150  # alerts.tenant is VARCHAR(100)
    body["commonLabels"]["tenant"] = "t" * 150
    first = post_webhook(client, body)
    assert first.status_code == 200, first.json
    body["alerts"].append(group(3)["alerts"][2])  # the next flush, one alert more
    body["alerts"][2]["labels"]["tenant"] = "t" * 150
    second = post_webhook(client, body)
    assert second.status_code == 200 and second.json["incidents_opened"] == []
    with store_of(app).engine.connect() as conn:
        [inc] = conn.execute(sa.select(incidents)).mappings().all()
    assert len(inc["group_key"].encode()) <= 1024 and MARKER in inc["group_key"]
    assert inc["extra"]["ticketmon_group_key"] == group_key  # kept whole, unindexed
    assert len(inc["receiver"]) == 200 and inc["tenant"].startswith("ttt")
    assert len(stored_alerts(app)) == 3
    listed = client.get("/api/v1/incidents", headers=admin(app)).json["incidents"]
    assert [i["tenant"] for i in listed] == [inc["tenant"]]


# -- refused, logged and counted -------------------------------------------------------
def _refusals(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "receiver.webhook"
            and r.levelno == logging.WARNING]


def test_a_body_over_the_limit_is_413_logged_with_size_group_key_and_reason(make_app, caplog):
    app = make_app(max_body_bytes=4096)
    client = app.test_client()
    raw = json.dumps(group(20, label_chars=100, group_key="{}:{alertname=\"Big\"}")).encode()
    assert len(raw) > 4096
    with caplog.at_level(logging.WARNING, logger="receiver.webhook"):
        resp = post_webhook(client, raw)
    assert resp.status_code == 413
    assert resp.json["error"]["code"] == "request_entity_too_large"
    assert str(len(raw)) in resp.json["error"]["message"]
    [record] = _refusals(caplog)
    assert (record.status, record.reason, record.size_bytes, record.group_key) == (
        413, "body_too_large", len(raw), "{}:{alertname=\"Big\"}")
    assert metric(client, "ticketmon_receiver_webhook_refused_total",
                  reason="body_too_large") == 1
    assert count(store_of(app), "alerts") == 0
    assert post_webhook(client, group(1)).status_code == 200


def test_the_default_limit_is_tens_of_mib(make_app):
    app = make_app()
    assert app.extensions["ticketmon_receiver"].settings.max_body_bytes == 32 * 1_048_576


@pytest.mark.parametrize("body,code,group_key", [
    (b"not json at all", "invalid_json", None),
    (b"[1, 2]", "invalid_payload", None),
    (b'{"version": "3", "groupKey": "{}:{a=\\"b\\"}", "status": "firing", "alerts": []}',
     "invalid_field", '{}:{a="b"}'),
    (b'{"version": "4", "groupKey": "g", "status": "firing", "alerts": [{"status": "firing"}]}',
     "invalid_field", "g"),
    (b'{"labels": {"x": "\\"groupKey\\": \\"fake\\""}, "groupKey": "real"', "invalid_json",
     "real"),
])
def test_garbage_is_400_machine_readable_logged_and_counted(app, client, caplog, body, code,
                                                            group_key):
    with caplog.at_level(logging.WARNING, logger="receiver.webhook"):
        resp = post_webhook(client, body)
    assert resp.status_code == 400
    assert set(resp.json["error"]) == {"code", "message", "field"}
    assert resp.json["error"]["code"] == code
    [record] = _refusals(caplog)
    assert (record.reason, record.size_bytes, record.group_key) == (code, len(body), group_key)
    assert metric(client, "ticketmon_receiver_webhook_refused_total", reason=code) == 1
    assert count(store_of(app), "alerts") == 0


def test_wrong_content_type_and_token_are_logged_and_counted(make_app, caplog):
    client = make_app().test_client()
    raw = json.dumps(group(1)).encode()
    with caplog.at_level(logging.WARNING, logger="receiver.webhook"):
        assert post_webhook(client, raw, **{"Content-Type": "text/plain"}).status_code == 415
        assert post_webhook(client, raw, token="wrong-token-0123456789").status_code == 401
    assert [(r.status, r.reason, r.size_bytes) for r in _refusals(caplog)] == [
        (415, "unsupported_media_type", len(raw)), (401, "unauthorized", len(raw))]
    assert "wrong-token" not in caplog.text
    text = client.get("/metrics").data.decode()
    assert load_catalog().check_exposition(text, source=("receiver", "anomaly")) == []


# -- property: well-formed is accepted whole, anything else is a 4xx, never a 5xx -------
ANY_CHAR = st.characters(blacklist_categories=())  # NUL, surrogates, controls, astral
TEXT = st.one_of(
    st.text(ANY_CHAR, max_size=30),
    st.builds(lambda s, n: s * n, st.text(ANY_CHAR, min_size=1, max_size=3),
              st.integers(min_value=3_000, max_value=12_000)))
_ids = itertools.count(1)


def _plain(text: str, limit: int) -> bool:
    """Stored exactly as sent: within its limit, no NUL, no lone surrogate."""
    return len(text) <= limit and "\x00" not in text and not any(
        0xD800 <= ord(c) <= 0xDFFF for c in text)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(labels=st.lists(st.dictionaries(TEXT, TEXT, max_size=4), min_size=1, max_size=3),
       annotations=st.dictionaries(TEXT, TEXT, max_size=2), ascii_only=st.booleans())
def test_any_unicode_labels_are_accepted_whole(app, client, labels, annotations, ascii_only):
    body = group(len(labels), group_key=f"{{}}:{{case=\"{next(_ids)}\"}}")
    for alert, extra_labels in zip(body["alerts"], labels, strict=True):
        alert["fingerprint"] = f"{next(_ids):016x}"
        alert["labels"] = {**extra_labels, "alertname": "Fuzz"}
        alert["annotations"] = annotations
    try:
        raw = json.dumps(body, ensure_ascii=ascii_only).encode()
    except UnicodeEncodeError:  # a lone surrogate travels only as a \u escape
        raw = json.dumps(body).encode()
    resp = post_webhook(client, raw)
    assert resp.status_code == 200, resp.json
    stored = stored_alerts(app)
    for alert in body["alerts"]:
        row = stored[alert["fingerprint"]]
        for name, value in alert["labels"].items():
            if _plain(name, NAME_MAX) and _plain(value, VALUE_MAX) and name != "tenant":
                assert row["labels"][name] == value
        assert len(row["labels"]) == len(alert["labels"])
        for text in [*row["labels"], *row["labels"].values(), *row["annotations"].values()]:
            assert "\x00" not in text and len(text) <= VALUE_MAX


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(
    st.binary(max_size=200),
    st.recursive(st.none() | st.booleans() | st.floats() | st.text(ANY_CHAR, max_size=20),
                 lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.sampled_from(["version", "groupKey", "status", "alerts",
                                                    "labels", "fingerprint", "startsAt"]),
                                   inner, max_size=4), max_leaves=12)
    .map(lambda doc: json.dumps(doc).encode())))
def test_anything_else_is_a_4xx_never_a_5xx(sqlite_client, body):
    resp = sqlite_client.post("/api/v1/alertmanager", data=body, headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {WEBHOOK_TOKEN}"})
    assert resp.status_code != 200 or json.loads(body).get("version") == "4"
    assert resp.status_code in (200, 400), (resp.status_code, resp.json)


_LENGTHS = st.sampled_from([0, 1, 99, 100, 101, 199, 200, 201, 9_999, 10_000, 10_001, 70_000])
_TEXT = _LENGTHS.flatmap(lambda n: st.just("v" * n))
_NAMES = st.one_of(st.sampled_from(["tenant", "alertname", "instance"]),
                   _LENGTHS.filter(lambda n: n < 1000).map(lambda n: "n" * max(1, n)))


@settings(max_examples=200, deadline=None)
@given(labels=st.dictionaries(_NAMES, _TEXT, max_size=4),
       annotations=st.dictionaries(_NAMES, _TEXT, max_size=3),
       url=st.one_of(st.none(), _TEXT), extra=st.booleans())
def test_the_no_nul_shortcut_repairs_exactly_what_the_full_pass_does(labels, annotations,
                                                                    url, extra):
    """A body without a NUL escape skips the per-string checks of alerts that fit: the
    result must be the full pass's, near every limit (tenant 100, names 200, values
    10,000, URLs 65,536)."""
    body = payload("firing")
    for alert in body["alerts"]:
        alert["labels"].update(labels)
        alert["annotations"] = dict(annotations)
        alert["generatorURL"] = url
        if extra:
            alert["routeLabels"] = dict(labels)
    raw = json.dumps(body).encode()
    shortcut, full = (WebhookPayload.model_validate_json(raw) for _ in range(2))
    repair(shortcut, nul=False)
    repair(full, nul=True)
    assert shortcut.model_dump() == full.model_dump()
    assert shortcut.repairs == full.repairs
