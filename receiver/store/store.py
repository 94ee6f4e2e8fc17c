"""The one interface the API, the CLI and plug-ins use to reach the receiver's database.

Every method runs in its own transaction and turns "the database is not there" into
StoreUnavailable, which the webhook answers with 503 so Alertmanager retries.

Tenancy is enforced twice: every query filters by the caller's tenant (queries.scoped),
and on PostgreSQL a caller's transaction also sets `ticketmon.tenant` (SET LOCAL) for
the row-level security policies of migration 0005, so a query that forgot its filter
still sees one tenant. '*' is the system scope (the webhook, the worker, the CLI, admins):
the Store's sessions start in it, so system work costs no extra statement. Sessions
opened outside ticketmon's engines start with no scope and see no tenant's rows.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from receiver.payload import WebhookPayload
from receiver.store import queries, retention
from receiver.store.incident_events import IncidentHook
from receiver.store.ingest import IngestResult, Probe, ingest, may_be_storm, run_hooks, storm
from receiver.store.tables import api_tokens, audit_log, events, incidents
from receiver.store.types import iso
from receiver.tenant_groups import split_by_tenant
from ticketmon.core.auth import ALL_TENANTS, check_scope, hash_token
from ticketmon.core.database import TENANT_SETTING, make_engine

RETRYABLE_PGCODES = {"40001", "40P01"}  # serialization failure, deadlock
# posts in a row whose alerts were all new to the store, after which the next post skips
# the replay probe: in a storm it finds nothing, and costs a round trip, a pool checkout
# and about a fifth of the server CPU of a post. Skipping it is always safe (see Probe);
# the first post that brings a stored alert ends the streak, so replays probe again.
STORM_STREAK = 3
SET_TENANT = sa.text(f"SELECT set_config('{TENANT_SETTING}', :tenant, true)")


class StoreUnavailable(Exception):
    """The database cannot be reached or used right now; retrying later may work."""


class NotFound(Exception):
    """No such object within the caller's tenant scope."""


