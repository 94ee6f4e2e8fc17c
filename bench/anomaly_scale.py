"""The anomaly job at scale: 10,000 series at a 1-minute step, 1, 2 and 4 workers.

    .venv/bin/python bench/anomaly_scale.py [--series 10000] [--workers 1,2,4] [--steps 1]

What runs is real: a Prometheus (ticketmon.servers.prometheus) whose TSDB holds
`--series` series of `--history` one-minute points plus `--steps` more, written as
blocks by `promtool tsdb create-blocks-from openmetrics` (no scraping, bounded disk:
~1 M samples for the defaults), and a PostgreSQL (ticketmon.servers.postgres) where
the workers claim series (receiver/anomaly/claims.py). For each worker count, that
many processes each run an AnomalyJob over all the series with share_series on:
four claim rounds let them split the series, then one backfill run (history) and
`--steps` steady runs, each adding the next minute's point to every series, all
workers starting each run together as they would on their interval.

Per run and worker count: series scored per second (all workers, over the slowest
worker's wall time), and the share of the workers' time spent in Prometheus queries
(query_range calls), in scoring (SeriesStream pushes), in the database (the store's
transactions: claims, saved scores, commits) and in the rest (Python glue), the
workers' CPU seconds and the machine's load average. From the steady runs: the workers
needed to keep up with a 1-minute step, measured (the smallest count whose steady run
of all series takes under 60 s) and estimated from one worker's throughput.

The series use a short warm-up (min_train 30, refit every 30 points) so the history
stays small; production defaults (a model fitted on 2,000 points every 100 points)
cost more per point, so the run also measures that amortised cost in-process and
prints the scoring time per step it would add. Bounded by --budget seconds.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy loads: a worker is one core's work

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import multiprocessing as mp  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

STEP = 60
SETTINGS = {"step_seconds": STEP, "season_seconds": 0, "min_train": 30, "min_scores": 24,
            "refit_every": 30, "suppress_seconds": 3600}


def write_openmetrics(path: Path, series: int, points: int, end: int, seed: int = 1) -> None:
    """Noisy gauges around different levels; every 50th is a counter (kind auto)."""
    rng = np.random.default_rng(seed)
    times = end - STEP * np.arange(points - 1, -1, -1)
    with path.open("w") as out:
        out.write("# TYPE ticketmon_bench_value gauge\n")
        for k in range(series):
            level = rng.uniform(10, 1000)
            values = level + rng.normal(0, level * 0.05, points)
            if k % 50 == 0:
                values = np.cumsum(np.abs(values))
            name = f'ticketmon_bench_value{{series="s{k:05d}"}}'
            out.writelines(f"{name} {v:.4f} {t}\n" for t, v in zip(times, values, strict=True))
        out.write("# EOF\n")


def start_prometheus(work: Path, series: int, points: int, end: int):
    from ticketmon.servers.process import find_binary
    from ticketmon.servers.prometheus import Prometheus

    source = work / "series.om"
    write_openmetrics(source, series, points, end)
    data = work / "prometheus-data"
    data.mkdir()
    promtool = find_binary("promtool", "PROMTOOL", "prometheus")
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(source),
                    str(data)], check=True, capture_output=True, timeout=900)
    source.unlink()  # the blocks hold it now
    config = work / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
    return Prometheus(config, work)


class Timers:
    """Wall seconds inside the job's Prometheus reads and its scoring, per run."""

    def __init__(self) -> None:
        self.seconds: Counter[str] = Counter()

    def wrap(self, owner, attr: str, key: str) -> None:
        inner = getattr(owner, attr)

        def timed(*args, **kwargs):
            began = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds[key] += time.perf_counter() - began

        setattr(owner, attr, timed)

    def wrap_transactions(self, store_class) -> None:
        """Time spent inside the store's transactions (claims, saved scores, commits)."""
        inner = store_class.transaction

        @contextmanager
        def timed(store, *args, **kwargs):
            began = time.perf_counter()
            try:
                with inner(store, *args, **kwargs) as conn:
                    yield conn
            finally:
                self.seconds["database"] += time.perf_counter() - began

        store_class.transaction = timed


