"""Which webhook group (groupKey) an alert that Alertmanager reports belongs to.

Alertmanager builds a groupKey as route key + ":" + the group labels, e.g.
`{}/{severity="critical"}:{alertname="X", service="y"}` (dispatch/route.go: Route.Key()
and aggrGroup.GroupKey()). API v2 never shows the route key: /api/v2/alerts/groups
gives a group's receiver and labels only. So, in order:

1. the store already has an incident with that receiver whose groupKey ends in those
   labels: exact, the groups recur (the latest such incident wins when two routes
   share a receiver and group labels: then it may be the other route's);
2. otherwise the route-key prefix of the latest incident of the same receiver: exact
   when one route uses that receiver;
3. otherwise the root route's key `{}`.

A group not grouped by `tenant` is filed per tenant, like the webhook files it.

A guess that turns out wrong is put right by the group's first post: it takes the
incident over under the real key (receiver/store/ingest_adoption.py) rather than
opening a second one beside it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from receiver.reconcile.alertmanager_api import AmAlert, AmGroup, Truth
from receiver.store.tables import incidents
from receiver.tenant_groups import SEPARATOR, go_labelset, tenant_group_key

ROOT_ROUTE = "{}"


def group_of(alert: AmAlert, truth: Truth, receivers: set[str] | None = None
             ) -> AmGroup | None:
    """The alert's group: the first one of an allowed receiver; None while Alertmanager
    has not grouped it yet (unprocessed) - the next run places it."""
    for group in truth.groups.get(alert.fingerprint, []):
        if receivers is None or group.receiver in receivers:
            return group
    return None


def group_key(conn: Connection, group: AmGroup, tenant: str) -> str:
    """The key of `tenant`'s part of the group, as the webhook files it
    (receiver/tenant_groups.py: a group not grouped by tenant is split per tenant)."""
    suffix = tenant_group_key(":" + go_labelset(group.labels), group.labels, tenant)
    i = incidents.c
    same = conn.execute(
        sa.select(i.group_key).where(i.receiver == group.receiver,
                                     i.group_key.endswith(suffix, autoescape=True))
        .order_by(i.id.desc()).limit(1)).scalar()
    if same is not None:
        return same
    latest = conn.execute(
        sa.select(i.group_key, i.group_labels).where(i.receiver == group.receiver)
        .order_by(i.id.desc()).limit(1)).first()
    if latest is not None:
        key = latest.group_key.rsplit(SEPARATOR, 1)[0]  # its route and labels only
        tail = ":" + go_labelset(latest.group_labels or {})
        if key.endswith(tail):
            return key[: -len(tail)] + suffix
    return ROOT_ROUTE + suffix
