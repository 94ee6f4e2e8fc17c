"""Reading and writing anomaly scores in the receiver database.

The job writes the latest score per series and counts skips; the receiver's /metrics
reads them (`anomaly_gauges`, a StoreCollector source); the incident hook copies the
scores of the series related to an incident's alerts when it opens, so the incident
shows what the detectors thought at that moment, not now, and why (the explanation of
the latest anomalous point: feature, distance past its threshold, season compared).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from sqlalchemy.engine import Connection

from receiver.anomaly.tables import anomaly_scores, anomaly_skips, incident_anomaly_scores
from receiver.store.bulk import dialect_insert
from receiver.store.incident_events import IncidentEvent
from receiver.store.tables import incidents


@dataclass(frozen=True)
class LatestScore:
    series: str
    score: float
    anomalous: bool
    value: float
    at: datetime
    relates_to: list[dict]
    explanation: dict | None = None  # of the newest anomalous point, when anomalous


def save_score(conn: Connection, s: LatestScore, now: datetime) -> None:
    save_scores(conn, [s], now)


def save_scores(conn: Connection, scores: list[LatestScore], now: datetime) -> None:
    """Upsert the latest scores of many series in one statement."""
    if not scores:
        return
    rows = [{"series": s.series, "score": s.score, "anomalous": s.anomalous, "value": s.value,
             "at": s.at, "relates_to": s.relates_to, "updated_at": now,
             "explanation": s.explanation} for s in scores]
    ins = dialect_insert(conn, anomaly_scores)
    conn.execute(ins.on_conflict_do_update(
        index_elements=[anomaly_scores.c.series],
        set_={k: ins.excluded[k] for k in rows[0] if k != "series"}), rows)


def forget_score(conn: Connection, series: str) -> None:
    """A skipped series has no score: a stale one must not look current."""
    conn.execute(anomaly_scores.delete().where(anomaly_scores.c.series == series))


def record_skip(conn: Connection, series: str, reason: str, detail: str, now: datetime) -> None:
    ins = dialect_insert(conn, anomaly_skips).values(
        series=series, reason=reason, count=1, last_at=now, detail=detail[:1000])
    conn.execute(ins.on_conflict_do_update(
        index_elements=[anomaly_skips.c.series, anomaly_skips.c.reason],
        set_={"count": anomaly_skips.c.count + 1, "last_at": now, "detail": detail[:1000]}))


def anomaly_gauges(conn: Connection) -> Iterable[Metric]:
    """ticketmon_anomaly_score, ticketmon_anomaly and ticketmon_anomaly_skipped_total."""
    score = GaugeMetricFamily("ticketmon_anomaly_score",
                              "Latest anomaly score of the series (0..1)", labels=["series"])
    flag = GaugeMetricFamily("ticketmon_anomaly",
                             "1 while the series is anomalous, else 0", labels=["series"])
    for row in conn.execute(sa.select(anomaly_scores).order_by(anomaly_scores.c.series)):
        score.add_metric([row.series], row.score)
        flag.add_metric([row.series], 1.0 if row.anomalous else 0.0)
    skipped = CounterMetricFamily("ticketmon_anomaly_skipped",
                                  "Scoring runs skipped, by series and reason",
                                  labels=["series", "reason"])
    query = sa.select(anomaly_skips).order_by(anomaly_skips.c.series, anomaly_skips.c.reason)
    for row in conn.execute(query):
        skipped.add_metric([row.series, row.reason], row.count)
    yield score
    yield flag
    yield skipped


def _matches(selector: dict, labels: dict) -> bool:
    if selector.get("alertname") and labels.get("alertname") != selector["alertname"]:
        return False
    return all(labels.get(k) == v for k, v in (selector.get("labels") or {}).items())


def on_incident_event(conn: Connection, event: IncidentEvent) -> None:
    """Incident hook: on open, keep the scores of the series its alerts relate to."""
    if event.kind != "opened":
        return
    row = conn.execute(sa.select(incidents.c.group_labels, incidents.c.common_labels)
                       .where(incidents.c.id == event.incident_id)).first()
    if row is None:
        return
    labels = {**(row.group_labels or {}), **(row.common_labels or {})}
    snapshot = [
        {"incident_id": event.incident_id, "series": s.series, "score": s.score,
         "anomalous": s.anomalous, "at": s.at, "explanation": s.explanation}
        for s in conn.execute(sa.select(anomaly_scores))
        if any(_matches(sel, labels) for sel in s.relates_to or [])
    ]
    if snapshot:
        conn.execute(incident_anomaly_scores.delete()
                     .where(incident_anomaly_scores.c.incident_id == event.incident_id))
        conn.execute(incident_anomaly_scores.insert(), snapshot)


def incident_scores(conn: Connection, incident_id: int) -> list[dict]:
    """The snapshot for the incident API answer."""
    rows = conn.execute(
        sa.select(incident_anomaly_scores)
        .where(incident_anomaly_scores.c.incident_id == incident_id)
        .order_by(incident_anomaly_scores.c.series)).mappings()
    return [{"series": r["series"], "score": round(r["score"], 4),
             "anomalous": r["anomalous"], "at": r["at"].isoformat(),
             "explanation": r["explanation"]} for r in rows]
