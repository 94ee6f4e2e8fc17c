"""Cardinality guard: only the top N label values by recent activity keep their own series.

Events and venues grow without bound; each one a series per metric would grow
Prometheus with them. The ranking reads only recent rows (an indexed time range), is
refreshed every few minutes, and everything outside the top N becomes "other".
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, DateTime, bindparam, text

OTHER = "other"


class GuardError(RuntimeError):
    """A guard's ranking query failed or returned something unusable."""


class CardinalityGuard:
    def __init__(self, dimensions: dict[str, str], limit: int, window_seconds: float,
                 refresh_seconds: float) -> None:
        self.statements = {
            name: text(sql).bindparams(bindparam("since", type_=DateTime))
            for name, sql in dimensions.items()
        }
        self.limit = limit
        self.window = timedelta(seconds=window_seconds)
        self.refresh_seconds = refresh_seconds
        self._top: dict[str, frozenset[str]] = {}
        self._loaded_at: dict[str, float] = {}
        self._lock = threading.Lock()

    def top(self, conn: Connection, dimension: str) -> frozenset[str]:
        """The allowed values of a dimension, re-ranked when older than refresh_seconds."""
        with self._lock:
            loaded = self._loaded_at.get(dimension)
            if loaded is not None and time.monotonic() - loaded < self.refresh_seconds:
                return self._top[dimension]
            since = datetime.now(UTC).replace(tzinfo=None) - self.window
            try:
                rows = conn.execute(self.statements[dimension],
                                    {"since": since, "limit": self.limit}).mappings().all()
                values = frozenset(str(row["value"]) for row in rows[: self.limit])
            except KeyError as exc:
                raise GuardError(f"guard {dimension!r}: result has no 'value' column") from exc
            except Exception as exc:
                raise GuardError(f"guard {dimension!r}: {type(exc).__name__}: {exc}") from exc
            self._top[dimension] = values
            self._loaded_at[dimension] = time.monotonic()
            return values

    @staticmethod
    def fold(value: str, allowed: frozenset[str]) -> str:
        return value if value in allowed else OTHER
