"""Seasonal forecast against predict_linear: time-to-exhaustion error and alert lead time.

    .venv/bin/python bench/forecast.py [--days 10] [--seed 7] [--orders-per-hour 260]

The data comes from the simulators: ticketmon.simulator.platform_db sells tickets
(orders per 5-minute step drawn around `orders_per_hour` x its daily_factor), each
sold ticket is minted, and every mint's fee and rent are paid by one of two fee-payer
wallets of ticketmon.simulator.solana_rpc's Chain, which operators top up during the
first half of the run and then leave to run dry. The series are what the default
forecasts read: each event's remaining share of tickets (1 - utilization) and each
wallet's balance, one point per 5 minutes.

At every origin T of the held-back part, both models see only the points up to T:

- seasonal: the anomaly job's own code (forecast_job.prepare + forecast_series with the
  default ForecastSettings: 4 days of history, daily season);
- predict_linear: Prometheus's least-squares line through the window the existing rules
  use (1 h for EventSellOutForecast, 6 h for FeePayerBalanceExhaustionPredicted).

The truth at T is when the value would reach zero from its level at T with the
consumption that actually followed (top-ups after T do not count). Printed per
capacity and model: mean and median absolute error of the predicted time to
exhaustion (hours; "never within the horizon" counts as the 14-day horizon), MAPE, the
false-alarm ratio (origins with more than twice the alert threshold left at which the
model said "under the threshold"), and for each exhaustion the alert rule (threshold
and `for:` as in rules/, evaluated every 5 min for tickets, 15 min for fee payers):
the time left when it fired (lead), or a miss. Last line: JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from sqlalchemy import create_engine  # noqa: E402

from exporters.business import schema  # noqa: E402
from receiver.anomaly.forecast_job import forecast_series, prepare  # noqa: E402
from receiver.anomaly.forecast_settings import ForecastSettings  # noqa: E402
from receiver.anomaly.prometheus_source import Samples, SkipSeries  # noqa: E402
from ticketmon.simulator.platform_db import Platform, daily_factor  # noqa: E402
from ticketmon.simulator.solana_rpc import LAMPORTS_PER_SOL, Chain, SolanaSimSettings  # noqa: E402

STEP = 300
HORIZON = 14 * 86400
MINT_LAMPORTS = 12_000_000  # rent of a mint's accounts plus fees, paid by the fee payer
WALLETS = {"payer-1": 180.0, "payer-2": 120.0}  # SOL at the start, and each top-up's target


@dataclass
class Capacity:
    """One kind of capacity: its series, their consumption, and the alert rules' shape."""

    name: str
    linear_window: int  # seconds of predict_linear's range
    threshold: float  # alert when the time left is under it (seconds)
    for_seconds: float
    eval_step: int  # seconds between alert evaluations
    linear_guard: float  # the predict_linear rule also wants the value above it
    levels: dict[str, np.ndarray] = field(default_factory=dict)
    used: dict[str, np.ndarray] = field(default_factory=dict)  # consumption per step


