"""Read queries, each tenant-scoped; all return plain JSON-ready dicts.

Lists are keyset-paginated by id (newest first): the cursor is the last id seen, so a
page stays stable while new incidents arrive.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from receiver.store.ingest_statements import MEMBERS
from receiver.store.tables import (
    alerts,
    api_tokens,
    audit_log,
    events,
    incident_alerts,
    incidents,
    installation,
)
from receiver.store.types import iso
from ticketmon.core.auth import ALL_TENANTS


def scoped(query, column, tenant: str):
    """Every query goes through here: a token scoped to one tenant sees only that tenant.

    The application's half of tenancy; PostgreSQL's row-level security (migration 0005,
    scope set by Store.transaction) is the other half and hides the same rows."""
    return query if tenant == ALL_TENANTS else query.where(column == tenant)


def incident_in_scope(conn: Connection, scope: str, incident_id: int) -> bool:
    """Whether the incident exists for this scope: what its sub-resources answer 404 on."""
    query = scoped(sa.select(incidents.c.id).where(incidents.c.id == incident_id),
                   incidents.c.tenant, scope)
    return conn.execute(query).first() is not None


def as_json(mapping, skip: tuple[str, ...] = ()) -> dict:
    out = {}
    for key, value in mapping.items():
        if key in skip:
            continue
        out[key] = iso(value) if hasattr(value, "astimezone") else value
    return out


def _page(rows: list, limit: int) -> tuple[list, str | None]:
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (str(rows[-1]["id"]) if more and rows else None)


@dataclass
class IncidentFilter:
    status: list[str] = field(default_factory=list)
    severity: list[str] = field(default_factory=list)
    service: list[str] = field(default_factory=list)
    tenant: list[str] = field(default_factory=list)
    group_key: str | None = None
    search: str | None = None  # words in the title or the service, any case


def _filtered(query, flt: IncidentFilter, with_status: bool = True):
    for column, values in ((incidents.c.status, flt.status if with_status else ()),
                           (incidents.c.severity, flt.severity),
                           (incidents.c.service, flt.service),
                           (incidents.c.tenant, flt.tenant)):
        if values:
            query = query.where(column.in_(values))
    if flt.group_key:
        query = query.where(incidents.c.group_key == flt.group_key)
    for word in (flt.search or "").split():
        query = query.where(sa.or_(incidents.c.title.icontains(word, autoescape=True),
                                   incidents.c.service.icontains(word, autoescape=True)))
    return query


def list_incidents(conn: Connection, scope: str, flt: IncidentFilter, limit: int,
                   before_id: int | None = None) -> tuple[list[dict], str | None]:
    query = _filtered(scoped(sa.select(incidents), incidents.c.tenant, scope), flt)
    if before_id is not None:
        query = query.where(incidents.c.id < before_id)
    rows = conn.execute(query.order_by(incidents.c.id.desc()).limit(limit + 1)).mappings().all()
    page, cursor = _page([as_json(r) for r in rows], limit)
    return page, cursor


def incident_status_counts(conn: Connection, scope: str, flt: IncidentFilter) -> dict[str, int]:
    """How many incidents each status has under every filter but the status one: what
    the status filter would show for each choice."""
    query = _filtered(scoped(sa.select(incidents.c.status, sa.func.count()),
                             incidents.c.tenant, scope), flt, with_status=False)
    return dict(conn.execute(query.group_by(incidents.c.status)).all())


def installation_id(conn: Connection) -> str:
    """Drawn by migration 0004; a database without it is not migrated."""
    found = conn.execute(sa.select(installation.c.id).limit(1)).scalar()
    if not found:
        raise RuntimeError("the installation table is empty: run `ticketmon receiver db "
                           "upgrade`")
    return found


def get_incident(conn: Connection, scope: str, incident_id: int) -> dict | None:
    query = scoped(sa.select(incidents).where(incidents.c.id == incident_id),
                   incidents.c.tenant, scope)
    row = conn.execute(query).mappings().first()
    if row is None:
        return None
    incident = as_json(row)
    members = conn.execute(
        sa.select(alerts).select_from(MEMBERS)
        .where(incident_alerts.c.incident_id == incident_id).order_by(alerts.c.id)
    ).mappings().all()
    incident["alerts"] = [as_json(m) for m in members]
    timeline = conn.execute(
        sa.select(events).where(events.c.incident_id == incident_id).order_by(events.c.id)
    ).mappings().all()
    incident["timeline"] = [as_json(e, skip=("incident_id",)) for e in timeline]
    from receiver.anomaly.scores import incident_scores  # the anomaly package's table

    incident["anomaly_scores"] = incident_scores(conn, incident_id)
    return incident


@dataclass
class AlertFilter:
    status: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    fingerprint: str | None = None


def list_alerts(conn: Connection, scope: str, flt: AlertFilter, limit: int,
                before_id: int | None = None) -> tuple[list[dict], str | None]:
    query = scoped(sa.select(alerts), alerts.c.tenant, scope)
    if flt.status:
        query = query.where(alerts.c.status.in_(flt.status))
    if flt.fingerprint:
        query = query.where(alerts.c.fingerprint == flt.fingerprint)
    for name, value in flt.labels.items():
        query = query.where(alerts.c.labels[name].as_string() == value)
    if before_id is not None:
        query = query.where(alerts.c.id < before_id)
    rows = conn.execute(query.order_by(alerts.c.id.desc()).limit(limit + 1)).mappings().all()
    return _page([as_json(r) for r in rows], limit)


def get_alert(conn: Connection, scope: str, alert_id: int) -> dict | None:
    query = scoped(sa.select(alerts).where(alerts.c.id == alert_id), alerts.c.tenant, scope)
    row = conn.execute(query).mappings().first()
    if row is None:
        return None
    alert = as_json(row)
    history = conn.execute(
        sa.select(events.c.at, events.c.kind, events.c.actor, events.c.incident_id,
                  events.c.detail)
        .where(events.c.fingerprint == row["fingerprint"],
               events.c.starts_at == row["starts_at"])
        .order_by(events.c.id)
    ).mappings().all()
    alert["history"] = [as_json(h) for h in history]
    alert["incidents"] = list(conn.execute(scoped(
        sa.select(incident_alerts.c.incident_id)
        .join(incidents, incidents.c.id == incident_alerts.c.incident_id)
        .where(incident_alerts.c.fingerprint == row["fingerprint"],
               incident_alerts.c.starts_at == row["starts_at"]), incidents.c.tenant, scope)
    ).scalars())
    return alert


def find_token(conn: Connection, sha256: str) -> dict | None:
    """The token's row, revoked or expired too: the authenticator says which, and counts."""
    row = conn.execute(
        sa.select(api_tokens.c.id, api_tokens.c.name, api_tokens.c.role, api_tokens.c.tenant,
                  api_tokens.c.revoked_at, api_tokens.c.expires_at)
        .where(api_tokens.c.sha256 == sha256)
    ).mappings().first()
    return dict(row) if row else None


