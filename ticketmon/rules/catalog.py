"""The machine-readable metric catalog (rules/metrics-catalog.yaml) and checks against it.

The catalog is the contract between exporters, rules and dashboards. Rules and
dashboards are linted against it, and exporters check their own /metrics output with
`load_catalog().check_exposition(text, source="business")` in their tests.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from ticketmon.core.config import ConfigError, Settings, format_errors, read_yaml
from ticketmon.rules import RULES_DIR

CATALOG_FILE = RULES_DIR / "metrics-catalog.yaml"

# Labels Prometheus attaches to every scraped series, on top of the exporter's own.
TARGET_LABELS = frozenset({"job", "instance"})
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


class Source(Settings):
    kind: Literal["exporter", "external"]
    job: str
    port: int | None = None


class MetricSpec(Settings):
    name: str
    type: Literal["counter", "gauge", "histogram", "summary"]
    source: str
    labels: list[str] = Field(default_factory=list)
    values: dict[str, list[str]] = Field(default_factory=dict)
    help: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> MetricSpec:
        if not _NAME.match(self.name):
            raise ValueError(f"{self.name!r} is not a valid metric name")
        if self.type == "counter" and not self.name.endswith("_total"):
            raise ValueError(f"counter {self.name} must end in _total")
        unknown = set(self.values) - set(self.labels)
        if unknown:
            raise ValueError(f"{self.name}: values given for unknown labels {sorted(unknown)}")
        return self

    def series_names(self) -> set[str]:
        """Every sample name this family exposes in the text format."""
        if self.type in ("histogram", "summary"):
            names = {self.name + "_sum", self.name + "_count"}
            if self.type == "histogram":
                names.add(self.name + "_bucket")
            return names
        return {self.name}


class CatalogFile(Settings):
    sources: dict[str, Source]
    metrics: list[MetricSpec]

    @model_validator(mode="after")
    def _references(self) -> CatalogFile:
        seen: set[str] = set()
        for metric in self.metrics:
            if metric.name in seen:
                raise ValueError(f"metric {metric.name} is listed twice")
            seen.add(metric.name)
            if metric.source not in self.sources:
                raise ValueError(f"metric {metric.name}: unknown source {metric.source!r}")
        return self


class Catalog:
    """Lookup of metric families by any series name they expose."""

    def __init__(self, data: CatalogFile) -> None:
        self.sources = data.sources
        self.metrics = {m.name: m for m in data.metrics}
        self._by_series = {s: m for m in data.metrics for s in m.series_names()}

    def resolve(self, series_name: str) -> MetricSpec | None:
        """The family a series name (e.g. `x_bucket`) belongs to, or None if not catalogued."""
        return self._by_series.get(series_name)

    def by_source(self, source: str) -> list[MetricSpec]:
        return [m for m in self.metrics.values() if m.source == source]

    def check_exposition(self, text: str, source: str | Collection[str] | None = None,
                         require_all: bool = False, prefix: str = "ticketmon_") -> list[str]:
        """Problems of an exporter's text-format output against the catalog; [] if it conforms.

        Checks each family named `prefix…` (prefix="" for a platform service's unprefixed
        names) is catalogued (under `source` - one name or
        several for an endpoint serving more than one - or the shared exporter-health
        source), has the catalogued type and exactly the catalogued labels, and uses only
        the listed label values. With require_all, every family of `source` must be present.
        """
        sources = {source} if isinstance(source, str) else set(source or ())
        from prometheus_client.parser import text_string_to_metric_families

        problems: list[str] = []
        try:
            families = list(text_string_to_metric_families(text))
        except ValueError as exc:
            return [f"not valid Prometheus text format: {exc}"]
        allowed_sources = sources | {"exporters"} if sources else None
        seen: set[str] = set()
        for family in families:
            name = family.name + "_total" if family.type == "counter" else family.name
            if not name.startswith(prefix) or _is_created_family(family):
                continue
            spec = self.metrics.get(name)
            if spec is None:
                problems.append(f"{name}: not in the metric catalog")
                continue
            seen.add(name)
            if allowed_sources and spec.source not in allowed_sources:
                problems.append(f"{name}: catalogued under source {spec.source!r}, "
                                f"not {' or '.join(sorted(sources))!r}")
            if spec.type != family.type:
                problems.append(f"{name}: type {family.type}, catalog says {spec.type}")
            problems.extend(_label_problems(spec, family.samples))
        if require_all:
            for spec in (m for s in sorted(sources) for m in self.by_source(s)):
                if spec.name not in seen:
                    problems.append(f"{spec.name}: in the catalog for {spec.source} "
                                    "but not exposed")
        return problems


def _is_created_family(family) -> bool:
    """prometheus_client's `x_created` series parse as a gauge family of their own."""
    return family.type in ("gauge", "unknown") and family.name.endswith("_created")


def _label_problems(spec: MetricSpec, samples) -> list[str]:
    problems: list[str] = []
    expected = set(spec.labels)
    reported: set[str] = set()
    for sample in samples:
        if sample.name.endswith("_created"):
            continue
        labels = set(sample.labels) - {"le", "quantile"}
        if labels != expected:
            key = f"{spec.name}: labels {sorted(labels)}, catalog says {sorted(expected)}"
            if key not in reported:
                reported.add(key)
                problems.append(key)
        for label, allowed in spec.values.items():
            value = sample.labels.get(label)
            if value is not None and value not in allowed:
                key = f"{spec.name}: {label}={value!r} is not one of {allowed}"
                if key not in reported:
                    reported.add(key)
                    problems.append(key)
    return problems


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load and validate the catalog; a bad file raises ConfigError naming the entry."""
    path = Path(path or CATALOG_FILE)
    try:
        data = CatalogFile.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, str(path))) from exc
    return Catalog(data)
