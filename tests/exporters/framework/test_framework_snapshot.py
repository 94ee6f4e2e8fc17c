"""Snapshot collectors: a run's result is served, a failure or timeout drops it."""

from __future__ import annotations

import threading

import pytest
from prometheus_client.core import GaugeMetricFamily

from exporters.framework import SnapshotCollector


class Counting(SnapshotCollector):
    name = "counting"

    def __init__(self, interval: float = 1.0, timeout: float = 1.0) -> None:
        super().__init__(interval, timeout)
        self.runs = 0
        self.fail_with: BaseException | None = None
        self.block = threading.Event()
        self.block.set()

    def collect_snapshot(self):
        self.runs += 1
        self.block.wait()
        if self.fail_with is not None:
            raise self.fail_with
        g = GaugeMetricFamily("ticketmon_test_runs", "Runs so far.", labels=["kind"])
        g.add_metric(["a"], float(self.runs))
        return [g]


def test_success_renders_text_and_health():
    c = Counting()
    assert c.run_once() is True
    text, gz = c.exposition()
    assert b'ticketmon_test_runs{kind="a"} 1.0' in text
    assert gz[:2] == b"\x1f\x8b"
    assert c.health.up and c.health.errors == 0 and c.health.last_success > 0


def test_failure_drops_series_and_counts_error():
    c = Counting()
    c.run_once()
    c.fail_with = RuntimeError("database went away")
    assert c.run_once() is False
    assert c.exposition() == (b"", b"")
    assert not c.health.up
    assert c.health.errors == 1
    assert "database went away" in c.health.last_error


def test_base_exception_from_a_library_is_a_failed_run_not_a_dead_thread():
    c = Counting()
    c.fail_with = KeyboardInterrupt()  # e.g. solders raises BaseException subclasses
    assert c.run_once() is False
    assert c.health.errors == 1


def test_timeout_fails_the_run_and_the_next_run_waits_for_the_stuck_one():
    c = Counting(timeout=0.2)
    c.block.clear()
    assert c.run_once() is False
    assert "timed out" in c.health.last_error
    assert c.run_once() is False  # the first is still stuck: no pile-up of threads
    assert "still running" in c.health.last_error
    assert c.runs == 1
    c.block.set()
    c._worker.join(2)
    assert c.run_once() is True
    assert c.health.up


def test_backoff_doubles_up_to_the_cap_and_resets_on_success():
    c = Counting(interval=1.0)
    c.max_backoff = 5.0
    c.fail_with = RuntimeError("down")
    delays = []
    for _ in range(5):
        c.run_once()
        delays.append(c.next_delay())
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0]
    c.fail_with = None
    c.run_once()
    assert c.next_delay() == 1.0


@pytest.mark.parametrize("interval,timeout", [(0, 1), (1, 0), (-1, 1)])
def test_bad_interval_or_timeout_is_refused(interval, timeout):
    with pytest.raises(ValueError, match="interval and timeout"):
        Counting(interval, timeout)


def _families():
    from prometheus_client.core import (
        CounterMetricFamily,
        HistogramMetricFamily,
        InfoMetricFamily,
    )

    big = CounterMetricFamily("ticketmon_test_sold", "Sold.\nSecond line \\ slash",
                              labels=["event", "kind"])
    for i in range(1000):
        big.add_metric([f'Event "{i}"\n\\', "vip" if i % 2 else "general"], float(i))
    created = CounterMetricFamily("ticketmon_test_with_created", "Has _created.",
                                  labels=["k"])
    for i in range(30):
        created.add_metric([str(i)], float(i), created=1700000000.0 + i)
    odd = GaugeMetricFamily("ticketmon_test_odd_values", "NaN and infinities.", labels=["v"])
    for i, value in enumerate([float("nan"), float("inf"), float("-inf"), -0.0, 1e-9] * 9):
        odd.add_metric([str(i)], value)
    hist = HistogramMetricFamily("ticketmon_test_seconds", "Latency.", labels=["route"])
    for i in range(20):
        hist.add_metric([f"/r{i}"], [("0.1", 1.0), ("1.0", 3.0), ("+Inf", 4.0)], 2.5)
    info = InfoMetricFamily("ticketmon_test_build", "Build.")
    info.add_metric([], {"version": "1.2.3"})
    empty = GaugeMetricFamily("ticketmon_test_empty", "No samples.", labels=["x"])
    return [big, created, odd, hist, info, empty]


@pytest.mark.parametrize("slice_size", [1, 7, 250, 100_000])
def test_render_in_slices_is_byte_for_byte_generate_latest(slice_size):
    from prometheus_client.exposition import generate_latest

    from exporters.framework.snapshot import _Fixed, render

    families = _families()
    assert render(families, slice_size) == generate_latest(_Fixed(families))


def test_render_hands_the_gil_over_between_slices(monkeypatch):
    """A scrape thread must not wait for a whole family: render sleeps after each slice."""
    from exporters.framework import snapshot

    sleeps = []
    monkeypatch.setattr(snapshot.time, "sleep", sleeps.append)
    big = GaugeMetricFamily("ticketmon_test_many", "Many.", labels=["i"])
    for i in range(1000):
        big.add_metric([str(i)], float(i))
    snapshot.render([big], slice_size=100)
    assert len(sleeps) == 10 and all(0 < s < 0.001 for s in sleeps)
