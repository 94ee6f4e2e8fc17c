"""Reference schema of the ticketing platform's database (SQLAlchemy Core).

This is what the default query catalog (queries.yaml) reads; it builds on SQLite (the
demo) and PostgreSQL (production). Rows the exporter counts incrementally are
append-only facts with a monotonic integer key: a ticket sold, a payment *attempt*
with its final outcome, a refund, an NFT mint attempt. State that changes in place
(a listing's status, a session's last activity) is only ever read by gauges through
an index, so no query scans a whole table.

Tables (all times naive UTC):
  venues                a place with a capacity
  events                a show at a venue; on sale between sale_starts_at and
                        sale_ends_at, starts at starts_at
  ticket_types          price tiers of an event (price in minor units + currency)
  orders                one checkout by a user for one event
  tickets               one row per ticket sold (append-only)
  payments              one row per payment attempt: provider, outcome, amount
  refunds               one row per refund: reason, amount
  marketplace_listings  resale listings; status active/sold/cancelled/expired
  nft_mints             one row per mint attempt of a ticket NFT: outcome
  user_sessions         a user's session, last_seen_at bumped on activity
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    text,
)

metadata = MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
Id = BigInteger().with_variant(Integer(), "sqlite")


def _id() -> Column:
    return Column("id", Id, primary_key=True, autoincrement=True)


venues = Table(
    "venues", metadata, _id(),
    Column("name", String(200), nullable=False, unique=True),
    Column("city", String(100), nullable=False),
    Column("capacity", Integer, nullable=False),
)

events = Table(
    "events", metadata, _id(),
    Column("venue_id", Id, ForeignKey("venues.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("starts_at", DateTime, nullable=False),
    Column("sale_starts_at", DateTime, nullable=False),
    Column("sale_ends_at", DateTime, nullable=False),
    Column("capacity", Integer, nullable=False),
    # upcoming events (capacity utilisation) and events on sale are range reads
    Index("ix_events_starts_at", "starts_at"),
    Index("ix_events_sale_ends_at", "sale_ends_at"),
)

ticket_types = Table(
    "ticket_types", metadata, _id(),
    Column("event_id", Id, ForeignKey("events.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
)

orders = Table(
    "orders", metadata, _id(),
    Column("user_id", Id, nullable=False),
    Column("event_id", Id, ForeignKey("events.id"), nullable=False),
    Column("total_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

tickets = Table(
    "tickets", metadata, _id(),
    Column("order_id", Id, ForeignKey("orders.id"), nullable=False),
    Column("event_id", Id, ForeignKey("events.id"), nullable=False),
    Column("ticket_type_id", Id, ForeignKey("ticket_types.id"), nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("sold_at", DateTime, nullable=False),
    # sold per event (utilisation) and recent activity (cardinality guard)
    Index("ix_tickets_event_id", "event_id"),
    Index("ix_tickets_sold_at", "sold_at"),
)

payments = Table(
    "payments", metadata, _id(),
    Column("order_id", Id, ForeignKey("orders.id"), nullable=False),
    Column("provider", String(50), nullable=False),
    # succeeded | declined | failed | error: the attempt's final outcome
    Column("outcome", String(20), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

refunds = Table(
    "refunds", metadata, _id(),
    Column("payment_id", Id, ForeignKey("payments.id"), nullable=False),
    # event_cancelled | customer_request | fraud | duplicate | other
    Column("reason", String(50), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("created_at", DateTime, nullable=False),
)

marketplace_listings = Table(
    "marketplace_listings", metadata, _id(),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=False),
    Column("seller_id", Id, nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(20), nullable=False),  # active | sold | cancelled | expired
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime, nullable=False),
    # counting active listings reads only the active ones
    Index("ix_listings_active", "id", postgresql_where=text("status = 'active'"),
          sqlite_where=text("status = 'active'")),
)

nft_mints = Table(
    "nft_mints", metadata, _id(),
    Column("ticket_id", Id, ForeignKey("tickets.id"), nullable=False),
    Column("outcome", String(20), nullable=False),  # confirmed | failed | expired
    Column("signature", String(100)),
    Column("created_at", DateTime, nullable=False),
)

user_sessions = Table(
    "user_sessions", metadata, _id(),
    Column("user_id", Id, nullable=False),
    Column("started_at", DateTime, nullable=False),
    Column("last_seen_at", DateTime, nullable=False),
    Index("ix_sessions_last_seen_at", "last_seen_at"),
)


def create_schema(engine) -> None:
    """Create every table and index that does not exist yet."""
    metadata.create_all(engine)
