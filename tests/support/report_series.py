"""Seven days of platform history with known incidents, as OpenMetrics for promtool.

Four services with request counters and latency histograms, the business counters,
and ALERTS series for the incidents, at one sample per minute. Known shapes:

- checkout: 5 % server errors for 2 h starting 2 days before `end` (a fast burn),
  and latency p95 above 500 ms for 1 h starting 1 day before `end`;
- payments: 30 minutes of 50 % errors 4 days before `end`;
- inventory, marketplace: 0.1 % errors throughout.
"""

from __future__ import annotations

import numpy as np

STEP = 60
DAYS = 7
SERVICES = ("checkout", "payments", "inventory", "marketplace")
BUCKETS = (0.1, 0.25, 0.5, 1.0)
RPS = 10.0


def incidents(end: int) -> dict[str, list[tuple[int, int]]]:
    """(start, end) of each known episode, by name."""
    return {
        "checkout_errors": [(end - 2 * 86400, end - 2 * 86400 + 7200)],
        "checkout_slow": [(end - 86400, end - 86400 + 3600)],
        "payments_errors": [(end - 4 * 86400, end - 4 * 86400 + 1800)],
    }


def _within(times: np.ndarray, spans: list[tuple[int, int]]) -> np.ndarray:
    mask = np.zeros(len(times), dtype=bool)
    for a, b in spans:
        mask |= (times > a) & (times <= b)
    return mask


def _series(name: str, labels: dict[str, str], times: np.ndarray,
            values: np.ndarray) -> list[str]:
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    head = f"{name}{{{inner}}} " if inner else f"{name} "
    return [f"{head}{v:.6g} {t}" for t, v in zip(times.tolist(), values.tolist(), strict=True)]


def openmetrics(end: int, days: int = DAYS) -> str:
    times = np.arange(end - days * 86400, end + 1, STEP)
    n = len(times)
    rng = np.random.default_rng(11)
    spans = incidents(end)
    out: list[str] = []

    def counter(name: str, series: list[tuple[dict[str, str], np.ndarray]]) -> None:
        out.append(f"# TYPE {name} counter")
        for labels, per_step in series:
            out.extend(_series(f"{name}_total", labels, times, np.cumsum(per_step)))

    requests = []
    histograms = []
    for svc in SERVICES:
        total = RPS * STEP * (1 + 0.2 * np.sin(times / 86400 * 2 * np.pi)) + rng.normal(0, 5, n)
        error_share = np.full(n, 0.0002)
        if svc == "checkout":
            error_share[_within(times, spans["checkout_errors"])] = 0.05
        if svc == "payments":
            error_share[_within(times, spans["payments_errors"])] = 0.5
        bad = total * error_share
        requests += [({"service": svc, "code": "200"}, total - bad),
                     ({"service": svc, "code": "500"}, bad)]
        # share of requests under each bucket bound: p95 ~ 0.3 s, ~0.8 s while slow
        base = {"checkout": [0.6, 0.9, 0.995, 0.999], "payments": [0.8, 0.97, 0.998, 0.9995],
                "inventory": [0.85, 0.96, 0.999, 0.9999]}.get(svc, [0.5, 0.8, 0.98, 0.999])
        shares = np.tile(base, (n, 1))
        if svc == "checkout":
            shares[_within(times, spans["checkout_slow"])] = [0.2, 0.4, 0.7, 0.97]
        histograms.append((svc, total, shares))
    counter("http_requests", requests)
    out.append("# TYPE http_request_duration_seconds histogram")
    for svc, total, shares in histograms:
        for i, le in enumerate(BUCKETS):
            out.extend(_series("http_request_duration_seconds_bucket",
                               {"service": svc, "le": repr(le)}, times,
                               np.cumsum(total * shares[:, i])))
        out.extend(_series("http_request_duration_seconds_bucket",
                           {"service": svc, "le": "+Inf"}, times, np.cumsum(total)))
        out.extend(_series("http_request_duration_seconds_count", {"service": svc}, times,
                           np.cumsum(total)))
        out.extend(_series("http_request_duration_seconds_sum", {"service": svc}, times,
                           np.cumsum(total * 0.2)))
    sold = np.full(n, 12.0)
    counter("ticketmon_tickets_sold", [({"event": "e1", "venue": "v1",
                                        "ticket_type": "standard"}, sold)])
    counter("ticketmon_revenue_minor_units", [({"currency": "EUR", "venue": "v1"},
                                               sold * 4500)])
    counter("ticketmon_refunds", [({"reason": "cancelled"}, np.full(n, 0.24))])
    counter("ticketmon_payments", [
        ({"provider": "stripe", "outcome": "succeeded"}, np.full(n, 12.0)),
        ({"provider": "stripe", "outcome": "declined"}, np.full(n, 0.5)),
        ({"provider": "stripe", "outcome": "failed"}, np.full(n, 0.25)),
        ({"provider": "stripe", "outcome": "error"}, np.full(n, 0.0))])
    counter("ticketmon_fraud_checks", [
        ({"risk_level": "low", "decision": "allow"}, np.full(n, 14.0)),
        ({"risk_level": "medium", "decision": "review"}, np.full(n, 0.5)),
        ({"risk_level": "high", "decision": "block"}, np.full(n, 0.3))])
    counter("ticketmon_nft_mints", [
        ({"outcome": "confirmed"}, np.full(n, 11.8)),
        ({"outcome": "failed"}, np.full(n, 0.1)),
        ({"outcome": "expired"}, np.full(n, 0.1))])
    out.append("# TYPE ALERTS gauge")
    for alertname, service, key in (("ErrorBudgetBurnFast", "checkout", "checkout_errors"),
                                    ("ServiceLatencyHigh", "checkout", "checkout_slow"),
                                    ("ErrorBudgetBurnFast", "payments", "payments_errors")):
        on = _within(times, spans[key])
        out.extend(_series("ALERTS", {"alertname": alertname, "alertstate": "firing",
                                      "service": service, "severity": "critical"},
                           times[on], np.ones(int(on.sum()))))
    out.append("# EOF")
    return "\n".join(out) + "\n"
