"""Alertmanager webhook payload (version 4), validated in one pass from the raw body.

Unknown fields are accepted and kept (newer Alertmanagers add `notification_reason`,
`routeLabels`, …); everything the receiver relies on is checked, and an error names
the field, e.g. `alerts.3.fingerprint`.

Alertmanager drops a post answered 4xx for good, so only a body that is not an
Alertmanager payload at all is refused: not JSON, not an object, no version "4", no
alerts list, an alert without its identity (fingerprint, startsAt) or status, label
values that are not strings. Everything a real Alertmanager can legally send is kept
instead, repaired where the store cannot hold it as sent (see `repair`), and every
repair is noted on the alert (`extra.ticketmon_repairs`) and counted.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)

ZERO_YEAR = 1  # Alertmanager sends endsAt 0001-01-01T00:00:00Z for firing alerts

# what a stored string may hold: longer ones are cut with MARKER, NUL becomes U+FFFD
NAME_MAX = 200  # label and annotation names (and keys of unknown fields)
VALUE_MAX = 10_000  # label and annotation values (and strings of unknown fields)
URL_MAX = 65_536  # generatorURL, externalURL: a cut URL is useless, so a generous limit
COLUMN_MAX = {"receiver": 200}  # payload fields stored in a String(n) column
LABEL_COLUMN_MAX = {"tenant": 100}  # labels the store copies into a String(n) column
# groupKey is an indexed identity: a PostgreSQL btree entry holds at most 2704 bytes
GROUP_KEY_MAX_BYTES = 1024
INT_MAX = 2**31 - 1  # truncatedAlerts is an INTEGER column; Go sends a uint64
NOTES_MAX = 100  # repair notes kept per alert (the count is always whole)
REPLACEMENT = "\ufffd"
NOTES_FIELD = "ticketmon_repairs"
FULL_GROUP_KEY_FIELD = "ticketmon_group_key"

# metric label values of ticketmon_receiver_payload_repairs_total{kind}
REPAIR_KINDS = ("value_truncated", "name_truncated", "nul_replaced", "surrogate_replaced",
                "group_key_shortened", "number_replaced")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=False)

    def unknown_fields(self) -> dict | None:
        return dict(self.model_extra) if self.model_extra else None


class Alert(_Open):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: str | None = None
    fingerprint: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z]+$")

    @field_validator("startsAt", "endsAt")
    @classmethod
    def _in_utc(cls, value: datetime | None) -> datetime | None:
        """In UTC once, as parsed: an alert's key is read at every step of its ingest, and
        each conversion from pydantic's own tzinfo costs microseconds."""
        if value is None or value.year <= ZERO_YEAR:
            return value
        try:
            return _utc(value)
        except OverflowError:  # year 1 ahead of UTC: left for the store to refuse
            return value

    @property
    def starts_at(self) -> datetime:
        return _utc(self.startsAt)

    @property
    def ends_at(self) -> datetime | None:
        if self.endsAt is None or self.endsAt.year <= ZERO_YEAR:
            return None
        return _utc(self.endsAt)

    @property
    def key(self) -> tuple[str, datetime]:
        return self.fingerprint, self.starts_at


class WebhookPayload(_Open):
    version: Literal["4"]
    groupKey: str = Field(min_length=1)
    status: Literal["firing", "resolved"]
    receiver: str = ""
    truncatedAlerts: int = Field(default=0, ge=0)
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str | None = None
    alerts: list[Alert] = Field(min_length=1)
    _repairs: Counter = PrivateAttr(default_factory=Counter)

    @property
    def repairs(self) -> Counter:
        """How many strings or numbers of this post were repaired, by kind."""
        return self._repairs


class PayloadError(ValueError):
    """A payload that cannot be accepted, with the field at fault."""

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def _utc(value: datetime) -> datetime:
    if value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# -- repairs ---------------------------------------------------------------------------
def marker(original_chars: int, text: str) -> str:
    """What replaces the end of a cut string: its length and a digest of the whole.

    The digest keeps two long strings that share a prefix distinct after the cut (two
    label names must not become one key; two group keys must not become one group).
    """
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"…[truncated by ticketmon: {original_chars} chars, sha256:{digest}]"


def cut(text: str, limit: int) -> str:
    """`text` shortened to at most `limit` characters, ending with the marker."""
    end = marker(len(text), text)
    return text[:max(0, limit - len(end))] + end