def worker(index: int, db_url: str, prom_url: str, series: int, history: int,
           plan: list[float], barrier, results) -> None:
    """One anomaly worker: claim rounds, then a backfill and steady runs at `plan`."""
    from receiver.anomaly import job as job_module
    from receiver.anomaly.job import AnomalyJob
    from receiver.anomaly.settings import AnomalyJobSettings, SeriesSettings
    from receiver.store import Store, StoreUnavailable

    timers = Timers()
    timers.wrap(job_module, "query_range", "prometheus")
    timers.wrap(AnomalyJob, "_push", "scoring")
    timers.wrap_transactions(Store)
    items = [SeriesSettings(name=f"s{k:05d}", query=f'ticketmon_bench_value{{series="s{k:05d}"}}',
                            history_seconds=STEP * (history - 1), **SETTINGS)
             for k in range(series)]
    settings = AnomalyJobSettings(prometheus_url=prom_url, interval_seconds=STEP,
                                  lease_seconds=3600, timeout_seconds=30, series=items,
                                  forecasts=[])
    store = Store(db_url, pool_size=1)
    job = AnomalyJob(settings, store, background_refit=False)
    try:
        for _ in range(4):  # register, hand back the surplus, take the free share
            barrier.wait(timeout=1800)
            try:
                held = len(job.claimed(plan[0])[0])
            except StoreUnavailable:  # as in run_forever: a failed claim waits a round
                held = 0
        for run, now in enumerate(plan):
            barrier.wait(timeout=1800)
            timers.seconds.clear()
            cpu, began = time.process_time(), time.perf_counter()
            try:
                statuses = Counter(o.status for o in job.run_once(now=now))
            except StoreUnavailable:  # the run fails, the worker goes on (run_forever)
                statuses = Counter(run_failed=1)
            wall = time.perf_counter() - began
            results.put({"worker": index, "run": run, "held": held, "wall": wall,
                         "cpu": time.process_time() - cpu, "load": os.getloadavg()[0],
                         "statuses": dict(statuses),
                         **{k: timers.seconds[k] for k in ("prometheus", "scoring", "database")}})
    finally:
        job.close()
        store.dispose()


def run_config(workers: int, db_url: str, prom_url: str, args, plan: list[float]) -> list[dict]:
    from receiver.store import migrate

    migrate.upgrade(db_url)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(workers)
    results = ctx.Queue()
    procs = [ctx.Process(target=worker, args=(i, db_url, prom_url, args.series, args.history,
                                              plan, barrier, results), daemon=True)
             for i in range(workers)]
    for p in procs:
        p.start()
    expected = workers * len(plan)
    rows = []
    deadline = time.monotonic() + args.budget
    while len(rows) < expected and time.monotonic() < deadline:
        try:
            rows.append(results.get(timeout=5))
        except Exception:  # queue.Empty: a worker still busy, or dead
            if not any(p.is_alive() for p in procs):
                break
    for p in procs:
        p.join(timeout=30)
        if p.is_alive():
            p.terminate()
    return rows


def summarise(workers: int, rows: list[dict], series: int) -> list[dict]:
    out = []
    for run in sorted({r["run"] for r in rows}):
        part = [r for r in rows if r["run"] == run]
        statuses = Counter()
        for r in part:
            statuses.update(r["statuses"])
        wall = max(r["wall"] for r in part)
        busy = sum(r["wall"] for r in part)
        prom = sum(r["prometheus"] for r in part)
        scoring = sum(r["scoring"] for r in part)
        database = sum(r["database"] for r in part)
        out.append({
            "workers": workers, "run": "backfill" if run == 0 else f"step {run}",
            "series_scored": statuses.get("scored", 0), "held": [r["held"] for r in part],
            "wall_s": round(wall, 2), "series_per_s": round(statuses.get("scored", 0) / wall, 1),
            "prometheus_share": round(prom / busy, 3), "scoring_share": round(scoring / busy, 3),
            "database_share": round(database / busy, 3),
            "other_share": round(1 - (prom + scoring + database) / busy, 3),
            "cpu_s": round(sum(r["cpu"] for r in part), 2),
            "not_scored": {k: v for k, v in statuses.items() if k != "scored"},
            "keeps_up": statuses.get("scored", 0) == series and wall < STEP,
            "load": round(max(r["load"] for r in part), 1),
        })
    return out


