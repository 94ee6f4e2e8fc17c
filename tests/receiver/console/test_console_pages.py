"""The console's pages through Flask's test client, on SQLite and PostgreSQL: signing in
and out, the session cookie, the incidents list and one incident, and bad input."""

from __future__ import annotations

import time
from http.cookies import SimpleCookie

import jwt
import pytest
from support.console import ADMIN, OPERATOR, OTHER_OPERATOR, VIEWER, alert_text, csrf, sign_in
from support.receiver import payload, post_webhook, tenant_payload


def _incident(app) -> int:
    client = app.test_client()
    assert post_webhook(client, payload("group-3-firing")).status_code == 200
    return 1


def test_a_signed_out_visit_is_sent_to_sign_in_and_back(console_app):
    client = console_app.test_client()
    resp = client.get("/ui/incidents/1?x=1")
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/ui/signin?next=/ui/incidents/1?x%3D1"
    page = client.get(resp.headers["Location"])
    assert page.status_code == 200 and 'name="next" value="/ui/incidents/1?x=1"' in page.text
    done = client.post("/ui/signin", data={"token": OPERATOR, "csrf_token": csrf(page.text),
                                           "next": "/ui/incidents/1?x=1"})
    assert done.status_code == 303 and done.headers["Location"] == "/ui/incidents/1?x=1"


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/",
                                    "/api/v1/incidents", "/ui/\\evil"])
def test_sign_in_never_sends_the_browser_off_the_console(console_app, target):
    client = console_app.test_client()
    page = client.get("/ui/signin")
    resp = client.post("/ui/signin", data={"token": OPERATOR, "csrf_token": csrf(page.text),
                                           "next": target})
    assert resp.status_code == 303 and resp.headers["Location"] == "/ui/"


@pytest.mark.parametrize(("token", "status", "why"), [
    ("", 400, "Paste an API token or a JWT to sign in."),
    ("tm_" + "x" * 40, 401, "Not signed in: unknown API token."),
    ("a.b.c", 401, "Not signed in: JWTs are not accepted: no jwt key is configured."),
    ("x" * 9000, 400, "That is not a token: it is over 8 KiB."),
])
def test_a_bad_sign_in_says_why_and_sets_no_session(console_app, token, status, why):
    client = console_app.test_client()
    page = client.get("/ui/signin")
    resp = client.post("/ui/signin", data={"token": token, "csrf_token": csrf(page.text)})
    assert resp.status_code == status
    assert alert_text(resp.text) == why.replace("'", "&#39;")
    assert client.get("/ui/").status_code == 303  # still signed out


