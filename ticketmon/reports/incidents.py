"""Incidents of a report's period from the receiver's store (opened in the period)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from receiver.store.tables import incidents
from ticketmon.core.database import make_engine

ALL_TENANTS = "*"


def load_incidents(database_url: str, tenant: str, start: datetime,
                   end: datetime) -> list[dict]:
    """Plain rows, oldest first; `tenant` "*" means every tenant."""
    c = incidents.c
    query = (sa.select(c.id, c.tenant, c.service, c.severity, c.title, c.status, c.opened_at,
                       c.acknowledged_at, c.resolved_at)
             .where(c.opened_at >= start, c.opened_at < end).order_by(c.opened_at, c.id))
    if tenant != ALL_TENANTS:
        query = query.where(c.tenant == tenant)
    engine = make_engine(database_url, pool_size=1)
    try:
        with engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]
    finally:
        engine.dispose()
