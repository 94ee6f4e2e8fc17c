"""The message a channel sends for an outbox row: incident fields and the links in it."""

from __future__ import annotations

from receiver.channels.base import Message
from receiver.escalation.ack_links import AckLinks


def build_message(row: dict, incident: dict, public_url: str, grafana_url: str | None,
                  ack_links: AckLinks | None, installation: str) -> Message:
    """What a channel renders for one outbox row: the incident, and links to act on it."""
    opened = incident.get("opened_at")
    data = {
        "id": str(incident["id"]), "title": incident["title"],
        "severity": incident["severity"], "service": incident.get("service") or "",
        "tenant": incident["tenant"], "status": incident["status"],
        "started_at": opened.timestamp() if opened else None,
        "labels": incident.get("common_labels") or {},
        "summary": (incident.get("common_labels") or {}).get("alertname", ""),
    }
    links = {"incident": f"{public_url}/ui/incidents/{incident['id']}"}  # the console
    if grafana_url:
        links["grafana"] = grafana_url
    if incident.get("external_url"):
        links["alertmanager"] = incident["external_url"]
    if ack_links and row["action"] == "trigger":
        links["ack"] = ack_links.url(str(incident["id"]), row["channel"])
    # the outbox key is unique in this database; the installation makes it unique anywhere
    return Message(action=row["action"], incident=data,
                   delivery_id=f"{installation}/{row['key']}", step=row["step"],
                   round=row["round"], actor=row["actor"], links=links,
                   installation=installation)
