"""SIGTERM during the main job's start-up stops it, even when Python drops the
KeyboardInterrupt the signal handler raises (it does when the handler runs inside a weakref
finalizer, as subprocess's cleanup has one: `ticketmon stack up` then went on starting)."""

from __future__ import annotations

import signal
import threading
import weakref

import pytest

from ticketmon.stack.supervisor import Supervisor


@pytest.fixture
def supervisor():
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield Supervisor(out=lambda _line: None)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


class _Garbage:
    pass


def _lose_a_sigterm() -> None:
    garbage = _Garbage()
    weakref.finalize(garbage, signal.raise_signal, signal.SIGTERM)
    del garbage  # the handler runs in the finalizer, which drops its KeyboardInterrupt


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_signal_lost_in_a_finalizer_stops_start_up_at_the_next_component(supervisor):
    stopped: list[str] = []
    supervisor.add("first", "http://127.0.0.1:1/", lambda: stopped.append("first"),
                   lambda: True)
    _lose_a_sigterm()
    with pytest.raises(KeyboardInterrupt):
        supervisor.add("second", "http://127.0.0.1:2/", lambda: stopped.append("second"),
                       lambda: True)
    supervisor.stop_all()
    assert stopped == ["second", "first"]  # what had started, in reverse order


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_signal_lost_after_the_last_component_ends_the_wait(supervisor):
    _lose_a_sigterm()
    waiting = threading.Thread(target=supervisor.wait, kwargs={"poll": 0.01}, daemon=True)
    waiting.start()
    waiting.join(5)
    assert not waiting.is_alive()
