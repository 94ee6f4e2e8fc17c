"""`ticketmon receiver …`: serve, db upgrade, token create/rotate, prune.

Other receiver packages (escalation's `worker`, anomaly's `anomaly`) add their own
subcommands by listing a module with `register(subparsers)` in EXTENSIONS.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from datetime import UTC, datetime, timedelta

from ticketmon.core.config import ConfigError
from ticketmon.core.durations import parse_duration

# modules with register(receiver_subparsers)
EXTENSIONS: list[str] = ["receiver.escalation.worker_cli", "receiver.anomaly.cli",
                         "receiver.stream.cli"]

def duration(text: str) -> timedelta:
    """`90d`, `12h`, `30m`, `2w`, `45s` (ticketmon.core.durations), longer than zero."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be longer than zero")
    return timedelta(seconds=seconds)


def lifetime(text: str) -> timedelta:
    """A token's lifetime: a duration of at most ten years (a date past 9999 would crash)."""
    value = duration(text)
    if value > timedelta(days=3660):
        raise argparse.ArgumentTypeError(f"{text!r} is over ten years")
    return value


def _settings(args: argparse.Namespace, **overrides):
    from receiver.settings import ReceiverSettings
    from ticketmon.core import logs
    from ticketmon.core.config import load

    settings = load(ReceiverSettings, path=getattr(args, "config", None),
                    overrides={k: v for k, v in overrides.items() if v is not None})
    logs.setup(settings.log_level)
    return settings


def serve(args: argparse.Namespace) -> int:
    from receiver.app import create_app
    from receiver.store import migrate
    from ticketmon.core import ports

    settings = _settings(args, host=args.host, port=args.port, dev=True if args.dev else None)
    app = create_app(settings)  # refuses bad settings before the database is touched
    ports.ensure_free(settings.host, settings.port, "port (or --port)")
    migrate_now = settings.auto_migrate
    if migrate_now is None:
        migrate_now = settings.database_url.startswith("sqlite")
    if migrate_now:
        migrate.upgrade(settings.database_url)
    app.run(host=settings.host, port=settings.port, threaded=True, use_reloader=False)
    return 0


def db_upgrade(args: argparse.Namespace) -> int:
    from receiver.store import migrate

    settings = _settings(args)
    migrate.upgrade(settings.database_url, args.revision)
    print(f"database at revision {args.revision if args.revision != 'head' else migrate.head()}")
    return 0


def token_create(args: argparse.Namespace) -> int:
    from receiver.store import Store, migrate

    tenant = args.tenant or ("*" if args.role == "admin" else None)
    if tenant is None:
        print(f"error: --tenant is required for the {args.role} role (only admin tokens may "
              "span every tenant)", file=sys.stderr)
        return 2
    settings = _settings(args)
    migrate.require(settings)
    store = Store(settings.database_url, pool_size=1)
    try:
        token_id, token = store.create_token(args.name, args.role, tenant, args.expires_in)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        store.dispose()
    until = (f", expires {(datetime.now(UTC) + args.expires_in).isoformat(timespec='seconds')}"
             if args.expires_in else "")
    print(f"created token {token_id} ({args.name}, {args.role}, tenant {tenant}{until})",
          file=sys.stderr)
    print(token)
    return 0


def token_rotate(args: argparse.Namespace) -> int:
    """Print a new secret for token ID's name, role and tenant; the old one is revoked now,
    or after --grace so its clients can switch over."""
    from receiver.store import Store, migrate

    settings = _settings(args)
    migrate.require(settings)
    store = Store(settings.database_url, pool_size=1)
    try:
        rotated = store.rotate_token(args.id, "*", grace=args.grace, expires_in=args.expires_in)
    finally:
        store.dispose()
    if rotated is None:
        print(f"no unrevoked token {args.id}", file=sys.stderr)
        return 1
    old = (f"expires {rotated['replaced_expires_at']}" if rotated["replaced_expires_at"]
           else "revoked")
    new = f", expires {rotated['expires_at']}" if rotated["expires_at"] else ""
    print(f"token {args.id} {old}; created token {rotated['id']} ({rotated['name']}, "
          f"{rotated['role']}, tenant {rotated['tenant']}{new})", file=sys.stderr)
    print(rotated["token"])
    return 0


def prune(args: argparse.Namespace) -> int:
    from receiver.store import Store, migrate

    settings = _settings(args)
    migrate.require(settings)
    store = Store(settings.database_url, pool_size=1)
    try:
        counts = store.prune(datetime.now(UTC) - args.older_than)
    finally:
        store.dispose()
    print(" ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


def _name(text: str) -> str:
    if not 0 < len(text) <= 100:
        raise argparse.ArgumentTypeError("must be 1 to 100 characters")
    return text


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("receiver", help="Alertmanager webhook receiver")
    sub = parser.add_subparsers(dest="receiver_command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="YAML settings file (default: $TICKETMON_CONFIG)")

    p = sub.add_parser("serve", parents=[common],
                       help="development server (production: gunicorn receiver.wsgi:app)")
    p.add_argument("--host", help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="listen port (default 10190)")
    p.add_argument("--dev", action="store_true", help="turn authentication OFF (loudly)")
    p.set_defaults(func=serve)

    db = sub.add_parser("db", help="database schema").add_subparsers(
        dest="db_command", required=True, metavar="COMMAND")
    p = db.add_parser("upgrade", parents=[common], help="apply Alembic migrations")
    p.add_argument("--revision", default="head")
    p.set_defaults(func=db_upgrade)

    token = sub.add_parser("token", help="API tokens").add_subparsers(
        dest="token_command", required=True, metavar="COMMAND")
    p = token.add_parser("create", parents=[common],
                         help="create an API token and print it on stdout")
    p.add_argument("--name", required=True, type=_name)
    p.add_argument("--role", required=True, choices=("viewer", "operator", "admin"))
    p.add_argument("--tenant", type=_name,
                   help="tenant scope; '*' (every tenant, the default) is for admin only")
    p.add_argument("--expires-in", type=lifetime, metavar="AGE",
                   help="refused after this long, e.g. 90d (default: never)")
    p.set_defaults(func=token_create)

    p = token.add_parser("rotate", parents=[common],
                         help="issue a new secret for a token's name, role and tenant and "
                              "revoke the old one; print the new one on stdout")
    p.add_argument("id", type=int, help="the token's id (see GET /api/v1/tokens)")
    p.add_argument("--grace", type=lifetime, metavar="AGE",
                   help="the old token keeps working this long, e.g. 1h (default: revoked now)")
    p.add_argument("--expires-in", type=lifetime, metavar="AGE",
                   help="lifetime of the new token (default: as long as the old one's)")
    p.set_defaults(func=token_rotate)

    p = sub.add_parser("prune", parents=[common], help="delete what ended before a cutoff")
    p.add_argument("--older-than", required=True, type=duration, metavar="AGE",
                   help="e.g. 90d")
    p.set_defaults(func=prune)

    for module in EXTENSIONS:
        importlib.import_module(module).register(sub)


__all__ = ["ConfigError", "register"]
