"""Checks a Grafana dashboard JSON must pass without a Grafana server.

Two layers: the grafana-foundation-sdk's typed model of the dashboard schema (a key
the model drops on a round trip is misspelt or invented), and our own rules: unique
uids and panel ids, panels on the grid without overlap, every target with a datasource
and a query, units, descriptions and ascending thresholds, datasources that exist.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import yaml

from ticketmon.dashboards import PROVISIONING_DIR

UNITS = {"short", "none", "percentunit", "s", "ops", "reqps", "bytes"}
GRID_COLUMNS = 24
MAX_UID_LENGTH = 40  # Grafana refuses longer uids


def provisioned_datasources(provisioning: Path = PROVISIONING_DIR) -> dict[str, str]:
    """uid -> type of every datasource the provisioning files declare."""
    out: dict[str, str] = {}
    for path in sorted((provisioning / "datasources").glob("*.y*ml")):
        for ds in (yaml.safe_load(path.read_text()) or {}).get("datasources", []):
            out[ds["uid"]] = ds["type"]
    return out


def all_panels(dashboard: dict) -> Iterator[dict]:
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def dropped_keys(original, round_trip, path: str = "") -> list[str]:
    """Key paths present in `original` but missing from `round_trip`."""
    if isinstance(original, dict) and isinstance(round_trip, dict):
        out = []
        for key, value in original.items():
            if key not in round_trip:
                out.append(f"{path}.{key}")
            else:
                out += dropped_keys(value, round_trip[key], f"{path}.{key}")
        return out
    if isinstance(original, list) and isinstance(round_trip, list):
        if len(original) != len(round_trip):
            return [f"{path}: {len(original)} items became {len(round_trip)}"]
        return [k for i, (a, b) in enumerate(zip(original, round_trip, strict=True))
                for k in dropped_keys(a, b, f"{path}[{i}]")]
    return []


def schema_problems(dashboard: dict) -> list[str]:
    """Keys the Grafana 11.6 dashboard model does not know, via the foundation SDK."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder
    from grafana_foundation_sdk.models.dashboard import Dashboard

    try:
        model = Dashboard.from_json(dashboard)
    except (KeyError, TypeError, ValueError) as exc:
        return [f"not a Grafana dashboard: {exc!r}"]
    round_trip = json.loads(json.dumps(model, cls=JSONEncoder))
    return [f"unknown key {k} (dropped by the Grafana schema)"
            for k in dropped_keys(dashboard, round_trip)
            if not k.startswith(_datasource_annotation_targets(dashboard))]


def _datasource_annotation_targets(dashboard: dict) -> tuple[str, ...]:
    """Key paths of annotation queries a datasource plugin answers (Infinity): Grafana
    keeps the plugin's own query model in `target`, which the schema still types as
    the built-in annotations' {limit, matchAny, tags, type} (a TODO in Grafana's
    dashboard kind), so their keys are the plugin's to check, not the schema's."""
    return tuple(f".annotations.list[{i}].target."
                 for i, a in enumerate(dashboard.get("annotations", {}).get("list", []))
                 if a.get("datasource", {}).get("type") not in (None, "grafana", "prometheus"))


def _overlaps(a: dict, b: dict) -> bool:
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


def _grid_problems(panels: list[dict]) -> list[str]:
    problems = []
    placed: list[tuple[str, dict]] = []
    for panel in panels:
        name = f"panel {panel.get('id')} {panel.get('title')!r}"
        pos = panel.get("gridPos") or {}
        if not all(isinstance(pos.get(k), int) for k in ("x", "y", "w", "h")):
            problems.append(f"{name}: gridPos needs integer x, y, w, h")
            continue
        if pos["x"] < 0 or pos["w"] < 1 or pos["h"] < 1 or pos["x"] + pos["w"] > GRID_COLUMNS:
            problems.append(f"{name}: gridPos {pos} is off the {GRID_COLUMNS}-column grid")
        for other_name, other in placed:
            if _overlaps(pos, other):
                problems.append(f"{name} overlaps {other_name}")
        placed.append((name, pos))
    return problems


