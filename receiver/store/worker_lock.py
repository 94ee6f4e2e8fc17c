"""SQLite takes one writer at a time, so one worker process runs per SQLite database."""

from __future__ import annotations

import fcntl
import logging

log = logging.getLogger("receiver.worker")


def single_worker_lock(database_url: str):
    """On SQLite only one worker may run: hold an exclusive lock beside the database."""
    if not database_url.startswith("sqlite"):
        return None
    path = database_url.split("///", 1)[-1] or "ticketmon-receiver.db"
    handle = open(f"{path}.worker.lock", "w")  # noqa: SIM115 - held for the process's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log.info("another worker holds %s.worker.lock: waiting (SQLite runs one worker)", path)
        fcntl.flock(handle, fcntl.LOCK_EX)
    return handle
