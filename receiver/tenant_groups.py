"""One incident never mixes tenants, however Alertmanager groups.

An Alertmanager group holds alerts of several tenants when `group_by` leaves `tenant`
out. An incident is one tenant's (its viewers see its alerts, labels included), so such
a group is split into one webhook post per tenant before ingest, each under its own
group key: Alertmanager's groupKey with `#tenant=NAME` appended. A group whose labels
include `tenant` holds one tenant by construction and keeps Alertmanager's key as it is.

Each part is what Alertmanager would have posted for a group of that tenant's alerts:
its status, commonLabels and commonAnnotations are computed over the part's alerts (as
Alertmanager computes them over the alerts it lists); truncatedAlerts stays on every
part, since the hidden alerts may be any tenant's. The reconciler places alerts under
the same keys (receiver/reconcile/groups.py). Repairs stay counted on the whole post.
"""

from __future__ import annotations

import json

from receiver.payload import Alert, WebhookPayload, stored_group_key

TENANT_LABEL = "tenant"
SEPARATOR = "#tenant="


def tenant_of(labels: dict[str, str]) -> str:
    return labels.get(TENANT_LABEL) or "default"


def go_labelset(labels: dict[str, str]) -> str:
    """model.LabelSet.String(), the labels part of a groupKey: sorted `name="value"`
    pairs, Go-quoted, in braces."""
    pairs = sorted(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in labels.items())
    return "{" + ", ".join(pairs) + "}"


def tenant_group_key(group_key: str, group_labels: dict[str, str], tenant: str) -> str:
    """The key of one tenant's part of a group (Alertmanager's own when it is the whole)."""
    if TENANT_LABEL in group_labels:
        return group_key
    return stored_group_key(f"{group_key}{SEPARATOR}{tenant}")  # within the indexed length


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    first, *rest = maps
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in rest)}


def split_by_tenant(payload: WebhookPayload) -> list[WebhookPayload]:
    """The post as one post per tenant of its alerts (itself when tenant is grouped on)."""
    if TENANT_LABEL in payload.groupLabels:
        return [payload]
    parts: dict[str, list[Alert]] = {}
    for alert in payload.alerts:
        parts.setdefault(tenant_of(alert.labels), []).append(alert)
    if len(parts) == 1:  # one tenant: the post as it is, under that tenant's key
        [tenant] = parts
        return [payload.model_copy(update={"groupKey": tenant_group_key(
            payload.groupKey, payload.groupLabels, tenant)})]
    out = []
    for tenant, alerts in sorted(parts.items()):
        status = "firing" if any(a.status == "firing" for a in alerts) else "resolved"
        out.append(payload.model_copy(update={
            "groupKey": tenant_group_key(payload.groupKey, payload.groupLabels, tenant),
            "alerts": alerts,
            # a truncated post's status covers only what it lists: no part may claim more
            "status": payload.status if payload.truncatedAlerts else status,
            "commonLabels": _common([a.labels for a in alerts]),
            "commonAnnotations": _common([a.annotations for a in alerts]),
        }))
    return out
