"""What each Alertmanager holds, read through its API v2, and the union over an HA cluster.

`GET /api/v2/alerts` lists every alert not yet resolved, whatever its state: active,
suppressed (silenced or inhibited: still firing, just not notified) or unprocessed.
`GET /api/v2/alerts/groups` adds which receiver and group labels each alert was
grouped under, which the webhook's groupKey is built from. Alertmanager HA members do
not gossip alerts (Prometheus sends to each), so any one reachable member speaks for
the cluster; a member that times out, answers 5xx, sends malformed or oversized JSON
counts as unreachable for this run, and nothing is concluded from it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests

from receiver.channels.http import session

log = logging.getLogger("receiver.reconcile")

Key = tuple[str, datetime]


def ms(value: datetime) -> datetime:
    """The API gives milliseconds, the webhook nanoseconds: compare at milliseconds."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


class Malformed(ValueError):
    """An answer that is not what API v2 documents."""


@dataclass(frozen=True)
class AmAlert:
    fingerprint: str
    starts_at: datetime
    labels: dict[str, str]
    annotations: dict[str, str]
    generator_url: str | None
    state: str  # active, suppressed, unprocessed
    receivers: tuple[str, ...]

    @property
    def key(self) -> Key:
        return self.fingerprint, ms(self.starts_at)


@dataclass(frozen=True)
class AmGroup:
    receiver: str
    labels: dict[str, str]
    fingerprints: tuple[str, ...]


@dataclass
class MemberView:
    url: str
    alerts: dict[Key, AmAlert] = field(default_factory=dict)
    groups: list[AmGroup] = field(default_factory=list)
    error: str | None = None  # why this member does not count this run

    @property
    def up(self) -> bool:
        return self.error is None


@dataclass
class Truth:
    """What the reachable members report together; `up` false: nobody answered."""

    members: list[MemberView]
    firing: dict[Key, AmAlert] = field(default_factory=dict)
    groups: dict[str, list[AmGroup]] = field(default_factory=dict)  # by fingerprint

    @property
    def up(self) -> bool:
        return any(m.up for m in self.members)

    @classmethod
    def union(cls, members: list[MemberView]) -> Truth:
        truth = cls(members)
        for member in members:
            if not member.up:
                continue
            for key, alert in member.alerts.items():  # active wins: one member notifies
                seen = truth.firing.get(key)
                if seen is None or (seen.state != "active" and alert.state == "active"):
                    truth.firing[key] = alert
            for group in member.groups:
                for fp in group.fingerprints:
                    known = truth.groups.setdefault(fp, [])
                    if group not in known:
                        known.append(group)
        return truth


class AlertmanagerClient:
    def __init__(self, url: str, timeout: float, receiver: str | None = None,
                 matchers: list[str] | None = None, max_alerts: int = 10_000,
                 max_bytes: int = 32 * 1_048_576) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.max_alerts = max_alerts
        self.max_bytes = max_bytes
        self.session = session()
        # every state that is still firing: suppressed alerts are silenced, not resolved
        self.params: dict[str, object] = {"active": "true", "silenced": "true",
                                          "inhibited": "true"}
        if receiver:
            self.params["receiver"] = receiver
        if matchers:
            self.params["filter"] = list(matchers)

    def view(self) -> MemberView:
        """Both reads, or a view with the reason this member does not count."""
        view = MemberView(self.url)
        try:
            raw_alerts = self.get("/api/v2/alerts", {**self.params, "unprocessed": "true"})
            view.alerts = parse_alerts(raw_alerts, self.max_alerts)
            view.groups = parse_groups(self.get("/api/v2/alerts/groups", self.params),
                                       self.max_alerts)
        except requests.Timeout:
            view.error = "timeout"
        except requests.RequestException as exc:
            view.error = f"unreachable: {type(exc).__name__}"
        except Malformed as exc:
            view.error = f"malformed answer: {exc}"[:300]
        return view

    def get(self, path: str, params: dict) -> object:
        with self.session.get(f"{self.url}{path}", params=params, timeout=self.timeout,
                              stream=True, allow_redirects=False) as resp:
            if resp.status_code != 200:
                raise Malformed(f"{path} answered HTTP {resp.status_code}")
            body = bytearray()
            for chunk in resp.iter_content(65536):
                body += chunk
                if len(body) > self.max_bytes:
                    raise Malformed(f"{path} answer exceeds {self.max_bytes} bytes")
        try:
            return json.loads(body)
        except ValueError:
            raise Malformed(f"{path} answer is not JSON") from None


def _time(value: object, where: str) -> datetime:
    if not isinstance(value, str):
        raise Malformed(f"{where} is not a timestamp")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Malformed(f"{where} is not a timestamp") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _labels(value: object, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and k and isinstance(v, str) for k, v in value.items()):
        raise Malformed(f"{where} is not a label set")
    return value


def _list(value: object, what: str, cap: int) -> list:
    if not isinstance(value, list):
        raise Malformed(f"{what} is not a list")
    if len(value) > cap:
        raise Malformed(f"{len(value)} {what}, more than max_alerts={cap}")
    return value


def parse_alerts(raw: object, cap: int) -> dict[Key, AmAlert]:
    """gettableAlerts -> alerts by key; one bad item spoils the answer (a partial list
    would look like resolved alerts)."""
    found: dict[Key, AmAlert] = {}
    for i, item in enumerate(_list(raw, "alerts", cap)):
        alert = parse_alert(item, f"alerts[{i}]")
        found[alert.key] = alert
    return found


def parse_alert(item: object, where: str) -> AmAlert:
    if not isinstance(item, dict):
        raise Malformed(f"{where} is not an object")
    fp = item.get("fingerprint")
    if not isinstance(fp, str) or not fp.isalnum() or len(fp) > 64:
        raise Malformed(f"{where}.fingerprint is missing or invalid")
    status = item.get("status") if isinstance(item.get("status"), dict) else {}
    receivers = item.get("receivers") if isinstance(item.get("receivers"), list) else []
    generator = item.get("generatorURL")
    return AmAlert(
        fingerprint=fp, starts_at=_time(item.get("startsAt"), f"{where}.startsAt"),
        labels=_labels(item.get("labels"), f"{where}.labels"),
        annotations=_labels(item.get("annotations") or {}, f"{where}.annotations"),
        generator_url=generator if isinstance(generator, str) else None,
        state=str(status.get("state") or "active"),
        receivers=tuple(str(r.get("name")) for r in receivers if isinstance(r, dict)))


def parse_groups(raw: object, cap: int) -> list[AmGroup]:
    groups = []
    total = 0
    for i, item in enumerate(_list(raw, "groups", cap)):
        if not isinstance(item, dict) or not isinstance(item.get("receiver"), dict):
            raise Malformed(f"groups[{i}] is not an alertGroup")
        name = item["receiver"].get("name")
        if not isinstance(name, str):
            raise Malformed(f"groups[{i}].receiver.name is missing")
        members = _list(item.get("alerts"), f"groups[{i}].alerts", cap)
        total += len(members)
        if total > cap:
            raise Malformed(f"groups hold more than max_alerts={cap} alerts")
        fps = tuple(parse_alert(a, f"groups[{i}].alerts[{j}]").fingerprint
                    for j, a in enumerate(members))
        groups.append(AmGroup(name, _labels(item.get("labels") or {}, f"groups[{i}].labels"),
                              fps))
    return groups
