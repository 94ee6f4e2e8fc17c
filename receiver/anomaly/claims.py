"""Series claimed in the database, so several workers share the scoring.

Each worker, before a run, renews the leases of its series and takes free or expired
ones up to its fair share (series / live workers); a worker holding more than its
share releases the surplus, so a worker that joins gets series at the others' next
run. A series has one row and one live lease, so no two workers score it at once; a
worker that dies stops renewing, and its series go to the others once the lease
(`lease_seconds`, a few intervals) runs out. Every statement is a single-row
conditional write (one statement for many series), atomic on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import math
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from receiver.anomaly.tables import anomaly_claims, anomaly_workers
from receiver.store.bulk import chunks, dialect_insert


def worker_id() -> str:
    """Host, pid and a random part: unique even across a restart with the same pid."""
    return f"{socket.gethostname()[:60]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def claim(conn: Connection, worker: str, names: list[str], now: datetime,
          lease_seconds: float) -> set[str]:
    """The series `worker` scores this run (a subset of `names`)."""
    c = anomaly_claims.c
    until = now + timedelta(seconds=lease_seconds)
    ins = dialect_insert(conn, anomaly_workers).values(worker=worker, lease_until=until)
    conn.execute(ins.on_conflict_do_update(index_elements=[anomaly_workers.c.worker],
                                           set_={"lease_until": until}))
    conn.execute(anomaly_claims.update().where(c.worker == worker, c.lease_until > now)
                 .values(lease_until=until))
    rows = conn.execute(sa.select(c.series, c.worker, c.lease_until)).all()
    live = set(conn.execute(sa.select(anomaly_workers.c.worker)
                            .where(anomaly_workers.c.lease_until > now)).scalars())
    share = math.ceil(len(names) / len(live))
    wanted = set(names)
    mine = sorted(r.series for r in rows if r.worker == worker and r.lease_until > now
                  and r.series in wanted)
    if len(mine) > share:  # another worker joined: hand back the surplus
        surplus = mine[share:]
        conn.execute(anomaly_claims.delete().where(c.worker == worker, c.series.in_(surplus)))
        mine = mine[:share]
    known = {r.series: r.lease_until for r in rows}
    wanted -= set(mine)
    free = sorted(n for n in wanted if n not in known)
    expired = sorted(n for n in wanted if n in known and known[n] <= now)
    # a series another worker took meanwhile is not returned: try the next ones
    for pool, take in ((free, _insert), (expired, _take_expired)):
        while pool and len(mine) < share:
            batch, pool = pool[: share - len(mine)], pool[share - len(mine) :]
            for part in chunks(batch):
                mine += take(conn, worker, list(part), now, until)
    return set(mine)


def _insert(conn: Connection, worker: str, names: list[str], now: datetime,
            until: datetime) -> list[str]:
    """Claim series nobody has claimed yet, in one statement: a worker claiming
    thousands holds its transaction for milliseconds, not one round trip per series."""
    c = anomaly_claims.c
    ins = dialect_insert(conn, anomaly_claims).values(
        [{"series": n, "worker": worker, "lease_until": until, "claimed_at": now}
         for n in names])
    return list(conn.execute(ins.on_conflict_do_nothing(index_elements=[c.series])
                             .returning(c.series)).scalars())


def _take_expired(conn: Connection, worker: str, names: list[str], now: datetime,
                  until: datetime) -> list[str]:
    """Take over series whose lease ran out (a dead worker's), unless another did."""
    c = anomaly_claims.c
    return list(conn.execute(anomaly_claims.update()
                             .where(c.series.in_(names), c.lease_until <= now)
                             .values(worker=worker, lease_until=until, claimed_at=now)
                             .returning(c.series)).scalars())


def release(conn: Connection, worker: str) -> None:
    """A worker stopping cleanly hands its series over at once."""
    conn.execute(anomaly_claims.delete().where(anomaly_claims.c.worker == worker))
    conn.execute(anomaly_workers.delete().where(anomaly_workers.c.worker == worker))
    conn.execute(anomaly_workers.delete().where(anomaly_workers.c.lease_until < _long_ago()))


def _long_ago() -> datetime:
    """Rows of workers gone for a day are forgotten (any stop cleans them up)."""
    return datetime.now(UTC) - timedelta(days=1)