class _Notes:
    """Collects one object's repairs: counted by kind, listed by field."""

    def __init__(self, counts: Counter, nul: bool = True) -> None:
        self.counts = counts
        self.items: list[dict] = []
        self.total = 0
        self.nul = nul  # False: the body has no NUL escape, so no string holds a NUL

    def add(self, field: str, kind: str, **detail: Any) -> None:
        self.counts[kind] += 1
        self.total += 1
        if len(self.items) < NOTES_MAX:
            self.items.append({"field": field, "repair": kind, **detail})

    def text(self, value: str, limit: int, field: str | None,
             kind: str = "value_truncated") -> str:
        """`value` without NUL and within `limit`; `field` None: the path is the result."""
        kinds: list[tuple[str, dict]] = []
        if "\x00" in value:
            value = value.replace("\x00", REPLACEMENT)
            kinds.append(("nul_replaced", {}))
        if len(value) > limit:
            kinds.append((kind, {"original_chars": len(value)}))
            value = cut(value, limit)
        for k, detail in kinds:
            self.add(value if field is None else field, k, **detail)
        return value

    def labels(self, labels: dict[str, str], field: str) -> dict[str, str]:
        """Names and values repaired; a dict that needs nothing is returned as it is."""
        if _labels_fit(labels) and not (
                self.nul and any("\x00" in k or "\x00" in v for k, v in labels.items())):
            return labels
        out: dict[str, str] = {}
        for name, value in labels.items():
            key = self._key(name, field, out, labels)
            out[key] = self.text(value, LABEL_COLUMN_MAX.get(key, VALUE_MAX), f"{field}.{key}")
        return out

    def _key(self, name: str, field: str, out: dict, original: dict) -> str:
        """A repaired name that meets no other name of the same object."""
        if len(name) <= NAME_MAX and "\x00" not in name:
            return name
        before = len(self.items)
        key = self.text(name, NAME_MAX, "", "name_truncated")
        if key in out or key in original:  # NUL -> U+FFFD met a real U+FFFD
            digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
            key = f"{key}[ticketmon: renamed, sha256:{digest}]"
        for item in self.items[before:]:
            item.update(field=_join(field, key), part="name")
        return key

    def unknown(self, value: Any, field: str) -> Any:
        """Strings, keys and numbers of a field this receiver does not know."""
        if isinstance(value, str):
            return self.text(value, VALUE_MAX, field)
        if isinstance(value, float) and not math.isfinite(value):  # JSON cannot store it
            self.add(field, "number_replaced", original=str(value))
            return str(value)
        if isinstance(value, list):
            return [self.unknown(v, _join(field, str(i))) for i, v in enumerate(value)]
        if isinstance(value, dict):
            out: dict = {}
            for k, v in value.items():
                key = self._key(k, field, out, value)
                out[key] = self.unknown(v, _join(field, key))
            return out
        return value

    def extra(self, model: _Open) -> None:
        """Repair the unknown fields; drop fields named like the receiver's own notes."""
        extra = model.__pydantic_extra__
        if extra:
            extra.pop(NOTES_FIELD, None)
            extra.pop(FULL_GROUP_KEY_FIELD, None)
            model.__pydantic_extra__ = self.unknown(extra, "")

    def note_on(self, model: _Open) -> None:
        if self.total:
            if model.__pydantic_extra__ is None:
                model.__pydantic_extra__ = {}
            model.__pydantic_extra__[NOTES_FIELD] = {"count": self.total,
                                                     "repairs": self.items}


def _labels_fit(labels: dict[str, str]) -> bool:
    """No name or value too long, by C-level passes (NUL is the caller's to rule out)."""
    if not labels:
        return True
    if max(map(len, labels)) > NAME_MAX or max(map(len, labels.values())) > VALUE_MAX:
        return False
    for name, limit in LABEL_COLUMN_MAX.items():
        value = labels.get(name)
        if value is not None and len(value) > limit:
            return False
    return True


def _alert_fits(alert: Alert) -> bool:
    """Nothing of the alert to repair, given that the body holds no NUL."""
    url = alert.generatorURL
    return (not alert.__pydantic_extra__ and (url is None or len(url) <= URL_MAX)
            and _labels_fit(alert.labels) and _labels_fit(alert.annotations))


