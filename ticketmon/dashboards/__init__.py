"""Dashboards as code: jsonnet/ built into dashboards/*.json, and checks on the result."""

from ticketmon.rules import REPO

JSONNET_DIR = REPO / "jsonnet"
DASHBOARDS_DIR = REPO / "dashboards"
PROVISIONING_DIR = REPO / "deploy" / "grafana" / "provisioning"
