"""The query catalog: default queries.yaml plus users' own files, validated at start.

A mistake in a catalog (unknown key, counter without watermark, bad metric name,
two queries writing one metric) is a ConfigError naming the file and the query, so it
fails at start-up instead of producing wrong series.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from ticketmon.core.config import ConfigError, Settings, format_errors, read_yaml

DEFAULT_CATALOG = Path(__file__).with_name("queries.yaml")

IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"
METRIC = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"


class Watermark(Settings):
    table: str = Field(pattern=IDENT)
    column: str = Field(pattern=IDENT)


class QuerySpec(Settings):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    metric: str = Field(pattern=METRIC)
    type: Literal["counter", "gauge"]
    help: str = Field(min_length=1)
    labels: list[str] = []
    guard: dict[str, str] = {}
    fold: Literal["sum", "max"] = "sum"
    watermark: Watermark | None = None
    window_seconds: float = Field(default=300.0, gt=0)
    interval_seconds: float | None = Field(default=None, gt=0)
    sql: str = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> QuerySpec:
        for label in self.labels:
            if not re.match(IDENT, label) or label.startswith("__") or label == "value":
                raise ValueError(f"label {label!r} is not a valid label name")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError("labels repeat")
        unknown = set(self.guard) - set(self.labels)
        if unknown:
            raise ValueError(f"guard names labels the query does not have: {sorted(unknown)}")
        if self.type == "counter":
            if not self.metric.endswith("_total"):
                raise ValueError("a counter's metric name must end in _total")
            if self.watermark is None:
                raise ValueError("a counter needs a watermark (table and monotonic column)")
            if ":after" not in self.sql or ":upto" not in self.sql:
                raise ValueError("a counter's sql must bound the watermark: > :after AND <= :upto")
        else:
            if self.metric.endswith("_total"):
                raise ValueError("_total is for counters; a gauge's name must not end in it")
            if self.watermark is not None:
                raise ValueError("a gauge takes no watermark")
        return self


class Catalog(Settings):
    guards: dict[str, str] = {}
    queries: list[QuerySpec] = []


def read_catalog(path: str | Path) -> Catalog:
    try:
        return Catalog.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, f"query catalog {path}")) from exc


def load_catalog(
    include_default: bool = True,
    extra_files: list[Path] | None = None,
    disabled: list[str] | None = None,
) -> Catalog:
    """Merge catalogs in order (later files replace queries and guards of the same name)."""
    files = ([DEFAULT_CATALOG] if include_default else []) + list(extra_files or [])
    guards: dict[str, str] = {}
    queries: dict[str, QuerySpec] = {}
    for path in files:
        catalog = read_catalog(path)
        guards.update(catalog.guards)
        for query in catalog.queries:
            queries[query.name] = query
    unknown = set(disabled or []) - set(queries)
    if unknown:
        raise ConfigError(f"disable_queries: no query named {', '.join(sorted(unknown))}")
    for name in disabled or []:
        del queries[name]
    by_metric: dict[str, str] = {}
    for query in queries.values():
        if query.metric in by_metric:
            raise ConfigError(
                f"queries {by_metric[query.metric]!r} and {query.name!r} "
                f"both write metric {query.metric}"
            )
        by_metric[query.metric] = query.name
        missing = set(query.guard.values()) - set(guards)
        if missing:
            raise ConfigError(f"query {query.name!r}: no guard named {', '.join(sorted(missing))}")
    return Catalog(guards=guards, queries=list(queries.values()))
