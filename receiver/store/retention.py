"""Retention: drop what ended before a cutoff; never an unresolved incident or its alerts.

The audit log is kept: it records who did what and is small.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from receiver.store.tables import alerts, events, incident_alerts, incidents


def prune(conn: Connection, cutoff: datetime) -> dict[str, int]:
    old = sa.select(incidents.c.id).where(incidents.c.status == "resolved",
                                          incidents.c.resolved_at < cutoff)
    counts = {}
    counts["events"] = conn.execute(events.delete().where(events.c.incident_id.in_(old))).rowcount
    conn.execute(incident_alerts.delete().where(incident_alerts.c.incident_id.in_(old)))
    counts["incidents"] = conn.execute(
        incidents.delete().where(incidents.c.status == "resolved",
                                 incidents.c.resolved_at < cutoff)).rowcount
    still_linked = sa.select(incident_alerts.c.fingerprint).where(
        incident_alerts.c.fingerprint == alerts.c.fingerprint,
        incident_alerts.c.starts_at == alerts.c.starts_at)
    counts["alerts"] = conn.execute(
        alerts.delete().where(alerts.c.status == "resolved", alerts.c.updated_at < cutoff,
                              ~sa.exists(still_linked))).rowcount
    orphan_history = sa.select(alerts.c.id).where(
        alerts.c.fingerprint == events.c.fingerprint, alerts.c.starts_at == events.c.starts_at)
    counts["events"] += conn.execute(
        events.delete().where(events.c.fingerprint.is_not(None), events.c.at < cutoff,
                              ~sa.exists(orphan_history))).rowcount
    return counts