def simulate(days: int, seed: int, orders_per_hour: float) -> tuple[np.ndarray, Capacity, Capacity]:
    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    engine = create_engine("sqlite://")
    schema.create_schema(engine)
    platform = Platform(engine, rng)
    platform.load()
    start = datetime(2026, 3, 2)
    platform.create_catalogue(start, venues=6, events_per_venue=4)
    platform.load()
    capacity = {e["id"]: e["capacity"] for e in platform.events}
    chain = Chain(SolanaSimSettings(balances={w: int(sol * LAMPORTS_PER_SOL)
                                              for w, sol in WALLETS.items()}))
    steps = days * 86400 // STEP
    times = np.arange(steps) * STEP + start.timestamp()
    sold = {e: np.zeros(steps) for e in capacity}
    balance = {w: np.zeros(steps) for w in WALLETS}
    demand = {w: np.zeros(steps) for w in WALLETS}  # what the mints cost, paid or not
    for i in range(steps):
        at = start + timedelta(seconds=i * STEP)
        rows = platform.activity(at, int(noise.poisson(orders_per_hour * STEP / 3600
                                                       * daily_factor(at))))
        for t in rows["tickets"]:
            sold[t["event_id"]][i] += 1
        for m in rows["nft_mints"]:
            wallet = "payer-1" if m["ticket_id"] % 3 else "payer-2"
            demand[wallet][i] += MINT_LAMPORTS
            chain.pay_fees(wallet, 1, MINT_LAMPORTS)
        for w, target in WALLETS.items():
            lamports = chain.balance(w)
            if i * STEP < days * 86400 / 2 and lamports < 0.2 * target * LAMPORTS_PER_SOL:
                chain.set_balance(w, int(target * LAMPORTS_PER_SOL))  # operators top up
            balance[w][i] = chain.balance(w) / LAMPORTS_PER_SOL
    tickets = Capacity("ticket_inventory", 3600, 4 * 3600, 600, STEP, 0.01)
    for e, n in sold.items():
        tickets.levels[str(e)] = 1 - np.cumsum(n) / capacity[e]
        tickets.used[str(e)] = n / capacity[e]
    fees = Capacity("fee_payer_balance", 6 * 3600, 24 * 3600, 900, 3 * STEP, 0.0)
    for w in WALLETS:
        fees.levels[w] = balance[w]
        fees.used[w] = demand[w] / LAMPORTS_PER_SOL
    return times, tickets, fees


def true_left(level: float, used_after: np.ndarray) -> float:
    """Seconds until `level` minus the consumption that followed reaches zero."""
    if level <= 0:
        return 0.0
    hit = np.flatnonzero(np.cumsum(used_after) >= level - 1e-9)
    return float((hit[0] + 1) * STEP) if len(hit) else math.inf


