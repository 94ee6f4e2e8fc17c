"""Who is signed in to the console: a signed session cookie, and the CSRF token of its forms.

The cookie (`ticketmon_session`: HttpOnly, SameSite=Lax, Secure behind https) carries
the principal's name, role, tenant, how it signed in, the stored token's row id and an
absolute expiry; never the token itself. It is signed (not encrypted) with
`console.session_secret`, or, when that is unset, with a key derived from the webhook
token and the installation id, so every worker and replica of one installation agrees
without configuration. Each request re-reads a database token's row, so revoking or
expiring the token also ends the sessions made with it; a JWT's session ends with the
JWT's `exp`. The stream (GET /api/v1/stream) authenticates its cookie with
current_principal() too.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time

import sqlalchemy as sa
from flask import Flask, current_app, g, request, session
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

from receiver.api.common import Receiver, receiver
from receiver.store import StoreUnavailable, queries
from receiver.store.tables import api_tokens
from ticketmon.core.auth import DEV_PRINCIPAL, AuthError, Principal, hash_token

log = logging.getLogger("receiver.console")
COOKIE = "ticketmon_session"
# the cookie outlives its session by this much, so a late visit hears "your session
# expired" instead of a bare sign-in form; the session's own `expires` is what counts
COOKIE_GRACE = 86400
CSRF_FIELD = "csrf_token"


class DerivedKeySessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with a key found on first use (it may need the
    database) and never for a request without a cookie: the webhook never waits on it."""

    def __init__(self, ctx: Receiver) -> None:
        self.ctx = ctx
        self._key: str | None = None

    def key(self) -> str:
        if self._key is None:
            self._key = session_key(self.ctx)
        return self._key

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(
            self.key(), salt=self.salt, serializer=self.serializer,
            signer_kwargs={"key_derivation": self.key_derivation,
                           "digest_method": self.digest_method})

    def open_session(self, app: Flask, request):
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        try:
            return super().open_session(app, request)
        except StoreUnavailable:
            log.error("console: cannot derive the session key: the database is unavailable")
            return self.session_class()


def session_key(ctx: Receiver) -> str:
    configured = ctx.settings.console.session_secret
    if configured is not None:
        return configured.get_secret_value()
    if ctx.settings.webhook_token is None:
        log.warning("console: no session_secret and no webhook_token (dev mode): sessions "
                    "are signed with a random key and end when this process does")
        return secrets.token_hex(32)
    installation = ctx.store.read(queries.installation_id)
    return hmac.new(ctx.settings.webhook_token.get_secret_value().encode(),
                    f"ticketmon console session {installation}".encode(),
                    hashlib.sha256).hexdigest()


def configure(app: Flask) -> None:
    """Cookie attributes and the session interface; called when the console registers."""
    ctx: Receiver = app.extensions["ticketmon_receiver"]
    app.session_interface = DerivedKeySessions(ctx)
    app.config.update(SESSION_COOKIE_NAME=COOKIE, SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_PATH="/",
                      SESSION_COOKIE_SECURE=ctx.settings.hsts,
                      SESSION_REFRESH_EACH_REQUEST=False,
                      PERMANENT_SESSION_LIFETIME=int(ctx.settings.console.session_ttl)
                      + COOKIE_GRACE)


def _now() -> float:
    return time.time()


def sign_in(token: str) -> Principal:
    """Check the token (AuthError says why not) and start a session for its principal."""
    ctx = receiver()
    principal = ctx.auth.authenticate(f"Bearer {token}")
    expires = _now() + ctx.settings.console.session_ttl
    token_id = None
    if principal.via == "jwt":
        import jwt  # the claims were verified by authenticate(); only exp is read here

        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
        expires = min(expires, float(exp))
    elif principal.via == "token":
        row = ctx.store.read(queries.find_token, hash_token(token))
        token_id = row["id"]
        if row.get("expires_at") is not None:
            expires = min(expires, row["expires_at"].timestamp())
    session.clear()
    session.permanent = True
    session.update(name=principal.name, role=principal.role, tenant=principal.tenant,
                   via=principal.via, token_id=token_id, expires=expires,
                   csrf=secrets.token_urlsafe(32))
    return principal


def sign_out() -> None:
    session.clear()


def signed_out_reason() -> str | None:
    """Why the request has no principal ("expired", "revoked"…), None if it has one or
    never signed in."""
    current_principal()
    return g.get("console_signed_out")


def current_principal() -> Principal | None:
    """The signed-in principal of this request's session cookie, or None: no cookie, a
    session past its expiry, or a token revoked or expired since. Dev mode: the dev admin."""
    if "console_principal" in g:
        return g.console_principal
    g.console_principal = principal = _principal()
    return principal


def _principal() -> Principal | None:
    ctx = receiver()
    if ctx.settings.dev:
        return DEV_PRINCIPAL
    if "name" not in session:
        return None
    if _now() >= session.get("expires", 0):
        return _refuse("expired")
    principal = Principal(session["name"], session["role"], session["tenant"], session["via"])
    try:
        if principal.via == "token":
            principal = _stored_token(ctx, session.get("token_id"))
        elif principal.via == "config" and not any(
                t.name == principal.name and t.role == principal.role
                and t.tenant == principal.tenant for t in ctx.auth.configured.values()):
            raise AuthError("the configured token is gone", "revoked")
    except AuthError as exc:
        return _refuse(exc.reason)
    return principal


def _stored_token(ctx: Receiver, token_id: int | None) -> Principal:
    """The session's database token as it is now: revoked or expired ends the session."""
    row = ctx.store.read(lambda conn: conn.execute(
        sa.select(api_tokens.c.name, api_tokens.c.role, api_tokens.c.tenant,
                  api_tokens.c.revoked_at, api_tokens.c.expires_at)
        .where(api_tokens.c.id == token_id)).mappings().first())
    if row is None or row["revoked_at"] is not None:
        raise AuthError("token revoked", "revoked")
    if row["expires_at"] is not None and row["expires_at"].timestamp() <= _now():
        raise AuthError("token expired", "expired")
    return Principal(row["name"], row["role"], row["tenant"], "token")


def _refuse(reason: str) -> None:
    current_app.extensions["ticketmon_receiver"].metrics.auth_failures.labels(reason).inc()
    g.console_signed_out = reason
    session.clear()  # the browser drops the cookie with this answer
    return None


def csrf_token() -> str:
    """This session's form token (made on first use, also before signing in)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csrf_ok() -> bool:
    sent = request.form.get(CSRF_FIELD, "")
    expected = session.get("csrf", "")
    return bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())
