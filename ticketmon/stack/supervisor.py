"""Run a set of processes in the foreground and stop them all together.

The main job starts each component in order, waits until it answers, prints one
line per component (`name url`), then sleeps until Ctrl-C or SIGTERM, warning when a
component dies. Everything is stopped in reverse order on the way out.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ticketmon.servers.process import ManagedProcess

log = logging.getLogger("ticketmon.stack")


@dataclass
class Running:
    name: str
    url: str
    stop: Callable[[], None]
    alive: Callable[[], bool]
    log_path: Path | None = None
    reported_dead: bool = field(default=False)


class Supervisor:
    def __init__(self, out: Callable[[str], None] = print) -> None:
        self.running: list[Running] = []
        self._stop = threading.Event()
        self._waiting = False
        self._out = out
        # Until everything is up, SIGTERM interrupts start-up like Ctrl-C does, so the
        # caller's cleanup still stops what was already started.
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, *_: object) -> None:
        self._stop.set()
        if not self._waiting:
            raise KeyboardInterrupt

    def add(self, name: str, url: str, stop: Callable[[], None], alive: Callable[[], bool],
            log_path: Path | None = None) -> None:
        self.running.append(Running(name, url, stop, alive, log_path))
        self._out(f"{name} {url}")
        if self._stop.is_set():
            # the signal's KeyboardInterrupt was lost: Python drops an exception raised
            # while a weakref finalizer or __del__ runs (seen: subprocess cleanup)
            raise KeyboardInterrupt

    def add_process(self, proc: ManagedProcess, url: str) -> None:
        self.add(proc.name, url, proc.stop, proc.alive, proc.log_path)

    def wait(self, poll: float = 1.0) -> None:
        """Block until asked to stop; report components that exit on their own."""
        self._waiting = True
        while not self._stop.wait(poll):
            for comp in self.running:
                if not comp.reported_dead and not comp.alive():
                    comp.reported_dead = True
                    log.error("component exited", extra={"component": comp.name,
                                                         "log": str(comp.log_path)})

    def stop_all(self) -> None:
        for comp in reversed(self.running):
            try:
                comp.stop()
            except Exception:  # noqa: BLE001 - keep stopping the others
                log.exception("could not stop component", extra={"component": comp.name})
        self.running.clear()
