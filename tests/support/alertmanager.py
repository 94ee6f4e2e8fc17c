"""The Alertmanager configuration tests use to post to a receiver under test: one route,
flushed within a second, the webhook's bearer token read from a file."""

from __future__ import annotations

from pathlib import Path


def webhook_config(receiver_url: str, token_file: Path) -> str:
    return f"""
route:
  receiver: ticketmon
  group_by: [alertname, service]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: ticketmon
    webhook_configs:
      - url: {receiver_url}/api/v1/alertmanager
        send_resolved: true
        http_config:
          authorization: {{type: Bearer, credentials_file: {token_file}}}
"""