def _join(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


def stored_group_key(key: str) -> str:
    """The group key as the store keeps it (long ones shortened): what a filter by the
    group key Alertmanager shows must compare with."""
    return _short_group_key(key, _Notes(Counter()))


def _short_group_key(key: str, notes: _Notes) -> str:
    """A group key that fits the index: a prefix plus a digest of the whole key.

    The same long key always gives the same short one, so every post of the group
    finds the same incident; the whole key is kept in the incident's `extra`.
    """
    raw = key.encode()
    if len(raw) <= GROUP_KEY_MAX_BYTES:
        return key
    end = marker(len(key), key)
    room = GROUP_KEY_MAX_BYTES - len(end.encode())
    notes.add("groupKey", "group_key_shortened", original_chars=len(key))
    return raw[:room].decode("utf-8", "ignore") + end


def _set(model: _Open, name: str, value: Any) -> None:
    """Assign only a repaired value: pydantic's __setattr__ costs more than the check."""
    if value is not getattr(model, name):
        setattr(model, name, value)


def repair(payload: WebhookPayload, nul: bool = True) -> Counter:
    """Make every string fit the store, in place; note each repair and count it by kind.

    Cut to the limit with a visible marker: label and annotation names (NAME_MAX) and
    values (VALUE_MAX, `tenant` to its column), URLs (URL_MAX), `receiver`, strings of
    unknown fields. NUL (PostgreSQL text and JSONB cannot hold it) becomes U+FFFD. A
    group key too long for the index is shortened to a prefix plus a digest. `nul`
    False says no string can hold a NUL (the body had no `\\u0000` escape).
    """
    counts = payload.repairs
    for alert in payload.alerts:
        if not nul and _alert_fits(alert):  # most alerts: nothing to note, no _Notes
            continue
        notes = _Notes(counts, nul)
        _set(alert, "labels", notes.labels(alert.labels, "labels"))
        _set(alert, "annotations", notes.labels(alert.annotations, "annotations"))
        if alert.generatorURL is not None:
            _set(alert, "generatorURL", notes.text(alert.generatorURL, URL_MAX, "generatorURL"))
        notes.extra(alert)
        notes.note_on(alert)
    notes = _Notes(counts, nul)
    group_key = notes.text(payload.groupKey, len(payload.groupKey), "groupKey")
    short = _short_group_key(group_key, notes)
    payload.groupKey = short
    for name in ("groupLabels", "commonLabels", "commonAnnotations"):
        _set(payload, name, notes.labels(getattr(payload, name), name))
    payload.receiver = notes.text(payload.receiver, COLUMN_MAX["receiver"], "receiver")
    if payload.externalURL is not None:
        payload.externalURL = notes.text(payload.externalURL, URL_MAX, "externalURL")
    if payload.truncatedAlerts > INT_MAX:
        notes.add("truncatedAlerts", "number_replaced", original=str(payload.truncatedAlerts))
        payload.truncatedAlerts = INT_MAX
    notes.extra(payload)
    if short != group_key:
        payload.__pydantic_extra__[FULL_GROUP_KEY_FIELD] = group_key
    notes.note_on(payload)
    return counts


# A lone UTF-16 surrogate escape (\ud800 without its pair) is valid JSON syntax that the
# parser refuses and no database can store; escaped backslashes are matched first so
# that `\\ud800` (a backslash, then text) is left alone.
_ESCAPES = re.compile(
    rb"\\\\|(\\u[dD][89abAB][0-9a-fA-F]{2})(\\u[dD][c-fC-F][0-9a-fA-F]{2})?"
    rb"|\\u[dD][c-fC-F][0-9a-fA-F]{2}")


_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")


def _replace_lone_surrogates(body: bytes | bytearray) -> tuple[bytes, int]:
    replaced = 0

    def one(m: re.Match) -> bytes:
        nonlocal replaced
        if m.group(0) == b"\\\\" or m.group(2):
            return m.group(0)
        replaced += 1
        return b"\\ufffd"

    return _ESCAPES.sub(one, body), replaced


def _validate(body: bytes | bytearray) -> WebhookPayload:
    try:
        return WebhookPayload.model_validate_json(body)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        if err["type"] == "json_invalid":
            raise PayloadError("invalid_json", f"body is not valid JSON: {err['msg']}") from None
        field = ".".join(str(p) for p in err["loc"]) or None
        if err["type"] == "model_type" and not err["loc"]:
            raise PayloadError("invalid_payload", "body must be a JSON object") from None
        raise PayloadError("invalid_field", f"{field}: {err['msg']}", field) from None


def parse(body: bytes | bytearray) -> WebhookPayload:
    """Validate a raw request body, repairing what the store cannot hold as sent.

    Raise PayloadError naming what is wrong only when the body is not an Alertmanager
    payload. The body is parsed straight from its bytes (no intermediate dict, no
    re-serialisation); only a body with lone surrogate escapes is copied once, to
    replace them with U+FFFD.
    """
    try:
        payload = _validate(body)
        surrogates = 0
    except PayloadError as exc:
        if exc.code != "invalid_json" or not _SURROGATE.search(body):
            raise
        fixed, surrogates = _replace_lone_surrogates(body)
        if not surrogates:
            raise
        payload = _validate(fixed)
    repair(payload, nul=b"\\u0000" in body)  # JSON holds a NUL only as that escape
    if surrogates:
        payload.repairs["surrogate_replaced"] += surrogates
        extra = payload.__pydantic_extra__
        notes = extra.setdefault(NOTES_FIELD, {"count": 0, "repairs": []})
        notes["count"] += surrogates
        notes["repairs"].append({"field": "(body)", "repair": "surrogate_replaced",
                                 "count": surrogates})
    return payload
