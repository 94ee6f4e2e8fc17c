"""The system exporter's collectors: concurrent probes, series, promtool, settings errors."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.promtool import promtool_check_metrics

from exporters.system.main import SystemSettings, build
from ticketmon.core.config import ConfigError, load
from ticketmon.servers.process import free_port


def samples(text: bytes) -> dict:
    out = {}
    for fam in text_string_to_metric_families(text.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_services_and_dependencies(target, postgres_cluster, redis_url):
    settings = SystemSettings.model_validate({
        "probe_timeout_seconds": 1.0,
        "slow_after_seconds": 0.3,
        "services": [
            {"name": "good", "url": target + "/ok"},
            {"name": "garbage", "url": target + "/garbage"},
            # four hanging targets: sequential probes would exceed the collector's
            # timeout (longest probe + 2 s), so success here means they ran concurrently
            *({"name": f"hang{i}", "url": target + "/hang"} for i in range(4)),
        ],
        "dependencies": [
            {"name": "platform-db", "kind": "postgres", "url": postgres_cluster.url()},
            {"name": "cache", "kind": "redis", "url": redis_url},
            {"name": "gone", "kind": "tcp", "address": f"127.0.0.1:{free_port()}"},
            {"name": "web", "kind": "http", "url": target + "/html-500"},
        ],
    })
    exporter = build(settings)
    services, deps = exporter.collectors
    assert services.run_once(), services.health.last_error
    assert deps.run_once(), deps.health.last_error
    text = services.exposition()[0] + deps.exposition()[0]
    assert promtool_check_metrics(text) == ""
    s = samples(text)
    assert s[("ticketmon_service_up", (("service", "good"),))] == 1
    assert s[("ticketmon_service_health_state", (("service", "good"), ("state", "healthy")))] == 1
    assert s[("ticketmon_service_health_state", (("service", "good"), ("state", "unhealthy")))] == 0
    assert s[("ticketmon_service_dependency_up", (("dependency", "cache"),
                                                  ("service", "good")))] == 0
    assert s[("ticketmon_service_up", (("service", "garbage"),))] == 0
    assert s[("ticketmon_service_probe_failures_total", (("reason", "bad_body"),
                                                         ("service", "garbage")))] == 1
    assert s[("ticketmon_service_probe_failures_total", (("reason", "timeout"),
                                                         ("service", "hang0")))] == 1
    assert s[("ticketmon_service_probe_duration_seconds_count", (("service", "good"),))] == 1
    dep = {k[1]: v for k, v in s.items() if k[0] == "ticketmon_dependency_up"}
    assert dep == {
        (("dependency", "platform-db"), ("kind", "postgres")): 1,
        (("dependency", "cache"), ("kind", "redis")): 1,
        (("dependency", "gone"), ("kind", "tcp")): 0,
        (("dependency", "web"), ("kind", "http")): 0,
    }
    ratio = s[("ticketmon_postgres_connections_used_ratio", (("dependency", "platform-db"),))]
    assert 0 < ratio <= 1
    assert services.run_once()  # counters and histograms accumulate across runs
    s = samples(services.exposition()[0])
    assert s[("ticketmon_service_probe_duration_seconds_count", (("service", "good"),))] == 2
    for c in exporter.collectors:
        c.close()


@pytest.mark.parametrize("body,key", [
    ("services: [{name: a, url: 'ftp://x'}]", "services.0.url"),
    ("services: [{name: a, url: 'http://x'}, {name: a, url: 'http://y'}]", "repeated"),
    ("dependencies: [{name: d, kind: tcp, address: nohost}]", "host:port"),
    ("dependencies: [{name: d, kind: redis, url: 'http://x'}]", "redis url"),
    ("dependencies: [{name: d, kind: mongo, url: 'mongodb://x'}]", "dependencies.0.kind"),
    ("slow_after_seconds: -1", "slow_after_seconds"),
    ("servics: []", "servics"),
])
def test_bad_settings_are_named(tmp_path, body, key):
    cfg = tmp_path / "system.yaml"
    cfg.write_text(body + "\n")
    with pytest.raises(ConfigError, match=key):
        load(SystemSettings, cfg, environ={})
