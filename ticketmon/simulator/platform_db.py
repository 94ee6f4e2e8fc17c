"""Demo data for the business exporter: the reference schema, a history, live activity.

`seed()` fills an empty database with venues, events (past, on sale, upcoming) and a
few days of orders, tickets, payment attempts (some declined or failed), refunds,
resale listings, NFT mints and sessions. `LiveWriter.tick()` adds what a second of a
busy platform adds. Ids are assigned here (one writer), and PostgreSQL sequences
are moved past them so the platform's own inserts would still work.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select, text, update

from exporters.business import schema as s

log = logging.getLogger("ticketmon.simulator.platform_db")

CITIES = [("Berlin", "EUR"), ("Paris", "EUR"), ("New York", "USD"), ("London", "GBP"),
          ("Austin", "USD"), ("Madrid", "EUR"), ("Chicago", "USD"), ("Lisbon", "EUR")]
ACTS = ["Aurora Lights", "The Midnight Owls", "Neon Harbor", "Glass Animals Tribute",
        "Solar Drift", "Velvet Static", "Paper Moons", "Iron Tides", "Echo Garden",
        "Silver Foxes", "Lunar Bloom", "Crimson Avenue"]
TICKET_TYPES = [("general", 4500, 0.7), ("vip", 15000, 0.1), ("balcony", 6500, 0.2)]
PROVIDERS = [("stripe", 0.6), ("adyen", 0.3), ("paypal", 0.1)]
REFUND_REASONS = ["customer_request", "event_cancelled", "fraud", "duplicate"]
TABLES = [s.venues, s.events, s.ticket_types, s.orders, s.tickets, s.payments, s.refunds,
          s.marketplace_listings, s.nft_mints, s.user_sessions]


# share of the day's average hourly sales, by hour of day: quiet at night, a lunch bump,
# the evening peak when announcements land (mean 1.0 over the day)
_HOURLY = [0.15, 0.1, 0.08, 0.08, 0.1, 0.2, 0.4, 0.7, 0.9, 1.0, 1.1, 1.3,
           1.5, 1.3, 1.1, 1.0, 1.1, 1.4, 1.9, 2.3, 2.2, 1.7, 1.0, 0.5]
DAILY_PROFILE = [h * 24 / sum(_HOURLY) for h in _HOURLY]


def daily_factor(at: datetime) -> float:
    """How busy the hour of `at` is against the day's average (daily seasonality),
    interpolated within the hour so sales have no steps on the hour."""
    hour = at.hour + at.minute / 60 + at.second / 3600
    lo = int(hour) % 24
    frac = hour - int(hour)
    return DAILY_PROFILE[lo] * (1 - frac) + DAILY_PROFILE[(lo + 1) % 24] * frac


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class Knobs:
    """What a scenario may change while live: read from the control file each tick."""

    orders_per_second: float = 2.0
    payment_failure_ratio: float = 0.05
    mint_failure_ratio: float = 0.02
    refund_ratio: float = 0.02

    @classmethod
    def from_file(cls, path: Path | None, current: Knobs) -> Knobs:
        if path is None or not path.exists():
            return current
        try:
            data = json.loads(path.read_text())
            knobs = cls(**{**current.__dict__, **data})
            for name, value in knobs.__dict__.items():
                if not isinstance(value, int | float) or value < 0:
                    raise ValueError(f"{name} must be a number >= 0")
            return knobs
        except (OSError, ValueError, TypeError) as exc:
            log.warning("control file ignored", extra={"path": str(path), "error": str(exc)})
            return current


@dataclass
class Ids:
    """Next id per table (the simulator is the only writer)."""

    next: dict[str, int] = field(default_factory=dict)

    def load(self, conn) -> None:
        for table in TABLES:
            self.next[table.name] = (conn.execute(select(func.max(table.c.id))).scalar() or 0) + 1

    def take(self, table, n: int = 1) -> int:
        first = self.next[table.name]
        self.next[table.name] = first + n
        return first


class Platform:
    """Writes platform activity; `now` is a parameter so history and live share the code."""

    def __init__(self, engine: Engine, rng: random.Random | None = None) -> None:
        self.engine = engine
        self.rng = rng or random.Random()
        self.ids = Ids()
        self.knobs = Knobs()
        self.events: list[dict] = []
        self.types: dict[int, list[dict]] = {}

    def load(self) -> None:
        with self.engine.connect() as conn:
            self.ids.load(conn)
            self.events = [dict(r) for r in conn.execute(select(s.events)).mappings()]
            self.types = {}
            for r in conn.execute(select(s.ticket_types)).mappings():
                self.types.setdefault(r["event_id"], []).append(dict(r))

    # -- catalogue ----------------------------------------------------------------------

    def create_catalogue(self, now: datetime, venues: int = 6, events_per_venue: int = 4) -> None:
        rng = self.rng
        rows_v, rows_e, rows_t = [], [], []
        for v in range(venues):
            city, currency = CITIES[v % len(CITIES)]
            vid = self.ids.take(s.venues)
            capacity = rng.choice([800, 1500, 2500, 5000])
            rows_v.append({"id": vid, "name": f"{city} Arena {v + 1}", "city": city,
                           "capacity": capacity})
            for _ in range(events_per_venue):
                eid = self.ids.take(s.events)
                starts = now + timedelta(days=rng.uniform(-5, 40))
                rows_e.append({
                    "id": eid, "venue_id": vid, "capacity": capacity,
                    "name": f"{rng.choice(ACTS)} @ {city} #{eid}",
                    "starts_at": starts, "sale_starts_at": starts - timedelta(days=60),
                    "sale_ends_at": starts - timedelta(hours=2),
                })
                for name, price, _ in TICKET_TYPES:
                    rows_t.append({"id": self.ids.take(s.ticket_types), "event_id": eid,
                                   "name": name, "currency": currency,
                                   "price_minor": int(price * rng.uniform(0.8, 1.4))})
        with self.engine.begin() as conn:
            conn.execute(s.venues.insert(), rows_v)
            conn.execute(s.events.insert(), rows_e)
            conn.execute(s.ticket_types.insert(), rows_t)

    # -- activity -----------------------------------------------------------------------

    def activity(self, now: datetime, orders: int) -> dict[str, list[dict]]:
        """Rows for `orders` checkouts at `now` plus the resale, mint, session traffic."""
        rng, k = self.rng, self.knobs
        rows: dict[str, list[dict]] = {t.name: [] for t in TABLES}
        on_sale = [e for e in self.events if e["sale_starts_at"] <= now < e["sale_ends_at"]]
        for _ in range(orders if on_sale else 0):
            event = rng.choices(on_sale, weights=[1 + (e["id"] % 5) for e in on_sale])[0]
            ttype = rng.choices(self.types[event["id"]],
                                weights=[w for _, _, w in TICKET_TYPES])[0]
            count = rng.choice([1, 1, 2, 2, 3, 4])
            oid = self.ids.take(s.orders)
            user = rng.randint(1, 50_000)
            total = ttype["price_minor"] * count
            rows["orders"].append({"id": oid, "user_id": user, "event_id": event["id"],
                                   "total_minor": total, "currency": ttype["currency"],
                                   "created_at": now})
            provider = rng.choices([p for p, _ in PROVIDERS], [w for _, w in PROVIDERS])[0]
            while rng.random() < k.payment_failure_ratio:  # failed attempts, then a retry
                rows["payments"].append(self._payment(oid, provider, rng.choice(
                    ["declined", "declined", "failed", "error"]), total, ttype, now))
                if rng.random() < 0.3:
                    break
            else:
                pid = self._append_payment(rows, oid, provider, "succeeded", total, ttype, now)
                for _ in range(count):
                    tid = self.ids.take(s.tickets)
                    rows["tickets"].append({
                        "id": tid, "order_id": oid, "event_id": event["id"],
                        "ticket_type_id": ttype["id"], "price_minor": ttype["price_minor"],
                        "currency": ttype["currency"], "sold_at": now})
                    failed = rng.random() < k.mint_failure_ratio
                    rows["nft_mints"].append({
                        "id": self.ids.take(s.nft_mints), "ticket_id": tid,
                        "outcome": "failed" if failed else "confirmed", "created_at": now,
                        "signature": None if failed else f"{rng.getrandbits(256):064x}"})
                    if rng.random() < 0.05:
                        rows["marketplace_listings"].append({
                            "id": self.ids.take(s.marketplace_listings), "ticket_id": tid,
                            "seller_id": user, "currency": ttype["currency"],
                            "price_minor": int(ttype["price_minor"] * rng.uniform(0.9, 2.5)),
                            "status": "active", "created_at": now, "updated_at": now})
                if rng.random() < k.refund_ratio:
                    rows["refunds"].append({
                        "id": self.ids.take(s.refunds), "payment_id": pid,
                        "reason": rng.choice(REFUND_REASONS), "amount_minor": total,
                        "currency": ttype["currency"], "created_at": now})
            rows["user_sessions"].append({"id": self.ids.take(s.user_sessions), "user_id": user,
                                          "started_at": now, "last_seen_at": now})
        return rows

    def _payment(self, oid, provider, outcome, total, ttype, now) -> dict:
        return {"id": self.ids.take(s.payments), "order_id": oid, "provider": provider,
                "outcome": outcome, "amount_minor": total, "currency": ttype["currency"],
                "created_at": now}

    def _append_payment(self, rows, oid, provider, outcome, total, ttype, now) -> int:
        row = self._payment(oid, provider, outcome, total, ttype, now)
        rows["payments"].append(row)
        return row["id"]

    def write(self, rows: dict[str, list[dict]], now: datetime) -> None:
        with self.engine.begin() as conn:
            for table in TABLES:
                if rows.get(table.name):
                    conn.execute(table.insert(), rows[table.name])
            # resale churn and session activity: in-place changes, as on the real platform
            if self.rng.random() < 0.5:
                conn.execute(update(s.marketplace_listings)
                             .where(s.marketplace_listings.c.id == self.rng.randint(
                                 1, max(1, self.ids.next["marketplace_listings"] - 1)))
                             .where(s.marketplace_listings.c.status == "active")
                             .values(status=self.rng.choice(["sold", "cancelled"]),
                                     updated_at=now))
            conn.execute(update(s.user_sessions)
                         .where(s.user_sessions.c.id >= self.ids.next["user_sessions"] - 200)
                         .where(s.user_sessions.c.last_seen_at >= now - timedelta(minutes=30))
                         .values(last_seen_at=now))

    def fix_sequences(self) -> None:
        if self.engine.dialect.name != "postgresql":
            return
        with self.engine.begin() as conn:
            for table in TABLES:
                conn.execute(text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                    f"GREATEST((SELECT max(id) FROM {table.name}), 1))"))


def seed(engine: Engine, history_hours: float = 48, orders_per_hour: int = 300,
         rng: random.Random | None = None, venues: int = 6, events_per_venue: int = 4,
         daily_pattern: bool = False) -> bool:
    """Create the schema and a history if the database has no venues yet; True if seeded.
    With `daily_pattern`, each hour sells `orders_per_hour` times its daily_factor."""
    s.create_schema(engine)
    with engine.connect() as conn:
        if conn.execute(select(func.count()).select_from(s.venues)).scalar():
            return False
    platform = Platform(engine, rng)
    platform.load()
    now = utcnow()
    platform.create_catalogue(now, venues, events_per_venue)
    platform.load()
    hours = int(history_hours)
    for h in range(hours, 0, -1):
        at = now - timedelta(hours=h)
        orders = round(orders_per_hour * daily_factor(at)) if daily_pattern else orders_per_hour
        platform.write(platform.activity(at, orders), at)
    platform.fix_sequences()
    return True


class LiveWriter:
    """Keeps writing activity at knobs.orders_per_second until stopped."""

    def __init__(self, engine: Engine, control_file: Path | None = None,
                 knobs: Knobs | None = None, rng: random.Random | None = None,
                 tick_seconds: float = 1.0) -> None:
        self.platform = Platform(engine, rng)
        self.platform.knobs = knobs or Knobs()
        self.control_file = control_file
        self.tick_seconds = tick_seconds
        self._carry = 0.0

    def tick(self) -> int:
        p = self.platform
        p.knobs = Knobs.from_file(self.control_file, p.knobs)
        expected = p.knobs.orders_per_second * self.tick_seconds + self._carry
        orders = int(expected)
        self._carry = expected - orders
        now = utcnow()
        p.write(p.activity(now, orders), now)
        return orders

    def run(self, stop: threading.Event) -> None:
        self.platform.load()
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.tick()
            except Exception:  # a locked or lost database: log and try again next tick
                log.exception("live write failed")
                self.platform.load()
            stop.wait(max(0.0, self.tick_seconds - (time.monotonic() - started)))
