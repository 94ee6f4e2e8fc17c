"""`ticketmon receiver stream`: the stream server (gunicorn gthread, port 10199).

Runs beside `gunicorn … receiver.wsgi:app` with the same settings file; the console
finds it through the receiver's `stream_url`. (`ticketmon receiver serve`, the threaded
development server, serves streams itself.)
"""

from __future__ import annotations

import argparse
import os
import sys


def main(args: argparse.Namespace) -> int:
    env = dict(os.environ)
    if args.config:
        env["TICKETMON_CONFIG"] = args.config
    if args.bind:
        env["TICKETMON_STREAM_BIND"] = args.bind
    if args.workers:
        env["TICKETMON_STREAM_WORKERS"] = str(args.workers)
    os.execve(sys.executable, [sys.executable, "-m", "gunicorn", "-c",
                               "python:receiver.stream.gunicorn_conf",
                               "receiver.stream.wsgi:app"], env)
    return 1  # not reached: execve replaced this process


def register(subparsers) -> None:
    """Adds `stream` to the `ticketmon receiver` group."""
    parser = subparsers.add_parser(
        "stream", help="serve GET /api/v1/stream (live incident changes) on its own port")
    parser.add_argument("--config", help="YAML settings (default $TICKETMON_CONFIG)")
    parser.add_argument("--bind", help="address:port (default 127.0.0.1:10199)")
    parser.add_argument("--workers", type=int,
                        help="processes, each holding stream.max_streams (default 1)")
    parser.set_defaults(func=main)
