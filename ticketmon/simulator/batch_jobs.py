"""`ticketmon simulator batch-jobs`: the platform's nightly jobs, on a short demo schedule.

Settlement (paying organisers) and NFT reconciliation (checking minted tickets against
the chain) run once a night in production. A job that runs once a night is gone
before Prometheus could scrape it, so it pushes its outcome to a Pushgateway with
prometheus_client, which Prometheus scrapes with honor_labels (the `job` label is the
job's). This is the contract every batch job of the platform follows:

    ticketmon_batch_job_last_success_timestamp_seconds  when the last successful run ended
    ticketmon_batch_job_last_failure_timestamp_seconds  when the last failed run ended
    ticketmon_batch_job_duration_seconds                how long the last run took
    ticketmon_batch_job_interval_seconds                how often the job should succeed
    ticketmon_batch_job_grace_seconds                   how late a success may be

pushed with pushadd (POST), so a failure leaves the last success in place. The job
declares its own period and grace, so rules/batch.yml needs no per-job constant: a
nightly job pushes 86400 and its grace, the demo's jobs 60 and 30.

A control file (JSON, re-read every tick; `ticketmon stack scenario batch-job-fail`
writes it) sets each job's state: "ok" (runs and succeeds), "fail" (runs and fails),
"stop" (does not run at all: it is late). A job set back to "ok" runs at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import signal
import threading
import time
from pathlib import Path
from typing import Literal

from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway
from pydantic import Field, model_validator

from ticketmon.core import config, logs
from ticketmon.core.config import Settings

log = logging.getLogger("ticketmon.simulator.batch_jobs")
STATES = ("ok", "fail", "stop")


class JobSpec(Settings):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{0,40}$")
    interval_seconds: float = Field(gt=0, le=7 * 86_400)
    grace_seconds: float = Field(ge=0, le=86_400)
    duration_seconds: float = Field(default=1.0, gt=0, le=3600)  # a run's typical length


def _demo_jobs() -> list[JobSpec]:
    return [JobSpec(name="settlement", interval_seconds=60, grace_seconds=30,
                    duration_seconds=2),
            JobSpec(name="nft-reconciliation", interval_seconds=60, grace_seconds=30,
                    duration_seconds=1)]


class BatchJobsSettings(Settings):
    pushgateway_url: str = Field("http://127.0.0.1:9091", pattern=r"^https?://[^/]+/?$")
    control_file: Path | None = None  # JSON {job: "ok|fail|stop"}, re-read every tick
    tick_seconds: float = Field(default=0.5, gt=0, le=60)
    push_timeout_seconds: float = Field(default=5, gt=0, le=60)
    jobs: list[JobSpec] = Field(default_factory=_demo_jobs, min_length=1)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="after")
    def _unique(self) -> BatchJobsSettings:
        names = [j.name for j in self.jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"jobs: names repeat: {names}")
        return self


def read_states(path: Path | None, jobs: list[str], current: dict[str, str]) -> dict[str, str]:
    """The control file's states; a bad file is logged and changes nothing."""
    if path is None or not path.exists():
        return current
    try:
        doc = json.loads(path.read_text())
        if not isinstance(doc, dict):
            raise ValueError("the top level must be an object {job: state}")
        unknown = sorted(set(doc) - set(jobs))
        bad = sorted(k for k, v in doc.items() if v not in STATES)
        if unknown or bad:
            raise ValueError(f"unknown job(s) {unknown}, state(s) not in {list(STATES)} "
                             f"for {bad}")
    except (OSError, ValueError) as exc:
        log.warning("control file ignored", extra={"path": str(path), "error": str(exc)})
        return current
    return {**current, **doc}


def push_outcome(settings: BatchJobsSettings, job: JobSpec, succeeded: bool, ended: float,
                 duration: float) -> None:
    """One run's outcome, as the real job pushes it at its end."""
    registry = CollectorRegistry()
    outcome = "success" if succeeded else "failure"
    values = {f"last_{outcome}_timestamp_seconds": (ended, f"When the last {outcome} ended."),
              "duration_seconds": (duration, "How long the last run took."),
              "interval_seconds": (job.interval_seconds, "How often the job should succeed."),
              "grace_seconds": (job.grace_seconds, "How late a success may be.")}
    for name, (value, about) in values.items():
        Gauge(f"ticketmon_batch_job_{name}", about, registry=registry).set(value)
    pushadd_to_gateway(settings.pushgateway_url, job=job.name, registry=registry,
                       timeout=settings.push_timeout_seconds)


class Scheduler:
    """Runs each job when due, in its own thread, as its state says."""

    def __init__(self, settings: BatchJobsSettings, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.rng = rng or random.Random()
        self.states = dict.fromkeys((j.name for j in settings.jobs), "ok")
        self.due = dict.fromkeys(self.states, 0.0)  # monotonic time of the next run
        self.running: dict[str, threading.Thread] = {}

    def run_job(self, job: JobSpec, succeed: bool) -> None:
        started = time.monotonic()
        time.sleep(job.duration_seconds * self.rng.uniform(0.5, 1.5))  # the work
        duration = time.monotonic() - started
        try:
            push_outcome(self.settings, job, succeed, time.time(), duration)
        except OSError as exc:  # the gateway is down: this run's outcome is lost, as it
            log.warning("push failed", extra={"job": job.name, "error": str(exc)})  # would be
            return
        log.info("job ran", extra={"job": job.name, "succeeded": succeed,
                                   "duration_seconds": round(duration, 3)})

    def tick(self, now: float) -> None:
        previous = self.states
        self.states = read_states(self.settings.control_file, list(self.states), previous)
        for job in self.settings.jobs:
            state = self.states[job.name]
            if state == "ok" and previous[job.name] != "ok":
                self.due[job.name] = now  # undone: run at once
            thread = self.running.get(job.name)
            if state == "stop" or now < self.due[job.name] or (thread and thread.is_alive()):
                continue
            self.due[job.name] = now + job.interval_seconds
            thread = threading.Thread(target=self.run_job, args=(job, state == "ok"),
                                      daemon=True, name=f"batch-{job.name}")
            self.running[job.name] = thread
            thread.start()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.tick(time.monotonic())
            stop.wait(self.settings.tick_seconds)
        for thread in self.running.values():
            thread.join(timeout=self.settings.push_timeout_seconds + 5)


def run(args: argparse.Namespace) -> int:
    settings = config.load(BatchJobsSettings, args.config)
    logs.setup(getattr(args, "log_level", None) or settings.log_level)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info("batch jobs running", extra={"pushgateway": settings.pushgateway_url,
                                          "jobs": [j.name for j in settings.jobs]})
    Scheduler(settings).run(stop)
    return 0
