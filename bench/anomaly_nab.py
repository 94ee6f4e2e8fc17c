"""Score NAB-layout series as streams and compare detector configurations.

    .venv/bin/python bench/anomaly_nab.py [--data DIR] [--only NAME,...] [--loco]

Every series is pushed through `receiver.anomaly.stream.SeriesStream` (the job's code
path) in chunks, so no score can see a later point. The table shows, per
configuration and for a rolling z-score baseline in the same run: window recall,
precision, F1 (FP events per the data README), flag rate and points per second.

Throughput is given twice: per second of this process's CPU time spent in the scoring
calls (numpy is held to one thread, so that is one core's work and does not depend
on what else the machine runs) and per second of wall-clock time over the same calls
(lower when the machine is busy: the process then waits for a core). The last line
is a JSON object for the default configuration; its points_per_s is the CPU figure.

`--loco` measures the tuning honestly, leave-one-category-out: for each category
folder, the policy (combination of column scores, risk, suppression) with the best F1
on the *other* categories scores the held-out one, and likewise the baseline's z
threshold; the pooled held-out counts are the figure to quote. The defaults (what a
plain run and `--data DIR` use) are the policy the same rule picks on all of the dev
categories, printed beside the per-fold picks.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy loads: one core, honestly counted

import argparse  # noqa: E402
import csv  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from receiver.anomaly.counters import KIND_POINTS, looks_like_counter  # noqa: E402
from receiver.anomaly.stream import SeriesStream, StreamConfig, config_for_step  # noqa: E402
from receiver.anomaly.thresholds import suppress as suppress_flags  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parent / "data" / "nab-dev"
CHUNK = 60  # points per push, like a job catching up on an hour of 1-minute data


@dataclass
class Series:
    name: str
    times: np.ndarray  # datetime64[s]
    values: np.ndarray
    windows: list[tuple[np.datetime64, np.datetime64]]


@dataclass
class Counts:
    tp: int = 0
    fn: int = 0
    fp: int = 0
    flags: int = 0
    points: int = 0
    seconds: float = 0.0  # process CPU time
    wall: float = 0.0

    def add(self, other: Counts) -> None:
        for k in vars(self):
            setattr(self, k, getattr(self, k) + getattr(other, k))

    def row(self) -> dict:
        rec = self.tp / max(self.tp + self.fn, 1)
        prec = self.tp / max(self.tp + self.fp, 1)
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        return {
            "f1": round(f1, 4),
            "recall": round(rec, 4),
            "precision": round(prec, 4),
            "flag_rate": round(self.flags / max(self.points, 1), 5),
            "points_per_s": round(self.points / max(self.seconds, 1e-9)),
            "points_per_s_wall": round(self.points / max(self.wall, 1e-9)),
        }


def load(data: Path, only: set[str] | None) -> list[Series]:
    windows = json.loads((data / "combined_windows.json").read_text())
    out = []
    for name, wins in sorted(windows.items()):
        if only and Path(name).stem not in only:
            continue
        with open(data / name, newline="") as fh:
            rows = list(csv.DictReader(fh))
        times = np.array([r["timestamp"] for r in rows], dtype="datetime64[s]")
        values = np.array([float(r["value"]) for r in rows])
        wins_t = [(np.datetime64(a[:19]), np.datetime64(b[:19])) for a, b in wins]
        out.append(Series(name, times, values, wins_t))
    return out


def evaluate(s: Series, flags: np.ndarray) -> Counts:
    """TP/FN per window, FP events per run of flags outside windows (README rule)."""
    n = len(s.values)
    warm = min(n * 15 // 100, 750)
    flags = flags.copy()
    flags[:warm] = False
    inside = np.zeros(n, dtype=bool)
    c = Counts(points=n, flags=int(flags.sum()))
    for a, b in s.windows:
        in_win = (s.times >= a) & (s.times <= b)
        inside |= in_win
        if (flags & in_win).any():
            c.tp += 1
        else:
            c.fn += 1
    length = 0.1 * n / max(len(s.windows), 1)
    outside = flags & ~inside
    run = 0
    for f in np.append(outside, False):
        if f:
            run += 1
        elif run:
            c.fp += math.ceil(run / length)
            run = 0
    return c


def step_seconds(times: np.ndarray) -> float:
    return float(np.median(np.diff(times).astype(np.float64)))


def run_stream(s: Series, cfg: StreamConfig, scores: list | None = None
               ) -> tuple[np.ndarray, float, float]:
    """Flags of every point, CPU seconds and wall seconds of the scoring calls
    (and the scores appended to `scores` when given)."""
    # per-series adaptation as in the job: counters are scored on their increase
    stream = SeriesStream(replace(cfg, counter=looks_like_counter(s.values[:KIND_POINTS])))
    flags = []
    sys.stdout.flush()
    c0, w0 = time.process_time(), time.perf_counter()
    for i in range(0, len(s.values), CHUNK):
        result = stream.push(s.values[i : i + CHUNK])
        flags.append(result.flags)
        if scores is not None:
            scores.append(result.scores)
    return np.concatenate(flags), time.process_time() - c0, time.perf_counter() - w0


def rolling_zscore(s: Series, window: int = 288, z: float = 4.0):
    """Baseline: |x - mean| / std of the last `window` points above `z`."""
    c0, w0 = time.process_time(), time.perf_counter()
    x = s.values
    c1 = np.concatenate(([0.0], np.cumsum(x)))
    c2 = np.concatenate(([0.0], np.cumsum(x * x)))
    flags = np.zeros(len(x), dtype=bool)
    idx = np.arange(window, len(x))
    mean = (c1[idx] - c1[idx - window]) / window
    var = (c2[idx] - c2[idx - window]) / window - mean**2
    std = np.sqrt(np.maximum(var, 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        flags[idx] = np.abs(x[idx] - mean) > z * np.where(std > 0, std, np.inf)
    return flags, time.process_time() - c0, time.perf_counter() - w0


def configurations(base: StreamConfig) -> dict[str, StreamConfig]:
    return {
        "ecod (default)": base,
        "copod": replace(base, detector="copod"),
        "hbos": replace(base, detector="hbos"),
        # an isolation forest costs ~100x an ECOD refit: refit it 5x less often
        "iforest (refit/500)": replace(base, detector="iforest", refit_every=500),
        "ecod no season": replace(base, period=0),
        "ecod no suppression": replace(base, suppress=0),
    }


def category(s: Series) -> str:
    return Path(s.name).parent.name or "."


# The policy grid --loco tunes over: settings a deployment chooses per series kind
# rather than per series. Whatever is not here adapts per series in the stream.
POLICY_GRID = {"combine": ("max", "sum"), "risk": (1e-4, 3e-4, 1e-3),
               "suppress_seconds": (6 * 3600.0, 24 * 3600.0)}
Z_GRID = (3.0, 4.0, 5.0, 6.0, 8.0)


def policy_label(p: dict) -> str:
    return f"{p['combine']}, risk {p['risk']:g}, suppress {p['suppress_seconds'] / 3600:g}h"


def grid_counts(series: list[Series]) -> dict[str, dict[str, Counts]]:
    """Per policy, per category: counts. A stream run per `combine`; the flags of each
    risk and suppression follow from its scores (suppression is the stream's own)."""
    out: dict[str, dict[str, Counts]] = {}
    for combine in POLICY_GRID["combine"]:
        runs = []
        for s in series:
            scores: list = []
            run_stream(s, config_for_step(step_seconds(s.times), combine=combine), scores)
            runs.append((s, 1.0 - np.nan_to_num(np.concatenate(scores), nan=0.0)))
        for risk in POLICY_GRID["risk"]:
            for sup in POLICY_GRID["suppress_seconds"]:
                p = {"combine": combine, "risk": risk, "suppress_seconds": sup}
                per_cat = out.setdefault(policy_label(p), {})
                for s, prob in runs:
                    gap = int(round(sup / step_seconds(s.times)))
                    flags, _ = suppress_flags(prob < risk, 0, -(10**12), gap)
                    per_cat.setdefault(category(s), Counts()).add(evaluate(s, flags))
    return out


def pooled(per_cat: dict[str, Counts], cats) -> Counts:
    total = Counts()
    for c in cats:
        total.add(per_cat.get(c, Counts()))
    return total


def best(grid: dict[str, dict[str, Counts]], cats) -> str:
    """Highest pooled F1 on `cats` with a flag rate <= 0.5 %; ties: fewer flags."""
    def key(label):
        r = pooled(grid[label], cats).row()
        return (r["flag_rate"] <= 0.005, r["f1"], -r["flag_rate"])
    return max(grid, key=key)


def loco(series: list[Series]) -> dict:
    """Leave-one-category-out table; returns the pooled held-out row."""
    cats = sorted({category(s) for s in series})
    grid = grid_counts(series)
    zgrid: dict[str, dict[str, Counts]] = {}
    for z in Z_GRID:
        for s in series:
            zgrid.setdefault(f"z {z:g}", {}).setdefault(category(s), Counts()).add(
                evaluate(s, rolling_zscore(s, z=z)[0]))
    policies = [dict(zip(POLICY_GRID, v, strict=True))
                for v in itertools.product(*POLICY_GRID.values())]
    labels = {policy_label(p): p for p in policies}
    held, held_base = Counts(), Counts()
    print(f"{'held-out category':24} {'policy tuned on the others':34} {'F1':>6} {'prec':>6} "
          f"{'recall':>6} {'flags':>7}  {'z-score':8} {'F1':>6} {'prec':>6} {'recall':>6} "
          f"{'flags':>7}")
    for cat in cats:
        others = [c for c in cats if c != cat]
        pick = best(grid, others)
        c = Counts()
        for s in (s for s in series if category(s) == cat):
            cfg = config_for_step(step_seconds(s.times), **labels[pick])
            flags, c_secs, w_secs = run_stream(s, cfg)
            one = evaluate(s, flags)
            one.seconds, one.wall = c_secs, w_secs
            c.add(one)
        zpick = best(zgrid, others)
        zc = zgrid[zpick][cat]
        held.add(c)
        held_base.add(zc)
        print(_loco_row(cat, pick, c, zpick, zc))
    print(_loco_row("pooled (held out)", "", held, "", held_base))
    print(f"defaults (tuned on all categories): {best(grid, cats)}; "
          f"stream default: {policy_label(_default_policy())}")
    return held.row()


def _default_policy() -> dict:
    cfg = config_for_step(300.0)
    return {"combine": cfg.combine, "risk": cfg.risk, "suppress_seconds": cfg.suppress * 300.0}


def _loco_row(cat: str, pick: str, c: Counts, zpick: str, zc: Counts) -> str:
    r, b = c.row(), zc.row()
    f1 = f"{r['f1']:6.3f}" if c.tp + c.fn else "     -"
    bf1 = f"{b['f1']:6.3f}" if zc.tp + zc.fn else "     -"
    return (f"{cat:24} {pick:34} {f1} {r['precision']:6.3f} {r['recall']:6.3f} "
            f"{100 * r['flag_rate']:6.3f}%  {zpick:8} {bf1} {b['precision']:6.3f} "
            f"{b['recall']:6.3f} {100 * b['flag_rate']:6.3f}%   TP/FN/FP {c.tp}/{c.fn}/{c.fp}"
            f" vs {zc.tp}/{zc.fn}/{zc.fp}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--only", help="comma-separated file stems")
    parser.add_argument("--configs", help="comma-separated configuration names")
    parser.add_argument("--verbose", action="store_true", help="per-series lines")
    parser.add_argument("--loco", action="store_true",
                        help="leave-one-category-out tuning table (the honest figure)")
    args = parser.parse_args(argv)
    if not (args.data / "combined_windows.json").is_file():
        print(f"no combined_windows.json in {args.data}", file=sys.stderr)
        return 2
    warnings.simplefilter("ignore")
    import pyod.models.hbos  # noqa: F401 - import time is not scoring time
    import pyod.models.iforest  # noqa: F401
    series = load(args.data, set(args.only.split(",")) if args.only else None)
    total_points = sum(len(s.values) for s in series)
    print(f"{len(series)} series, {total_points} points from {args.data}")
    if args.loco:
        row = loco(series)
        print(json.dumps({k: row[k] for k in ("f1", "recall", "precision", "flag_rate")}))
        return 0

    results: dict[str, Counts] = {}
    base = Counts()
    for s in series:
        flags, c_secs, w_secs = rolling_zscore(s)  # the usual 4σ: --loco tunes it
        c = evaluate(s, flags)
        c.seconds, c.wall = c_secs, w_secs
        base.add(c)
    results["rolling z-score (288, 4σ)"] = base

    wanted = set(args.configs.split(",")) if args.configs else None
    default_row = None
    for label in configurations(StreamConfig()):
        if wanted and label not in wanted and label != "ecod (default)":
            continue
        total = Counts()
        for s in series:
            cfg = configurations(config_for_step(step_seconds(s.times)))[label]
            flags, c_secs, w_secs = run_stream(s, cfg)
            c = evaluate(s, flags)
            c.seconds, c.wall = c_secs, w_secs
            total.add(c)
            if args.verbose:
                print(f"  {label:22} {s.name:60} tp={c.tp} fn={c.fn} fp={c.fp} flags={c.flags}")
        results[label] = total
        if label == "ecod (default)":
            default_row = total.row()

    header = f"{'configuration':28} {'recall':>7} {'precision':>9} {'F1':>6} " \
             f"{'flag rate':>9} {'pts/s CPU':>10} {'pts/s wall':>10}  TP/FN/FP"
    print(header)
    print("-" * len(header))
    for label, c in results.items():
        r = c.row()
        print(f"{label:28} {r['recall']:7.3f} {r['precision']:9.3f} {r['f1']:6.3f} "
              f"{100 * r['flag_rate']:8.3f}% {r['points_per_s']:10d} "
              f"{r['points_per_s_wall']:10d}  {c.tp}/{c.fn}/{c.fp}")
    print(json.dumps(default_row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
