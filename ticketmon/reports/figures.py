"""The figures of one report, from Prometheus and the incident store.

SLO figures use the same PromQL as the generated recording rules
(ticketmon.rules.slo.error_ratio_expr), evaluated over the report's own window: the
recorded series have fixed 5m..3d windows and only exist since the rules were loaded,
while a report needs the exact ratio over its period and charts whose windows cover
every minute of it. A figure with no data is None, never a made-up 100 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from ticketmon.reports.prometheus import PromClient, Series, duration_text, step_for
from ticketmon.reports.spec import ReportSpec, parse_duration
from ticketmon.rules.slo import Slo, SloSpec, error_ratio_expr

LATENCY_METRIC = "http_request_duration_seconds"
MIN_WINDOW = 300.0  # rate windows under 5m are noise at a 15-60 s scrape interval
# always-firing heartbeats would top "time firing" in every report
IGNORED_ALERTS = ("Watchdog", "DeadMansSwitch")


@dataclass
class Curve:
    """One chart line: times (epoch seconds) and values, NaN where there was no data."""

    label: str
    times: np.ndarray
    values: np.ndarray

    @property
    def coverage(self) -> float:
        return float(np.mean(~np.isnan(self.values))) if len(self.values) else 0.0


@dataclass
class SloFigures:
    slo: Slo
    error_ratio: float | None  # bad events / all events over the period
    budget_spent: float | None  # share of the SLO window's error budget used in the period
    budget_left: float | None  # share left over the SLO window ending with the period
    violations: list[tuple[float, float]]  # windows whose error ratio exceeded the budget
    error: Curve  # error ratio per chart window
    coverage: float

    @property
    def attainment(self) -> float | None:
        return None if self.error_ratio is None else 1.0 - self.error_ratio

    @property
    def met(self) -> bool | None:
        return None if self.attainment is None else self.attainment >= self.slo.objective

    @property
    def budget(self) -> float:
        return 1.0 - self.slo.objective

    @property
    def violation_seconds(self) -> float:
        return sum(end - start for start, end in self.violations)


@dataclass
class IncidentStats:
    count: int = 0
    acknowledged: int = 0
    resolved: int = 0
    mtta: float | None = None  # seconds, over acknowledged incidents
    mttr: float | None = None  # seconds, over resolved incidents


@dataclass
class ServiceFigures:
    service: str
    slos: list[SloFigures]
    p95: float | None
    p95_threshold: float | None  # from the service's latency SLO, if it has one
    p95_curve: Curve
    incidents: IncidentStats = field(default_factory=IncidentStats)


@dataclass
class AlertStat:
    alertname: str
    count: int  # firing episodes that started or ran in the period
    firing_seconds: float


@dataclass
class BusinessFigure:
    key: str
    label: str
    value: float | None
    unit: str  # count | ratio | money
    detail: dict[str, float] = field(default_factory=dict)  # e.g. revenue per currency


@dataclass
class Report:
    spec: ReportSpec
    start: datetime
    end: datetime
    step: float
    prometheus: str
    services: list[ServiceFigures]
    business: list[BusinessFigure]
    alerts: list[AlertStat]
    incidents: list[dict]
    notes: list[str]
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def _curve(label: str, series: list[Series], times: np.ndarray) -> Curve:
    """A query that returns at most one series, on the full grid with NaN gaps."""
    values = np.full(len(times), np.nan)
    if series:
        index = {round(t): i for i, t in enumerate(times)}
        for t, v in zip(series[0].times, series[0].values, strict=True):
            i = index.get(round(t))
            if i is not None:
                values[i] = v
    values[np.isinf(values)] = np.nan
    return Curve(label, times, values)


def _episodes(times: np.ndarray, active: np.ndarray, step: float) -> list[tuple[float, float]]:
    """Contiguous runs of True as (start, end): each point stands for the step before it."""
    out: list[tuple[float, float]] = []
    run_start = None
    prev = 0.0
    for t, on in zip(times, active, strict=True):
        if on and run_start is None:
            run_start = t - step
        elif not on and run_start is not None:
            out.append((run_start, prev))
            run_start = None
        prev = float(t)
    if run_start is not None:
        out.append((run_start, float(times[-1])))
    return out


class FigureBuilder:
    """Queries one period; each method issues the PromQL for one part of the report."""

    def __init__(self, client: PromClient, spec: ReportSpec, slos: SloSpec,
                 start: datetime, end: datetime) -> None:
        self.client = client
        self.spec = spec
        self.slos = slos
        self.start, self.end = start.timestamp(), end.timestamp()
        self.period = self.end - self.start
        self.range = duration_text(self.period)
        self.step = step_for(self.period)
        self.window = duration_text(max(self.step, MIN_WINDOW))
        self.times = np.arange(self.start + self.step, self.end + 1e-6, self.step)

    def _range(self, expr: str, label: str) -> Curve:
        if not len(self.times):
            return Curve(label, self.times, self.times.copy())
        found = self.client.query_range(expr, float(self.times[0]), float(self.times[-1]),
                                        self.step)
        return _curve(label, found, self.times)

    def selected_slos(self) -> list[Slo]:
        services = self.spec.services
        names = self.spec.slos
        return [s for s in self.slos.slos
                if (services is None or s.service in services)
                and (names is None or s.name in names)]

    def slo(self, slo: Slo) -> SloFigures:
        error_ratio = self.client.scalar(error_ratio_expr(slo.sli, self.range), self.end)
        budget = 1.0 - slo.objective
        window_ratio = self.client.scalar(error_ratio_expr(slo.sli, slo.window), self.end)
        spent = None
        if error_ratio is not None:
            spent = error_ratio / budget * self.period / parse_duration(slo.window)
        left = None if window_ratio is None else 1.0 - window_ratio / budget
        curve = self._range(error_ratio_expr(slo.sli, self.window), slo.name)
        bad = np.nan_to_num(curve.values, nan=0.0) > budget
        return SloFigures(slo, error_ratio, spent, left,
                          _episodes(curve.times, bad, self.step), curve, curve.coverage)

    def latency(self, service: str, window: str) -> str:
        return (f"histogram_quantile(0.95, sum by (le) (rate({LATENCY_METRIC}_bucket"
                f'{{service="{service}"}}[{window}])))')

    def service(self, service: str, slos: list[Slo]) -> ServiceFigures:
        figures = [self.slo(s) for s in slos]
        thresholds = [s.sli.threshold_seconds for s in slos if s.sli.kind == "latency"]
        p95 = self.client.scalar(self.latency(service, self.range), self.end)
        curve = self._range(self.latency(service, self.window), service)
        return ServiceFigures(service, figures, p95, thresholds[0] if thresholds else None,
                              curve)

    def business(self) -> list[BusinessFigure]:
        r = self.range
        q = self.client.scalar
        at = self.end

        def ratio(num: str, den: str) -> float | None:
            value = q(f"({num}) / ({den})", at)
            return None if value is None or math.isnan(value) else value

        sold = f"sum(increase(ticketmon_tickets_sold_total[{r}]))"
        payments = f"sum(increase(ticketmon_payments_total[{r}]))"
        mints = f"sum(increase(ticketmon_nft_mints_total[{r}]))"
        checks = f"sum(increase(ticketmon_fraud_checks_total[{r}]))"
        build = {
            "tickets_sold": lambda: BusinessFigure("tickets_sold", "Tickets sold", q(sold, at),
                                                   "count"),
            "revenue": self._revenue,
            "refund_ratio": lambda: BusinessFigure(
                "refund_ratio", "Refunds per ticket sold",
                ratio(f"sum(increase(ticketmon_refunds_total[{r}]))", sold), "ratio"),
            "payment_failure_ratio": lambda: BusinessFigure(
                "payment_failure_ratio", "Payment failures (failed or error)", ratio(
                    f'sum(increase(ticketmon_payments_total{{outcome=~"failed|error"}}[{r}]))',
                    payments), "ratio"),
            "fraud_blocked": lambda: BusinessFigure(
                "fraud_blocked", "Fraud checks blocked",
                q(f'sum(increase(ticketmon_fraud_checks_total{{decision="block"}}[{r}]))', at),
                "count", _present(share_of_checks=ratio(
                    f'sum(increase(ticketmon_fraud_checks_total{{decision="block"}}[{r}]))',
                    checks))),
            "mint_success": lambda: BusinessFigure(
                "mint_success", "Solana mint success", ratio(
                    f'sum(increase(ticketmon_nft_mints_total{{outcome="confirmed"}}[{r}]))',
                    mints), "ratio"),
        }
        return [build[key]() for key in self.spec.business]

    def _revenue(self) -> BusinessFigure:
        found = self.client.query(
            f"sum by (currency) (increase(ticketmon_revenue_minor_units_total[{self.range}]))",
            self.end)
        detail = {s.labels.get("currency", "?"): s.value / 100 for s in found
                  if not math.isnan(s.value)}
        value = sum(detail.values()) if len(detail) == 1 else None
        return BusinessFigure("revenue", "Revenue", value if detail else None, "money", detail)

    def alerts(self) -> list[AlertStat]:
        """Firing episodes per alert from Prometheus's ALERTS series."""
        step = step_for(self.period, points=2000, minimum=60.0)
        found = self.client.query_range('ALERTS{alertstate="firing"}', self.start + step,
                                        self.end, step)
        stats: dict[str, AlertStat] = {}
        for series in found:
            name = series.labels.get("alertname", "?")
            if name in IGNORED_ALERTS:
                continue
            stat = stats.setdefault(name, AlertStat(name, 0, 0.0))
            gaps = np.diff(series.times) > step * 1.5
            stat.count += 1 + int(np.sum(gaps))
            stat.firing_seconds += len(series.times) * step
        return list(stats.values())


