"""The compose file as the real Docker Compose v2 binary resolves it (no Docker engine)."""

import json
import subprocess
from pathlib import Path

import compose
import pytest

REPO = Path(__file__).resolve().parents[2]
COMPOSE_BIN = Path(compose.__file__).parent / "docker-compose"
# Dummy values for the secrets docker-compose.yml requires from the environment.
SECRETS_ENV = {
    "TICKETMON_POSTGRES_PASSWORD": "test-password",
    "TICKETMON_WEBHOOK_TOKEN": "test-webhook-token-0123456789abcdef",
    "TICKETMON_FRAUD_JWT_SECRET": "test-jwt-secret-0123456789abcdef0123456789",
    "TICKETMON_PLATFORM_DATABASE_URL": "postgresql+psycopg2://reader:pw@platform-db:5432/platform",
    "TICKETMON_GRAFANA_API_TOKEN": "test-grafana-token",
    "TICKETMON_GRAFANA_FRAUD_TOKEN": "test-grafana-fraud-token",
    "TICKETMON_ACK_LINK_SECRET": "test-ack-secret-0123456789abcdef",
    "GRAFANA_ADMIN_PASSWORD": "test-admin",
    "TICKETMON_PAGERDUTY_ROUTING_KEY": "R0123456789ABCDEF0123456789ABCDE",
    "TICKETMON_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
    "TICKETMON_SMTP_PASSWORD": "test-smtp-password",
    "TICKETMON_WEBHOOK_CHANNEL_URL": "https://hooks.example.com/ticketmon",
    "TICKETMON_WEBHOOK_CHANNEL_SECRET": "test-webhook-channel-secret-0123456789",
    "TICKETMON_METRICS_PASSWORD": "test-metrics-password-0123456789",
}


def _run_compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The real binary (its Python wrapper always exits 0)."""
    return subprocess.run([str(COMPOSE_BIN), "-f", str(REPO / "docker-compose.yml"), *args],
                          capture_output=True, text=True, timeout=60, cwd=REPO,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/tmp", **env})


@pytest.fixture(scope="session")
def run_compose():
    return _run_compose


@pytest.fixture(scope="session")
def secrets_env() -> dict[str, str]:
    return dict(SECRETS_ENV)


@pytest.fixture(scope="session")
def compose_model() -> dict:
    result = _run_compose("config", "--format", "json", env=SECRETS_ENV)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
