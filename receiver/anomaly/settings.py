"""Settings of the anomaly job: where Prometheus is, and which series to score how.

The default series are the platform's, written against the metric catalog; each says
which alerts it relates to, so an incident opened by those alerts shows its score.
`all_series` lays one policy over every series: the demo uses it to score the
default series at a 5-second step, so scores appear minutes after a fresh start
(receiver/anomaly/demo.yaml). Light imports only: the worker's settings embed these.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from receiver.anomaly.forecast_settings import (
    DEFAULT_FORECASTS,
    ForecastPolicy,
    ForecastSettings,
)
from receiver.anomaly.windows import MAX_POINTS, TRAIN_POINTS, first_score_index
from ticketmon.core.config import Settings
from ticketmon.core.metrics_guard import GuardSettings


class AlertSelector(Settings):
    """Alerts a series relates to: an alertname and/or labels that must all match."""

    alertname: str | None = Field(default=None, min_length=1, max_length=200)
    labels: dict[str, str] = Field(default_factory=dict)


class SeriesSettings(Settings):
    name: str = Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]{0,99}$")
    query: str = Field(min_length=1, max_length=4000)  # PromQL returning ONE series
    step_seconds: float = Field(default=60, ge=1, le=86400)
    history_seconds: float = Field(default=7 * 86400, gt=0)
    detector: Literal["ecod", "copod", "hbos", "iforest"] = "ecod"
    # risk and suppression: the policy bench/anomaly_nab.py --loco picks on the dev data
    risk: float = Field(default=3e-4, gt=0, lt=0.1)
    season_seconds: float = Field(default=86400, ge=0)  # 0: no seasonal feature
    suppress_seconds: float = Field(default=24 * 3600, ge=0)
    min_train: int = Field(default=200, ge=10, le=TRAIN_POINTS)  # points before the first fit
    min_scores: int = Field(default=100, ge=20, le=100_000)  # scores before the first flag
    refit_every: int = Field(default=100, ge=1, le=10_000)  # points between model refits
    # counter: scored on its increase per step (resets counted from zero); auto: decided
    # from the first points of the history (receiver/anomaly/counters.py)
    kind: Literal["auto", "gauge", "counter"] = "auto"
    relates_to: list[AlertSelector] = Field(default_factory=list)

    @model_validator(mode="after")
    def _bounded_query(self) -> SeriesSettings:
        points = self.history_seconds / self.step_seconds + 1
        if points > MAX_POINTS:
            raise ValueError(f"history_seconds / step_seconds must stay under {MAX_POINTS} "
                             "points (Prometheus's query_range limit)")
        need = self.points_before_first_score
        if points < need:
            raise ValueError(
                f"history_seconds covers {points:.0f} points at step_seconds "
                f"{self.step_seconds:g} but the first score needs {need} "
                "(lower min_train, min_scores or refit_every, or lengthen the history)")
        return self

    @property
    def points_before_first_score(self) -> int:
        """Points of history the first score needs (LOOKBACK + training + tail warm-up)."""
        return first_score_index(self.min_train, self.min_scores, self.refit_every) + 1


def _ratio(part: str, whole: str) -> str:
    return f"({part}) / ({whole})"


# relates_to names alerts of rules/ (tests/receiver/anomaly/test_anomaly_settings.py
# checks that each selector matches a rule there)
DEFAULT_SERIES = [
    SeriesSettings(
        name="ticket_sales_rate",
        query="sum(rate(ticketmon_tickets_sold_total[5m]))",
        relates_to=[AlertSelector(alertname="TicketSalesStalled"),
                    AlertSelector(labels={"service": "sales"})],
    ),
    SeriesSettings(
        name="payment_failure_ratio",
        query=_ratio('sum(rate(ticketmon_payments_total{outcome!="succeeded"}[5m]))',
                     "sum(rate(ticketmon_payments_total[5m]))"),
        relates_to=[AlertSelector(alertname="PaymentFailureRatioHigh"),
                    AlertSelector(labels={"service": "payments"})],
    ),
    SeriesSettings(
        name="checkout_latency_p95",
        query='histogram_quantile(0.95, sum by (le) '
              '(rate(http_request_duration_seconds_bucket{service="checkout"}[5m])))',
        relates_to=[AlertSelector(alertname="ServiceLatencyP95High",
                                  labels={"service": "checkout"}),
                    AlertSelector(labels={"service": "checkout"})],
    ),
    SeriesSettings(
        name="solana_rpc_latency_p95",
        query="histogram_quantile(0.95, sum by (le) "
              "(rate(ticketmon_solana_rpc_request_duration_seconds_bucket[5m])))",
        relates_to=[AlertSelector(labels={"service": "solana-rpc"}),
                    AlertSelector(alertname="NFTMintFailureRatioHigh")],
    ),
    SeriesSettings(
        name="fraud_high_risk_ratio",
        query=_ratio('sum(rate(ticketmon_fraud_checks_total{risk_level=~"high|critical"}[5m]))',
                     "sum(rate(ticketmon_fraud_checks_total[5m]))"),
        relates_to=[AlertSelector(alertname="FraudHighRiskRatioHigh"),
                    AlertSelector(labels={"service": "fraud"})],
    ),
]


class SeriesPolicy(Settings):
    """Policy fields laid over every series (unset ones leave each series' own)."""

    step_seconds: float | None = None
    history_seconds: float | None = None
    detector: Literal["ecod", "copod", "hbos", "iforest"] | None = None
    risk: float | None = None
    season_seconds: float | None = None
    suppress_seconds: float | None = None
    min_train: int | None = None
    min_scores: int | None = None
    refit_every: int | None = None


class AnomalyJobSettings(Settings):
    """The job itself; embedded as the receiver worker's `anomaly:` section."""

    prometheus_url: str = Field(default="http://127.0.0.1:9090", pattern=r"^https?://")
    interval_seconds: float = Field(default=60, ge=1, le=3600)
    timeout_seconds: float = Field(default=10, gt=0, le=120)
    # several workers share the series through claims in the database (claims.py); a
    # dead worker's series move once its lease ends (default: two intervals)
    share_series: bool = True
    lease_seconds: float | None = Field(default=None, gt=0, le=86400)
    # up to 10,000: workers share them (bench/anomaly_scale.py measures how many it takes)
    series: list[SeriesSettings] = Field(default_factory=lambda: list(DEFAULT_SERIES),
                                         max_length=10_000)
    all_series: SeriesPolicy | None = None
    # capacities forecast to exhaustion (ticketmon_forecast_* gauges, forecast_job.py)
    forecasts: list[ForecastSettings] = Field(default_factory=lambda: list(DEFAULT_FORECASTS),
                                              max_length=50)
    all_forecasts: ForecastPolicy | None = None  # laid over every forecast, like all_series

    @field_validator("series", "forecasts")
    @classmethod
    def _unique_names(cls, value: list) -> list:
        dupes = sorted(n for n, k in Counter(s.name for s in value).items() if k > 1)
        if dupes:
            raise ValueError(f"series names must be unique: {', '.join(dupes)}")
        return value

    @model_validator(mode="after")
    def _apply_policy(self) -> AnomalyJobSettings:
        self.series = _laid_over(self.series, self.all_series, "all_series", "series")
        self.forecasts = _laid_over(self.forecasts, self.all_forecasts, "all_forecasts",
                                    "forecast")
        return self


def _laid_over(items: list, policy: Settings | None, key: str, kind: str) -> list:
    """Each item with the policy's set fields in place of its own, validated again."""
    fields = policy.model_dump(exclude_none=True) if policy else {}
    if not fields:
        return items
    applied = []
    for item in items:
        try:
            applied.append(type(item).model_validate({**item.model_dump(), **fields}))
        except ValidationError as exc:
            problems = "; ".join(_describe(e) for e in exc.errors())
            raise ValueError(f"{key} does not fit {kind} {item.name!r}: {problems}") from None
    return applied


def _describe(error: dict) -> str:
    where = ".".join(map(str, error["loc"]))
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


class AnomalySettings(AnomalyJobSettings):
    """`ticketmon receiver anomaly` on its own: the job plus its database and logs."""

    database_url: str = "sqlite:///ticketmon-receiver.db"  # the receiver's database
    # /metrics with the forecast gauges (the worker serves them on its own /metrics)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=0, ge=0, le=65535)  # 0: no /metrics
    metrics_guard: GuardSettings = Field(default_factory=GuardSettings)  # basic auth, allowlist
    log_level: Literal["debug", "info", "warning", "error"] = "info"