def list_tokens(conn: Connection, scope: str) -> list[dict]:
    query = scoped(sa.select(api_tokens).where(api_tokens.c.revoked_at.is_(None)),
                   api_tokens.c.tenant, scope)
    rows = conn.execute(query.order_by(api_tokens.c.id)).mappings().all()
    return [as_json(r, skip=("sha256",)) for r in rows]


def list_audit(conn: Connection, scope: str, limit: int,
               before_id: int | None = None) -> tuple[list[dict], str | None]:
    query = scoped(sa.select(audit_log), audit_log.c.actor_tenant, scope)
    if scope != ALL_TENANTS:  # also hide actions on other tenants' incidents
        query = query.where(audit_log.c.incident_id.in_(
            sa.select(incidents.c.id).where(incidents.c.tenant == scope)))
    if before_id is not None:
        query = query.where(audit_log.c.id < before_id)
    rows = conn.execute(query.order_by(audit_log.c.id.desc()).limit(limit + 1)).mappings().all()
    return _page([as_json(r) for r in rows], limit)


def open_incident_counts(conn: Connection) -> list[tuple[str, str, int]]:
    """(severity, tenant, count) of unresolved incidents: a cheap indexed aggregate."""
    return [tuple(r) for r in conn.execute(
        sa.select(incidents.c.severity, incidents.c.tenant, sa.func.count())
        .where(incidents.c.status != "resolved")
        .group_by(incidents.c.severity, incidents.c.tenant)
    )]


def unresolved_summary(conn: Connection, scope: str) -> dict:
    """Unresolved incidents in the caller's scope: counts by status and severity, and
    when the oldest one opened (what a status page shows first)."""
    query = scoped(sa.select(incidents.c.status, incidents.c.severity, sa.func.count(),
                             sa.func.min(incidents.c.opened_at))
                   .where(incidents.c.status != "resolved"), incidents.c.tenant, scope)
    rows = conn.execute(query.group_by(incidents.c.status, incidents.c.severity)).all()
    by_status = {"open": 0, "acknowledged": 0}
    by_severity: dict[str, dict[str, int]] = {}
    oldest = None
    for status, severity, count, opened in rows:
        by_status[status] = by_status.get(status, 0) + count
        by_severity.setdefault(severity, {"open": 0, "acknowledged": 0})[status] = count
        oldest = opened if oldest is None or opened < oldest else oldest
    return {**by_status, "by_severity": by_severity, "oldest_opened_at": iso(oldest)}
