"""Acting from the console (Flask test client, SQLite and PostgreSQL): acknowledge,
resolve, escalate now, silence, dead-letter retry; each audited; refused without the
role or the form's CSRF token, and bad input says what is wrong and changes nothing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
import yaml
from prometheus_client import CollectorRegistry
from support.console import OPERATOR, OTHER_OPERATOR, VIEWER, alert_text, sign_in
from support.receiver import payload, post_webhook

from receiver.escalation.settings import WorkerSettings
from receiver.escalation.tables import notifications
from receiver.escalation.worker import Worker
from receiver.store.tables import audit_log, incidents
from ticketmon.simulator.notification_sink import NotificationSink


def _open(app) -> int:
    assert post_webhook(app.test_client(), payload("group-3-firing")).status_code == 200
    return 1


def _row(app, incident_id: int = 1) -> dict:
    store = app.extensions["ticketmon_receiver"].store
    with store.engine.connect() as conn:
        return dict(conn.execute(sa.select(incidents).where(incidents.c.id == incident_id))
                    .mappings().one())


def _audit(app) -> list[tuple]:
    store = app.extensions["ticketmon_receiver"].store
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.select(audit_log.c.actor, audit_log.c.action, audit_log.c.outcome,
                      audit_log.c.comment).order_by(audit_log.c.id))]


def _act(client, token: str, action: str, **form):
    return client.post("/ui/incidents/1/act",
                       data={"action": action, "csrf_token": token, **form})


def test_an_operator_acknowledges_with_a_comment_and_it_is_audited(console_app):
    _open(console_app)
    client = console_app.test_client()
    token = sign_in(client, OPERATOR)
    page = client.get("/ui/incidents/1").text
    assert 'id="acknowledge"' in page and 'id="resolve"' in page and 'id="escalate"' in page
    resp = _act(client, token, "acknowledge", comment="looking at checkout")
    assert resp.status_code == 303 and resp.headers["Location"] == "/ui/incidents/1"
    page = client.get("/ui/incidents/1").text
    assert "Incident 1 acknowledged." in page  # the flash message
    assert '<dd id="acknowledged-by">otto</dd>' in page
    assert "<blockquote>looking at checkout</blockquote>" in page
    assert 'id="acknowledge"' not in page  # done: the button is gone
    assert _row(console_app)["acknowledged_by"] == "otto"
    assert _act(client, token, "resolve").status_code == 303
    assert _row(console_app)["status"] == "resolved"
    assert _audit(console_app) == [("otto", "acknowledge", "changed", "looking at checkout"),
                                   ("otto", "resolve", "changed", None)]
    assert 'id="act-h"' not in client.get("/ui/incidents/1").text  # nothing left to do


def test_acknowledging_a_resolved_incident_is_a_conflict_shown_on_the_page(console_app):
    _open(console_app)
    client = console_app.test_client()
    token = sign_in(client, OPERATOR)
    _act(client, token, "resolve")
    resp = _act(client, token, "acknowledge")
    assert resp.status_code == 409
    assert alert_text(resp.text) == "incident 1 is resolved: it cannot be acknowledged"


def test_silence_for_a_chosen_time_and_lift_it(console_app):
    _open(console_app)
    client = console_app.test_client()
    token = sign_in(client, OPERATOR)
    assert _act(client, token, "silence", duration="4h", comment="deploy").status_code == 303
    row = _row(console_app)
    assert row["silenced_by"] == "otto"
    seconds = (row["silenced_until"] - row["updated_at"]).total_seconds()
    assert seconds == 4 * 3600
    page = client.get("/ui/incidents/1").text
    assert "Silenced until" in page and 'id="unsilence"' in page
    assert _act(client, token, "unsilence").status_code == 303
    assert 'id="unsilence"' not in client.get("/ui/incidents/1").text
    assert [a[1] for a in _audit(console_app)] == ["silence", "unsilence"]


@pytest.mark.parametrize(("form", "status", "why"), [
    ({"action": "silence", "duration": "forever"},
     400, "duration: &#39;forever&#39; is not a duration like 30s, 5m, 1h or 7d"),
    ({"action": "silence", "duration": "30d"},
     400, "duration must be between 60s and 86400s (setting silence_max)"),
    ({"action": "explode"}, 400, "unknown action &#39;explode&#39;"),
    ({"action": "acknowledge", "comment": "x" * 2001}, 400, "comment: at most 2000 characters"),
    ({"action": "acknowledge", "comment": "a\x00b"},
     400, "comment must not contain NUL or lone surrogate characters"),
])
def test_bad_action_input_says_what_is_wrong_and_changes_nothing(console_app, form, status, why):
    _open(console_app)
    client = console_app.test_client()
    token = sign_in(client, OPERATOR)
    resp = client.post("/ui/incidents/1/act", data={"csrf_token": token, **form})
    assert resp.status_code == status and alert_text(resp.text) == why
    row = _row(console_app)
    assert (row["status"], row["silenced_until"]) == ("open", None)


@pytest.mark.parametrize("sent", [None, "", "wrong-token"])
def test_a_form_without_the_right_csrf_token_is_refused(console_app, sent):
    _open(console_app)
    client = console_app.test_client()
    sign_in(client, OPERATOR)
    form = {"action": "acknowledge"} | ({} if sent is None else {"csrf_token": sent})
    resp = client.post("/ui/incidents/1/act", data=form)
    assert resp.status_code == 400
    assert "CSRF token is missing or wrong" in alert_text(resp.text)
    assert _row(console_app)["status"] == "open" and _audit(console_app) == []
    # sign-in and sign-out forms too
    assert client.post("/ui/signout", data=form).status_code == 400
    assert client.get("/ui/").status_code == 200  # still signed in


def test_a_viewer_has_no_buttons_and_is_refused(console_app):
    _open(console_app)
    client = console_app.test_client()
    token = sign_in(client, VIEWER)
    page = client.get("/ui/incidents/1").text
    assert 'id="act-h"' not in page and "<button" in page  # sign-out is a button
    resp = _act(client, token, "acknowledge")
    assert resp.status_code == 403
    assert alert_text(resp.text) == "this needs the operator role; vera has viewer"
    assert _row(console_app)["status"] == "open" and _audit(console_app) == []


def test_another_tenants_operator_cannot_act(console_app):
    _open(console_app)
    client = console_app.test_client()
    token = sign_in(client, OTHER_OPERATOR)
    resp = _act(client, token, "resolve")
    assert resp.status_code == 404 and _row(console_app)["status"] == "open"


@pytest.fixture
def sink():
    server = NotificationSink().start()
    yield server
    server.stop()


def _worker(app, sink, tmp_path, steps) -> Worker:
    policies = tmp_path / "policies.yaml"
    policies.write_text(yaml.safe_dump({"policies": [{
        "name": "warning", "match": {"severity": "warning"},
        "steps": [{"after": after, "channels": [channel]} for after, channel in steps]}]}))
    channels = {name: {"type": "webhook", "url": f"{sink.url}/{name}", "timeout": 2,
                       "secret": "console-test-signing-secret", "allow_insecure_http": True}
                for _, name in steps}
    store = app.extensions["ticketmon_receiver"].store
    return Worker(WorkerSettings(database_url=store.url, policies_file=policies,
                                 channels=channels, metrics_port=0, retry_base=0.01,
                                 retry_cap=0.02, max_attempts=1),
                  registry=CollectorRegistry())


def _drain(worker: Worker) -> None:
    """Run the worker until its outbox has nothing pending or in flight."""
    for _ in range(100):
        worker.run_once()
        with worker.engine.connect() as conn:
            if not conn.execute(sa.select(sa.func.count()).select_from(notifications).where(
                    notifications.c.state.in_(("pending", "delivering")))).scalar():
                return
        worker.stopping.wait(0.03)
    raise AssertionError("the outbox did not drain")


def _paths(sink) -> list[str]:
    return [m.path for m in sink.messages]


def test_escalate_now_pages_the_next_step_at_once(console_app, sink, tmp_path):
    worker = _worker(console_app, sink, tmp_path, [("0s", "chat"), ("1h", "pager")])
    _open(console_app)
    _drain(worker)
    assert _paths(sink) == ["/chat"]
    client = console_app.test_client()
    token = sign_in(client, OPERATOR)
    assert _act(client, token, "escalate", comment="nobody answers").status_code == 303
    _drain(worker)
    assert _paths(sink) == ["/chat", "/pager"]  # an hour early
    page = client.get("/ui/incidents/1").text
    assert '<span class="what">Escalated by hand</span>' in page
    assert '<span class="what">Trigger sent to pager</span>' in page
    assert '<span class="delivery delivered">delivered</span>' in page
    _act(client, token, "acknowledge")
    resp = _act(client, token, "escalate")
    assert resp.status_code == 409
    assert alert_text(resp.text) == "incident 1 is acknowledged: its escalation has stopped"


def test_dead_letters_are_listed_and_an_operator_retries_them(console_app, sink, tmp_path):
    worker = _worker(console_app, sink, tmp_path, [("0s", "chat")])
    _open(console_app)
    sink.fail_next(410)
    _drain(worker)
    viewer = console_app.test_client()
    sign_in(viewer, VIEWER)
    page = viewer.get("/ui/dead-letters").text
    assert 'id="dead-1"' in page and "HTTP 410" in page and "Retry" not in page
    operator = console_app.test_client()
    token = sign_in(operator, OPERATOR)
    assert "Retry notification 1" in operator.get("/ui/dead-letters").text
    resp = operator.post("/ui/dead-letters/1/retry", data={"csrf_token": token})
    assert resp.status_code == 303
    assert "Notification 1 is queued again." in operator.get("/ui/dead-letters").text
    _drain(worker)
    assert _paths(sink) == ["/chat", "/chat"]  # refused, then delivered on retry
    assert 'id="dead-1"' not in operator.get("/ui/dead-letters").text
    again = operator.post("/ui/dead-letters/1/retry", data={"csrf_token": token})
    assert again.status_code == 404 and "is not here any more" in alert_text(again.text)
    viewer_token = sign_in(viewer, VIEWER)
    assert viewer.post("/ui/dead-letters/1/retry",
                       data={"csrf_token": viewer_token}).status_code == 403


def test_the_api_escalates_too(console_app):
    _open(console_app)
    client = console_app.test_client()
    auth = {"Authorization": f"Bearer {OPERATOR}"}
    resp = client.post("/api/v1/incidents/1/escalate", headers=auth)
    assert resp.status_code == 200 and resp.json["changed"] is True
    viewer = client.post("/api/v1/incidents/1/escalate",
                         headers={"Authorization": f"Bearer {VIEWER}"})
    assert viewer.status_code == 403
    client.post("/api/v1/incidents/1/resolve", headers=auth)
    assert client.post("/api/v1/incidents/1/escalate", headers=auth).status_code == 409
    assert [a[1:3] for a in _audit(console_app)] == [
        ("escalate", "changed"), ("resolve", "changed"), ("escalate", "conflict")]


def test_the_workers_messages_link_to_the_incident_in_the_console(console_app, sink, tmp_path):
    worker = _worker(console_app, sink, tmp_path, [("0s", "chat")])
    _open(console_app)
    _drain(worker)
    [message] = sink.messages
    assert message.json()["links"]["incident"] == "http://127.0.0.1:10190/ui/incidents/1"
