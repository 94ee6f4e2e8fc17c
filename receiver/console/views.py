"""The incident console at /ui/: server-rendered pages over the same store and roles as
the REST API. Every action goes through the store's own functions (audited there);
every form carries the session's CSRF token; a signed-out request is sent to sign in.

A request with the header `X-Ticketmon-Fragment: 1` gets only the page's live part: what
console.js swaps in when the stream reports a change.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.exceptions import HTTPException

from receiver.api.common import ApiError, receiver, storable
from receiver.api.incidents import STATUSES, silence_seconds
from receiver.console import present
from receiver.console.session import (
    CSRF_FIELD,
    csrf_ok,
    csrf_token,
    current_principal,
    sign_in,
    sign_out,
    signed_out_reason,
)
from receiver.escalation.listings import list_notifications
from receiver.escalation.outbox import retry_dead
from receiver.severity import KNOWN as SEVERITIES
from receiver.store import queries
from receiver.store.store import Conflict, NotFound
from ticketmon.core.auth import AuthError, Forbidden, Principal

bp = Blueprint("console", __name__, url_prefix="/ui", template_folder="templates",
               static_folder="static", static_url_path="/static")

PAGE = 50
SILENCES = ("30m", "1h", "4h", "8h", "24h")
ACTIONS = ("acknowledge", "resolve", "escalate", "silence", "unsilence")
FRAGMENT = "X-Ticketmon-Fragment"
SIGNED_OUT_WORDS = {"expired": "Your session expired: sign in again.",
                    "revoked": "The token of your session was revoked: sign in with another.",
                    "signed_out": "You are signed out."}


class SignInNeeded(Exception):
    """No session (or one that ended): a page sends the browser to sign in."""


def _principal(role: str = "viewer") -> Principal:
    principal = current_principal()
    if principal is None:
        raise SignInNeeded(signed_out_reason())
    if not principal.has_role(role):
        raise Forbidden(f"this needs the {role} role; {principal.name} has {principal.role}")
    g.principal = principal
    return principal


def _csp() -> str:
    """Our own files only; the stream may live on another origin (setting stream_url)."""
    stream = receiver().settings.stream_url
    parts = urlsplit(stream)
    connect = "'self'" + (f" {parts.scheme}://{parts.netloc}" if parts.netloc else "")
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
            f"connect-src {connect}; form-action 'self'; base-uri 'none'; "
            "frame-ancestors 'none'")


@bp.before_request
def _check_csrf() -> None:
    if request.method == "POST" and not csrf_ok():
        abort(400, "the form's CSRF token is missing or wrong: reload the page and try again")


@bp.after_request
def _headers(response: Response) -> Response:
    if response.mimetype == "text/html":
        response.headers["Content-Security-Policy"] = _csp()
        response.headers["Cache-Control"] = "no-store"
        response.vary.add("Cookie")
        response.vary.add(FRAGMENT)
    return response


@bp.context_processor
def _globals() -> dict:
    return {"principal": g.get("principal"), "csrf_field": CSRF_FIELD,
            "csrf_token": csrf_token, "stream_url": receiver().settings.stream_url,
            "age": present.age}


def _page(template: str, status: int = 200, **context) -> tuple[str, int]:
    """The whole page, or only its live part when console.js asks for it."""
    fragment = request.headers.get(FRAGMENT) == "1"
    return render_template(f"console/{template}", fragment=fragment, **context), status


# -- signing in and out ------------------------------------------------------------------
@bp.get("/signin")
def signin_form():
    reason = request.args.get("reason", "")
    return _page("signin.html", message=SIGNED_OUT_WORDS.get(reason, ""),
                 next=_local(request.args.get("next")))


@bp.post("/signin")
def signin():
    token = request.form.get("token", "").strip()
    target = _local(request.form.get("next"))
    if not token:
        return _page("signin.html", 400, error="Paste an API token or a JWT to sign in.",
                     next=target)
    if len(token) > 8192:
        return _page("signin.html", 400, error="That is not a token: it is over 8 KiB.",
                     next=target)
    try:
        sign_in(token)
    except AuthError as exc:
        receiver().metrics.auth_failures.labels(exc.reason).inc()
        return _page("signin.html", 401, error=f"Not signed in: {exc}.", next=target)
    return redirect(target or url_for("console.incidents"), 303)


@bp.post("/signout")
def signout():
    sign_out()
    return redirect(url_for("console.signin_form", reason="signed_out"), 303)


def _local(target: str | None) -> str | None:
    """Only a path of this console: an open redirect would lend our name to phishing."""
    if target and target.startswith("/ui/") and not target.startswith("//") \
            and "\\" not in target and urlsplit(target).netloc == "":
        return target
    return None


# -- incidents ---------------------------------------------------------------------------
def _choices(name: str, allowed: tuple[str, ...] | None = None, max_len: int = 200) -> list[str]:
    values = [v.strip() for v in request.args.getlist(name) if v.strip()]
    for value in values:
        storable(name, value)
        if len(value) > max_len or (allowed and value not in allowed):
            raise ApiError(400, "invalid_parameter",
                           f"{name}: {value[:50]!r} is not a choice here", name)
    return values


@bp.get("/")
def incidents():
    principal = _principal()
    search = request.args.get("q", "").strip()
    if len(search) > 200:
        raise ApiError(400, "invalid_parameter", "search: at most 200 characters", "q")
    flt = queries.IncidentFilter(
        status=_choices("status", STATUSES), severity=_choices("severity"),
        service=_choices("service"),
        tenant=_choices("tenant", max_len=100) if principal.all_tenants else [],
        search=storable("q", search) or None)
    cursor = request.args.get("cursor", "")
    if cursor and not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 18):
        raise ApiError(400, "invalid_parameter", "cursor: not a page of this list", "cursor")
    store = receiver().store
    rows, next_cursor = store.read_as(principal.tenant, queries.list_incidents,
                                      principal.tenant, flt, PAGE,
                                      int(cursor) if cursor else None)
    counts = store.read_as(principal.tenant, queries.incident_status_counts,
                           principal.tenant, flt)
    return _page("incidents.html", incidents=rows, counts=counts, flt=flt, search=search,
                 statuses=STATUSES, severities=SEVERITIES, next_cursor=next_cursor,
                 now=present.now())


def _incident(principal: Principal, incident_id: int) -> tuple[dict, list[dict]]:
    def read(conn):
        incident = queries.get_incident(conn, principal.tenant, incident_id)
        if incident is None:
            return None, []
        return incident, list_notifications(conn, incident_id=incident_id,
                                            tenant=principal.tenant, limit=500)

    incident, notifications = receiver().store.read_as(principal.tenant, read)
    if incident is None:
        raise NotFound(f"incident {incident_id} not found")
    return incident, notifications


@bp.get("/incidents/<int:incident_id>")
def incident(incident_id: int, error: str | None = None, status: int = 200):
    principal = _principal()
    found, notifications = _incident(principal, incident_id)
    settings = receiver().settings
    now = present.now()
    until = present.parse_time(found.get("silenced_until"))
    return _page("incident.html", status, incident=found, error=error,
                 timeline=present.timeline(found, notifications),
                 links=present.links(found, settings.console.grafana_url),
                 silenced=until is not None and until > now, silences=SILENCES,
                 silence_max=settings.silence_max, now=now)


@bp.post("/incidents/<int:incident_id>/act")
def act(incident_id: int):
    """One form, one button per action; the comment goes with whichever is pressed."""
    principal = _principal("operator")
    action = request.form.get("action", "")
    comment = request.form.get("comment", "").strip() or None
    try:
        if action not in ACTIONS:
            raise ApiError(400, "invalid_field", f"unknown action {action[:40]!r}", "action")
        if comment is not None:
            if len(comment) > 2000:
                raise ApiError(400, "invalid_field", "comment: at most 2000 characters",
                               "comment")
            storable("comment", comment, "invalid_field")
        _apply(action, incident_id, principal, comment)
    except ApiError as exc:
        return incident(incident_id, error=exc.message, status=exc.status)
    except Conflict as exc:
        return incident(incident_id, error=str(exc), status=409)
    return redirect(url_for("console.incident", incident_id=incident_id), 303)


def _apply(action: str, incident_id: int, who: Principal, comment: str | None) -> None:
    store, rid = receiver().store, g.get("request_id")
    common = {"comment": comment, "request_id": rid}
    if action in ("acknowledge", "resolve"):
        _, changed = store.change_incident(incident_id, action, who.name, who.tenant, **common)
    elif action == "escalate":
        _, changed = store.escalate_incident(incident_id, who.name, who.tenant, **common)
    else:
        seconds = None
        if action == "silence":
            seconds = silence_seconds(request.form.get("duration", ""),
                                      receiver().settings.silence_max)
        _, changed = store.silence_incident(incident_id, seconds, who.name, who.tenant,
                                            **common)
    done = {"acknowledge": "acknowledged", "resolve": "resolved", "escalate": "escalated",
            "silence": "silenced", "unsilence": "unsilenced"}[action]
    flash(f"Incident {incident_id} {done}." if changed
          else f"Incident {incident_id} was already {done}.")


# -- dead letters ------------------------------------------------------------------------
@bp.get("/dead-letters")
def dead_letters(error: str | None = None, status: int = 200):
    principal = _principal()
    rows = receiver().store.read_as(principal.tenant, list_notifications, state="dead",
                                    tenant=principal.tenant, limit=200)
    return _page("dead_letters.html", status, rows=rows, error=error, now=present.now())


@bp.post("/dead-letters/<int:notification_id>/retry")
def retry(notification_id: int):
    principal = _principal("operator")
    with receiver().store.transaction(tenant=principal.tenant) as conn:
        done = retry_dead(conn, notification_id, datetime.now(UTC), principal.tenant)
    if not done:
        return dead_letters(error=f"Dead letter {notification_id} is not here any more "
                                  "(retried already, or not yours).", status=404)
    flash(f"Notification {notification_id} is queued again.")
    return redirect(url_for("console.dead_letters"), 303)


# -- errors: pages, never JSON -----------------------------------------------------------
@bp.errorhandler(SignInNeeded)
def _sign_in_needed(exc: SignInNeeded):
    if request.headers.get(FRAGMENT) == "1" or request.method != "GET":
        return _page("error.html", 401, title="Signed out",
                     message=SIGNED_OUT_WORDS.get(exc.args[0] or "", "Sign in first."))
    return redirect(url_for("console.signin_form", reason=exc.args[0] or None,
                            next=request.full_path.rstrip("?")), 303)


def _error_page(status: int, title: str, message: str):
    return _page("error.html", status, title=title, message=message)


@bp.errorhandler(Forbidden)
def _forbidden(exc: Forbidden):
    receiver().metrics.auth_failures.labels("forbidden").inc()
    return _error_page(403, "Not allowed", str(exc))


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound):
    return _error_page(404, "Not found", str(exc))


@bp.errorhandler(ApiError)
def _bad_input(exc: ApiError):
    return _error_page(exc.status, "Cannot show that", exc.message)


@bp.errorhandler(HTTPException)
def _http(exc: HTTPException):
    return _error_page(exc.code or 500, exc.name, exc.description or exc.name)