def _target_problems(name: str, panel: dict, datasources: dict[str, str]) -> list[str]:
    problems = []
    targets = panel.get("targets") or []
    if not targets:
        problems.append(f"{name}: no targets")
    ref_ids = [t.get("refId") for t in targets]
    if len(set(ref_ids)) != len(ref_ids) or None in ref_ids:
        problems.append(f"{name}: targets need unique refIds, got {ref_ids}")
    for target in targets:
        ds = target.get("datasource") or {}
        kind, uid = ds.get("type"), ds.get("uid")
        if kind == "prometheus":
            if uid != "${datasource}":
                problems.append(f"{name}: Prometheus targets use the $datasource variable, "
                                f"not {uid!r}")
            if not str(target.get("expr", "")).strip():
                problems.append(f"{name}: target {target.get('refId')} has no expr")
        elif kind and uid in datasources and datasources[uid] == kind:
            if not (target.get("expr") or target.get("url")):
                problems.append(f"{name}: target {target.get('refId')} has no query")
        else:
            problems.append(f"{name}: target datasource {ds} is not provisioned")
    return problems


def _field_problems(name: str, panel: dict) -> list[str]:
    problems = []
    defaults = (panel.get("fieldConfig") or {}).get("defaults") or {}
    unit = defaults.get("unit")
    if not unit or not (unit in UNITS or unit.startswith("suffix:")):
        problems.append(f"{name}: unit {unit!r} is not one of {sorted(UNITS)} or suffix:…")
    steps = (defaults.get("thresholds") or {}).get("steps") or []
    values = [s.get("value") for s in steps[1:]]
    if steps and steps[0].get("value") is not None:
        problems.append(f"{name}: the first threshold step is the base (value null)")
    if any(v is None for v in values) or values != sorted(values):
        problems.append(f"{name}: threshold values must rise: {values}")
    return problems


def _variable_problems(dashboard: dict, datasources: dict[str, str]) -> list[str]:
    variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
    ds_var = variables.get("datasource")
    if not ds_var or ds_var.get("type") != "datasource" or ds_var.get("query") != "prometheus":
        return ["the Prometheus datasource must be a template variable named datasource"]
    default = (ds_var.get("current") or {}).get("value")
    if datasources.get(default) != "prometheus":
        return [f"the datasource variable defaults to {default!r}, not a provisioned "
                "Prometheus uid"]
    return []


def validate(dashboard: dict, datasources: dict[str, str] | None = None) -> list[str]:
    """Problems of one dashboard; [] when it passes."""
    datasources = provisioned_datasources() if datasources is None else datasources
    if not isinstance(dashboard, dict):
        return ["a dashboard is a JSON object"]
    nested = [p for p in dashboard.get("panels", []) if isinstance(p, dict)]
    if (not isinstance(dashboard.get("panels", []), list)
            or len(nested) != len(dashboard.get("panels", []))
            or any(not isinstance(p.get("panels", []), list) for p in nested)):
        return ["panels must be a list of panel objects"]
    problems = schema_problems(dashboard)
    uid = dashboard.get("uid") or ""
    if not uid or len(uid) > MAX_UID_LENGTH:
        problems.append(f"uid {uid!r} must be set and at most {MAX_UID_LENGTH} characters")
    for key in ("title", "description"):
        if not str(dashboard.get(key, "")).strip():
            problems.append(f"dashboard {key} is empty")
    problems += _variable_problems(dashboard, datasources)
    panels = list(all_panels(dashboard))
    ids = [p.get("id") for p in panels]
    dupes = sorted({i for i in ids if ids.count(i) > 1 or i is None}, key=str)
    if dupes:
        problems.append(f"panel ids must be unique and set, repeated/missing: {dupes}")
    problems += _grid_problems(panels)
    for annotation in dashboard.get("annotations", {}).get("list", []):
        ds = annotation.get("datasource") or {}
        if ds.get("type") not in (None, "grafana", "prometheus") and \
                datasources.get(ds.get("uid")) != ds.get("type"):
            problems.append(f"annotation {annotation.get('name')!r}: datasource {ds} "
                            "is not provisioned")
    for panel in panels:
        if panel.get("type") == "row":
            continue
        name = f"panel {panel.get('id')} {panel.get('title')!r}"
        if not str(panel.get("title", "")).strip():
            problems.append(f"{name}: no title")
        if not str(panel.get("description", "")).strip():
            problems.append(f"{name}: no description")
        problems += _target_problems(name, panel, datasources)
        problems += _field_problems(name, panel)
    return problems


def validate_all(dashboards: dict[str, dict]) -> list[str]:
    """Every dashboard's problems, prefixed with its file name, plus cross-dashboard ones."""
    datasources = provisioned_datasources()
    problems = [f"{name}: {p}" for name, board in sorted(dashboards.items())
                for p in validate(board, datasources)]
    for key in ("uid", "title"):
        seen: dict[str, str] = {}
        for name, board in sorted(dashboards.items()):
            value = board.get(key)
            if value in seen:
                problems.append(f"{name}: {key} {value!r} is also used by {seen[value]}")
            seen[value] = name
    return problems
