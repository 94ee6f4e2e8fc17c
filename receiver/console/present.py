"""What the console's pages show, shaped from store rows: ages, the timeline, the links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode, urlsplit

# timeline words for the events table's kinds; an unknown kind shows as written
EVENT_WORDS = {
    "opened": "Opened", "alert_firing": "Alert fired", "alert_resolved": "Alert resolved",
    "acknowledged": "Acknowledged", "resolved": "Resolved", "silenced": "Silenced",
    "unsilenced": "Silence lifted", "escalated": "Escalated by hand",
    "severity_raised": "Severity raised", "reopened": "Reopened",
    "reconciled_resolved": "Alert resolved by reconciliation (Alertmanager no longer has it)",
    "reconciled_firing": "Alert firing again by reconciliation (Alertmanager has it)",
    "rekeyed": "Group key set by Alertmanager's first post (reconciliation had guessed it)",
}
RECONCILER = "reconciler"  # receiver.reconcile.corrections.ACTOR


def now() -> datetime:
    """The pages' clock (one place, so a test can fix what "3m ago" says)."""
    return datetime.now(UTC)


def parse_time(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def age(since: str | datetime | None, at: datetime | None = None) -> str:
    """'3m', '2h 5m', '4d 1h': how long ago, as a person reads it at a glance."""
    start = parse_time(since)
    if start is None:
        return ""
    seconds = max(0, int(((at or now()) - start).total_seconds()))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m" if minutes else f"{seconds}s"


def timeline(incident: dict, notifications: list[dict]) -> list[dict]:
    """Events and notifications in one list, oldest first: who was told on which channel
    and whether it reached them, between what happened to the incident."""
    entries = []
    for event in incident.get("timeline", []):
        detail = dict(event.get("detail") or {})
        entries.append({"at": parse_time(event["at"]), "kind": event["kind"],
                        "what": EVENT_WORDS.get(event["kind"], event["kind"]),
                        "actor": event.get("actor") or "", "comment": detail.pop("comment", ""),
                        "detail": detail,
                        "correction": event.get("actor") == RECONCILER})
    for row in notifications:
        at = row.get("finished_at") or row.get("created_at")
        entries.append({"at": parse_time(at), "kind": "notification",
                        "what": f"{row['action'].capitalize()} sent to {row['channel']}",
                        "actor": row.get("actor") or "", "comment": "",
                        "state": row["state"], "attempts": row["attempts"],
                        "error": row.get("last_error") or "",
                        "detail": {"step": row["step"], "round": row["round"]},
                        "correction": False})
    far_past = datetime.min.replace(tzinfo=UTC)
    return sorted(entries, key=lambda e: e["at"] or far_past)


def _safe_url(url: str | None) -> str | None:
    """Only http(s) links: an annotation is outside input and may say `javascript:`."""
    if url and urlsplit(url).scheme in ("http", "https"):
        return url
    return None


def links(incident: dict, grafana_url: str | None) -> dict:
    """The runbooks, graphs and dashboard an incident's alerts point to."""
    runbooks, graphs = {}, {}
    for alert in incident.get("alerts", []):
        annotations = alert.get("annotations") or {}
        runbook = _safe_url(annotations.get("runbook_url") or annotations.get("runbook"))
        if runbook:
            runbooks[runbook] = alert["alertname"]
        graph = _safe_url(alert.get("generator_url"))
        if graph:
            graphs[graph] = alert["alertname"]
    dashboard = None
    if grafana_url:
        opened = parse_time(incident["opened_at"])
        query = {"from": int((opened - timedelta(hours=1)).timestamp() * 1000), "to": "now"}
        if incident.get("service"):
            query["var-service"] = incident["service"]
        dashboard = f"{grafana_url}/d/ticketmon-services?{urlencode(query)}"
    return {"runbooks": runbooks, "graphs": graphs, "dashboard": dashboard,
            "alertmanager": _safe_url(incident.get("external_url"))}
