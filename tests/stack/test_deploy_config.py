"""The main job's rewrite of compose addresses to loopback ones keeps everything else."""

import yaml

from ticketmon.stack import deploy_config

PROM = """
global: {scrape_interval: 15s, evaluation_interval: 15s}
rule_files: [../../rules/*.yml]
remote_write: [{url: "http://mimir:9009/api/v1/push"}]
alerting:
  alertmanagers: [{static_configs: [{targets: ["alertmanager:9093"]}]}]
scrape_configs:
  - job_name: ticketmon-receiver
    scrape_interval: 30s
    static_configs: [{targets: ["receiver:10190"], labels: {tier: ops}}]
  - job_name: node
    static_configs: [{targets: ["node-exporter:9100"]}]
"""

AM = """
route: {receiver: ticketmon}
receivers:
  - name: ticketmon
    webhook_configs:
      - url: http://receiver:10190/api/v1/alertmanager
        http_config: {authorization: {credentials: changeme}}
"""


def test_prometheus_targets_rules_and_intervals(tmp_path):
    src = tmp_path / "deploy" / "prometheus" / "prometheus.yml"
    src.parent.mkdir(parents=True)
    src.write_text(PROM)
    addresses = {"receiver": "127.0.0.1:5000", "alertmanager": "127.0.0.1:5001"}
    cfg = deploy_config.prometheus_config(src, addresses, interval="2s")
    assert cfg["global"]["scrape_interval"] == "2s"
    assert cfg["rule_files"] == [str(tmp_path / "rules" / "*.yml")]
    assert "remote_write" not in cfg
    assert cfg["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "127.0.0.1:5001"
    ]
    # node-exporter has no address in this run: its job is dropped, the labels of others kept
    assert [j["job_name"] for j in cfg["scrape_configs"]] == ["ticketmon-receiver"]
    job = cfg["scrape_configs"][0]
    assert job["static_configs"] == [{"targets": ["127.0.0.1:5000"], "labels": {"tier": "ops"}}]
    assert "scrape_interval" not in job


def test_alertmanager_webhook_and_credentials(tmp_path):
    src = tmp_path / "alertmanager.yml"
    src.write_text(AM)
    token = tmp_path / "token"
    cfg = deploy_config.alertmanager_config(src, {"receiver": "127.0.0.1:5000"}, token)
    hook = cfg["receivers"][0]["webhook_configs"][0]
    assert hook["url"] == "http://127.0.0.1:5000/api/v1/alertmanager"
    assert hook["http_config"]["authorization"] == {"credentials_file": str(token)}
    out = deploy_config.write_yaml(cfg, tmp_path / "out.yml")
    assert yaml.safe_load(out.read_text()) == cfg


def test_longest_group_wait_walks_the_route_tree_with_inherited_defaults():
    assert deploy_config.longest_group_wait(yaml.safe_load(AM)) == 30  # Alertmanager's
    tree = {"route": {"group_wait": "10s", "routes": [
        {"matchers": ["a=1"], "routes": [{"group_wait": "2m"}]}, {"group_wait": "1m30s"}]}}
    assert deploy_config.longest_group_wait(tree) == 120


def test_shipped_new_alert_grace_exceeds_every_group_wait():
    """deploy/: the worker's new_alert_grace must outlast group_wait, or the reconciler
    opens a new group's incident before its first post (the main job derives its own)."""
    from ticketmon.core.durations import parse_duration
    from ticketmon.stack.up import DEPLOY

    am = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    worker = yaml.safe_load((DEPLOY / "ticketmon" / "worker.yaml").read_text())
    assert parse_duration(worker["reconcile"]["new_alert_grace"]) > (
        deploy_config.longest_group_wait(am))
