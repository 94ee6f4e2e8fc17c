"""Baseline 'raw-pg': parse the webhook and upsert every alert into one Postgres
table, one transaction per request, one psycopg2 connection per gunicorn worker.

Dedup key is (fingerprint, starts_at): a re-sent alert (Alertmanager repeat) updates
the row and bumps repeat_count; a new firing episode (new startsAt) is a new row.

Run:  RAWPG_DSN=postgresql://bench:bench@127.0.0.1:5432/raw_bench \
      gunicorn -w 2 -k sync -b 127.0.0.1:18082 --chdir bench/baselines rawpg_app:app
"""

import json
import os

import psycopg2
from flask import Flask, jsonify, request
from psycopg2.extras import execute_values

DSN = os.environ.get("RAWPG_DSN", "postgresql://bench:bench@127.0.0.1:5432/raw_bench")

DDL = """
CREATE TABLE IF NOT EXISTS am_alerts (
    fingerprint   text        NOT NULL,
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz,
    status        text        NOT NULL,
    labels        jsonb       NOT NULL,
    annotations   jsonb       NOT NULL,
    generator_url text,
    receiver      text,
    group_key     text,
    first_seen    timestamptz NOT NULL DEFAULT now(),
    last_seen     timestamptz NOT NULL DEFAULT now(),
    repeat_count  integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (fingerprint, starts_at)
)"""

UPSERT = """
INSERT INTO am_alerts (fingerprint, starts_at, ends_at, status, labels, annotations,
                       generator_url, receiver, group_key)
VALUES %s
ON CONFLICT (fingerprint, starts_at) DO UPDATE
   SET status = EXCLUDED.status, ends_at = EXCLUDED.ends_at,
       annotations = EXCLUDED.annotations, last_seen = now(),
       repeat_count = am_alerts.repeat_count + 1"""

app = Flask(__name__)
_conn = None  # one connection per worker process, opened lazily after fork


def conn():
    global _conn
    if _conn is None or _conn.closed:
        _conn = psycopg2.connect(DSN)
        with _conn, _conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(4242)")  # serialise DDL across workers
            cur.execute(DDL)
    return _conn


@app.post("/webhook")
@app.post("/webhooks/prometheus")
def webhook():
    payload = request.get_json(force=True, silent=True)
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        return jsonify(status="error", message="no alerts in payload"), 400
    rows = {}
    try:
        for a in payload["alerts"]:
            ends = a.get("endsAt") or None
            if ends and ends.startswith("0001-01-01"):
                ends = None
            key = (a["fingerprint"], a["startsAt"])
            rows[key] = (
                a["fingerprint"],
                a["startsAt"],
                ends,
                a.get("status", "firing"),
                json.dumps(a.get("labels", {})),
                json.dumps(a.get("annotations", {})),
                a.get("generatorURL"),
                payload.get("receiver"),
                payload.get("groupKey"),
            )
    except (KeyError, TypeError, AttributeError) as e:
        return jsonify(status="error", message=f"bad alert: {e!r}"), 400
    if not rows:
        return jsonify(status="ok", alerts=0), 200
    c = conn()
    try:
        with c, c.cursor() as cur:  # one transaction; sorted keys avoid lock-order deadlocks
            execute_values(cur, UPSERT, [rows[k] for k in sorted(rows)], page_size=1000)
    except psycopg2.Error as e:
        if c.closed:
            globals()["_conn"] = None
        return jsonify(status="error", message=str(e).strip()), 500
    return jsonify(status="ok", alerts=len(rows)), 200
