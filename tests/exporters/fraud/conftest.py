"""A fraud app per test on a real database, with a clock the test moves."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from support.clock import FakeClock

from exporters.fraud.app import create_app
from exporters.fraud.settings import FraudSettings

TOKEN = "tm_checkout_token_0123456789"
VIEWER = "tm_grafana_viewer_0123456789"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_fraud_app(sqlite_url: str, clock: FakeClock) -> Iterator[Callable]:
    apps = []

    def make(database_url: str | None = None, **overrides):
        doc = {
            "database_url": database_url or sqlite_url,
            "auth": {"tokens": [{"name": "checkout", "role": "operator", "tenant": "acme",
                                 "token": TOKEN},
                                {"name": "grafana", "role": "viewer", "tenant": "acme",
                                 "token": VIEWER}]},
            "outlier": {"min_samples": 50, "refit_seconds": 3600},
            "recorder": {"flush_seconds": 0.05},
        }
        for key, value in overrides.items():
            doc[key] = {**doc.get(key, {}), **value} if isinstance(value, dict) else value
        app = create_app(FraudSettings.model_validate(doc), clock=clock)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["fraud"].stop()


@pytest.fixture
def fraud_app(make_fraud_app):
    return make_fraud_app()


@pytest.fixture
def client(fraud_app):
    c = fraud_app.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    return c
