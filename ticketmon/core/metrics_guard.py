"""Basic auth and an IP/CIDR allowlist in front of chosen paths of a WSGI app.

`/metrics` endpoints leak business figures, so operators can require a password and
restrict callers to their Prometheus servers' addresses. Both checks are off unless
configured. The client address is the socket peer (REMOTE_ADDR): a forwarded-for
header is never trusted, since any caller can set it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import json
from collections.abc import Callable, Iterable
from pathlib import Path

from pydantic import SecretStr, field_validator, model_validator

from ticketmon.core.config import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class GuardSettings(Settings):
    """`basic_auth_username` + `basic_auth_password` (or `_password_file`), `allow` CIDRs."""

    basic_auth_username: str | None = None
    basic_auth_password: SecretStr | None = None
    basic_auth_password_file: Path | None = None
    allow: list[str] = []

    @field_validator("allow")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as exc:
                raise ValueError(f"{entry!r} is not an IP address or CIDR network") from exc
        return value

    @model_validator(mode="after")
    def _auth_complete(self) -> GuardSettings:
        has_password = self.basic_auth_password is not None or self.basic_auth_password_file
        if bool(self.basic_auth_username) != bool(has_password):
            raise ValueError(
                "basic auth needs both basic_auth_username and basic_auth_password "
                "(or basic_auth_password_file)"
            )
        if self.basic_auth_password is not None and self.basic_auth_password_file:
            raise ValueError("set basic_auth_password or basic_auth_password_file, not both")
        return self

    def password(self) -> str | None:
        if self.basic_auth_password is not None:
            return self.basic_auth_password.get_secret_value()
        if self.basic_auth_password_file:
            return self.basic_auth_password_file.read_text(encoding="utf-8").strip()
        return None


def _refuse(start_response: Callable, status: str, error: str, extra: list | None = None):
    body = json.dumps({"error": error}).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    start_response(status, headers + (extra or []))
    return [body]


class Guard:
    """WSGI middleware: 403 outside the allowlist, 401 without the right credentials."""

    def __init__(
        self,
        app: Callable,
        settings: GuardSettings,
        protected: Callable[[str], bool] = lambda path: path.startswith("/metrics"),
    ) -> None:
        self.app = app
        self.protected = protected
        self.networks: list[Network] = [
            ipaddress.ip_network(n, strict=False) for n in settings.allow
        ]
        self.username = settings.basic_auth_username
        password = settings.password()
        self.password = password.encode() if password is not None else None

    def client_allowed(self, address: str) -> bool:
        if not self.networks:
            return True
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.networks)

    def credentials_ok(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic" or not encoded:
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        user, sep, password = decoded.partition(b":")
        if not sep or self.password is None or self.username is None:
            return False
        user_ok = hmac.compare_digest(user, self.username.encode())
        password_ok = hmac.compare_digest(password, self.password)
        return user_ok and password_ok

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if not self.protected(environ.get("PATH_INFO", "")):
            return self.app(environ, start_response)
        if not self.client_allowed(environ.get("REMOTE_ADDR", "")):
            return _refuse(start_response, "403 Forbidden", "client address not allowed")
        if self.username is not None and not self.credentials_ok(
            environ.get("HTTP_AUTHORIZATION", "")
        ):
            return _refuse(
                start_response, "401 Unauthorized", "authentication required",
                [("WWW-Authenticate", 'Basic realm="ticketmon"')],
            )
        return self.app(environ, start_response)
