"""Slack request signatures (the v0 scheme), for the Acknowledge button.

Slack signs every interactive request: X-Slack-Signature is `v0=` + hex HMAC-SHA256 of
`v0:<X-Slack-Request-Timestamp>:<raw body>` with the app's signing secret. A request
older than five minutes is refused even when signed, so a captured click cannot be
replayed later; the comparison takes constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import time

MAX_AGE = 300.0


class SignatureError(ValueError):
    """Why a request was refused (missing, stale or forged)."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes,
           now: float | None = None) -> None:
    """Raises SignatureError unless the request is signed with `secret` and recent."""
    if not timestamp or not signature:
        raise SignatureError("missing X-Slack-Request-Timestamp or X-Slack-Signature")
    try:
        sent = int(timestamp)
    except ValueError:
        raise SignatureError("X-Slack-Request-Timestamp is not a number") from None
    if abs((now if now is not None else time.time()) - sent) > MAX_AGE:
        raise SignatureError("request is older than five minutes (replay?)")
    if not hmac.compare_digest(sign(secret, timestamp, body), signature):
        raise SignatureError("signature does not match the signing secret")
