import io
import json
import logging

import pytest

from ticketmon.core import logs


@pytest.fixture(autouse=True)
def _restore_root_logger():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_request_id_extras_and_no_secrets():
    stream = io.StringIO()
    logs.setup("debug", stream)
    token = logs.request_id.set("req-42")
    try:
        logging.getLogger("t").info(
            "posting with Authorization: Bearer abc.def and password=hunter2", extra={"n": 3}
        )
    finally:
        logs.request_id.reset(token)
    line = json.loads(stream.getvalue().strip())
    assert line["request_id"] == "req-42"
    assert line["n"] == 3 and line["level"] == "info" and line["logger"] == "t"
    assert "abc.def" not in line["msg"] and "hunter2" not in line["msg"]
    assert "Bearer ***" in line["msg"]


def test_exceptions_are_one_json_line():
    stream = io.StringIO()
    logs.setup("info", stream)
    try:
        raise ValueError("token=s3cr3t broke")
    except ValueError:
        logging.getLogger("t").exception("failed")
    lines = stream.getvalue().strip().splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert "ValueError" in doc["exc"] and "s3cr3t" not in doc["exc"]


def test_structured_fields_are_redacted_nested_values_too():
    stream = io.StringIO()
    logs.setup("info", stream)
    logging.getLogger("t").warning("x", extra={
        "detail": "token=abc123secret", "password": "hunter2hunter2", "count": 3,
        "nested": {"list": ["Bearer abcdef123456", {"api_key": "k-9876543210"}]}})
    line = json.loads(stream.getvalue())
    assert line["detail"] == "token=***" and line["password"] == "***"
    assert line["count"] == 3
    assert line["nested"] == {"list": ["Bearer ***", {"api_key": "***"}]}


@pytest.mark.parametrize("raw, secret", [
    ("postgresql+psycopg2://tm:pa55word@db:5432/x", "pa55word"),
    ("redis://:redispass1@cache:6379/0", "redispass1"),
    ("https://hooks.slack.com/services/T01ABC/B02DEF/xyzSecret123", "xyzSecret123"),
    ("https://events.pagerduty.com/integration/0123456789abcdef0123456789abcdef/enqueue",
     "0123456789abcdef0123456789abcdef"),
    ("GET /q?page=2&token=qtok123&secret=s3cr3tval", "qtok123"),
    ("GET /q?page=2&token=qtok123&secret=s3cr3tval", "s3cr3tval"),
    ('{"routing_key": "R0123456789abcdef"}', "R0123456789abcdef"),
    ("used tm_admin_AbCdEf012345 here", "AbCdEf012345"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "eyJzdWIiOiIxIn0"),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA"),
    ("ack_link_secret: whatever-it-is", "whatever-it-is"),
])
def test_secret_shapes(raw, secret):
    assert secret not in logs.redact(raw)


def test_ordinary_text_is_left_alone():
    text = ("basic authentication required; collector sales_total up; monkey=banana "
            "http://127.0.0.1:10190/api/v1/incidents sqlite:///tmp/x.db")
    assert logs.redact(text) == text


def test_configured_secrets_are_masked_whatever_their_shape(tmp_path):
    from ticketmon.core import config
    from ticketmon.core.metrics_guard import GuardSettings

    path = tmp_path / "g.yaml"
    path.write_text("basic_auth_username: prom\nbasic_auth_password: plain-words-no-shape\n")
    config.load(GuardSettings, path, environ={})
    assert logs.redact("it said plain-words-no-shape twice") == "it said *** twice"
