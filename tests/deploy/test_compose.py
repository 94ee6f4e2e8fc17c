"""docker-compose.yml checked offline: valid, secure by default, and consistent with
the rest of the repository (mounted files, ports, commands, configs, scrape targets)."""

import importlib
import importlib.util
import shlex
from pathlib import Path

import pytest
import yaml

from ticketmon.cli import build_parser
from ticketmon.core import config

REPO = Path(__file__).resolve().parents[2]

# Settings model of each `ticketmon …` command that takes --config.
SETTINGS = {
    ("receiver", "db", "upgrade"): "receiver.settings:ReceiverSettings",
    ("receiver", "worker"): "receiver.escalation.settings:WorkerSettings",
    ("receiver", "anomaly"): "receiver.anomaly.settings:AnomalySettings",
    ("exporter", "business"): "exporters.business.main:BusinessSettings",
    ("exporter", "system"): "exporters.system.main:SystemSettings",
    ("exporter", "blockchain"): "exporters.blockchain.settings:BlockchainSettings",
    ("exporter", "fraud"): "exporters.fraud.settings:FraudSettings",
}
GUNICORN_APPS = {"receiver.wsgi:app": "receiver.settings:ReceiverSettings",
                 "receiver.stream.wsgi:app": "receiver.settings:ReceiverSettings"}
# Ports the third-party images listen on by default.
IMAGE_PORTS = {"prometheus": 9090, "alertmanager": 9093, "node-exporter": 9100,
               "grafana": 3000, "postgres": 5432, "pushgateway": 9091}


def _model(path: str):
    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def _host_path(service: dict, container_path: str) -> Path:
    for vol in service.get("volumes", []):
        if vol["type"] == "bind" and container_path.startswith(vol["target"].rstrip("/") + "/"):
            return Path(vol["source"]) / container_path[len(vol["target"]):].lstrip("/")
    raise AssertionError(f"{container_path} is not inside a bind mount")


def _listen_ports(name: str, service: dict) -> set[int]:
    ports = {int(p["target"]) for p in service.get("ports", [])}
    if name in IMAGE_PORTS:
        ports.add(IMAGE_PORTS[name])
    return ports


def test_each_missing_secret_refuses_to_start(run_compose, secrets_env):
    for name in secrets_env:
        env = {k: v for k, v in secrets_env.items() if k != name}
        result = run_compose("config", "-q", env=env)
        assert result.returncode != 0, f"compose starts without {name}"
        assert f"required variable {name} is missing" in result.stderr


def test_valid_with_secrets(run_compose, secrets_env):
    result = run_compose("config", "-q", env=secrets_env)
    assert result.returncode == 0 and result.stdout == "", result.stderr


def test_every_component_is_there(compose_model):
    assert set(compose_model["services"]) >= {
        "prometheus", "alertmanager", "grafana", "postgres", "node-exporter", "receiver",
        "receiver-stream", "receiver-worker", "business-exporter", "system-exporter",
        "blockchain-exporter", "fraud", "anomaly", "pushgateway"}


def test_images_are_pinned(compose_model):
    for name, service in compose_model["services"].items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: {image} is not pinned"


def test_every_bind_mount_exists_in_the_repository(compose_model):
    for name, service in compose_model["services"].items():
        for vol in service.get("volumes", []):
            if vol["type"] != "bind" or vol["source"] == "/":  # node-exporter's host root
                continue
            source = Path(vol["source"])
            assert source.exists(), f"{name}: {source} does not exist"
            assert REPO in source.parents, f"{name}: {source} is outside the repository"
            assert vol.get("read_only"), f"{name}: {vol['target']} should be read-only"


def test_published_ports_are_unique_and_loopback(compose_model):
    seen: dict[str, str] = {}
    for name, service in compose_model["services"].items():
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", f"{name} publishes on {port['host_ip']}"
            assert port["published"] not in seen, (
                f"{name} and {seen.get(port['published'])} both publish {port['published']}")
            seen[port["published"]] = name


def test_serving_services_have_health_checks(compose_model):
    for name, service in compose_model["services"].items():
        if service.get("ports") or name == "postgres":
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


def test_every_ticketmon_command_is_a_real_subcommand(compose_model):
    parser = build_parser()
    checked = 0
    for name, service in compose_model["services"].items():
        argv = service.get("command") or []
        if argv[:1] == ["ticketmon"]:
            try:
                args = parser.parse_args(argv[1:])
            except SystemExit:
                pytest.fail(f"{name}: `{shlex.join(argv)}` is not a ticketmon command")
            assert callable(args.func)
            checked += 1
        elif argv[:1] == ["gunicorn"]:
            app = argv[-1]
            assert importlib.util.find_spec(app.split(":")[0]), f"{name}: no module {app}"
            conf = argv[argv.index("--config") + 1].removeprefix("python:")
            assert importlib.util.find_spec(conf), f"{name}: no gunicorn config {conf}"
    assert checked >= 7


