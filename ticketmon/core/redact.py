"""What counts as a secret, and masking it in any text or structure we print or serve.

Used by the JSON log formatter (every field, nested values too), by the error texts
served over HTTP (collector errors on /healthz, API error bodies, a notification's
last_error) and by anything else that shows an exception's text. Two nets:

- shapes: bearer/basic credentials, `tm_` API tokens, JWTs, URL userinfo
  (`scheme://user:pass@`), secret-named key=value pairs and query parameters, Slack
  webhook paths and PagerDuty integration keys in URLs;
- values: every secret the process was configured with (each `SecretStr` that
  `ticketmon.core.config.load` validated), masked wherever it appears, whatever its shape.

Masking errs on the side of hiding too much: a log line is worth less than a leaked key.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"

# Names whose value is a credential, as a key=value pair, a query parameter, a JSON or
# YAML key, or a structured log field. Suffix matches: webhook_token, ack_link_secret,
# routing_key, api-key, db_password, client_secret…
_NAME = (r"[\w.-]*?(?:password|passwd|pwd|passphrase|secret|token|credentials?"
         r"|api[_-]?key|apikey|access[_-]?key|private[_-]?key|routing[_-]?key"
         r"|integration[_-]?key|(?:hmac|signing|encryption|master)[_-]?key"
         r"|signature|session[_-]?id|cookie|(?<![\w.-])key)")
# A bare `key` counts only as the whole name: group_key, dedup_key or sort_key name
# things, not credentials, and masking them would hide what a log line is about.
_SECRET_NAME = re.compile(rf"(?i)^{_NAME}s?$")

_RULES: list[tuple[re.Pattern[str], str]] = [
    # URL userinfo: scheme://user:password@host (user kept), scheme://token@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s:@\"'<>]*):([^/\s@\"'<>]+)@"),
     rf"\1\2:{MASK}@"),
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^/\s:@\"'<>]+)@"), rf"\1{MASK}@"),
    # HTTP authorization schemes, wherever they appear (headers, reprs, messages)
    (re.compile(r"(?i)\b(bearer)(\s+)(?!\*\*\*)[A-Za-z0-9._~+/=-]{6,}"), rf"\1\2{MASK}"),
    (re.compile(r"\b([Bb]asic|BASIC)(\s+)(?=[A-Za-z0-9+/]*[A-Z0-9+/=])[A-Za-z0-9+/]{8,}={0,2}"),
     rf"\1\2{MASK}"),
    # ticketmon API tokens and JWTs, whatever surrounds them
    (re.compile(r"\btm_[A-Za-z0-9_-]{6,}"), f"tm_{MASK}"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*)?"), MASK),
    # Slack incoming webhooks (/services/T…/B…/secret) and PagerDuty integration URLs
    (re.compile(r"(?i)(/services/)T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]+"), rf"\1{MASK}"),
    (re.compile(r"(?i)(/integration/)[A-Za-z0-9]{16,}"), rf"\1{MASK}"),
    # name=value, name: value, "name": "value", ?name=value&…
    (re.compile(rf"(?i)\b({_NAME}s?)(\s*[\"']?\s*[=:]\s*[\"']?)(?!\*\*\*)([^\s\"'&,;}}\]<>]+)"),
     rf"\1\2{MASK}"),
]

_known_lock = threading.Lock()
_known: set[str] = set()
_known_pattern: re.Pattern[str] | None = None
MIN_KNOWN = 8  # shorter configured values would mask ordinary words


def remember(values: Iterable[str]) -> None:
    """Mask these exact values from now on (each configured secret of this process)."""
    global _known_pattern
    fresh = {v for v in values if isinstance(v, str) and len(v) >= MIN_KNOWN} - _known
    if not fresh:
        return
    with _known_lock:
        _known.update(fresh)
        ordered = sorted(_known, key=len, reverse=True)  # longest first: no partial masks
        _known_pattern = re.compile("|".join(re.escape(v) for v in ordered))


def remember_model(model: Any) -> None:
    """Remember every SecretStr value inside a validated pydantic model (nested too)."""
    remember(_secret_values(model, depth=0))


def _secret_values(obj: Any, depth: int) -> Iterable[str]:
    from pydantic import BaseModel, SecretStr

    if depth > 12:
        return
    if isinstance(obj, SecretStr):
        yield obj.get_secret_value()
    elif isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            yield from _secret_values(getattr(obj, name, None), depth + 1)
    elif isinstance(obj, Mapping):
        for value in obj.values():
            yield from _secret_values(value, depth + 1)
    elif isinstance(obj, list | tuple | set | frozenset):
        for value in obj:
            yield from _secret_values(value, depth + 1)


def text(value: str) -> str:
    """Mask anything that looks like, or is, a credential value."""
    if not value:
        return value
    if _known_pattern is not None:
        value = _known_pattern.sub(MASK, value)
    for pattern, replacement in _RULES:
        value = pattern.sub(replacement, value)
    return value


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.match(name))


def value(obj: Any, depth: int = 0) -> Any:
    """A JSON-ready copy of `obj` with secrets masked: strings redacted, values under a
    secret-named key replaced whole, anything else turned into its redacted str()."""
    if obj is None or isinstance(obj, bool | int | float):
        return obj
    if isinstance(obj, str):
        return text(obj)
    if depth > 12:
        return MASK
    if isinstance(obj, Mapping):
        out = {}
        for key, item in obj.items():
            name = str(key)
            hidden = is_secret_name(name) and item and not isinstance(item, bool | int | float)
            out[text(name)] = MASK if hidden else value(item, depth + 1)
        return out
    if isinstance(obj, list | tuple | set | frozenset):
        return [value(item, depth + 1) for item in obj]
    if isinstance(obj, bytes):
        return text(obj.decode("utf-8", "replace"))
    return text(str(obj))
