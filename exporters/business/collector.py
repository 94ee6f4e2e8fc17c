"""One snapshot collector per catalog query, so each has its own health series.

Counters read only rows past their watermark (at most max_rows_per_run per run) and
add them to totals kept in memory; gauges re-read their bounded value each run. A
failing query fails only its own collector: the others keep their series.

A key below the watermark can still commit: on PostgreSQL a transaction that took id
22 may commit after the one that took id 23 was read. So each counter remembers the
keys missing from the last `lookback` ids below its watermark (its "gaps") and every
run counts those that have appeared since, then forgets gaps that fell out of the
window (rolled back, or committed too late: the documented limit). Memory is at most
`lookback` ids per counter. The listing and the counting read one snapshot
(REPEATABLE READ on PostgreSQL), so a row is counted exactly when it is listed.
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
        lookback: int = 10_000,
    ) -> None:
        super().__init__(spec.interval_seconds or interval, timeout)
        self.name = spec.name
        self.spec = spec
        self.engine = engine
        self.guard = guard
        self.max_rows_per_run = max_rows_per_run
        self.counters_start = counters_start
        if lookback < 0:
            raise ValueError(f"query {spec.name!r}: lookback must be >= 0, got {lookback}")
        self.lookback = lookback
        self.statement, self.params = _statement(spec.sql)
        self.totals: dict[tuple[str, ...], float] = {}
        self.watermark: int | None = None  # highest key read; keys above it are new
        self.gaps: frozenset[int] = frozenset()  # keys within lookback not seen yet
        self.given_up = 0  # gaps that left the window unseen (rolled back or too late)
        self._state = threading.Lock()  # a timed-out run must not race the next one
        if spec.watermark is not None:
            wm = spec.watermark
            self.max_key = text(f"SELECT max({wm.column}) FROM {wm.table}")
            self.key_list = text(f"SELECT {wm.column} FROM {wm.table} "
                                 f"WHERE {wm.column} > :lo AND {wm.column} <= :hi "
                                 f"ORDER BY {wm.column}")

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
                if conn.dialect.name == "postgresql":
                    # one snapshot for max, listing and counting; SQLite has one writer
                    # and hands out increasing rowids, so nothing can commit below max
                    conn.execution_options(isolation_level="REPEATABLE READ")
                return [self._collect_counter(conn)]
            return [self._collect_gauge(conn)]

    def _keys(self, conn: Connection, lo: int, hi: int) -> list[int]:
        """Committed keys in (lo, hi], ascending."""
        if hi <= lo:
            return []
        return [int(k) for (k,) in conn.execute(self.key_list, {"lo": lo, "hi": hi})]

    def _missing(self, conn: Connection, lo: int, hi: int) -> set[int]:
        """Keys in (lo, hi] not committed (yet): taken by an open transaction or lost."""
        lo = max(lo, 0)
        return set(range(lo + 1, hi + 1)).difference(self._keys(conn, lo, hi))

    def _late_ranges(self, conn: Connection, gaps: frozenset[int],
                     watermark: int) -> tuple[list[tuple[int, int]], set[int]]:
        """(after, upto] ranges holding only gaps that have committed since, and those keys.

        Counter queries filter on a key range, so late keys separated by keys already
        counted need one range each; consecutive late keys share one.
        """
        lo = min(gaps) - 1
        ranges: list[tuple[int, int]] = []
        late: set[int] = set()
        start: int | None = None
        end = prev = lo
        for key in self._keys(conn, lo, watermark):
            if key in gaps:
                late.add(key)
                start = prev if start is None else start
                end = key
            elif start is not None:
                ranges.append((start, end))
                start = None
            prev = key
        if start is not None:
            ranges.append((start, end))
        return ranges, late

    def _collect_counter(self, conn: Connection) -> Metric:
        highest = conn.execute(self.max_key).scalar()
        highest = int(highest) if highest is not None else 0
        family = CounterMetricFamily(self.spec.metric, self.spec.help, labels=self.spec.labels)
        if self.watermark is None and self.counters_start == "now":
            # rows already there are history; keys missing below them commit after start
            gaps = self._missing(conn, highest - self.lookback, highest) if self.lookback else ()
            self.watermark, self.gaps = highest, frozenset(gaps)
            return family
        watermark = self.watermark or 0
        if highest < watermark:
            raise QueryError(
                f"query {self.name!r}: watermark went back from {watermark} to {highest}"
                " (table emptied or restored?)"
            )
        upto = min(highest, watermark + self.max_rows_per_run)
        ranges, late = self._late_ranges(conn, self.gaps, watermark) if self.gaps else ([], set())
        if upto > watermark:
            ranges.append((watermark, upto))
        new_totals = dict(self.totals)
        for after, until in ranges:
            params = {**self._params(), "after": after, "upto": until}
            for labels, value in self._rows(conn, params):
                if value < 0:
                    raise QueryError(f"query {self.name!r}: negative counter increment {value}")
                new_totals[labels] = new_totals.get(labels, 0.0) + value
        gaps = set(self.gaps) - late
        if self.lookback and upto > watermark:
            gaps |= self._missing(conn, max(watermark, upto - self.lookback), upto)
        kept = frozenset(k for k in gaps if k > upto - self.lookback)
        # only after the whole run worked
        self.totals, self.watermark, self.gaps = new_totals, upto, kept
        self.given_up += len(gaps) - len(kept)
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
