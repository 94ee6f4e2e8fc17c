"""Slack incoming webhooks and the signed generic webhook against a recording server."""

from __future__ import annotations

import json

import escalation_helpers  # noqa: E402
import pytest
from escalation_helpers import make_message

from receiver.channels import webhook
from receiver.channels.base import Outcome, classify_status
from receiver.channels.slack import SlackChannel, SlackSettings
from receiver.channels.webhook import WebhookChannel, WebhookSettings, WebhookVerificationError

# fixtures shared by the escalation tests
sink, tls_sink = escalation_helpers.sink, escalation_helpers.tls_sink
templates = escalation_helpers.templates

SECRET = "whsec-0123456789abcdef"
HOOK = "/slack/services/T0TICKET1/B0TICKET2/0123456789abcdefABCDEFGH"  # Slack's own shape


def slack(url: str, templates) -> SlackChannel:
    cfg = SlackSettings.model_validate({"type": "slack", "webhook_url": url, "timeout": 1,
                                        "allow_insecure_http": True})
    return SlackChannel("slack", cfg, templates)


def test_slack_message_is_readable_and_links_everything(sink, templates):
    assert slack(sink.url + HOOK, templates).send(make_message()).outcome \
        is Outcome.DELIVERED
    body = sink.received("/slack")[0].json()
    assert body["text"].startswith(":red_circle: CRITICAL: Checkout error rate above 5%")
    header, fields = body["blocks"][0], body["blocks"][1]
    assert header["text"]["text"] == "[CRITICAL] Checkout error rate above 5%"
    texts = [f["text"] for f in fields["fields"]]
    assert texts == ["*Severity*\ncritical", "*Service*\nsales", "*Tenant*\nacme",
                     "*Firing for*\n1h 05m"]
    buttons = {b["text"]["text"]: b["url"] for b in body["blocks"][-1]["elements"]}
    assert buttons == {"Acknowledge": "http://127.0.0.1:10190/ack/TOKEN",
                       "Incident": "http://127.0.0.1:10190/incidents/42",
                       "Grafana": "http://grafana/d/x",
                       "Alertmanager": "http://127.0.0.1:9093/#/alerts"}


def test_slack_follow_up_on_acknowledge_and_resolve_names_who(sink, templates):
    channel = slack(sink.url + HOOK, templates)
    channel.send(make_message("acknowledge"))
    channel.send(make_message("resolve"))
    acked, resolved = (m.json() for m in sink.received("/slack"))
    assert acked["blocks"][0]["text"]["text"].startswith("[ACK]")
    assert any(b["type"] == "context" and "Acknowledged by alice" in b["elements"][0]["text"]
               for b in acked["blocks"])
    assert "Resolved by alice" in resolved["text"]
    # the resolve is green: the severity's red circle is for what is still broken
    assert resolved["text"].startswith(":white_check_mark: ")
    assert ":red_circle:" not in json.dumps(resolved)
    assert acked["text"].startswith(":red_circle: ")
    # no acknowledge button once someone has acknowledged
    assert all(e["action_id"] != "ack" for e in resolved["blocks"][-1]["elements"])


def test_slack_errors_are_classified_and_the_url_stays_out_of_the_detail(sink, templates):
    channel = slack(sink.url + HOOK, templates)
    sink.fail_next(404, 500, 429)
    results = [channel.send(make_message()) for _ in range(3)]
    assert [r.outcome for r in results] == [Outcome.PERMANENT, Outcome.RETRY, Outcome.RETRY]
    assert all("0123456789abcdef" not in r.detail for r in results)


def test_slack_rejects_a_non_url():
    with pytest.raises(ValueError, match="webhook_url"):
        SlackSettings.model_validate({"type": "slack", "webhook_url": "hooks.slack.com"})


@pytest.mark.parametrize("model, key", [(SlackSettings, "webhook_url"), (WebhookSettings, "url")])
def test_plain_http_only_when_allowed_explicitly(model, key):
    doc = {"type": "slack" if model is SlackSettings else "webhook",
           key: "http://hooks.example.com/x"}
    if model is WebhookSettings:
        doc["secret"] = SECRET
    with pytest.raises(ValueError, match=f"{key} is plain http://.*allow_insecure_http: true"):
        model.model_validate(doc)
    assert model.model_validate({**doc, "allow_insecure_http": True})
    assert model.model_validate({**doc, key: "https://hooks.example.com/x"})
    with pytest.raises(ValueError, match="https://"):
        model.model_validate({**doc, key: "ftp://hooks.example.com/x",
                              "allow_insecure_http": True})


