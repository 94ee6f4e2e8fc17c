"""Structured JSON log lines with a request id, and secrets kept out of every field.

Redaction (ticketmon.core.redact) runs over the whole line: the message, the traceback,
the stack and each structured field, nested values too, so `extra={"detail": "token=…"}`
cannot carry a credential past it.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time

from ticketmon.core import redact as _redact

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def redact(text: str) -> str:
    """Mask anything that looks like, or is, a credential value."""
    return _redact.text(text)


class JsonFormatter(logging.Formatter):
    """One JSON object per record; every value passes through redaction."""

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact(_message(record)),
        }
        rid = request_id.get()
        if rid:
            doc["request_id"] = redact(rid)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                doc[key] = _redact.value({key: value})[key]
        if record.exc_info:
            doc["exc"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            doc["exc"] = redact(record.exc_text)
        if record.stack_info:
            doc["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(doc, default=str)


def _message(record: logging.LogRecord) -> str:
    """The formatted message; a record whose arguments do not fit its format still logs."""
    try:
        return record.getMessage()
    except Exception:  # logging must never raise
        return f"{record.msg} {record.args!r}"


def gunicorn_logconfig(level: str = "info") -> dict:
    """gunicorn's `logconfig_dict`: its own error (and access) log through the same
    redacting JSON formatter, instead of plain lines that print exceptions as they are."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": level.upper(), "handlers": ["json"]},
        "loggers": {
            "gunicorn.error": {"level": level.upper(), "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
        },
        "handlers": {"json": {"class": "logging.StreamHandler", "formatter": "json",
                              "stream": "ext://sys.stderr"}},
        "formatters": {"json": {"()": "ticketmon.core.logs.JsonFormatter"}},
    }


def setup(level: str = "info", stream=None) -> None:
    """Send every logger's records to one JSON-lines handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
