"""Alertmanager payloads and store probes shared by the receiver's tests."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa

from receiver.store import Store

# real Alertmanager 0.25 posts; tests/fixtures/alertmanager/README.md says how they were captured
PAYLOADS = Path(__file__).resolve().parents[1] / "fixtures" / "alertmanager"
WEBHOOK_TOKEN = "webhook-token-for-tests-0123456789"


def payload_bytes(name: str) -> bytes:
    return (PAYLOADS / f"alertmanager-0.25-{name}.json").read_bytes()


def payload(name: str) -> dict:
    return json.loads(payload_bytes(name))


ALL_PAYLOADS = sorted(p.name[len("alertmanager-0.25-"):-5] for p in PAYLOADS.glob("*.json")
                      if not p.name.endswith("headers.json"))


def snapshot(store: Store) -> dict[str, list]:
    """Every row of the receiver's tables, to prove a post changed nothing."""
    from receiver.store.tables import metadata

    with store.engine.connect() as conn:
        return {t.name: [tuple(r) for r in conn.execute(sa.select(t).order_by(*t.primary_key))]
                for t in metadata.sorted_tables}


def count(store: Store, table: str, where: str = "1=1") -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table} WHERE {where}")).scalar()


def post_webhook(client, body: bytes | dict, token: str = WEBHOOK_TOKEN, **headers):
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    headers.setdefault("Content-Type", "application/json")
    if token is not None:
        headers.setdefault("Authorization", f"Bearer {token}")
    return client.post("/api/v1/alertmanager", data=body, headers=headers)


def tenant_payload(tenant: str, name: str = "group-3-firing") -> dict:
    """A real post moved to another tenant: its own group key, labels and fingerprints."""
    body = payload(name)
    body["groupKey"] += f"/{tenant}"
    body["commonLabels"]["tenant"] = tenant
    for alert in body["alerts"]:
        alert["labels"]["tenant"] = tenant
        alert["fingerprint"] = alert["fingerprint"][:8] + tenant.encode().hex()[:8].ljust(8, "0")
    return body


def filed_key(body: dict) -> str:
    """The group key a one-tenant post is filed under (receiver/tenant_groups.py)."""
    from receiver.payload import WebhookPayload
    from receiver.tenant_groups import split_by_tenant

    [part] = split_by_tenant(WebhookPayload.model_validate(body))
    return part.groupKey


def bearer(app, role: str, tenant: str | None = None) -> dict:
    """Headers with a new DB token; admins span every tenant by default, others get the
    fixtures' acme."""
    tenant = tenant or ("*" if role == "admin" else "acme")
    store = app.extensions["ticketmon_receiver"].store
    _, secret = store.create_token(f"{role}-{tenant}", role, tenant)
    return {"Authorization": f"Bearer {secret}"}
