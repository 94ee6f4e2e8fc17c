"""Tenancy does not depend on how Alertmanager groups (issue #12): a group holding alerts
of two tenants (group_by without `tenant`) becomes one incident per tenant, each showing
only its own tenant's alerts, on SQLite and on PostgreSQL under row-level security."""

from __future__ import annotations

import copy

import pytest
from support.receiver import payload, post_webhook

from receiver.payload import WebhookPayload
from receiver.tenant_groups import split_by_tenant

ACME, GLOBEX = "viewer-acme-token-0123456789", "viewer-globex-token-0123456789"


def mixed(name: str) -> dict:
    """A real post of group_by [alertname, service] whose checkout-3 is globex's."""
    body = copy.deepcopy(payload(name))
    assert "tenant" not in body["groupLabels"]
    for alert in body["alerts"]:
        if alert["labels"]["instance"] == "checkout-3:8080":
            alert["labels"]["tenant"] = "globex"
    body["commonLabels"].pop("tenant", None)
    return body


@pytest.fixture(params=["sqlite", "postgresql"])
def client(request, make_app, sqlite_url):
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("app_role_url")
    tokens = [{"name": "acme", "role": "viewer", "tenant": "acme", "token": ACME},
              {"name": "globex", "role": "viewer", "tenant": "globex", "token": GLOBEX}]
    return make_app(url, api_tokens=tokens).test_client()


def incidents_of(client, token: str) -> list[dict]:
    headers = {"Authorization": f"Bearer {token}"}
    listed = client.get("/api/v1/incidents", headers=headers).json["incidents"]
    return [client.get(f"/api/v1/incidents/{i['id']}", headers=headers).json["incident"]
            for i in listed]


def test_a_mixed_group_is_one_incident_per_tenant(client):
    assert post_webhook(client, mixed("group-3-firing")).status_code == 200
    [acme] = incidents_of(client, ACME)
    [globex] = incidents_of(client, GLOBEX)
    assert (acme["tenant"], globex["tenant"]) == ("acme", "globex")
    instances = {a["labels"]["instance"] for a in acme["alerts"]}
    assert instances == {"checkout-1:8080", "checkout-2:8080"}
    assert {a["labels"]["instance"] for a in globex["alerts"]} == {"checkout-3:8080"}
    assert all(a["labels"]["tenant"] == "globex" for a in globex["alerts"])
    # neither sees the other's incident, not even by id
    headers = {"Authorization": f"Bearer {ACME}"}
    assert client.get(f"/api/v1/incidents/{globex['id']}", headers=headers).status_code == 404

    # checkout-3 (globex) resolves alone: only globex's incident ends
    assert post_webhook(client, mixed("group-3-partly-resolved")).status_code == 200
    assert [i["status"] for i in incidents_of(client, GLOBEX)] == ["resolved"]
    assert [i["status"] for i in incidents_of(client, ACME)] == ["open"]
    assert post_webhook(client, mixed("group-3-resolved")).status_code == 200
    assert [i["status"] for i in incidents_of(client, ACME)] == ["resolved"]


def test_a_group_on_tenant_is_left_whole():
    body = payload("group-3-firing")
    body["groupLabels"]["tenant"] = "acme"
    whole = WebhookPayload.model_validate(body)
    assert split_by_tenant(whole) == [whole]


def test_each_part_is_what_alertmanager_would_post_for_it():
    parts = split_by_tenant(WebhookPayload.model_validate(mixed("group-3-partly-resolved")))
    by_tenant = {p.alerts[0].labels.get("tenant"): p for p in parts}
    acme, globex = by_tenant["acme"], by_tenant["globex"]
    assert globex.groupKey == payload("group-3-firing")["groupKey"] + "#tenant=globex"
    assert (acme.status, globex.status) == ("firing", "resolved")
    assert acme.commonLabels["tenant"] == "acme" and globex.commonLabels["tenant"] == "globex"