def seasonal_left(settings: ForecastSettings, times: np.ndarray, values: np.ndarray,
                  i: int) -> float:
    lo = max(0, i + 1 - int(settings.history_seconds // STEP) - 1)
    samples = Samples(times[lo : i + 1], values[lo : i + 1])
    try:
        clean, last = prepare(samples, STEP, settings.max_gap_seconds, times[i])
        return forecast_series(settings, clean, last, ("x",)).exhausts_at - times[i]
    except SkipSeries:
        return math.nan


def linear_left(times: np.ndarray, values: np.ndarray, i: int, window: int) -> float:
    """predict_linear's line (least squares over the window, value at the evaluation
    time) solved for zero."""
    n = window // STEP
    if i < n:
        return math.nan
    t = times[i - n + 1 : i + 1] - times[i]
    y = values[i - n + 1 : i + 1]
    slope, intercept = np.polyfit(t, y, 1)
    if intercept <= 0:
        return 0.0
    return -intercept / slope if slope < 0 else math.inf


@dataclass
class Scores:
    errors: list[float] = field(default_factory=list)  # hours, horizon-capped
    relative: list[float] = field(default_factory=list)
    calm: int = 0  # origins with more than twice the threshold left
    false_alarms: int = 0  # ... at which the model said "under the threshold"
    leads: list[float] = field(default_factory=list)  # hours left when the alert fired
    missed: int = 0  # exhaustions without an alert before them
    fits: int = 0
    seconds: float = 0.0


def evaluate(cap: Capacity, times: np.ndarray, first: int, error_every: int
             ) -> tuple[dict[str, Scores], int]:
    settings = ForecastSettings(name=cap.name, query="bench", step_seconds=STEP)
    models = {
        "seasonal": lambda v, i: seasonal_left(settings, times, v, i),
        f"predict_linear[{cap.linear_window // 3600}h]":
            lambda v, i: linear_left(times, v, i, cap.linear_window),
    }
    scores = {m: Scores() for m in models}
    exhaustions = 0
    for key, level in cap.levels.items():
        used = cap.used[key]
        truth = np.array([true_left(level[i], used[i + 1 :]) for i in range(len(level))])
        ends = [int(e) for e in np.flatnonzero((level[1:] <= 0) & (level[:-1] > 0)) + 1
                if e > first]
        exhaustions += len(ends)
        for name, predict in models.items():
            s = scores[name]
            began = time.perf_counter()
            for i in range(first, len(level), error_every):
                if not (0 < truth[i] < HORIZON):
                    continue
                got = predict(level, i)
                s.fits += 1
                if math.isnan(got):
                    continue
                err = abs(min(got, HORIZON) - truth[i]) / 3600
                s.errors.append(err)
                s.relative.append(err * 3600 / max(truth[i], STEP))
                if truth[i] > 2 * cap.threshold:
                    s.calm += 1
                    s.false_alarms += got < cap.threshold
            for end in ends:
                lead = alert_lead(cap, name, predict, level, truth, end)
                s.fits += 1
                if lead is None:
                    s.missed += 1
                else:
                    s.leads.append(lead / 3600)
            s.seconds += time.perf_counter() - began
    return scores, exhaustions


def alert_lead(cap: Capacity, name: str, predict, level: np.ndarray, truth: np.ndarray,
               end: int) -> float | None:
    """Time left when the rule (condition held for its `for:`) first fired before the
    exhaustion at index `end`, looking back three thresholds, at origins whose truth is
    this exhaustion (not before a top-up that postponed it); None: it never fired."""
    every = cap.eval_step // STEP
    since = None
    for i in range(max(0, end - int(3 * cap.threshold // STEP)), end, every):
        if abs(truth[i] - (end - i) * STEP) > STEP:
            since = None
            continue
        got = predict(level, i)
        firing = not math.isnan(got) and got < cap.threshold
        if name != "seasonal":  # the predict_linear rules' second condition
            firing = firing and level[i] > cap.linear_guard
        since = (i if since is None else since) if firing else None
        if since is not None and (i - since) * STEP >= cap.for_seconds:
            return float(truth[i])
    return None


def row(cap: str, model: str, s: Scores, exhaustions: int) -> dict:
    def median(x: list[float]) -> float | None:
        return round(float(np.median(x)), 2) if x else None

    return {"capacity": cap, "model": model, "origins": len(s.errors),
            "mae_h": round(float(np.mean(s.errors)), 2) if s.errors else None,
            "median_ae_h": median(s.errors),
            "mape": round(float(np.mean(s.relative)), 3) if s.relative else None,
            "false_alarm_ratio": round(s.false_alarms / s.calm, 3) if s.calm else None,
            "exhaustions": exhaustions, "alerted": len(s.leads), "missed": s.missed,
            "median_lead_h": median(s.leads),
            "min_lead_h": round(min(s.leads), 2) if s.leads else None,
            "ms_per_fit": round(1000 * s.seconds / max(s.fits, 1), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--orders-per-hour", type=float, default=260)
    parser.add_argument("--warmup-days", type=float, default=2.0,
                        help="history before the first origin (two seasons)")
    parser.add_argument("--error-every-minutes", type=int, default=60,
                        help="origins for the error figures")
    args = parser.parse_args()
    began = time.perf_counter()
    times, tickets, fees = simulate(args.days, args.seed, args.orders_per_hour)
    print(f"simulated {args.days} days at {STEP}s: {len(tickets.levels)} events, "
          f"{len(fees.levels)} fee payers ({time.perf_counter() - began:.1f}s)")
    first = int(args.warmup_days * 86400 // STEP)
    rows = []
    for cap in (tickets, fees):
        scores, exhaustions = evaluate(cap, times, first, args.error_every_minutes * 60 // STEP)
        rows += [row(cap.name, m, s, exhaustions) for m, s in scores.items()]
    head = ("capacity", "model", "origins", "MAE h", "median h", "MAPE", "false alarm",
            "exhausted", "alerted", "missed", "lead h med", "lead h min", "ms/fit")
    print(" | ".join(f"{h:>11}" for h in head))
    keys = ("capacity", "model", "origins", "mae_h", "median_ae_h", "mape",
            "false_alarm_ratio", "exhaustions", "alerted", "missed", "median_lead_h",
            "min_lead_h", "ms_per_fit")
    for r in rows:
        print(" | ".join(f"{r[k]!s:>11}" for k in keys))
    print(json.dumps({"rows": rows, "seconds": round(time.perf_counter() - began, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
