"""The notification sink's stand-ins for PagerDuty, Slack and Twilio.

They check what the real services check and answer in their shapes, so the real
clients (the `twilio` library, our Slack bot client) meet the same refusals here as in
production:

Twilio  POST /twilio/2010-04-01/Accounts/{AccountSid}/Messages.json | Calls.json, form
        encoded, HTTP basic auth with the same account SID; To/From E.164, Body (or
        MediaUrl) for messages, Twiml or Url for calls. Errors are
        {"code", "message", "more_info", "status"} with Twilio's codes (20003, 21211,
        21602, ...); success is 201 with the message or call resource (sid, status
        "queued", ...).
Slack   POST /api/slack/chat.postMessage with a bot token (Bearer xoxb-…) and a JSON
        body; HTTP 200 with {"ok": false, "error": "not_authed" | "invalid_auth" |
        "channel_not_found" | "no_text" | "invalid_blocks"} on bad input, else
        {"ok": true, "channel", "ts", "message"}.
Slack incoming webhooks  POST /slack/services/T…/B…/<24-character secret>, a JSON body;
        200 "ok", else a plain-text error as Slack answers it: 404 no_service (no such
        webhook), 403 invalid_token (right team and bot, wrong secret), 400
        invalid_payload (not a JSON object), no_text, invalid_blocks,
        too_many_attachments.
PagerDuty Events API v2  POST /pagerduty/v2/enqueue; 202 {"status": "success",
        "message": "Event processed", "dedup_key"}, else 400 {"status": "invalid event",
        "message": "Event object is invalid", "errors": [...]}: a routing_key that is not
        32 characters, an event_action that is not trigger/acknowledge/resolve, a trigger
        without payload.summary/source/severity or with a severity PagerDuty does not know,
        a summary over 1024 or a dedup_key over 255 characters, an acknowledge or resolve
        without dedup_key.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
import uuid
from email.utils import formatdate
from urllib.parse import parse_qs

TWILIO = re.compile(r"^/twilio/2010-04-01/Accounts/([^/]+)/(Messages|Calls)\.json$")
SLACK_POST = "/api/slack/chat.postMessage"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
SID = re.compile(r"^AC[0-9a-f]{32}$")
SLACK_HOOK = re.compile(r"^/slack/services/(T[A-Z0-9]{2,20})/(B[A-Z0-9]{2,20})/([^/]*)$")
SLACK_SECRET = re.compile(r"^[A-Za-z0-9]{24}$")
PAGERDUTY_ENQUEUE = "/pagerduty/v2/enqueue"
PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")
PAGERDUTY_ACTIONS = ("trigger", "acknowledge", "resolve")


def answer(path: str, headers: dict[str, str], body: bytes,
           twilio_token: str | None = None) -> tuple[int, bytes] | None:
    """The answer for a Twilio or Slack Web API request; None for any other path."""
    path = path.split("?", 1)[0]
    if path.startswith("/pagerduty"):
        status, doc = pagerduty_enqueue(path, body)
        return status, json.dumps(doc).encode()
    if path.startswith("/slack"):
        return slack_webhook(path, body)
    if path == SLACK_POST:
        return 200, json.dumps(slack_post(headers, body)).encode()
    match = TWILIO.match(path)
    if match:
        status, doc = twilio(match.group(1), match.group(2), headers, body, twilio_token)
        return status, json.dumps(doc).encode()
    return None


def _header(headers: dict[str, str], name: str) -> str:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), "")


def _twilio_error(status: int, code: int, message: str) -> tuple[int, dict]:
    return status, {"code": code, "message": message, "status": status,
                    "more_info": f"https://www.twilio.com/docs/errors/{code}"}


def twilio(account: str, kind: str, headers: dict[str, str], body: bytes,
           token: str | None) -> tuple[int, dict]:
    auth = _header(headers, "Authorization")
    try:
        user, _, password = base64.b64decode(auth.removeprefix("Basic "), validate=True
                                             ).decode().partition(":")
    except ValueError:
        user = password = ""
    if not auth.startswith("Basic ") or user != account or not SID.match(account) \
            or not password or (token is not None and password != token):
        return _twilio_error(401, 20003, "Authenticate")
    if "application/x-www-form-urlencoded" not in _header(headers, "Content-Type"):
        return _twilio_error(400, 20001, "Missing or invalid Content-Type")
    form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
    to, sender = form.get("To", ""), form.get("From", "")
    if kind == "Messages":
        if not to:
            return _twilio_error(400, 21604, "A 'To' phone number is required.")
        if not sender and not form.get("MessagingServiceSid"):
            return _twilio_error(400, 21603, "A 'From' phone number is required.")
        if not form.get("Body") and not form.get("MediaUrl"):
            return _twilio_error(400, 21602, "Message body is required.")
        if len(form.get("Body", "")) > 1600:
            return _twilio_error(400, 21617, "The concatenated message body exceeds the "
                                 "1600 character limit.")
    else:
        if not to:
            return _twilio_error(400, 21201, "No 'To' number is specified")
        if not sender:
            return _twilio_error(400, 21213, "No 'From' number is specified")
        if not form.get("Twiml") and not form.get("Url") and not form.get("ApplicationSid"):
            return _twilio_error(400, 21205, "Url parameter is required.")
    if not E164.match(to):
        return _twilio_error(400, 21211, f"Invalid 'To' Phone Number: {to}")
    if sender and not E164.match(sender):
        return _twilio_error(400, 21212, f"Invalid From Number (caller ID): {sender}")
    prefix = "SM" if kind == "Messages" else "CA"
    sid = prefix + secrets.token_hex(16)
    now = formatdate(time.time(), usegmt=True)
    resource = {"sid": sid, "account_sid": account, "to": to, "from": sender,
                "status": "queued", "direction": "outbound-api", "api_version": "2010-04-01",
                "date_created": now, "date_updated": now, "price": None, "price_unit": "USD",
                "uri": f"/2010-04-01/Accounts/{account}/{kind}/{sid}.json"}
    if kind == "Messages":
        resource.update(body=form.get("Body", ""), num_segments="1", num_media="0",
                        error_code=None, error_message=None, messaging_service_sid=None)
    else:
        resource.update(duration=None, start_time=None, end_time=None, parent_call_sid=None,
                        answered_by=None, caller_name=None)
    return 201, resource


def slack_post(headers: dict[str, str], body: bytes) -> dict:
    auth = _header(headers, "Authorization")
    if not auth.startswith("Bearer "):
        return {"ok": False, "error": "not_authed"}
    if not auth.removeprefix("Bearer ").startswith(("xoxb-", "xoxp-")):
        return {"ok": False, "error": "invalid_auth"}
    try:
        doc = json.loads(body)
    except ValueError:
        return {"ok": False, "error": "invalid_json"}
    if not isinstance(doc, dict):
        return {"ok": False, "error": "invalid_json"}
    channel = str(doc.get("channel") or "")
    if not re.match(r"^[UWCDG][A-Z0-9]{2,20}$", channel):
        return {"ok": False, "error": "channel_not_found"}
    blocks = doc.get("blocks")
    if blocks is not None and (not isinstance(blocks, list) or not all(
            isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks)):
        return {"ok": False, "error": "invalid_blocks"}
    if not doc.get("text") and not blocks:
        return {"ok": False, "error": "no_text"}
    ts = f"{time.time():.6f}"
    target = "D" + channel[1:] if channel[0] in "UW" else channel  # a DM opens a D channel
    return {"ok": True, "channel": target, "ts": ts,
            "message": {"type": "message", "text": doc.get("text", ""), "ts": ts,
                        "bot_id": "B0TICKETMON", "blocks": blocks or []}}


def pagerduty_errors(event: object) -> list[str]:
    """What PagerDuty's Events API v2 finds wrong with an event (empty: accepted)."""
    if not isinstance(event, dict):
        return ["Event object is invalid"]
    errors = []
    key = event.get("routing_key")
    if not isinstance(key, str) or not key:
        errors.append("'routing_key' is missing or blank")
    elif len(key) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    action = event.get("event_action")
    if action not in PAGERDUTY_ACTIONS:
        errors.append("'event_action' is invalid (must be one of the following: "
                      "'trigger', 'acknowledge' or 'resolve')")
    dedup = event.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
        errors.append("'dedup_key' is invalid (must be a string of at most 255 characters)")
    if action in ("acknowledge", "resolve") and not dedup:
        errors.append("'dedup_key' is missing or blank")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            return errors + ["'payload' is missing or blank"]
        for field in ("summary", "source", "severity"):
            if not isinstance(payload.get(field), str) or not payload[field].strip():
                errors.append(f"'payload.{field}' is missing or blank")
        if isinstance(payload.get("summary"), str) and len(payload["summary"]) > 1024:
            errors.append("'payload.summary' is too long (must be at most 1024 characters)")
        if payload.get("severity") and payload["severity"] not in PAGERDUTY_SEVERITIES:
            errors.append("'payload.severity' is invalid (must be one of the following: "
                          "'critical', 'warning', 'error' or 'info')")
    return errors


