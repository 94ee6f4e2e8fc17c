"""The scalper/bot patterns: each looks at one signal and says whether it fired.

A pattern whose signal is missing neither fires nor fails: it lowers the check's
confidence instead, so an old checkout that sends fewer signals still gets an answer.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import lru_cache

from exporters.fraud.request import CheckRequest
from exporters.fraud.settings import Outlier, Patterns

EARTH_RADIUS_KM = 6371.0088
SIGNALS = 9  # one per pattern
OUTLIER = "outlier"  # the outlier score's name where it fires like a pattern
FEATURES = ("quantity", "requests_per_minute", "payment_methods", "session_seconds",
            "mouse_movements", "median_keystroke_ms", "travel_kmh", "bot_user_agent")


@dataclass(slots=True)
class Fired:
    name: str
    contribution: int
    detail: str


@dataclass(slots=True)
class Evaluation:
    fired: list[Fired] = field(default_factory=list)
    signals: int = 0  # how many patterns had their signal
    features: list[float] = field(default_factory=list)

    @property
    def confidence(self) -> float:
        return round(self.signals / SIGNALS, 2)


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


@lru_cache(maxsize=8)
def _markers(markers: tuple[str, ...]) -> re.Pattern[str]:
    """One regex for all markers: a single scan of the user agent instead of one per marker."""
    return re.compile("|".join(re.escape(m) for m in markers))


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def evaluate(req: CheckRequest, cfg: Patterns, now: float, earlier: list[float],
             previous: tuple[float, float, float] | None) -> Evaluation:
    """`earlier`: this user's previous check times; `previous`: last known (lat, lon, at)."""
    ev = Evaluation()

    def fire(name: str, weight: int, detail: str) -> None:
        ev.fired.append(Fired(name, weight, detail))

    # request rate: the caller's figure, else the rate of this user's recent checks
    rate = req.requests_per_minute
    if rate is None:
        recent = [t for t in earlier if now - t <= 60]
        if recent:
            rate = (len(recent) + 1) * 60 / max(now - recent[0], 1.0)
    if rate is not None:
        ev.signals += 1
        if cfg.rapid_requests.enabled and rate > cfg.rapid_requests.per_minute_above:
            fire("rapid_requests", cfg.rapid_requests.weight, f"{rate:.0f} requests/min")

    methods = req.payment_methods_recent
    if methods is not None:
        ev.signals += 1
        p = cfg.many_payment_methods
        if p.enabled and methods > p.above:
            fire("many_payment_methods", p.weight, f"{methods} payment methods recently")

    ev.signals += 1  # quantity is always there
    if cfg.bulk_purchase.enabled and req.quantity > cfg.bulk_purchase.tickets_above:
        fire("bulk_purchase", cfg.bulk_purchase.weight, f"{req.quantity} tickets")

    speed = math.nan
    before = None
    if req.previous_geo is not None:
        before = (req.previous_geo.lat, req.previous_geo.lon, req.previous_geo.at)
    elif previous is not None:
        before = previous
    if req.geo is not None and before is not None:
        ev.signals += 1
        km = distance_km(before[0], before[1], req.geo.lat, req.geo.lon)
        hours = (now - before[2]) / 3600
        speed = km / hours if hours > 0 else math.inf
        p = cfg.impossible_travel
        if p.enabled and km > p.km_above and speed > p.kmh_above:
            fire("impossible_travel", p.weight,
                 f"{km:.0f} km in {max(hours, 0) * 60:.0f} min")

    p = cfg.machine_timing
    times = [*earlier[-p.min_intervals:], now]
    if len(times) > p.min_intervals:
        ev.signals += 1
        # plain float arithmetic: the statistics module's exact fractions are far slower;
        # the gaps of ordered times sum to last - first
        gaps = len(times) - 1
        mean = (times[-1] - times[0]) / gaps
        spread = math.sqrt(sum((b - a - mean) ** 2
                               for a, b in zip(times, times[1:], strict=False)) / gaps)
        variation = spread / mean if mean > 0 else 0.0
        if p.enabled and variation < p.max_variation:
            fire("machine_timing", p.weight,
                 f"{gaps} gaps of {mean:.2f}s varying {variation:.1%}")

    bot = 0.0
    if req.user_agent is not None:
        ev.signals += 1
        agent = req.user_agent.lower()
        p = cfg.bot_user_agent
        found = _markers(p.markers).search(agent) if p.markers else None
        marker = found.group() if found else None
        if not agent.strip():
            marker = "(empty)"
        if marker is not None:
            bot = 1.0
            if p.enabled:
                fire("bot_user_agent", p.weight, f"user agent matches {marker!r}")

    session = req.session
    mouse = session.mouse_movements if session else None
    if mouse is not None:
        ev.signals += 1
        if cfg.no_mouse_movement.enabled and mouse == 0:
            fire("no_mouse_movement", cfg.no_mouse_movement.weight, "no mouse movement")

    keys = session.keystroke_intervals_ms if session else None
    median_key = math.nan
    p = cfg.inhuman_typing
    if keys is not None and len(keys) >= p.min_keystrokes:
        ev.signals += 1
        median_key = _median(keys)
        if p.enabled and median_key < p.median_ms_below:
            fire("inhuman_typing", p.weight, f"median {median_key:.1f} ms between keys")

    duration = session.duration_seconds if session else None
    if duration is not None:
        ev.signals += 1
        p = cfg.short_session
        if p.enabled and duration < p.seconds_below:
            fire("short_session", p.weight, f"session of {duration:.1f}s")

    nan = math.nan
    ev.features = [
        float(req.quantity),
        nan if rate is None else rate,
        nan if methods is None else float(methods),
        nan if duration is None else duration,
        nan if mouse is None else float(mouse),
        median_key,
        speed if math.isfinite(speed) or math.isnan(speed) else 1e6,
        bot,
    ]
    return ev


def add_outlier(ev: Evaluation, outlier: float | None, cfg: Outlier) -> None:
    """Let the outlier score take part in the decision (settings.Outlier says how)."""
    if outlier is not None and cfg.weight and outlier >= cfg.above:
        ev.fired.append(Fired(OUTLIER, cfg.weight,
                              f"less usual than {outlier:.1%} of recent checks"))
