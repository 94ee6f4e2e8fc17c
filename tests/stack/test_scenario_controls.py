"""The platform scenarios change what the live platform writes, and their undos bring
it back: sales-stall starves one event on sale, payments-failing and its undo move the
failure ratio, and neither drops what the other set."""

from __future__ import annotations

import json
import random

import pytest
from sqlalchemy import create_engine, text

from ticketmon.simulator.platform_db import Knobs, LiveWriter, seed
from ticketmon.stack import scenario
from ticketmon.stack.up import PLATFORM_KNOBS


@pytest.fixture
def platform(tmp_path):
    url = f"sqlite:///{tmp_path / 'platform.db'}"
    engine = create_engine(url)
    seed(engine, history_hours=1, orders_per_hour=50, rng=random.Random(2))
    knobs = tmp_path / "platform-knobs.json"
    knobs.write_text(json.dumps(PLATFORM_KNOBS))
    state = {"platform-db": url, "platform_knobs": str(knobs),
             "platform_defaults": PLATFORM_KNOBS}
    writer = LiveWriter(engine, control_file=knobs, knobs=Knobs(), rng=random.Random(4))
    writer.platform.load()
    yield engine, state, writer
    engine.dispose()


def _orders_by_event(engine, writer: LiveWriter, ticks: int = 20) -> dict[int, int]:
    with engine.connect() as conn:
        before = conn.execute(text("SELECT max(id) FROM orders")).scalar()
    writer.tick_seconds = 10.0  # 5 orders a second -> 50 orders per tick
    for _ in range(ticks):
        writer.tick()
    with engine.connect() as conn:
        return dict(conn.execute(text(
            "SELECT event_id, count(*) FROM orders WHERE id > :b GROUP BY event_id"),
            {"b": before}).all())


def test_sales_stall_starves_one_event_until_sales_ok(platform):
    engine, state, writer = platform
    said = scenario.apply("sales-stall", None, state)
    stalled = json.loads(open(state["platform_knobs"]).read())["stalled_event_id"]
    assert stalled and f"(id {stalled})" in said
    during = _orders_by_event(engine, writer)
    assert stalled not in during and len(during) >= 10  # every other event still sells
    scenario.apply("sales-ok", None, state)
    assert stalled in _orders_by_event(engine, writer)


def test_a_stall_names_its_event_by_id_or_name_and_refuses_an_unknown_one(platform):
    engine, state, _ = platform
    with engine.connect() as conn:
        event_id, name = conn.execute(text(
            "SELECT id, name FROM events WHERE sale_ends_at > CURRENT_TIMESTAMP "
            "AND sale_starts_at <= CURRENT_TIMESTAMP ORDER BY id DESC")).first()
    assert f"(id {event_id})" in scenario.apply("sales-stall", name, state)
    assert f"(id {event_id})" in scenario.apply("sales-stall", str(event_id), state)
    with pytest.raises(scenario.ScenarioError, match="no event on sale is named 'nope'"):
        scenario.apply("sales-stall", "nope", state)


def test_payment_failures_and_their_undo_keep_a_concurrent_stall(platform):
    _, state, _ = platform
    scenario.apply("sales-stall", None, state)
    scenario.apply("payments-failing", None, state)
    knobs = json.loads(open(state["platform_knobs"]).read())
    assert knobs["payment_failure_ratio"] == 0.5 and knobs["stalled_event_id"]
    scenario.apply("payments-ok", None, state)
    knobs = json.loads(open(state["platform_knobs"]).read())
    assert knobs["payment_failure_ratio"] == PLATFORM_KNOBS["payment_failure_ratio"]
    scenario.apply("platform-ok", None, state)
    assert json.loads(open(state["platform_knobs"]).read()) == {**PLATFORM_KNOBS,
                                                                "stalled_event_id": 0}