class Conflict(Exception):
    """The requested state change is not allowed from the current state."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class Store:
    def __init__(self, url: str, pool_size: int = 4, timeout: float = 5.0,
                 hooks: list[IncidentHook] | None = None,
                 observe: Callable[[float], None] | None = None) -> None:
        self.url = url
        # sessions start in the system scope '*' (set at connect, so the webhook and the
        # worker pay no extra round trip); a caller's transaction narrows it with SET LOCAL
        self.engine = make_engine(url, pool_size=pool_size, timeout=timeout,
                                  tenant=ALL_TENANTS)
        # one PostgreSQL statement reads one snapshot, so a lone read needs no BEGIN/COMMIT
        self.autocommit = (None if url.startswith("sqlite") else
                           make_engine(url, pool_size=pool_size, timeout=timeout,
                                       autocommit=True, tenant=ALL_TENANTS))
        self.row_security = self.engine.dialect.name == "postgresql"
        self.hooks: list[IncidentHook] = list(hooks or [])
        self.observe = observe
        self.new_streak = 0  # see STORM_STREAK; a hint only, so threads may race on it

    def add_hook(self, hook: IncidentHook) -> None:
        """Register a callable run inside the transaction of every incident change."""
        self.hooks.append(hook)

    def dispose(self) -> None:
        self.engine.dispose()
        if self.autocommit is not None:
            self.autocommit.dispose()

    @contextmanager
    def transaction(self, readonly: bool = False, autocommit: bool = False,
                    tenant: str = ALL_TENANTS) -> Iterator[Connection]:
        """One transaction; on PostgreSQL its row-level security scope is `tenant`."""
        if not tenant:
            raise ValueError("tenant must be a tenant name or '*'")
        if autocommit and tenant != ALL_TENANTS:
            raise ValueError("autocommit statements run with the all-tenant scope only")
        started = time.perf_counter()
        try:
            engine = self.engine.execution_options(readonly=True) if readonly else self.engine
            use_autocommit = autocommit and self.autocommit is not None
            if use_autocommit:
                engine = self.autocommit
            with engine.begin() as conn:
                if self.row_security and tenant != ALL_TENANTS:
                    conn.execute(SET_TENANT, {"tenant": tenant})  # until COMMIT/ROLLBACK
                yield conn
        except (sa.exc.IntegrityError, sa.exc.DataError):
            raise  # a bug, not an outage: surface it
        except (sa.exc.DBAPIError, sa.exc.TimeoutError) as exc:
            raise StoreUnavailable(_describe(exc)) from exc
        finally:
            if self.observe:
                self.observe(time.perf_counter() - started)

    def _retry_once(self, fn: Callable[[Connection], object], autocommit: bool = False):
        """Run fn in a transaction; once more if the first try lost a race or a connection."""
        for attempt in (0, 1):
            try:
                with self.transaction(autocommit=autocommit) as conn:
                    return fn(conn)
            except StoreUnavailable as exc:
                cause = exc.__cause__
                retry = isinstance(cause, sa.exc.DBAPIError) and (
                    cause.connection_invalidated
                    or getattr(cause.orig, "pgcode", None) in RETRYABLE_PGCODES)
                if attempt or not retry:
                    raise
        raise AssertionError("unreachable")

    # -- writes ------------------------------------------------------------------------
    def ingest(self, payload: WebhookPayload, now: datetime | None = None) -> IngestResult:
        """Store one Alertmanager post, as one part per tenant of its alerts
        (receiver/tenant_groups.py). Each part commits on its own: when a later one
        fails, Alertmanager re-sends the post and the earlier parts replay as no-ops."""
        now = now or utcnow()
        return IngestResult.total([self._ingest(part, now) for part in split_by_tenant(payload)])

    def _ingest(self, payload: WebhookPayload, now: datetime) -> IngestResult:
        seen = None
        if self.autocommit is not None and self.new_streak >= STORM_STREAK:
            seen = Probe.unread(payload)  # a storm: the probe would find none of them
        elif self.autocommit is not None:  # most posts are replays: they end after one read
            seen = self._retry_once(lambda conn: Probe(conn, payload), autocommit=True)
            if seen.replay:
                self.new_streak = 0
                return seen.result()
        result = None
        if seen is not None and may_be_storm(seen):  # PostgreSQL: one statement, no BEGIN
            result = self._retry_once(lambda conn: storm(conn, seen, now), autocommit=True)
        if result is None:
            result = self._retry_once(lambda conn: ingest(conn, payload, now, self.hooks, seen))
        self.new_streak = self.new_streak + 1 if result.all_new else 0
        return result

    def change_incident(self, incident_id: int, action: str, actor: str, tenant: str,
                        comment: str | None = None, request_id: str | None = None
                        ) -> tuple[dict, bool]:
        """Acknowledge or resolve by hand; returns (incident, changed). Always audited."""
        if action not in ("acknowledge", "resolve"):
            raise ValueError(action)
        target = "acknowledged" if action == "acknowledge" else "resolved"

        def change(incident: dict, now: datetime) -> tuple[dict | None, dict]:
            if action == "acknowledge" and incident["status"] == "resolved":
                raise Conflict(f"incident {incident_id} is resolved: it cannot be acknowledged")
            if incident["status"] == target:
                return None, {}
            return {"status": target, f"{target}_at": now, f"{target}_by": actor}, {}

        return self._act(incident_id, action, target, actor, tenant, comment, request_id,
                         change)

    def silence_incident(self, incident_id: int, seconds: float | None, actor: str,
                         tenant: str, comment: str | None = None,
                         request_id: str | None = None) -> tuple[dict, bool]:
        """Silence the incident's group in Alertmanager for `seconds` (None: lift it).

        The worker creates (or extends, or expires) the silence; the incident shows
        until when. Audited like acknowledge and resolve."""
        action = "silence" if seconds is not None else "unsilence"

        def change(incident: dict, now: datetime) -> tuple[dict | None, dict]:
            if seconds is None:
                if not incident["silenced_until"] or incident["silenced_until"] <= now:
                    return None, {}
                return {"silenced_until": now}, {}
            if incident["status"] == "resolved":
                raise Conflict(f"incident {incident_id} is resolved: there is nothing to "
                               "silence")
            until = now + timedelta(seconds=seconds)
            return ({"silenced_until": until, "silenced_by": actor},
                    {"duration_seconds": seconds, "until": until.isoformat()})

        return self._act(incident_id, action, f"{action}d", actor, tenant, comment,
                         request_id, change)

    def escalate_incident(self, incident_id: int, actor: str, tenant: str,
                          comment: str | None = None, request_id: str | None = None
                          ) -> tuple[dict, bool]:
        """Page the next step of the escalation policy now instead of at its time: an
        `escalated` event the escalation hook turns into a timer due at once. Only an
        open incident escalates: acknowledging or resolving stopped its escalation."""
        def change(incident: dict, now: datetime) -> tuple[dict | None, dict]:
            if incident["status"] != "open":
                raise Conflict(f"incident {incident_id} is {incident['status']}: its "
                               "escalation has stopped")
            return {}, {}

        return self._act(incident_id, "escalate", "escalated", actor, tenant, comment,
                         request_id, change)

    def _act(self, incident_id: int, action: str, kind: str, actor: str, tenant: str,
             comment: str | None, request_id: str | None,
             change: Callable[[dict, datetime], tuple[dict | None, dict]]
             ) -> tuple[dict, bool]:
        """A person's action on one incident: lock it within the caller's scope, apply
        `change` (new column values, or None for no change, and the event's detail), write
        the timeline event and run the hooks, and audit the attempt whatever its outcome."""
        now = utcnow()
        audit = {"at": now, "actor": actor, "actor_tenant": tenant, "action": action,
                 "incident_id": incident_id, "comment": comment, "request_id": request_id}
        conflict: Conflict | None = None
        with self.transaction(tenant=tenant) as conn:
            query = sa.select(incidents).where(incidents.c.id == incident_id)
            query = queries.scoped(query, incidents.c.tenant, tenant).with_for_update()
            row = conn.execute(query).mappings().first()
            if row is None:
                raise NotFound(f"incident {incident_id} not found")
            incident = dict(row)
            try:
                values, detail = change(incident, now)
            except Conflict as exc:
                conflict, values, detail = exc, None, {}
            outcome = "conflict" if conflict else "unchanged" if values is None else "changed"
            if values is not None:
                values["updated_at"] = now
                conn.execute(incidents.update().where(incidents.c.id == incident_id)
                             .values(values))
                incident.update(values)
                detail = {**detail, **({"comment": comment} if comment else {})}
                conn.execute(events.insert().values(
                    at=now, incident_id=incident_id, kind=kind, actor=actor, detail=detail))
                run_hooks(conn, self.hooks, incident, kind, actor, now, detail)
            conn.execute(audit_log.insert().values(outcome=outcome, **audit))
        if conflict is not None:
            raise conflict
        return queries.as_json(incident, skip=("extra",)), outcome == "changed"

    def create_token(self, name: str, role: str, tenant: str,
                     expires_in: timedelta | None = None) -> tuple[int, str]:
        """A new API token; the caller shows it once, only its hash is stored.

        ValueError when the scope is not allowed (tenant '*' needs the admin role)."""
        check_scope(role, tenant)
        with self.transaction() as conn:
            return _insert_token(conn, name, role, tenant, utcnow(), expires_in)

    def rotate_token(self, token_id: int, tenant: str, grace: timedelta | None = None,
                     expires_in: timedelta | None = None) -> dict | None:
        """A new secret for the same name, role and tenant; the old token is revoked now,
        or with a grace period expires then (so clients can switch over). The new token
        lives `expires_in`, by default as long as the old one was given. None if there is
        no such unrevoked token in the caller's scope."""
        now = utcnow()
        with self.transaction() as conn:
            query = sa.select(api_tokens).where(api_tokens.c.id == token_id,
                                                api_tokens.c.revoked_at.is_(None))
            old = conn.execute(queries.scoped(query, api_tokens.c.tenant, tenant)
                               .with_for_update()).mappings().first()
            if old is None:
                return None
            if expires_in is None and old["expires_at"] is not None:
                expires_in = max(old["expires_at"] - old["created_at"], timedelta(minutes=1))
            new_id, token = _insert_token(conn, old["name"], old["role"], old["tenant"], now,
                                          expires_in)
            change: dict = {"revoked_at": now}
            if grace:
                until = now + grace
                change = {"expires_at": min(until, old["expires_at"] or until)}
            conn.execute(api_tokens.update().where(api_tokens.c.id == token_id).values(change))
            row = conn.execute(sa.select(api_tokens).where(api_tokens.c.id == new_id)
                               ).mappings().one()
        return {**queries.as_json(row, skip=("sha256",)), "token": token,
                "replaces": token_id, "replaced_expires_at": iso(change.get("expires_at")),
                "replaced_revoked_at": iso(change.get("revoked_at"))}

    def revoke_token(self, token_id: int, tenant: str) -> bool:
        with self.transaction(tenant=tenant) as conn:
            query = api_tokens.update().where(api_tokens.c.id == token_id,
                                              api_tokens.c.revoked_at.is_(None))
            if tenant != "*":
                query = query.where(api_tokens.c.tenant == tenant)
            return conn.execute(query.values(revoked_at=utcnow())).rowcount == 1

    def prune(self, cutoff: datetime) -> dict[str, int]:
        with self.transaction() as conn:
            return retention.prune(conn, cutoff)

    # -- reads -------------------------------------------------------------------------
    def read(self, fn: Callable, *args, **kwargs):
        """Run one of receiver.store.queries in a read-only, all-tenant transaction
        (system reads: token lookup, gauges). Callers' reads go through read_as."""
        with self.transaction(readonly=True) as conn:
            return fn(conn, *args, **kwargs)

    def read_as(self, scope: str, fn: Callable, /, *args, **kwargs):
        """Run fn(conn, …) in a read-only transaction whose row-level security scope is
        `scope` (PostgreSQL): the database hides other tenants' rows whatever fn asks."""
        with self.transaction(readonly=True, tenant=scope) as conn:
            return fn(conn, *args, **kwargs)

    def ping(self) -> None:
        with self.transaction(readonly=True) as conn:
            conn.execute(sa.text("SELECT 1"))

    def schema_revision(self) -> str | None:
        with self.transaction(readonly=True) as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _insert_token(conn, name: str, role: str, tenant: str, now: datetime,
                  expires_in: timedelta | None) -> tuple[int, str]:
    token = "tm_" + secrets.token_urlsafe(32)
    token_id = conn.execute(api_tokens.insert().values(
        name=name, sha256=hash_token(token), role=role, tenant=tenant, created_at=now,
        expires_at=now + expires_in if expires_in else None,
    ).returning(api_tokens.c.id)).scalar_one()
    return token_id, token


def _describe(exc: Exception) -> str:
    """The first line of a driver error, without parameters (they may hold payload data)."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {text[0] if text else 'unavailable'}"