def build_report(client: PromClient, spec: ReportSpec, slos: SloSpec, start: datetime,
                 end: datetime, incidents: list[dict] | None = None) -> Report:
    """All figures of one report; raises PrometheusUnavailable when Prometheus is down."""
    client.ping()
    builder = FigureBuilder(client, spec, slos, start, end)
    selected = builder.selected_slos()
    services = list(dict.fromkeys(spec.services or [s.service for s in selected]))
    figures = [builder.service(svc, [s for s in selected if s.service == svc])
               for svc in services]
    business = builder.business()
    alerts = builder.alerts()
    notes = []
    for svc in figures:
        for f in svc.slos:
            if f.error_ratio is None:
                notes.append(f"{f.slo.name}: no data in this period (no requests recorded), "
                             "so no availability is claimed")
            elif f.coverage < 0.9:
                notes.append(f"{f.slo.name}: data covers only {f.coverage:.0%} of the period")
    empty = [b.label for b in business if b.value is None and not b.detail]
    if empty:
        notes.append(f"no data in this period for: {', '.join(empty)}")
    if incidents is None:
        notes.append("incidents: no incident store given (--database-url), not counted")
    else:
        for svc in figures:
            svc.incidents = incident_stats([i for i in incidents if i.get("service") ==
                                            svc.service])
    return Report(spec, start, end, builder.step, client.url, figures, business, alerts,
                  incidents or [], notes)


def _present(**values: float | None) -> dict[str, float]:
    return {k.replace("_", " "): v for k, v in values.items() if v is not None}


def incident_stats(rows: list[dict]) -> IncidentStats:
    """Count, mean time to acknowledge and to resolve, from opened_at."""
    acks = [(r["acknowledged_at"] - r["opened_at"]).total_seconds() for r in rows
            if r.get("acknowledged_at")]
    fixes = [(r["resolved_at"] - r["opened_at"]).total_seconds() for r in rows
             if r.get("resolved_at")]
    return IncidentStats(len(rows), len(acks), len(fixes),
                         sum(acks) / len(acks) if acks else None,
                         sum(fixes) / len(fixes) if fixes else None)
