"""Who is calling, and may they? API tokens, platform JWTs and the webhook token.

Framework-free on purpose: the receiver's API and the fraud check service both build an
Authenticator and ask it about an `Authorization` header.

- API tokens (`tm_…`) are stored as SHA-256 hashes (in the database, or in settings
  for bootstrap tokens) with a role and a tenant scope (`*` = every tenant).
- JWTs from the platform's auth service are accepted with HS256 (shared secret) and/or
  RS256 (public key); the algorithm is pinned per key, so an RS256 public key can never
  be used as an HS256 secret. Role and tenant come from claims; `exp` is required.
  Each key has a role ceiling (`hs256_max_role`, `rs256_max_role`): whoever holds a
  shared HS256 secret can sign anything, so a secret handed to a calling service must
  not be able to vouch for more than that service needs.
- Roles nest: viewer reads, operator also acknowledges and resolves, admin does all.
- All-tenant scope (`*`) needs the admin role, whatever the credential: a viewer or
  operator always belongs to exactly one tenant. Checked where credentials are made
  (settings, token creation) and again on every authentication.
- Database tokens may expire (`expires_at`) or be revoked; every refusal carries a
  bounded `reason`, so a service can count failures by kind for the security alerts.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import jwt
from pydantic import Field, SecretStr, field_validator, model_validator

from ticketmon.core.config import Settings

Role = Literal["viewer", "operator", "admin"]
ROLES = ("viewer", "operator", "admin")
ALL_TENANTS = "*"


def check_scope(role: str, tenant: str) -> None:
    """Refuse all-tenant scope for anything but admin (ValueError names the fix)."""
    if tenant == ALL_TENANTS and role != "admin":
        raise ValueError(f"tenant '*' (every tenant) needs the admin role, not {role}: "
                         "give a single tenant")


def hash_token(token: str) -> str:
    """API tokens are long random strings, so one SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()


class ConfiguredToken(Settings):
    """A bootstrap API token from the config file, e.g. the admin token of the stack."""

    name: str = Field(min_length=1, max_length=100)
    role: Role
    tenant: str = Field(default="*", min_length=1, max_length=100)
    token: SecretStr | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")

    @model_validator(mode="after")
    def _one_secret(self) -> ConfiguredToken:
        if (self.token is None) == (self.sha256 is None):
            raise ValueError("give exactly one of token or sha256")
        check_scope(self.role, self.tenant)
        if self.token is not None:
            if len(self.token.get_secret_value()) < 16:
                raise ValueError("token must be at least 16 characters")
            self.sha256 = hash_token(self.token.get_secret_value())
            self.token = None  # only the hash is kept in memory
        return self