def test_the_session_cookie_is_httponly_samesite_signed_and_holds_no_token(console_app):
    client = console_app.test_client()
    page = client.get("/ui/signin")
    resp = client.post("/ui/signin", data={"token": OPERATOR, "csrf_token": csrf(page.text)})
    header = resp.headers["Set-Cookie"]
    cookie = SimpleCookie(header)["ticketmon_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/"
    assert cookie["expires"]  # a lasting cookie with an end, not a browser-session one
    assert OPERATOR not in header
    # a cookie changed by hand is no session
    client.set_cookie("ticketmon_session", cookie.value[:-3] + "abc")
    assert client.get("/ui/").status_code == 303


def test_a_session_ends_at_its_expiry(make_console, monkeypatch):
    app = make_console(console={"session_ttl": "10m"})
    client = app.test_client()
    sign_in(client, OPERATOR)
    assert client.get("/ui/").status_code == 200
    later = time.time() + 601
    monkeypatch.setattr("receiver.console.session._now", lambda: later)
    resp = client.get("/ui/")
    assert resp.status_code == 303
    assert resp.headers["Location"].startswith("/ui/signin?reason=expired")
    assert "Your session expired" in client.get(resp.headers["Location"]).text
    assert client.post("/ui/incidents/1/act", data={"action": "acknowledge",
                                                    "csrf_token": "x"}).status_code == 400


def test_revoking_the_token_ends_its_sessions(console_app):
    store = console_app.extensions["ticketmon_receiver"].store
    token_id, token = store.create_token("pat", "operator", "acme")
    client = console_app.test_client()
    sign_in(client, token)
    assert client.get("/ui/").status_code == 200
    store.revoke_token(token_id, "*")
    resp = client.get("/ui/")
    assert resp.status_code == 303 and "reason=revoked" in resp.headers["Location"]


def test_sign_out_ends_the_session(console_app):
    client = console_app.test_client()
    token = sign_in(client, VIEWER)
    resp = client.post("/ui/signout", data={"csrf_token": token})
    assert resp.status_code == 303 and "reason=signed_out" in resp.headers["Location"]
    assert client.get("/ui/").status_code == 303


def test_the_list_shows_counts_age_and_filters(console_app):
    client = console_app.test_client()
    assert post_webhook(client, payload("group-3-firing")).status_code == 200
    assert post_webhook(client, tenant_payload("globex")).status_code == 200
    sign_in(client, OPERATOR)
    page = client.get("/ui/").text
    assert 'href="/ui/incidents/1">HighErrorRate</a>' in page
    assert "/ui/incidents/2" not in page  # another tenant's
    assert '<strong id="count-open">1</strong>' in page
    assert 'id="tenant"' not in page  # no tenant filter below admin
    assert client.get("/ui/?q=checkout").text.count('class="row-link"') == 1
    assert client.get("/ui/?q=nothing-like-it").text.count('class="row-link"') == 0
    assert client.get("/ui/?status=resolved").text.count('class="row-link"') == 0
    assert client.get("/ui/?severity=warning&service=checkout").text.count(
        'class="row-link"') == 1
    # a tenant filter below admin is ignored: the scope stays the token's
    assert client.get("/ui/?tenant=globex").text.count('class="row-link"') == 1


def test_an_admin_sees_every_tenant_and_filters_by_tenant(console_app):
    client = console_app.test_client()
    post_webhook(client, payload("group-3-firing"))
    post_webhook(client, tenant_payload("globex"))
    sign_in(client, ADMIN)
    page = client.get("/ui/").text
    assert page.count('class="row-link"') == 2 and 'id="tenant"' in page
    only = client.get("/ui/?tenant=globex").text
    assert only.count('class="row-link"') == 1 and "/ui/incidents/2" in only


@pytest.mark.parametrize(("query", "why"), [
    ("status=burning", "status: &#39;burning&#39; is not a choice here"),
    ("cursor=abc", "cursor: not a page of this list"),
    ("q=" + "x" * 201, "search: at most 200 characters"),
    ("service=a%00b", "service must not contain NUL or lone surrogate characters"),
])
def test_a_bad_filter_is_a_page_saying_what_is_wrong(console_app, query, why):
    client = console_app.test_client()
    sign_in(client, VIEWER)
    resp = client.get(f"/ui/?{query}")
    assert resp.status_code == 400 and resp.mimetype == "text/html"
    assert alert_text(resp.text) == why


def test_the_incident_page_shows_alerts_links_and_timeline(console_app):
    incident = _incident(console_app)
    client = console_app.test_client()
    sign_in(client, VIEWER)
    page = client.get(f"/ui/incidents/{incident}").text
    assert "#1 HighErrorRate" in page and page.count('class="alert"') == 3
    assert "<span>instance</span>=checkout-2:8080" in page  # labels
    assert "answers 15% of requests with 5xx" in page  # annotations
    assert 'href="https://runbooks.example.com/checkout/high-error-rate"' in page
    assert ('href="http://127.0.0.1:29090/graph?g0.expr=amcap_http_error_ratio+%3E+0.05'
            '&amp;g0.tab=1"') in page
    assert 'href="http://127.0.0.1:3000/d/ticketmon-services?from=' in page
    assert "var-service=checkout" in page
    assert '<span class="what">Opened</span>' in page
    assert page.count('<span class="what">Alert fired</span>') == 3
    assert 'id="acknowledge"' not in page  # a viewer gets no buttons


def test_an_annotation_link_that_is_not_http_is_not_a_link(console_app):
    body = payload("group-3-firing")
    body["alerts"][0]["annotations"]["runbook_url"] = "javascript:alert(1)"
    body["alerts"][0]["generatorURL"] = "data:text/html,<script>alert(1)</script>"
    post_webhook(console_app.test_client(), body)
    client = console_app.test_client()
    sign_in(client, VIEWER)
    page = client.get("/ui/incidents/1").text
    assert 'href="javascript:' not in page and 'href="data:' not in page
    assert "javascript:alert(1)" in page  # still shown, as text


def test_another_tenants_incident_is_not_found(console_app):
    _incident(console_app)
    client = console_app.test_client()
    sign_in(client, OTHER_OPERATOR)
    resp = client.get("/ui/incidents/1")
    assert resp.status_code == 404 and alert_text(resp.text) == "incident 1 not found"
    assert client.get("/ui/incidents/999999999999999999999").status_code == 404


def test_pages_carry_the_security_headers_and_the_stream_url(make_console):
    app = make_console(stream_url="https://events.example.com/api/v1/stream")
    client = app.test_client()
    sign_in(client, VIEWER)
    resp = client.get("/ui/")
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "connect-src 'self' https://events.example.com" in csp
    assert "frame-ancestors 'none'" in csp and "form-action 'self'" in csp
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Cache-Control"] == "no-store"
    assert ('<meta name="ticketmon-stream" content="https://events.example.com/api/v1/stream">'
            in resp.text)
    for name in ("console.js", "console.css"):
        static = client.get(f"/ui/static/{name}")
        assert static.status_code == 200 and static.headers["X-Content-Type-Options"] == "nosniff"


def test_a_fragment_request_gets_only_the_live_part(console_app):
    _incident(console_app)
    client = console_app.test_client()
    sign_in(client, VIEWER)
    for path in ("/ui/", "/ui/incidents/1"):
        resp = client.get(path, headers={"X-Ticketmon-Fragment": "1"})
        assert resp.status_code == 200 and "<html" not in resp.text and "HighErrorRate" in resp.text
    signed_out = console_app.test_client().get("/ui/", headers={"X-Ticketmon-Fragment": "1"})
    assert signed_out.status_code == 401


def test_the_sessions_key_is_shared_by_every_app_of_one_installation(make_console):
    """Several gunicorn workers and replicas: a cookie one signed is good at another."""
    first, second = make_console(), make_console()
    client = first.test_client()
    sign_in(client, VIEWER)
    cookie = client.get_cookie("ticketmon_session").value
    other = second.test_client()
    other.set_cookie("ticketmon_session", cookie)
    assert other.get("/ui/").status_code == 200
    # another installation (another webhook token) does not accept it
    third = make_console(webhook_token="another-webhook-token-0123456789")
    stranger = third.test_client()
    stranger.set_cookie("ticketmon_session", cookie)
    assert stranger.get("/ui/").status_code == 303


def test_a_platform_jwt_signs_in_until_its_exp(make_console, monkeypatch):
    secret = "jwt-secret-for-console-tests-0123456789"
    app = make_console(jwt={"hs256_secret": secret})
    exp = int(time.time()) + 120  # sooner than session_ttl: the JWT's end wins
    token = jwt.encode({"sub": "jane", "role": "operator", "tenant": "acme", "exp": exp},
                       secret, algorithm="HS256")
    client = app.test_client()
    sign_in(client, token)
    page = client.get("/ui/").text
    assert "jane" in page and '<span class="tag">operator</span>' in page
    monkeypatch.setattr("receiver.console.session._now", lambda: exp + 1)
    resp = client.get("/ui/")
    assert resp.status_code == 303 and "reason=expired" in resp.headers["Location"]
    expired = jwt.encode({"sub": "jane", "role": "operator", "tenant": "acme",
                          "exp": int(time.time()) - 3600}, secret, algorithm="HS256")
    form = client.get("/ui/signin")
    resp = client.post("/ui/signin", data={"token": expired, "csrf_token": csrf(form.text)})
    assert resp.status_code == 401
    assert alert_text(resp.text) == "Not signed in: invalid JWT: Signature has expired."


def test_dev_mode_needs_no_sign_in_like_the_api(make_console):
    app = make_console(dev=True, webhook_token=None)
    page = app.test_client().get("/ui/")
    assert page.status_code == 200
    assert '<span class="tag">admin</span>' in page.text and "Sign out" not in page.text
