"""Chaos: the fault scenarios of tests/integration/test_faults.py, longer and repeated.

    .venv/bin/python bench/chaos.py [--scenarios sigkill,postgres,ha]
        [--alerts 2000] [--groups 400] [--duration 60] [--resolve-faults 20]
        [--settle 300] [--seed 1] [--workdir DIR]

Per scenario, on a throw-away PostgreSQL (one database each) with real Alertmanager,
gunicorn receivers and escalation workers paging into a local sink
(ticketmon.servers.faults.FaultBed): --alerts alerts in --groups groups are pushed into
Alertmanager over --duration seconds while faults strike at random moments (seed
--seed): `sigkill` SIGKILLs the receiver (master and workers) and restarts it,
`postgres` stops PostgreSQL (fast) and starts it again, `ha` runs an Alertmanager HA
pair posting to two receivers with two workers and SIGKILLs either receiver. Then
everything is restored and must converge within --settle seconds; then every alert is
resolved through Alertmanager while the faults go on for --resolve-faults seconds, and
it must converge again. Prints a table of counts per scenario and phase (sent, held by
Alertmanager, stored, lost, incidents, duplicate incidents, pages, duplicate pages,
resolves, duplicate and missing resolves, faults injected) and a final JSON line; exits
1 if anything was lost or duplicated or a phase did not converge. The figures are
counts, not timings: a loaded box changes how long a run takes, not what it must find.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ticketmon.servers.faults import FaultBed  # noqa: E402
from ticketmon.servers.postgres import PostgresCluster  # noqa: E402
from ticketmon.servers.process import ServerError  # noqa: E402

SCENARIOS = ("sigkill", "postgres", "ha")
MAX_FAULTS = 200  # bound on faults per phase, whatever the duration
COLUMNS = ("scenario", "phase", "sent", "held", "stored", "firing", "lost", "incidents",
           "duplicate_incidents", "pages", "duplicate_pages", "unpaged", "resolves",
           "duplicate_resolves", "missing_resolves", "dead", "faults", "seconds", "ok")
SHORT = {"duplicate_incidents": "dup_inc", "duplicate_pages": "dup_pages",
         "duplicate_resolves": "dup_res", "missing_resolves": "miss_res"}


class Faults(threading.Thread):
    """Strikes at random moments until stopped: 0.3-3 s up, then 0.2-2 s down."""

    def __init__(self, scenario: str, bed: FaultBed, cluster: PostgresCluster,
                 rng: random.Random) -> None:
        super().__init__(name=f"faults-{scenario}", daemon=True)
        self.scenario, self.bed, self.cluster, self.rng = scenario, bed, cluster, rng
        self.stopping = threading.Event()
        self.count = 0
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            while self.count < MAX_FAULTS and not self.stopping.wait(self.rng.uniform(0.3, 3)):
                self.strike()
        except Exception as exc:  # reported by finish()
            self.error = exc

    def strike(self) -> None:
        self.count += 1
        down = self.rng.uniform(0.2, 2.0)
        if self.scenario == "postgres":
            self.cluster.halt("fast")
            time.sleep(down)
            self.cluster.start()
            return
        receiver = self.rng.choice(self.bed.receivers)
        receiver.kill()
        time.sleep(down)
        receiver.start()

    def finish(self) -> int:
        """Stop striking; everything is up again when this returns."""
        self.stopping.set()
        self.join(120)
        if self.is_alive():
            raise ServerError("fault thread did not stop")
        if self.error:
            raise self.error
        return self.count


def verdict(row: dict, phase: str) -> bool:
    clean = all(row[k] == 0 for k in ("lost", "duplicate_incidents", "duplicate_pages",
                                      "unpaged", "duplicate_resolves", "missing_resolves",
                                      "dead"))
    if phase == "firing":
        return clean and row["held"] == row["sent"] == row["stored"] == row["firing"]
    return clean and row["resolves"] == row["pages"] and row["firing"] == 0


def scenario(name: str, cluster: PostgresCluster, workdir: Path, args,
             rng: random.Random) -> list[dict]:
    url = cluster.create_database(f"chaos_{name}")
    n = 2 if name == "ha" else 1
    rows = []
    with FaultBed(workdir / name, url, receivers=n, workers=n, run=name) as bed:
        bed.start()
        starts = datetime.now(UTC) - timedelta(minutes=1)
        began = time.monotonic()
        order = list(range(args.alerts))
        rng.shuffle(order)  # each group's last change, and final post, at a random moment
        pusher = bed.pusher(args.alerts, args.groups, starts, batch=50,
                            spread=args.duration, order=order)
        faults = Faults(name, bed, cluster, rng)
        pusher.start()
        faults.start()
        pusher.finish(args.duration * 4 + 60)
        struck = faults.finish()
        rows.append(phase(bed, name, "firing", struck, began, args,
                          lambda: bed.converged_firing(args.groups)))
        began = time.monotonic()
        bed.resolve(args.alerts, args.groups, starts)
        faults = Faults(name, bed, cluster, rng)
        faults.start()
        time.sleep(args.resolve_faults)  # the faults strike meanwhile
        struck = faults.finish()
        rows.append(phase(bed, name, "resolved", struck, began, args, bed.converged_resolved))
    return rows


def phase(bed: FaultBed, name: str, phase_name: str, struck: int, began: float, args,
          check) -> dict:
    try:
        counts = bed.settle(check, args.settle, f"{name} {phase_name} to converge")
        converged = True
    except ServerError as exc:
        print(f"# {exc}", file=sys.stderr)
        counts = ((bed.count_quietly() if phase_name == "firing" else None)
                  or bed.ledger.count(bed.sent, set()))
        converged = False
    row = {"scenario": name, "phase": phase_name, **counts.row(), "faults": struck,
           "seconds": round(time.monotonic() - began, 1), "converged": converged}
    row["ok"] = converged and verdict(row, phase_name)
    if counts.lost_fingerprints:
        row["lost_sample"] = counts.lost_fingerprints[:5]
    return row


def table(rows: list[dict], columns: tuple[str, ...] = COLUMNS) -> str:
    """Right-aligned columns (long names shortened), as the fault benchmarks print."""
    heads = [SHORT.get(c, c) for c in columns]
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in cells)) for i, h in enumerate(heads)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help=f"comma-separated, of {', '.join(SCENARIOS)}")
    parser.add_argument("--alerts", type=int, default=2000)
    parser.add_argument("--groups", type=int, default=400)
    parser.add_argument("--duration", type=float, default=60.0,
                        help="seconds of pushing alerts under faults")
    parser.add_argument("--resolve-faults", type=float, default=20.0,
                        help="seconds of faults after resolving everything")
    parser.add_argument("--settle", type=float, default=300.0,
                        help="seconds each phase may take to converge once faults stop")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, help="keep logs here (default: a temp dir)")
    args = parser.parse_args()
    names = [s for s in args.scenarios.split(",") if s]
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {sorted(unknown)}")
    if not (0 < args.duration <= 3600 and 0 <= args.resolve_faults <= 3600
            and 0 < args.settle <= 3600 and 0 < args.groups <= args.alerts <= 100_000):
        parser.error("durations up to 3600 s; 0 < groups <= alerts <= 100000")
    rng = random.Random(args.seed)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ticketmon-chaos-"))
    cluster = PostgresCluster()
    rows: list[dict] = []
    try:
        for name in names:
            rows += scenario(name, cluster, workdir, args, rng)
    finally:
        cluster.stop()
    print(table(rows))
    ok = bool(rows) and all(r["ok"] for r in rows)
    if ok and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"# logs in {workdir}", file=sys.stderr)
    print(json.dumps({"chaos": rows, "seed": args.seed, "ok": ok}))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
