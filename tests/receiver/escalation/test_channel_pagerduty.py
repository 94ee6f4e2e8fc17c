"""The real `pagerduty` client against a local HTTPS server speaking Events API v2."""

from __future__ import annotations

import time

import escalation_helpers  # noqa: E402
import pytest
from escalation_helpers import INSTALLATION, make_message

from receiver.channels.base import Outcome
from receiver.channels.pagerduty import PagerDutyChannel, PagerDutySettings
from ticketmon.core.config import ConfigError, load

# fixtures shared by the escalation tests
sink, tls_sink = escalation_helpers.sink, escalation_helpers.tls_sink
templates = escalation_helpers.templates


def channel(sink, templates, **extra) -> PagerDutyChannel:
    cfg = {"type": "pagerduty", "routing_key": "R" * 32, "base_url": sink.url + "/pagerduty",
           "verify": str(sink.cert_file), "timeout": 1.0, **extra}
    return PagerDutyChannel("pagerduty", PagerDutySettings.model_validate(cfg), templates)


def test_trigger_acknowledge_resolve_share_one_dedup_key(tls_sink, templates):
    pd = channel(tls_sink, templates)
    for action in ("trigger", "acknowledge", "resolve"):
        assert pd.send(make_message(action)).outcome is Outcome.DELIVERED
    events = [m.json() for m in tls_sink.received("/pagerduty/v2/enqueue")]
    assert [e["event_action"] for e in events] == ["trigger", "acknowledge", "resolve"]
    assert {e["dedup_key"] for e in events} == {f"ticketmon-{INSTALLATION}-42"}
    assert {e["routing_key"] for e in events} == {"R" * 32}
    payload = events[0]["payload"]
    assert payload["summary"] == "[CRITICAL] Checkout error rate above 5%"
    assert payload["severity"] == "critical" and payload["source"] == "sales"
    assert payload["custom_details"]["tenant"] == "acme"
    assert payload["custom_details"]["firing_for"] == "1h 05m"
    assert {link["text"] for link in events[0]["links"]} == {
        "Incident", "Grafana", "Alertmanager", "Acknowledge"}


def test_routing_key_per_service_then_tenant_then_default(tls_sink, templates):
    pd = channel(tls_sink, templates, routing_keys_by_service={"sales": "S" * 32},
                 routing_keys_by_tenant={"acme": "T" * 32, "other": "O" * 32})
    pd.send(make_message())
    pd.send(make_message(service="payments"))
    pd.send(make_message(service="payments", tenant="nobody"))
    keys = [m.json()["routing_key"] for m in tls_sink.received("/pagerduty")]
    assert keys == ["S" * 32, "T" * 32, "R" * 32]


def test_no_routing_key_is_a_permanent_failure(tls_sink, templates):
    pd = PagerDutyChannel("pd", PagerDutySettings.model_validate({
        "type": "pagerduty", "routing_keys_by_tenant": {"acme": "T" * 32},
        "base_url": tls_sink.url, "verify": str(tls_sink.cert_file)}), templates)
    result = pd.send(make_message(tenant="other", service="x"))
    assert result.outcome is Outcome.PERMANENT and "'other'" in result.detail
    assert tls_sink.received("/") == []


def test_429_and_5xx_come_back_at_once_as_retry_and_4xx_as_permanent(tls_sink, templates):
    pd = channel(tls_sink, templates)
    tls_sink.fail_next(429, 503, 500, 400, 401, 403)
    started = time.monotonic()
    outcomes = [pd.send(make_message()).outcome for _ in range(6)]
    assert outcomes == [Outcome.RETRY] * 3 + [Outcome.PERMANENT] * 3
    # one request each: the client's own retries (minutes for a 429) are off
    assert len(tls_sink.received("/", delivered_only=False)) == 6
    assert time.monotonic() - started < 30  # not a benchmark: the library would block minutes


def test_timeout_connection_refused_and_untrusted_certificate_are_retried(tls_sink, templates):
    pd = channel(tls_sink, templates, timeout=0.3)
    tls_sink.stall(1.0)
    assert pd.send(make_message()).outcome is Outcome.RETRY
    tls_sink.stall(0)
    refused = channel(tls_sink, templates, base_url="https://127.0.0.1:9")
    assert refused.send(make_message()).outcome is Outcome.RETRY
    untrusted = channel(tls_sink, templates, verify=True)
    result = untrusted.send(make_message())
    assert result.outcome is Outcome.RETRY and "R" * 8 not in result.detail


def test_settings_reject_http_and_missing_keys(tmp_path):
    bad = tmp_path / "pd.yaml"
    bad.write_text("type: pagerduty\nrouting_key: x\nbase_url: http://insecure\n")
    try:
        load(PagerDutySettings, bad)
    except ConfigError as exc:
        assert "base_url" in str(exc) and "https" in str(exc)
    else:
        raise AssertionError("http:// accepted")
    bad.write_text("type: pagerduty\n")
    try:
        load(PagerDutySettings, bad)
    except ConfigError as exc:
        assert "routing_key" in str(exc)
    else:
        raise AssertionError("no routing key accepted")


