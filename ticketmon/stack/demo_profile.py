"""The demo profile (deploy/demo/profile.yaml): shorter windows for `ticketmon stack up`.

A scenario must page within a few minutes and resolve soon after its undo, but some
shipped rules wait 10-15 minutes on purpose. The profile names those alerts and gives
them a demo `for` and demo windows; this module applies it to copies of the rule files
and of the Alertmanager configuration, so the repository's files stay what ships.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, model_validator

from ticketmon.core.config import Settings
from ticketmon.core.durations import Duration

PROFILE = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "profile.yaml"


class AlertOverride(Settings):
    for_: Duration | None = Field(default=None, alias="for")
    replace: dict[str, str] = {}


class AlertmanagerOverride(Settings):
    group_interval: Duration | None = None


class DemoProfile(Settings):
    alertmanager: AlertmanagerOverride = AlertmanagerOverride()
    alerts: dict[str, AlertOverride] = {}

    @model_validator(mode="after")
    def _something(self) -> DemoProfile:
        for name, override in self.alerts.items():
            if override.for_ is None and not override.replace:
                raise ValueError(f"alerts.{name}: give `for` or `replace`")
        return self


def load(path: Path = PROFILE) -> DemoProfile:
    return DemoProfile.model_validate(yaml.safe_load(path.read_text()) or {})


def _seconds(value: float) -> str:
    return f"{int(value)}s" if float(value).is_integer() else f"{value}s"


def apply_to_rules(profile: DemoProfile, doc: dict, source: str) -> tuple[dict, set[str]]:
    """One rule file with the profile applied; also the alert names it changed. A
    `replace` whose text is not in the shipped expression is an error: the profile
    would silently stop shortening anything."""
    changed: set[str] = set()
    for group in doc.get("groups", []):
        for rule in group.get("rules", []):
            override = profile.alerts.get(rule.get("alert", ""))
            if override is None:
                continue
            for old, new in override.replace.items():
                if old not in rule["expr"]:
                    raise ValueError(f"{source}: {rule['alert']}: demo profile replaces "
                                     f"{old!r}, which its expression does not contain")
                rule["expr"] = rule["expr"].replace(old, new)
            if override.for_ is not None:
                rule["for"] = _seconds(override.for_)
            changed.add(rule["alert"])
    return doc, changed


def write_rules(profile: DemoProfile, sources: list[Path], out_dir: Path) -> list[Path]:
    """Copies of the rule files with the profile applied, one per source, in `out_dir`.
    Every alert the profile names must be found in some file."""
    out_dir.mkdir(mode=0o700, exist_ok=True)
    written, found = [], set()
    for source in sources:
        doc, changed = apply_to_rules(profile, yaml.safe_load(source.read_text()), str(source))
        found |= changed
        target = out_dir / f"{source.parent.name}-{source.name}"
        target.write_text(yaml.safe_dump(doc, sort_keys=False))
        written.append(target)
    missing = set(profile.alerts) - found
    if missing:
        raise ValueError(f"demo profile names alerts no rule file has: {sorted(missing)}")
    return written


def apply_to_alertmanager(profile: DemoProfile, cfg: dict[str, Any]) -> dict[str, Any]:
    """The route tree with the demo's group_interval on every route that sets one."""
    interval = profile.alertmanager.group_interval
    if interval is None:
        return cfg

    def walk(route: dict) -> None:
        if "group_interval" in route:
            route["group_interval"] = _seconds(interval)
        for child in route.get("routes", []):
            walk(child)

    walk(cfg["route"])
    return cfg