class JwtSettings(Settings):
    """JWTs issued by the platform's auth service: HS256 secret and/or RS256 public key."""

    hs256_secret: SecretStr | None = None
    rs256_public_key: str | None = None  # PEM text or a path to a PEM file
    audience: str | None = None
    issuer: str | None = None
    role_claim: str = "role"
    tenant_claim: str = "tenant"
    name_claim: str = "sub"
    leeway_seconds: int = Field(default=30, ge=0, le=600)
    # the highest role a token signed with each key may claim (higher claims are refused)
    hs256_max_role: Role = "admin"
    rs256_max_role: Role = "admin"

    @field_validator("hs256_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("hs256_secret must be at least 32 characters")
        return value

    @field_validator("rs256_public_key")
    @classmethod
    def _pem(cls, value: str | None) -> str | None:
        if value is None or "-----BEGIN" in value:
            return value
        try:
            text = Path(value).read_text()
        except OSError as exc:
            raise ValueError(f"cannot read public key file {value}: {exc.strerror}") from exc
        if "-----BEGIN" not in text:
            raise ValueError(f"{value} is not a PEM public key")
        return text

    @property
    def enabled(self) -> bool:
        return self.hs256_secret is not None or self.rs256_public_key is not None




@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    tenant: str
    via: str  # "token", "jwt", "config" or "dev"

    def has_role(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    @property
    def all_tenants(self) -> bool:
        """Every tenant: only an admin with scope `*` (anything else is refused earlier)."""
        return self.tenant == ALL_TENANTS and self.role == "admin"

    def may_see(self, tenant: str) -> bool:
        return self.all_tenants or self.tenant == tenant


DEV_PRINCIPAL = Principal(name="dev", role="admin", tenant=ALL_TENANTS, via="dev")


# why a call was refused: the label values of an auth-failures counter (bounded)
FAILURE_REASONS = ("missing", "malformed", "unknown_token", "revoked", "expired", "bad_jwt",
                   "forbidden")


class AuthError(Exception):
    """401: no credentials, or credentials that prove nothing."""

    def __init__(self, message: str, reason: str = "unknown_token") -> None:
        super().__init__(message)
        self.reason = reason if reason in FAILURE_REASONS else "unknown_token"


class Forbidden(Exception):
    """403: a known caller without the role (or tenant) for this request."""

    reason = "forbidden"


def bearer(header: str | None) -> str:
    """The token of an `Authorization: Bearer …` header."""
    if not header:
        raise AuthError("missing Authorization header (expected: Bearer <token>)", "missing")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("Authorization header must be: Bearer <token>", "malformed")
    return token.strip()


class Authenticator:
    def __init__(self, jwt_settings: JwtSettings, configured: list[ConfiguredToken],
                 lookup: Callable[[str], dict | None] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        """`lookup(sha256)`: the stored token's row (name, role, tenant, and optionally
        revoked_at and expires_at as aware datetimes), revoked or not, or None."""
        self.jwt = jwt_settings
        self.clock = clock
        self.configured = {t.sha256: t for t in configured}
        self.lookup = lookup
        self.keys: dict[str, str] = {}
        if jwt_settings.hs256_secret is not None:
            self.keys["HS256"] = jwt_settings.hs256_secret.get_secret_value()
        if jwt_settings.rs256_public_key:
            self.keys["RS256"] = jwt_settings.rs256_public_key

    def authenticate(self, header: str | None) -> Principal:
        """Who the header proves; AuthError (401) when it proves nothing or too much."""
        principal = self._identify(bearer(header))
        try:  # again here: a token row or key from before the rule must not slip through
            check_scope(principal.role, principal.tenant)
        except ValueError as exc:
            raise AuthError(f"{principal.via} credential refused: {exc}") from None
        return principal

    def _identify(self, token: str) -> Principal:
        if token.count(".") == 2:
            return self._from_jwt(token)
        digest = hash_token(token)
        found = self.configured.get(digest)
        if found is not None:
            return Principal(found.name, found.role, found.tenant, "config")
        row = self.lookup(digest) if self.lookup else None
        if row is None:
            raise AuthError("unknown API token", "unknown_token")
        if row.get("revoked_at") is not None:
            raise AuthError("API token revoked", "revoked")
        expires_at = row.get("expires_at")
        if expires_at is not None and expires_at <= self.clock():
            raise AuthError("API token expired: ask an admin to rotate it", "expired")
        return Principal(row["name"], row["role"], row["tenant"], "token")

    def _from_jwt(self, token: str) -> Principal:
        if not self.keys:
            raise AuthError("JWTs are not accepted: no jwt key is configured", "bad_jwt")
        try:
            alg = jwt.get_unverified_header(token).get("alg")
            key = self.keys.get(alg)
            if key is None:
                raise AuthError(f"JWT algorithm {alg!r} is not accepted", "bad_jwt")
            claims = jwt.decode(
                token, key, algorithms=[alg], audience=self.jwt.audience,
                issuer=self.jwt.issuer, leeway=self.jwt.leeway_seconds,
                options={"require": ["exp"], "verify_aud": self.jwt.audience is not None},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError(f"invalid JWT: {exc}", "expired") from None
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid JWT: {exc}", "bad_jwt") from None
        role = claims.get(self.jwt.role_claim)
        tenant = claims.get(self.jwt.tenant_claim)
        name = claims.get(self.jwt.name_claim) or "jwt"
        if role not in ROLES:
            raise AuthError(f"JWT claim {self.jwt.role_claim!r} must be one of {ROLES}",
                            "bad_jwt")
        if not isinstance(tenant, str) or not tenant:
            raise AuthError(f"JWT claim {self.jwt.tenant_claim!r} must name a tenant", "bad_jwt")
        ceiling = self.jwt.hs256_max_role if alg == "HS256" else self.jwt.rs256_max_role
        if ROLES.index(role) > ROLES.index(ceiling):
            raise AuthError(f"a JWT signed with the {alg} key may claim at most the "
                            f"{ceiling} role", "forbidden")
        return Principal(str(name)[:200], role, tenant[:100], "jwt")


def check_webhook_token(expected: str, header: str | None) -> None:
    """The webhook's own shared token, compared in constant time."""
    if not hmac.compare_digest(bearer(header).encode(), expected.encode()):
        raise AuthError("wrong webhook token")
