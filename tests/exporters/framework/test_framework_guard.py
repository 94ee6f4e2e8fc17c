"""Basic auth and the IP allowlist in front of /metrics, and their settings errors."""

from __future__ import annotations

import base64

import pytest

from ticketmon.core.config import ConfigError, load
from ticketmon.core.metrics_guard import Guard, GuardSettings


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def call(guard: Guard, path="/metrics", addr="127.0.0.1", auth: str | None = None):
    environ = {"PATH_INFO": path, "REMOTE_ADDR": addr, "REQUEST_METHOD": "GET"}
    if auth is not None:
        environ["HTTP_AUTHORIZATION"] = auth
    seen = {}

    def start_response(status, headers):
        seen["status"] = status
        seen["headers"] = dict(headers)

    body = b"".join(guard(environ, start_response))
    return int(seen["status"][:3]), seen["headers"], body


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_open_by_default():
    assert call(Guard(app, GuardSettings()))[0] == 200


def test_basic_auth_required_and_checked():
    guard = Guard(app, GuardSettings(basic_auth_username="prom", basic_auth_password="s3cret"))
    status, headers, _ = call(guard)
    assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
    assert call(guard, auth=basic("prom", "wrong"))[0] == 401
    assert call(guard, auth=basic("other", "s3cret"))[0] == 401
    assert call(guard, auth="Basic !!!notbase64")[0] == 401
    assert call(guard, auth="Bearer abc")[0] == 401
    assert call(guard, auth=basic("prom", "s3cret"))[0] == 200
    assert call(guard, path="/healthz")[0] == 200  # only /metrics is guarded


def test_password_file(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    guard = Guard(app, GuardSettings(basic_auth_username="u", basic_auth_password_file=secret))
    assert call(guard, auth=basic("u", "from-file"))[0] == 200


def test_allowlist_by_cidr_and_address():
    guard = Guard(app, GuardSettings(allow=["10.0.0.0/8", "192.168.1.7"]))
    assert call(guard, addr="10.3.4.5")[0] == 200
    assert call(guard, addr="192.168.1.7")[0] == 200
    status, _, body = call(guard, addr="127.0.0.1")
    assert status == 403 and b"not allowed" in body
    assert call(guard, addr="::ffff:10.1.1.1")[0] == 200
    assert call(guard, addr="garbage")[0] == 403


def test_bad_settings_name_the_key(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("allow: ['10.0.0.0/33']\n")
    with pytest.raises(ConfigError, match="allow"):
        load(GuardSettings, cfg, environ={})
    cfg.write_text("basic_auth_username: prom\n")
    with pytest.raises(ConfigError, match="basic_auth_password"):
        load(GuardSettings, cfg, environ={})
    cfg.write_text("basic_auth_pasword: x\n")
    with pytest.raises(ConfigError, match="basic_auth_pasword"):
        load(GuardSettings, cfg, environ={})
