"""Settings of the capacity forecasts: which series drain towards a floor, and how to read them.

A forecast's query may return many series (one per event, wallet, filesystem); `by`
names the labels that tell them apart and become the gauges' labels, and
`max_series` bounds how many are kept (those closest to their floor), so a query
that suddenly matches thousands of series cannot blow up /metrics.
Light imports only: the worker's settings embed these.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from receiver.anomaly.windows import MAX_POINTS
from ticketmon.core.config import Settings

LabelName = Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]{0,99}$")]
MAX_HORIZON_POINTS = 100_000


class ForecastSettings(Settings):
    name: str = Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]{0,90}$")
    query: str = Field(min_length=1, max_length=4000)  # PromQL: one series per `by` value
    by: list[LabelName] = Field(default_factory=list, max_length=5)  # labels naming a series
    floor: float = 0.0  # exhausted when the value reaches it
    step_seconds: float = Field(default=300, ge=1, le=86400)
    history_seconds: float = Field(default=4 * 86400, gt=0)  # >= 2 seasons for the season
    season_seconds: float = Field(default=86400, ge=0)  # 0: trend only
    horizon_seconds: float = Field(default=14 * 86400, gt=0)  # "never" beyond it (+Inf)
    interval_seconds: float = Field(default=300, ge=1, le=86400)  # between refits
    band: float = Field(default=0.9, ge=0.5, le=0.99)  # central probability of the band
    max_series: int = Field(default=100, ge=1, le=1000)
    min_points: int = Field(default=24, ge=3)  # fewer usable points: skipped
    max_gap_seconds: float = Field(default=1800, ge=0)  # longer gaps cut the history

    @model_validator(mode="after")
    def _bounded(self) -> ForecastSettings:
        if len(set(self.by)) != len(self.by) or "forecast" in self.by:
            raise ValueError("by: label names must be unique and not 'forecast'")
        if self.history_seconds / self.step_seconds + 1 > MAX_POINTS:
            raise ValueError(f"history_seconds / step_seconds must stay under {MAX_POINTS} "
                             "points (Prometheus's query_range limit)")
        if self.horizon_seconds / self.step_seconds > MAX_HORIZON_POINTS:
            raise ValueError(f"horizon_seconds / step_seconds must stay under "
                             f"{MAX_HORIZON_POINTS} points")
        if self.history_seconds / self.step_seconds + 1 < self.min_points:
            raise ValueError("history_seconds holds fewer than min_points points")
        return self


class ForecastPolicy(Settings):
    """Fields laid over every forecast (unset ones leave each forecast's own): the demo
    forecasts at its 5-second scrape interval over the last hour."""

    step_seconds: float | None = None
    history_seconds: float | None = None
    season_seconds: float | None = None
    horizon_seconds: float | None = None
    interval_seconds: float | None = None
    min_points: int | None = None
    max_gap_seconds: float | None = None


# the platform's capacities, written against the metric catalog; the rules beside the
# predict_linear alerts read the gauges these produce (rules/business.yml, blockchain.yml,
# system.yml)
DEFAULT_FORECASTS = [
    ForecastSettings(
        name="ticket_inventory",  # share of an event's tickets still for sale
        query="max by (event) (1 - ticketmon_event_capacity_utilization_ratio)",
        by=["event"],
    ),
    ForecastSettings(
        name="fee_payer_balance",
        query="max by (wallet) (ticketmon_solana_wallet_balance_sol)",
        by=["wallet"],
    ),
    ForecastSettings(
        name="disk_free",  # `host` rather than `instance`: the scrape sets its own instance
        query='max by (host, mountpoint) (label_replace(node_filesystem_avail_bytes'
              '{fstype!~"tmpfs|overlay|squashfs|ramfs"}, "host", "$1", "instance", "(.*)"))',
        by=["host", "mountpoint"],
    ),
]
