"""Report history (SQLAlchemy Core), migration 0009: one row per (report, period).

The row is also the claim: the worker that inserts it (ON CONFLICT DO NOTHING) builds
and sends that report; the others see the conflict and skip, so several workers send
each scheduled report exactly once. A failed run is retried by whoever next finds the
row due (a conditional UPDATE is the claim), and a run whose worker died is taken
over when its lease ends.
"""

from __future__ import annotations

import sqlalchemy as sa

from receiver.store.types import Json, UTCDateTime

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

# Kept apart from receiver.store.tables.metadata, like the escalation tables.
metadata = sa.MetaData()

report_runs = sa.Table(
    "report_runs",
    metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("report", sa.String(100), nullable=False),
    sa.Column("tenant", sa.String(100), nullable=False),
    sa.Column("period_start", UTCDateTime, nullable=False),
    sa.Column("period_end", UTCDateTime, nullable=False),
    # running | retry | delivered | failed
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("owner", sa.String(200)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("lease_until", UTCDateTime),
    sa.Column("next_attempt_at", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("detail", sa.Text),
    sa.Column("file", sa.Text),  # where the rendered report was written
    sa.Column("format", sa.String(8), nullable=False),
    sa.Column("recipients", Json, nullable=False),
    sa.UniqueConstraint("report", "period_start", "period_end",
                        name="uq_report_runs_report_period"),
    sa.Index("ix_report_runs_tenant_id", "tenant", "id"),
    sa.Index("ix_report_runs_state_next_attempt_at", "state", "next_attempt_at"),
)
