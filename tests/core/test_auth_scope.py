"""All-tenant scope ('*') needs the admin role, for every kind of credential, and a JWT
key can vouch for no more than its role ceiling."""

from __future__ import annotations

import time

import jwt
import pytest
from pydantic import ValidationError

from ticketmon.core.auth import Authenticator, AuthError, ConfiguredToken, JwtSettings, Principal

SECRET = "a-shared-secret-of-at-least-32-chars!"


def _jwt(role: str, tenant: str, secret: str = SECRET) -> str:
    return "Bearer " + jwt.encode({"sub": "alice", "role": role, "tenant": tenant,
                                   "exp": int(time.time()) + 60}, secret, algorithm="HS256")


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_configured_tokens_need_a_tenant_unless_admin(role):
    for doc in ({"name": "t", "role": role, "token": "x" * 20},  # '*' by default
                {"name": "t", "role": role, "tenant": "*", "token": "x" * 20}):
        with pytest.raises(ValidationError, match="needs the admin role"):
            ConfiguredToken.model_validate(doc)
    assert ConfiguredToken.model_validate({"name": "t", "role": role, "tenant": "acme",
                                           "token": "x" * 20}).tenant == "acme"
    assert ConfiguredToken.model_validate({"name": "t", "role": "admin",
                                           "token": "x" * 20}).tenant == "*"


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_a_jwt_for_every_tenant_needs_the_admin_role(role):
    auth = Authenticator(JwtSettings(hs256_secret=SECRET), [])
    with pytest.raises(AuthError, match="needs the admin role"):
        auth.authenticate(_jwt(role, "*"))
    assert auth.authenticate(_jwt(role, "acme")).tenant == "acme"
    admin = auth.authenticate(_jwt("admin", "*"))
    assert admin.all_tenants and admin.may_see("acme") and admin.may_see("*")


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_a_stored_token_row_with_every_tenant_is_refused(role):
    """Rows created before the rule (or written by hand) do not slip through."""
    rows = {"v": {"name": "old", "role": role, "tenant": "*"}}
    auth = Authenticator(JwtSettings(), [], lookup=lambda digest: rows["v"])
    with pytest.raises(AuthError, match="needs the admin role"):
        auth.authenticate("Bearer tm_some-old-token")


def test_a_jwt_key_vouches_for_no_more_than_its_ceiling():
    auth = Authenticator(JwtSettings(hs256_secret=SECRET, hs256_max_role="operator"), [])
    assert auth.authenticate(_jwt("operator", "acme")).role == "operator"
    with pytest.raises(AuthError, match="at most the operator role"):
        auth.authenticate(_jwt("admin", "acme"))


def test_scope_checks_do_not_trust_a_wildcard_on_a_non_admin():
    odd = Principal("x", "viewer", "*", "token")  # cannot come out of authenticate()
    assert not odd.all_tenants and not odd.may_see("acme")
    scoped_admin = Principal("y", "admin", "acme", "token")
    assert scoped_admin.may_see("acme") and not scoped_admin.may_see("globex")
    assert not scoped_admin.may_see("*")