def _config_of(service: dict) -> tuple[str, Path, dict[str, str]] | None:
    argv = service.get("command") or []
    env = {k: str(v) for k, v in (service.get("environment") or {}).items()}
    if argv[:1] == ["ticketmon"]:
        key = next((k for k in SETTINGS if tuple(argv[1:1 + len(k)]) == k), None)
        if key is None:
            return None
        model = SETTINGS[key]
        path = argv[argv.index("--config") + 1] if "--config" in argv else env["TICKETMON_CONFIG"]
    elif argv[:1] == ["gunicorn"]:
        model, path = GUNICORN_APPS[argv[-1]], env["TICKETMON_CONFIG"]
    else:
        return None
    return model, _host_path(service, path), env


def test_every_service_config_validates_with_its_settings_model(compose_model):
    validated = []
    for name, service in compose_model["services"].items():
        found = _config_of(service)
        if found is None:
            continue
        model, path, env = found
        env.pop("TICKETMON_CONFIG", None)
        settings = config.load(_model(model), path, environ=env)  # ConfigError names the key
        if model == SETTINGS[("receiver", "worker")]:
            # the worker also refuses to start when a policy names an unbound channel
            from receiver.escalation.policy import load_policies

            assert settings.policies_file, "the image has no rules/: mount the policies"
            policies = _host_path(compose_model["services"][name], str(settings.policies_file))
            load_policies(policies).check_channels(set(settings.channels))
        validated.append(name)
    assert len(validated) >= 8, validated


def test_prometheus_targets_are_compose_services_or_probed_platform_services(compose_model):
    services = compose_model["services"]
    prom = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    system = yaml.safe_load((REPO / "deploy/ticketmon/system.yaml").read_text())
    platform = {s["url"].split("//")[1].split("/")[0] for s in system["services"]}
    for job in prom["scrape_configs"]:
        for target in [t for s in job["static_configs"] for t in s["targets"]]:
            host, port = target.rsplit(":", 1)
            if job["job_name"] == "platform-services":
                assert target in platform, f"{target} is scraped but not probed"
                continue
            assert host in services, f"job {job['job_name']}: no compose service {host}"
            assert int(port) in _listen_ports(host, services[host]), \
                f"job {job['job_name']}: {host} does not listen on {port}"
    am = prom["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == ["alertmanager:9093"]


def test_alertmanager_and_grafana_point_at_compose_services(compose_model):
    services = compose_model["services"]
    am = yaml.safe_load((REPO / "deploy/alertmanager/alertmanager.yml").read_text())
    secret_files = {s["target"] for s in services["alertmanager"].get("secrets", [])}
    for receiver in am["receivers"]:
        for hook in receiver["webhook_configs"]:
            assert hook["url"] == "http://receiver:10190/api/v1/alertmanager"
            assert hook["http_config"]["authorization"]["credentials_file"] in secret_files
    grafana = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/datasources/ticketmon.yml").read_text())
    for ds in grafana["datasources"]:
        host, port = ds["url"].split("//")[1].rsplit(":", 1)
        assert int(port) in _listen_ports(host, services[host]), ds["url"]
    provider = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/dashboards/ticketmon.yml").read_text())
    mounted = {v["target"]: v["source"] for v in services["grafana"]["volumes"]}
    path = provider["providers"][0]["options"]["path"]
    assert Path(mounted[path]) == REPO / "dashboards"


def test_dockerfile_pins_its_base_and_copies_what_exists():
    lines = (REPO / "Dockerfile").read_text().splitlines()
    bases = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert bases and all(":" in b and not b.endswith(":latest") for b in bases)
    for line in lines:
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                assert (REPO / source).exists(), f"Dockerfile copies missing {source}"
    assert any(line.startswith("USER ") and "root" not in line for line in lines)


def _guard_of(settings):
    """The /metrics guard settings of a component, wherever its model keeps them."""
    for key in ("metrics_guard", "metrics", "http"):
        guard = getattr(settings, key, None)
        if guard is not None and hasattr(guard, "basic_auth_username"):
            return guard
    raise AssertionError(f"{type(settings).__name__} has no /metrics guard")


def test_every_ticketmon_metrics_needs_the_password_prometheus_sends(compose_model):
    services = compose_model["services"]
    prom = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    prom_secrets = {s["target"] for s in services["prometheus"].get("secrets", [])}
    guarded = set()
    for job in prom["scrape_configs"]:
        if not job["job_name"].startswith("ticketmon-"):
            continue
        auth = job.get("basic_auth")
        assert auth and auth.get("password_file"), f"{job['job_name']} scrapes without auth"
        assert "password" not in auth, "no password inline in prometheus.yml"
        assert auth["password_file"] in prom_secrets, \
            f"{job['job_name']}: {auth['password_file']} is not a secret of prometheus"
        for target in [t for s in job["static_configs"] for t in s["targets"]]:
            host = target.rsplit(":", 1)[0]
            model, path, env = _config_of(services[host])
            env.pop("TICKETMON_CONFIG", None)
            guard = _guard_of(config.load(_model(model), path, environ=env))
            assert guard.basic_auth_username == auth["username"], host
            assert str(guard.basic_auth_password_file) == auth["password_file"], host
            targets = {s["target"] for s in services[host].get("secrets", [])}
            assert auth["password_file"] in targets, f"{host} lacks the metrics secret"
            guarded.add(host)
    assert guarded == {"receiver", "receiver-stream", "receiver-worker", "business-exporter",
                       "system-exporter", "blockchain-exporter", "fraud", "anomaly"}