def test_worker_config_names_the_channel_with_plain_http(tmp_path):
    from receiver.escalation.settings import WorkerSettings
    from ticketmon.core import config

    path = tmp_path / "worker.yaml"
    path.write_text("channels:\n  hook: {type: webhook, url: 'http://example.com/h', "
                    "secret: s}\n")
    with pytest.raises(config.ConfigError, match="channels.hook.webhook.*allow_insecure_http"):
        config.load(WorkerSettings, path, environ={})


def test_classification_table():
    table = {200: "delivered", 202: "delivered", 204: "delivered", 400: "permanent",
             401: "permanent", 404: "permanent", 410: "permanent", 408: "retry", 429: "retry",
             500: "retry", 502: "retry", 503: "retry", 301: "permanent"}
    assert {code: classify_status(code).outcome.value for code in table} == table
    assert classify_status(429, "7").retry_after == 7.0
    assert classify_status(503, "Wed, 21 Oct 2015 07:28:00 GMT").retry_after is None


def webhook_channel(url, templates) -> WebhookChannel:
    cfg = WebhookSettings.model_validate({"type": "webhook", "url": url, "secret": SECRET,
                                          "allow_insecure_http": True})
    return WebhookChannel("hook", cfg, templates)


def test_webhook_is_signed_and_verifies(sink, templates):
    assert webhook_channel(sink.url + "/hook", templates).send(make_message()).outcome \
        is Outcome.DELIVERED
    got = sink.received("/hook")[0]
    seen: set[str] = set()

    def remember(delivery: str) -> bool:
        if delivery in seen:
            return True
        seen.add(delivery)
        return False

    doc = webhook.verify(SECRET, got.headers, got.body, seen=remember)
    assert doc["incident"]["id"] == "42" and doc["action"] == "trigger"
    assert doc["delivery_id"] == got.headers[webhook.DELIVERY]
    assert SECRET not in got.body.decode() + json.dumps(got.headers)

    with pytest.raises(WebhookVerificationError, match="replay"):
        webhook.verify(SECRET, got.headers, got.body, seen=remember)
    forged = got.body.replace(b'"critical"', b'"warning"')
    with pytest.raises(WebhookVerificationError, match="signature"):
        webhook.verify(SECRET, got.headers, forged)
    with pytest.raises(WebhookVerificationError, match="signature"):
        webhook.verify("another-secret", got.headers, got.body)
    later = int(got.headers[webhook.TIMESTAMP]) + 3600
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        webhook.verify(SECRET, got.headers, got.body, now=later)
    # a replay with a fresh timestamp needs a fresh signature, which needs the secret
    moved = {**got.headers, webhook.TIMESTAMP: str(later)}
    with pytest.raises(WebhookVerificationError, match="signature"):
        webhook.verify(SECRET, moved, got.body, now=later)
    with pytest.raises(WebhookVerificationError, match="missing"):
        webhook.verify(SECRET, {}, got.body)
    with pytest.raises(WebhookVerificationError, match="integer"):
        webhook.verify(SECRET, {**got.headers, webhook.TIMESTAMP: "soon"}, got.body)


def test_webhook_connection_refused_is_retried(templates):
    result = webhook_channel("http://127.0.0.1:9/hook", templates).send(make_message())
    assert result.outcome is Outcome.RETRY


@pytest.mark.parametrize("path,body,status,answer", [
    (HOOK, b'{"text": "hi"}', 200, "ok"),
    (HOOK, b'{"blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}]}',
     200, "ok"),
    ("/slack/demo", b'{"text": "hi"}', 404, "no_service"),
    ("/slack/services/T0TICKET1/B0TICKET2", b'{"text": "hi"}', 404, "no_service"),
    ("/slack/services/T0TICKET1/B0TICKET2/short", b'{"text": "hi"}', 403, "invalid_token"),
    (HOOK, b"text=hi", 400, "invalid_payload"),
    (HOOK, b'["hi"]', 400, "invalid_payload"),
    (HOOK, b"{}", 400, "no_text"),
    (HOOK, b'{"text": "", "blocks": []}', 400, "no_text"),
    (HOOK, b'{"blocks": [{"text": "no type"}]}', 400, "invalid_blocks"),
    (HOOK, json.dumps({"text": "x", "attachments": [{"text": "a"}] * 101}).encode(), 400,
     "too_many_attachments"),
])
def test_sink_answers_like_slack_incoming_webhooks(sink, path, body, status, answer):
    """Through requests, as the Slack channel posts: Slack's status and plain-text error."""
    import requests

    resp = requests.post(sink.url + path, data=body, timeout=5,
                         headers={"Content-Type": "application/json"})
    assert (resp.status_code, resp.text) == (status, answer)


def test_a_slack_webhook_the_sink_refuses_is_a_permanent_failure(sink, templates):
    result = slack(sink.url + "/slack/demo", templates).send(make_message())
    assert result.outcome is Outcome.PERMANENT
    assert sink.received("/slack") == []  # recorded as refused, not delivered
