"""The main job's copies of rules/ with shorter windows, for alerts a demo cannot wait for.

demo_rules.yaml (beside this module) names the alerts and their demo `for` and expression
changes; everything else is copied as it is. A change that no longer applies (the alert
was renamed, the window text changed) stops the stack with the alert's name, so the
demo never silently runs production windows it claims to have shortened.
"""

from __future__ import annotations

import glob
from pathlib import Path

import yaml

from ticketmon.core.config import ConfigError

DEMO_RULES = Path(__file__).with_name("demo_rules.yaml")


def load_overrides(path: Path) -> dict[str, dict]:
    doc = yaml.safe_load(path.read_text()) or {}
    alerts = doc.get("alerts")
    if not isinstance(alerts, dict) or not all(isinstance(v, dict) for v in alerts.values()):
        raise ConfigError(f"{path}: `alerts` must map alert names to {{for, replace}}")
    for name, change in alerts.items():
        unknown = set(change) - {"for", "replace"}
        if unknown:
            raise ConfigError(f"{path}: alert {name}: unknown key(s) {sorted(unknown)}")
    return alerts


def _apply(rule: dict, change: dict, where: str) -> None:
    expr = str(rule["expr"])
    for old, new in (change.get("replace") or {}).items():
        if old not in expr:
            raise ConfigError(f"{where}: {old!r} is not in the expression any more")
        expr = expr.replace(old, new)
    rule["expr"] = expr
    if "for" in change:
        rule["for"] = change["for"]


def write_demo_rules(rule_globs: list[str], overrides_file: Path, outdir: Path) -> list[str]:
    """Rewrite the rule files `rule_globs` match into `outdir`; the globs to load instead."""
    overrides = load_overrides(overrides_file)
    applied: set[str] = set()
    written = []
    for index, pattern in enumerate(rule_globs):
        target = outdir / str(index)  # one directory per glob: file names may repeat
        target.mkdir(parents=True, exist_ok=True)
        for source in sorted(glob.glob(pattern)):
            doc = yaml.safe_load(Path(source).read_text()) or {}
            for group in doc.get("groups", []):
                for rule in group.get("rules", []):
                    name = rule.get("alert")
                    if name in overrides:
                        _apply(rule, overrides[name], f"{overrides_file}: alert {name}")
                        applied.add(name)
            (target / Path(source).name).write_text(yaml.safe_dump(doc, sort_keys=False))
        written.append(str(target / "*.yml"))
    missing = sorted(set(overrides) - applied)
    if missing:
        raise ConfigError(f"{overrides_file}: no rule file has alert(s) {missing}")
    return written