def pagerduty_enqueue(path: str, body: bytes) -> tuple[int, dict]:
    if path.rstrip("/") != PAGERDUTY_ENQUEUE:
        return 404, {"status": "error", "message": "Not found"}
    try:
        event = json.loads(body)
    except ValueError:
        event = None
    errors = pagerduty_errors(event)
    if errors:
        return 400, {"status": "invalid event", "message": "Event object is invalid",
                     "errors": errors}
    assert isinstance(event, dict)
    return 202, {"status": "success", "message": "Event processed",
                 "dedup_key": event.get("dedup_key") or uuid.uuid4().hex}


def slack_webhook(path: str, body: bytes) -> tuple[int, bytes]:
    """An incoming webhook: Slack answers plain text, "ok" or the error's name."""
    match = SLACK_HOOK.match(path)
    if not match:
        return 404, b"no_service"
    if not SLACK_SECRET.match(match.group(3)):
        return 403, b"invalid_token"
    try:
        doc = json.loads(body)
    except ValueError:
        return 400, b"invalid_payload"
    if not isinstance(doc, dict):
        return 400, b"invalid_payload"
    blocks, attachments = doc.get("blocks"), doc.get("attachments")
    if blocks is not None and (not isinstance(blocks, list) or not all(
            isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks)):
        return 400, b"invalid_blocks"
    if attachments is not None and not isinstance(attachments, list):
        return 400, b"invalid_payload"
    if attachments and len(attachments) > 100:
        return 400, b"too_many_attachments"
    if not doc.get("text") and not blocks and not attachments:
        return 400, b"no_text"
    return 200, b"ok"
