"""Anomaly scores in the receiver database (SQLAlchemy Core). Migrations 0003, 0008.

anomaly_scores           latest score per series, written by the anomaly job and read
                         by the receiver's /metrics, so any process can answer.
anomaly_skips            how often each series was skipped, and why (a counter that
                         survives restarts and is the same whichever process is asked).
incident_anomaly_scores  the scores of an incident's related series when it opened.
anomaly_claims           which worker scores which series, until when (claims.py).
anomaly_workers          the workers sharing the series, each until its lease ends.
"""

from __future__ import annotations

import sqlalchemy as sa

from receiver.store.types import Json, UTCDateTime

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")

metadata = sa.MetaData()

anomaly_scores = sa.Table(
    "anomaly_scores",
    metadata,
    sa.Column("series", sa.String(100), primary_key=True),
    sa.Column("score", sa.Float, nullable=False),  # 0..1
    sa.Column("anomalous", sa.Boolean, nullable=False),
    sa.Column("value", sa.Float, nullable=False),  # the series' value at `at`
    sa.Column("at", UTCDateTime, nullable=False),  # timestamp of the scored point
    sa.Column("relates_to", Json, nullable=False),  # [{"alertname": .., "labels": {..}}]
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("explanation", Json),  # why the newest anomalous point is (anomaly.explain)
)

anomaly_skips = sa.Table(
    "anomaly_skips",
    metadata,
    sa.Column("series", sa.String(100), primary_key=True),
    sa.Column("reason", sa.String(40), primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("last_at", UTCDateTime, nullable=False),
    sa.Column("detail", sa.Text),
)

incident_anomaly_scores = sa.Table(
    "incident_anomaly_scores",
    metadata,
    sa.Column("incident_id", ID, primary_key=True),
    sa.Column("series", sa.String(100), primary_key=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("anomalous", sa.Boolean, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("explanation", Json),
    sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"], ondelete="CASCADE",
                            name="fk_incident_anomaly_scores_incident_id_incidents"),
)

anomaly_claims = sa.Table(
    "anomaly_claims",
    metadata,
    sa.Column("series", sa.String(100), primary_key=True),
    sa.Column("worker", sa.String(100), nullable=False),
    sa.Column("lease_until", UTCDateTime, nullable=False),
    sa.Column("claimed_at", UTCDateTime, nullable=False),
)

anomaly_workers = sa.Table(
    "anomaly_workers",
    metadata,
    sa.Column("worker", sa.String(100), primary_key=True),
    sa.Column("lease_until", UTCDateTime, nullable=False),
)