def test_routing_key_never_appears_in_settings_repr(templates):
    cfg = PagerDutySettings.model_validate(
        {"type": "pagerduty", "routing_key": "supersecretroutingkey0123456789a"})
    assert "supersecretroutingkey" not in repr(cfg) + str(cfg.model_dump())


def test_two_installations_never_share_a_dedup_key(tls_sink, templates):
    """Same routing key, same incident number, two installations (or one database reset):
    PagerDuty must see two incidents, not merge them."""
    pd = channel(tls_sink, templates)
    for installation in ("install-a", "install-b"):
        message = make_message("trigger")
        message.installation = installation
        assert pd.send(message).outcome is Outcome.DELIVERED
    keys = [m.json()["dedup_key"] for m in tls_sink.received("/pagerduty/v2/enqueue")]
    assert len(set(keys)) == 2 and all(k.endswith("-42") for k in keys)


def events_client(sink, routing_key: str = "R" * 32):
    """The `pagerduty` package's own client, as the channel builds it, without retries."""
    import ssl

    from pagerduty import EventsApiV2Client

    client = EventsApiV2Client(routing_key, base_url=sink.url + "/pagerduty",
                               verify=ssl.create_default_context(cafile=str(sink.cert_file)))
    client.retry, client.max_http_attempts = {}, -1
    return client


@pytest.mark.parametrize("key,send,error", [
    ("demo-routing-key", lambda c: c.trigger("down", "checkout"),
     "Length of 'routing_key' is incorrect (should be 32 characters)"),
    ("R" * 32, lambda c: c.trigger("down", "checkout", severity="fatal"),
     "'payload.severity' is invalid"),
    ("R" * 32, lambda c: c.trigger("x" * 1025, "checkout"), "'payload.summary' is too long"),
    ("R" * 32, lambda c: c.trigger("", "checkout"), "'payload.summary' is missing or blank"),
    ("R" * 32, lambda c: c.send_event("trigger", payload={"summary": "s", "severity": "info"}),
     "'payload.source' is missing or blank"),
    ("R" * 32, lambda c: c.send_event("trigger"), "'payload' is missing or blank"),
    ("R" * 32, lambda c: c.send_event("resolve", dedup_key=""), "'dedup_key' is missing"),
    ("R" * 32, lambda c: c.send_event("trigger", dedup_key="k" * 256,
                                      payload={"summary": "s", "source": "x",
                                               "severity": "info"}), "'dedup_key' is invalid"),
])
def test_sink_refuses_what_the_events_api_refuses(tls_sink, key, send, error):
    """PagerDuty's 400 answer, as the real client receives it."""
    from pagerduty import HttpError

    with pytest.raises(HttpError) as refused:
        send(events_client(tls_sink, key))
    response = refused.value.response
    assert response.status_code == 400
    doc = response.json()
    assert (doc["status"], doc["message"]) == ("invalid event", "Event object is invalid")
    assert any(e.startswith(error) for e in doc["errors"]), doc["errors"]
    assert tls_sink.received("/pagerduty") == []  # recorded as refused, not delivered


def test_sink_refuses_a_bad_event_action_and_a_body_that_is_not_an_event(tls_sink):
    import requests

    for body, error in (({"routing_key": "R" * 32, "event_action": "escalate"},
                         "'event_action' is invalid"), (["trigger"], "Event object is invalid")):
        resp = requests.post(tls_sink.url + "/pagerduty/v2/enqueue", json=body, timeout=5,
                             verify=str(tls_sink.cert_file))
        assert resp.status_code == 400 and resp.json()["status"] == "invalid event"
        assert any(e.startswith(error) for e in resp.json()["errors"])
    assert requests.post(tls_sink.url + "/pagerduty/v2/nowhere", json={}, timeout=5,
                         verify=str(tls_sink.cert_file)).status_code == 404


def test_sink_accepts_a_valid_event_and_returns_its_dedup_key(tls_sink):
    client = events_client(tls_sink)
    assert client.trigger("checkout down", "checkout", dedup_key="abc") == "abc"
    generated = client.trigger("checkout down", "checkout")
    assert len(generated) == 32  # PagerDuty makes one when the trigger has none
    client.resolve("abc")
    assert len(tls_sink.received("/pagerduty/v2/enqueue")) == 3


@pytest.mark.parametrize("keys", [
    {"routing_key": "demo-routing-key"},
    {"routing_key": "R" * 33},
    {"routing_key": "R" * 31 + "-"},
    {"routing_keys_by_service": {"sales": "short"}},
    {"routing_key": "R" * 32, "routing_keys_by_tenant": {"acme": "T" * 40}},
])
def test_worker_refuses_a_malformed_routing_key_at_start_up(tmp_path, keys):
    """Caught when the worker's settings load, not as a 400 at the first page."""
    import yaml

    from receiver.escalation.settings import WorkerSettings

    path = tmp_path / "worker.yaml"
    path.write_text(yaml.safe_dump({"channels": {"pd": {"type": "pagerduty", **keys}}}))
    with pytest.raises(ConfigError) as refused:
        load(WorkerSettings, path, environ={})
    message = str(refused.value)
    assert "32-character integration key" in message and "channels.pd" in message
    for value in [*keys.values()]:  # the key itself is never echoed
        for secret in (value.values() if isinstance(value, dict) else [value]):
            assert secret not in message
