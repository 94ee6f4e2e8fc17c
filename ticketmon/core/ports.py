"""A port someone else holds is a configuration problem, not a crash: one line, no traceback."""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from ticketmon.core.config import ConfigError


@contextmanager
def listening(host: str, port: int, key: str) -> Iterator[None]:
    """Around a bind: "address already in use" becomes a ConfigError naming the setting."""
    try:
        yield
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise ConfigError(f"{host}:{port} is already in use (another ticketmon running?): "
                          f"pass --config FILE with another {key}") from None


def ensure_free(host: str, port: int, key: str) -> None:
    """For a server that binds by itself later (werkzeug): refuse before anything else runs."""
    with listening(host, port, key), socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        probe.bind((host, port))
