"""What a status page needs in one call: services, open incidents, SLOs, key figures.

The Prometheus half is platform-wide and the same for every caller, so it is cached
for `cache_seconds` and shared by all requests of a worker: a status page polled by
many browsers costs Prometheus one round of queries per period. A failed round is
cached too (for the same period), so a Prometheus that is away is not hammered and
each answer says so at once. The incidents half is scoped to the caller's tenant and
read fresh: it is one indexed aggregate.
"""

from __future__ import annotations

import math
import threading
import time
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from ticketmon.reports.prometheus import PromClient, PrometheusUnavailable, QueryError

WINDOW = "1h"  # the key figures' window
SERVICES = {
    "up": "ticketmon_service_up",
    "state": "ticketmon_service_health_state == 1",
    "firing_alerts": 'count by (service) (ALERTS{alertstate="firing", service!=""})',
}
SLOS = {
    "objective": "slo:objective:ratio",
    "error_budget_remaining": "slo:error_budget_remaining:ratio",
    "burn_rate_1h": "slo:burn_rate:ratio_rate1h",
}
FIGURES = {  # one value each over WINDOW; revenue is per currency
    "tickets_sold": f"sum(increase(ticketmon_tickets_sold_total[{WINDOW}]))",
    "revenue_minor_units": "sum by (currency) "
                           f"(increase(ticketmon_revenue_minor_units_total[{WINDOW}]))",
    "payment_failure_ratio":
        f'sum(increase(ticketmon_payments_total{{outcome=~"failed|error"}}[{WINDOW}]))'
        f" / sum(increase(ticketmon_payments_total[{WINDOW}]))",
    "nft_mints": f"sum(increase(ticketmon_nft_mints_total[{WINDOW}]))",
    "fraud_checks": f"sum(increase(ticketmon_fraud_checks_total[{WINDOW}]))",
    "fraud_blocked": f'sum(increase(ticketmon_fraud_checks_total{{decision="block"}}[{WINDOW}]))',
    "firing_alerts": 'count(ALERTS{alertstate="firing"}) or vector(0)',
}


class OverviewSettings(BaseModel):
    """GET /api/v1/overview: where Prometheus is and how long its answers are reused."""

    prometheus_url: str | None = None  # None: the overview has incidents only
    cache_seconds: float = Field(default=10.0, ge=0, le=300)
    timeout_seconds: float = Field(default=3.0, gt=0, le=30)


def _number(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else value


def _slo_status(slo: dict) -> str:
    left, burn = slo.get("error_budget_remaining"), slo.get("burn_rate_1h")
    if left is None and burn is None:
        return "unknown"  # recorded over 30 days: a fresh Prometheus has no value yet
    if left is not None and left <= 0:
        return "exhausted"
    if burn is not None and burn > 1:
        return "burning"  # spending the budget faster than the SLO window allows
    return "ok"


class PlatformView:
    """The Prometheus half of the overview, cached; thread-safe (gthread workers)."""

    def __init__(self, settings: OverviewSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._cached: tuple[float, dict] | None = None

    def get(self) -> dict:
        if not self.settings.prometheus_url:
            return {"prometheus": {"status": "not_configured", "error": None, "as_of": None},
                    "services": None, "slos": None, "figures": None}
        with self._lock:  # one round at a time; the others wait and reuse it
            now = time.monotonic()
            if self._cached and now - self._cached[0] < self.settings.cache_seconds:
                return self._cached[1]
            view = self._query()
            self._cached = (time.monotonic(), view)
            return view

    def _query(self) -> dict:
        client = PromClient(self.settings.prometheus_url, timeout=self.settings.timeout_seconds)
        as_of = datetime.now(UTC).isoformat()
        try:
            view = {"services": self._services(client), "slos": self._slos(client),
                    "figures": self._figures(client)}
        except (PrometheusUnavailable, QueryError) as exc:
            return {"prometheus": {"status": "unavailable", "as_of": as_of,
                                   "error": f"{exc}; services, SLOs and figures are "
                                            "unknown until it answers"},
                    "services": None, "slos": None, "figures": None}
        return {"prometheus": {"status": "ok", "error": None, "as_of": as_of}, **view}

    @staticmethod
    def _services(client: PromClient) -> list[dict]:
        found: dict[str, dict] = {}
        for key, expr in SERVICES.items():
            for sample in client.query(expr):
                name = sample.labels.get("service")
                if not name:
                    continue
                entry = found.setdefault(name, {"service": name, "up": None, "state": None,
                                                "firing_alerts": 0})
                if key == "up":
                    entry["up"] = sample.value == 1
                elif key == "state":
                    entry["state"] = sample.labels.get("state")
                else:
                    entry["firing_alerts"] = int(sample.value)
        return sorted(found.values(), key=lambda s: s["service"])

    @staticmethod
    def _slos(client: PromClient) -> list[dict]:
        found: dict[str, dict] = {}
        for key, expr in SLOS.items():
            for sample in client.query(expr):
                name = sample.labels.get("slo")
                if name:
                    entry = found.setdefault(name, {"slo": name, "service":
                                                    sample.labels.get("service")})
                    entry[key] = _number(sample.value)
        for slo in found.values():
            slo["status"] = _slo_status(slo)
        return sorted(found.values(), key=lambda s: s["slo"])

    @staticmethod
    def _figures(client: PromClient) -> dict:
        figures: dict = {"window": WINDOW}
        for key, expr in FIGURES.items():
            samples = client.query(expr)
            if key == "revenue_minor_units":
                figures[key] = {s.labels.get("currency", ""): _number(s.value) for s in samples}
            else:
                figures[key] = _number(samples[0].value) if samples else None
        return figures
