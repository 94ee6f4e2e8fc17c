"""Signed, expiring one-click acknowledge links.

A message in chat or mail carries a URL whose token names the incident and is signed
with a server secret, so an on-call engineer can acknowledge without logging in.
The token expires (default 24 h) and only ever grants "acknowledge this incident".
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

SALT = "ticketmon-ack-v1"


class AckTokenError(ValueError):
    """The token is forged, malformed or expired (the message says which)."""


@dataclass(frozen=True)
class AckClaim:
    incident_id: str
    channel: str


class AckLinks:
    def __init__(self, secret: str, base_url: str, max_age: float = 86400.0) -> None:
        if not secret:
            raise ValueError("an ack link secret is required")
        self._serializer = URLSafeTimedSerializer(secret, salt=SALT)
        self.base_url = base_url.rstrip("/")
        self.max_age = max_age

    def token(self, incident_id: str, channel: str) -> str:
        return self._serializer.dumps({"i": str(incident_id), "c": channel})

    def url(self, incident_id: str, channel: str) -> str:
        return f"{self.base_url}/ack/{self.token(incident_id, channel)}"

    def verify(self, token: str) -> AckClaim:
        try:
            data = self._serializer.loads(token, max_age=self.max_age)
        except SignatureExpired as exc:
            raise AckTokenError("acknowledge link has expired") from exc
        except BadSignature as exc:
            raise AckTokenError("acknowledge link is not valid") from exc
        if not isinstance(data, dict) or not isinstance(data.get("i"), str):
            raise AckTokenError("acknowledge link is not valid")
        return AckClaim(data["i"], str(data.get("c", "")))
