"""The query catalog: defaults load, users extend it, mistakes are named at start."""

from __future__ import annotations

import textwrap

import pytest

from exporters.business.catalog import load_catalog
from ticketmon.core.config import ConfigError

COUNTER = """
  - name: big_orders
    metric: ticketmon_big_orders_total
    type: counter
    help: Orders over 1000.
    labels: [currency]
    watermark: {table: orders, column: id}
    sql: SELECT currency, count(*) AS value FROM orders WHERE id > :after AND id <= :upto
         AND total_minor > 100000 GROUP BY currency
"""
GUARDED = "labels: [currency]\n    guard: {{{}}}"


def write(tmp_path, body: str):
    path = tmp_path / "extra.yaml"
    path.write_text(textwrap.dedent(body))
    return path


def test_default_catalog_covers_the_business_metrics():
    metrics = {q.metric for q in load_catalog().queries}
    assert {
        "ticketmon_tickets_sold_total", "ticketmon_revenue_minor_units_total",
        "ticketmon_refunds_total", "ticketmon_payments_total",
        "ticketmon_marketplace_listings_active", "ticketmon_event_capacity_utilization_ratio",
        "ticketmon_event_on_sale", "ticketmon_active_users", "ticketmon_nft_mints_total",
    } <= metrics


def test_user_file_adds_replaces_and_disables(tmp_path):
    extra = write(tmp_path, "queries:" + COUNTER + """
  - name: active_users
    metric: ticketmon_active_users
    type: gauge
    help: Replaced.
    sql: SELECT 1 AS value
""")
    catalog = load_catalog(extra_files=[extra], disabled=["refunds"])
    by_name = {q.name: q for q in catalog.queries}
    assert "big_orders" in by_name and "refunds" not in by_name
    assert by_name["active_users"].help == "Replaced."


@pytest.mark.parametrize("body,named", [
    ("queries:" + COUNTER.replace("    watermark: {table: orders, column: id}\n", ""),
     "watermark"),
    ("queries:" + COUNTER.replace("ticketmon_big_orders_total", "ticketmon_big_orders"),
     "_total"),
    ("queries:" + COUNTER.replace("help:", "helpp:"), "helpp"),
    ("queries:" + COUNTER.replace("id > :after AND id <= :upto", "1=1"), ":after"),
    ("queries:" + COUNTER.replace("ticketmon_big_orders_total", "ticketmon_refunds_total"),
     "both write metric ticketmon_refunds_total"),
    ("queries:" + COUNTER.replace("labels: [currency]", GUARDED.format("x: event")), "guard"),
    ("queries:" + COUNTER.replace("labels: [currency]", GUARDED.format("currency: nope")),
     "no guard named nope"),
    ("queries: {a: 1}", "queries"),
    ("- just a list", "mapping"),
])
def test_bad_catalogs_are_named(tmp_path, body, named):
    with pytest.raises(ConfigError, match=named):
        load_catalog(extra_files=[write(tmp_path, body)])


def test_disabling_an_unknown_query_is_an_error():
    with pytest.raises(ConfigError, match="disable_queries: no query named nope"):
        load_catalog(disabled=["nope"])


def test_missing_catalog_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="missing.yaml"):
        load_catalog(extra_files=[tmp_path / "missing.yaml"])
