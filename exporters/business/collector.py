"""One snapshot collector per catalog query, so each has its own health series.

Counters read only rows past their watermark (at most max_rows_per_run per run) and
add them to totals kept in memory; gauges re-read their bounded value each run. A
failing query fails only its own collector: the others keep their series.
"""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta
from typing import Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy import Connection, DateTime, Engine, bindparam, text

from exporters.business.cardinality import CardinalityGuard
from exporters.business.catalog import QuerySpec
from exporters.framework import SnapshotCollector

TIME_PARAMS = ("now", "since", "until")


class QueryError(RuntimeError):
    """A catalog query returned something that cannot become its metric."""


def _statement(sql: str):
    stmt = text(sql)
    present = set(stmt.compile().params)
    typed = [bindparam(name, type_=DateTime) for name in TIME_PARAMS if name in present]
    return (stmt.bindparams(*typed) if typed else stmt), present


class QueryCollector(SnapshotCollector):
    def __init__(
        self,
        spec: QuerySpec,
        engine: Engine,
        guard: CardinalityGuard,
        interval: float,
        timeout: float,
        max_rows_per_run: int = 1_000_000,
        counters_start: Literal["now", "beginning"] = "now",
    ) -> None:
        super().__init__(spec.interval_seconds or interval, timeout)
        self.name = spec.name
        self.spec = spec
        self.engine = engine
        self.guard = guard
        self.max_rows_per_run = max_rows_per_run
        self.counters_start = counters_start
        self.statement, self.params = _statement(spec.sql)
        self.totals: dict[tuple[str, ...], float] = {}
        self.watermark: int | None = None
        self._state = threading.Lock()  # a timed-out run must not race the next one
        if spec.watermark is not None:
            wm = spec.watermark
            self.max_key = text(f"SELECT max({wm.column}) FROM {wm.table}")

    # -- helpers ------------------------------------------------------------------------

    def _params(self) -> dict:
        now = datetime.now(UTC).replace(tzinfo=None)
        window = timedelta(seconds=self.spec.window_seconds)
        values = {"now": now, "since": now - window, "until": now + window,
                  "limit": self.guard.limit}
        return {k: v for k, v in values.items() if k in self.params}

    def _rows(self, conn: Connection, params: dict) -> list[tuple[tuple[str, ...], float]]:
        """Execute, check the columns, fold guarded labels; (labels, value) per row."""
        result = conn.execute(self.statement, params)
        columns = list(result.keys())
        expected = [*self.spec.labels, "value"]
        if sorted(columns) != sorted(expected):
            raise QueryError(f"query {self.name!r} returned columns {columns}, expected {expected}")
        allowed = {label: self.guard.top(conn, dim) for label, dim in self.spec.guard.items()}
        out = []
        for row in result.mappings():
            raw = row["value"]
            if raw is None:
                continue
            try:
                value = float(raw)
            except (TypeError, ValueError) as exc:
                raise QueryError(f"query {self.name!r}: value {raw!r} is not a number") from exc
            if math.isnan(value):
                continue
            labels = []
            for label in self.spec.labels:
                v = "" if row[label] is None else str(row[label])
                if label in allowed:
                    v = CardinalityGuard.fold(v, allowed[label])
                labels.append(v)
            out.append((tuple(labels), value))
        return out

    # -- collection ---------------------------------------------------------------------

    def collect_snapshot(self) -> list[Metric]:
        with self._state, self.engine.connect() as conn:
            if self.spec.type == "counter":
                return [self._collect_counter(conn)]
            return [self._collect_gauge(conn)]

    def _collect_counter(self, conn: Connection) -> Metric:
        highest = conn.execute(self.max_key).scalar()
        highest = int(highest) if highest is not None else 0
        if self.watermark is None:
            self.watermark = highest if self.counters_start == "now" else 0
        if highest < self.watermark:
            raise QueryError(
                f"query {self.name!r}: watermark went back from {self.watermark} to {highest}"
                " (table emptied or restored?)"
            )
        upto = min(highest, self.watermark + self.max_rows_per_run)
        if upto > self.watermark:
            params = {**self._params(), "after": self.watermark, "upto": upto}
            new_totals = dict(self.totals)
            for labels, value in self._rows(conn, params):
                if value < 0:
                    raise QueryError(f"query {self.name!r}: negative counter increment {value}")
                new_totals[labels] = new_totals.get(labels, 0.0) + value
            self.totals, self.watermark = new_totals, upto  # only after the whole run worked
        family = CounterMetricFamily(self.spec.metric, self.spec.help, labels=self.spec.labels)
        for labels, value in sorted(self.totals.items()):
            family.add_metric(list(labels), value)
        return family

    def _collect_gauge(self, conn: Connection) -> Metric:
        values: dict[tuple[str, ...], float] = {}
        for labels, value in self._rows(conn, self._params()):
            if labels in values:
                values[labels] = (max if self.spec.fold == "max" else float.__add__)(
                    values[labels], value)
            else:
                values[labels] = value
        family = GaugeMetricFamily(self.spec.metric, self.spec.help, labels=self.spec.labels)
        if not self.spec.labels and not values:
            values[()] = 0.0
        for labels, value in sorted(values.items()):
            family.add_metric(list(labels), value)
        return family