def production_point_cost(points: int = 600) -> float:
    """Seconds of scoring per new point of one series under the default policy
    (refit every 100 points on up to 2,000), amortised over `points` steady points."""
    from receiver.anomaly.job import stream_config
    from receiver.anomaly.settings import SeriesSettings
    from receiver.anomaly.stream import SeriesStream

    cfg = stream_config(SeriesSettings(name="x", query="x", season_seconds=0))
    rng = np.random.default_rng(3)
    stream = SeriesStream(cfg)
    stream.push(100 + rng.normal(0, 5, 3000))
    new = 100 + rng.normal(0, 5, points)
    began = time.process_time()
    for v in new:
        stream.push(np.array([v]))
    return (time.process_time() - began) / points


def main() -> int:
    from ticketmon.servers.postgres import PostgresCluster

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=90,
                        help="one-minute points before the backfill (>= 85)")
    parser.add_argument("--steps", type=int, default=1, help="steady runs after it")
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--budget", type=float, default=900, help="seconds per worker count")
    args = parser.parse_args()
    counts = [int(w) for w in args.workers.split(",")]
    began = time.perf_counter()
    end = (int(time.time()) // STEP - 2) * STEP
    first = end - args.steps * STEP  # the backfill's "now"; each step adds a point
    plan = [first + 1 + k * STEP for k in range(args.steps + 1)]
    summary: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="anomaly-scale-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        prom = start_prometheus(work, args.series, args.history + args.steps, end)
        print(f"prometheus: {args.series} series x {args.history + args.steps} points "
              f"backfilled in {time.perf_counter() - t0:.1f}s", flush=True)
        cluster = PostgresCluster()
        try:
            for n in counts:
                url = cluster.create_database(f"scale{n}")
                rows = run_config(n, url, prom.url, args, plan)
                lines = summarise(n, rows, args.series)
                summary += lines
                for line in lines:
                    print(json.dumps(line), flush=True)
        finally:
            cluster.stop()
            prom.stop()
    per_point = production_point_cost()
    print_table(summary)
    steady = [r for r in summary if r["run"] != "backfill"]
    measured = min((r["workers"] for r in steady if r["keeps_up"]), default=None)
    one = [r for r in steady if r["workers"] == 1]
    estimate = None
    if one:
        rate = float(np.median([r["series_per_s"] for r in one]))
        estimate = math.ceil(args.series / STEP / rate) if rate else None
    print(f"workers needed for {args.series} series at a {STEP}s step: measured "
          f"{measured if measured else 'none of ' + args.workers}, estimated from one "
          f"worker's steady throughput {estimate} (a core each; Prometheus and PostgreSQL "
          f"on their own cores)")
    print(f"production policy (refit every 100 on 2,000 points) scores a point in "
          f"{per_point * 1e6:.0f} us of CPU: {per_point * args.series:.1f} s per step for "
          f"{args.series} series, against the short policy's scoring above")
    print(json.dumps({"runs": summary, "workers_needed_measured": measured,
                      "workers_needed_estimated": estimate,
                      "production_scoring_s_per_step": round(per_point * args.series, 2),
                      "seconds": round(time.perf_counter() - began, 1)}))
    return 0


def print_table(rows: list[dict]) -> None:
    head = ("workers", "run", "scored", "wall s", "series/s", "prom %", "scoring %",
            "database %", "other %", "CPU s", "load", "keeps up")
    print(" | ".join(f"{h:>9}" for h in head))
    for r in rows:
        cells = (r["workers"], r["run"], r["series_scored"], r["wall_s"], r["series_per_s"],
                 round(100 * r["prometheus_share"], 1), round(100 * r["scoring_share"], 1),
                 round(100 * r["database_share"], 1), round(100 * r["other_share"], 1),
                 r["cpu_s"], r["load"], "yes" if r["keeps_up"] else "no")
        print(" | ".join(f"{c!s:>9}" for c in cells))


if __name__ == "__main__":
    sys.exit(main())
