"""Settings of the live incident stream: the receiver's `stream:` section."""

from __future__ import annotations

from pydantic import Field, field_validator

from ticketmon.core.config import Settings
from ticketmon.core.durations import Duration


class StreamSettings(Settings):
    # a comment line this often keeps proxies from closing an idle stream, and finds
    # clients that went away
    heartbeat: Duration = Field(default=15.0, ge=1, le=300)
    # the `retry:` hint: how long a browser waits before reconnecting
    retry: Duration = Field(default=3.0, ge=0.1, le=300)
    # how often each stream server looks for new changes when nothing wakes it
    # (SQLite has no NOTIFY: this is its latency; PostgreSQL is woken at each commit)
    poll_interval: Duration = Field(default=0.5, gt=0, le=1)
    # open streams per stream server process; one more is answered 503
    max_streams: int = Field(default=500, ge=1, le=10_000)
    # events waiting for one client; a client that falls further behind is dropped
    # (it reconnects with Last-Event-ID and catches up from the database)
    buffer: int = Field(default=1000, ge=10, le=100_000)
    # a client that takes longer than this to accept one write is dropped
    write_timeout: Duration = Field(default=10.0, ge=0.1, le=300)
    # a stream ends after this long (the client reconnects at once and is authenticated
    # again, so a revoked token or an expired session stops streaming)
    max_age: Duration = Field(default=1800.0, ge=10, le=86400)
    # the change feed keeps this long and at most this many rows; a client resuming from
    # before that gets an `event: reset` and reloads
    retention: Duration = Field(default=86400.0, ge=60)
    max_rows: int = Field(default=200_000, ge=1000)
    # origins of consoles on another origin (scheme://host:port) allowed to read
    # streams with their session cookie (CORS with credentials)
    allowed_origins: list[str] = Field(default_factory=list)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            scheme, sep, rest = origin.partition("://")
            if scheme not in ("http", "https") or not sep or not rest or "/" in rest:
                raise ValueError(f"{origin!r} is not an origin like https://console.example")
        return value
