"""Turn the compose-oriented deploy/ configs into loopback ones for the main job.

deploy/prometheus/prometheus.yml and deploy/alertmanager/alertmanager.yml name
components by their compose host names (`receiver:10190`). The main job runs the same
jobs, rules, routes and receivers; only addresses and file paths are rewritten, so what
runs locally is what ships.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml


def _map_target(target: str, addresses: dict[str, str]) -> str | None:
    host = target.rsplit(":", 1)[0]
    return addresses.get(host)


def prometheus_config(
    source: Path,
    addresses: dict[str, str],
    interval: str | None = None,
) -> dict[str, Any]:
    """Rewrite scrape and Alertmanager targets to loopback addresses; rule paths to absolute.

    `addresses` maps a compose host name to `127.0.0.1:PORT`; a target whose host has
    no address is dropped (that component is not part of this run), and so is a job left
    with no target. The jobs' basic auth (a compose secret file) is dropped too: the main
    job's components serve /metrics without a password, on 127.0.0.1 only.
    """
    cfg = yaml.safe_load(source.read_text())
    base = source.parent
    if interval:
        cfg.setdefault("global", {}).update(scrape_interval=interval, evaluation_interval=interval)
    cfg.pop("remote_write", None)
    cfg["rule_files"] = [str((base / p).resolve()) for p in cfg.get("rule_files", [])]
    jobs = []
    for job in cfg.get("scrape_configs", []):
        statics = []
        for static in job.get("static_configs", []):
            targets = [t for t in (_map_target(t, addresses) for t in static["targets"]) if t]
            if targets:
                statics.append({**static, "targets": targets})
        if statics:
            if interval:
                job.pop("scrape_interval", None)
                job.pop("scrape_timeout", None)
            job.pop("basic_auth", None)
            jobs.append({**job, "static_configs": statics})
    cfg["scrape_configs"] = jobs
    for am in cfg.get("alerting", {}).get("alertmanagers", []):
        for static in am.get("static_configs", []):
            static["targets"] = [t for t in (_map_target(t, addresses) for t in static["targets"])
                                 if t]
    return cfg


def alertmanager_config(
    source: Path, addresses: dict[str, str], credentials_file: Path
) -> dict[str, Any]:
    """Point webhook receivers at loopback addresses and at the run's own credentials."""
    cfg = yaml.safe_load(source.read_text())
    for receiver in cfg.get("receivers", []):
        for hook in receiver.get("webhook_configs", []):
            parts = urlsplit(hook["url"])
            new = addresses.get(parts.hostname or "")
            if new:
                hook["url"] = urlunsplit(parts._replace(netloc=new))
            auth = hook.get("http_config", {}).get("authorization")
            if auth is not None:
                auth.pop("credentials", None)
                auth["credentials_file"] = str(credentials_file)
    return cfg


def longest_group_wait(cfg: dict[str, Any]) -> float:
    """Seconds of the longest group_wait in an Alertmanager config's route tree (its
    default, 30s, where the root sets none). The worker's reconcile grace must exceed it,
    so a new group's first post, not the reconciler, opens its incident."""
    from ticketmon.core.durations import parse_duration

    longest, stack = 0.0, [(cfg.get("route") or {}, 30.0)]
    while stack:
        route, inherited = stack.pop()
        wait = parse_duration(route["group_wait"]) if "group_wait" in route else inherited
        longest = max(longest, wait)
        stack += [(child, wait) for child in route.get("routes") or []]
    return longest


def write_yaml(data: dict, path: Path) -> Path:
    """Written 0600 from creation: the main job's configs hold its tokens and secrets."""
    from ticketmon.stack.state import write_private

    return write_private(path, yaml.safe_dump(data, sort_keys=False))
