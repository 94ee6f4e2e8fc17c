"""Baseline 'null': parse the Alertmanager webhook JSON, store nothing, answer 200.

Run:  gunicorn -w 2 -k sync -b 127.0.0.1:18081 --chdir bench/baselines null_app:app
"""

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/webhook")
@app.post("/webhooks/prometheus")
def webhook():
    payload = request.get_json(force=True, silent=True)
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        return jsonify(status="error", message="no alerts in payload"), 400
    return jsonify(status="ok", alerts=len(payload["alerts"])), 200
