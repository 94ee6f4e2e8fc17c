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
