"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from pydantic_core import to_json
from sqlalchemy.dialects.postgresql import JSONB

# JSONB on PostgreSQL (comparable, indexable), JSON text on SQLite.
Json = sa.JSON().with_variant(JSONB(), "postgresql")


def json_text(value: object) -> str:
    """JSON text of the hot path's row sets, each sent as one `json` parameter.

    pydantic-core's serialiser (compact, UTF-8 as is) takes a quarter of json.dumps's
    time and serialises a post's rows, labels and annotations nested, in one call, where
    json.dumps ran about 40 times per storm post; PostgreSQL stores the same values.
    """
    return to_json(value).decode()


class UTCDateTime(sa.types.TypeDecorator):
    """Stored as naive UTC (SQLite has no time zones), always returned as aware UTC."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def iso(value: datetime | None) -> str | None:
    """ISO 8601 with a Z, the form Grafana and Alertmanager use."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
