"""A group's first post takes over the incident the reconciler opened for it.

The reconciler opens an incident for alerts whose webhook post never came (lost, or
not sent yet when the route's group_wait outlasts new_alert_grace) under a groupKey it
has to guess: API v2 does not show the route part of the key
(receiver/reconcile/groups.py). When the group's post does come under the real key,
opening a second incident beside the guessed one would page twice for the same alerts.
Instead the post adopts it: an unresolved incident the reconciler opened and nobody
adopted yet, of the same receiver and the same group labels (and tenant part),
preferring one that holds a posted alert. Its key and its links move to the post's
key; the timeline says so (`rekeyed`). Adopted once only: when two routes post the same
alerts (`continue: true`), the first post's route takes the incident and the other's
posts find the alerts held already, as without reconciliation.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from receiver.payload import WebhookPayload
from receiver.store.ingest_statements import UNRESOLVED, Key
from receiver.store.tables import incident_alerts, incidents
from receiver.tenant_groups import go_labelset

OPENED_BY = "reconciler"  # receiver.reconcile.corrections.ACTOR, kept in incidents.extra
GUESSED = "guessed_group_key"  # in incidents.extra once adopted: the key it was opened under


def guessed_incident(conn: Connection, payload: WebhookPayload, group_key: str,
                     keys: Iterable[Key]) -> dict | None:
    """The incident this post may adopt, locked; None when there is none."""
    labels = ":" + go_labelset(payload.groupLabels)
    at = group_key.rfind(labels)
    fingerprints = sorted({fp for fp, _ in keys})
    if at <= 0 or not payload.receiver or not fingerprints:
        return None  # a key not in Alertmanager's shape (or cut to fit): nothing to match
    i, links = incidents.c, incident_alerts.c
    rows = conn.execute(
        sa.select(incidents).where(
            UNRESOLVED, i.receiver == payload.receiver, i.group_key != group_key,
            i.group_key.endswith(group_key[at:], autoescape=True))
        .order_by(i.id).with_for_update()).mappings().all()
    rows = [r for r in rows if (r["extra"] or {}).get("opened_by") == OPENED_BY
            and GUESSED not in r["extra"]]
    if len(rows) > 1:  # the one holding what is posted, when the guesses are several
        holding = set(conn.execute(sa.select(links.incident_id).where(
            links.incident_id.in_([r["id"] for r in rows]),
            links.fingerprint.in_(fingerprints))).scalars())
        rows.sort(key=lambda r: r["id"] not in holding)
    return dict(rows[0]) if rows else None


def adopt(conn: Connection, incident: dict, group_key: str, now: datetime) -> None:
    """Move the incident and its links to `group_key` (links already there stay)."""
    guessed = incident["group_key"]
    conn.execute(incidents.update().where(incidents.c.id == incident["id"]).values(
        group_key=group_key, updated_at=now,
        extra={**(incident["extra"] or {}), GUESSED: guessed}))
    there = incident_alerts.alias("there")
    conn.execute(incident_alerts.update().where(
        incident_alerts.c.incident_id == incident["id"],
        incident_alerts.c.group_key == guessed,
        ~sa.exists().where(there.c.group_key == group_key,
                           there.c.fingerprint == incident_alerts.c.fingerprint,
                           there.c.starts_at == incident_alerts.c.starts_at),
    ).values(group_key=group_key))
