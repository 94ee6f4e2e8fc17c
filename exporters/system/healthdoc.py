"""Reading the usual health JSON: a status and a map (or list) of dependencies.

Accepted shapes: {"status": "ok"|"healthy"|"pass"|"up"|"degraded"|"warn"|
"unhealthy"|"fail"|"down", "dependencies"|"checks"|"details"|"components": {name:
"up" | {"status": ...}} or [{"name": ..., "status": ...}]}, and a bare "OK" body.
Anything else is a bad body: the probe failed, the exporter carries on.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

STATES = ("healthy", "degraded", "unhealthy")  # an unreachable service is unhealthy
_STATUS = {
    "ok": "healthy", "healthy": "healthy", "pass": "healthy", "up": "healthy",
    "green": "healthy", "serving": "healthy",
    "degraded": "degraded", "warn": "degraded", "warning": "degraded", "yellow": "degraded",
    "unhealthy": "unhealthy", "fail": "unhealthy", "failed": "unhealthy", "down": "unhealthy",
    "error": "unhealthy", "critical": "unhealthy", "red": "unhealthy",
    "not_serving": "unhealthy", "out_of_service": "unhealthy",
}
DEPENDENCY_KEYS = ("dependencies", "checks", "details", "components")
MAX_DEPENDENCIES = 50
_NAME = re.compile(r"[^A-Za-z0-9_.:/-]")


class BadBody(ValueError):
    """The body is not a health document we understand."""


@dataclass
class HealthDoc:
    state: str
    dependencies: dict[str, bool] = field(default_factory=dict)


def status_of(value: object) -> str | None:
    if isinstance(value, bool):
        return "healthy" if value else "unhealthy"
    if isinstance(value, str):
        return _STATUS.get(value.strip().lower().replace(" ", "_"))
    if isinstance(value, dict):
        for key in ("status", "state", "health"):
            if key in value:
                return status_of(value[key])
    return None


def _dependency_items(raw: object) -> list[tuple[str, object]]:
    if isinstance(raw, dict):
        return list(raw.items())
    if isinstance(raw, list):
        items = []
        for entry in raw:
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise BadBody("dependency list entries need a name")
            items.append((entry["name"], entry))
        return items
    raise BadBody("dependencies must be an object or a list")


def parse(body: bytes) -> HealthDoc:
    text = body.decode("utf-8", errors="strict").strip() if body else ""
    if text.lower() in ("ok", "healthy"):
        return HealthDoc("healthy")
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise BadBody("not JSON") from exc
    if not isinstance(doc, dict):
        raise BadBody("not a JSON object")
    state = status_of(doc)
    if state is None:
        raise BadBody("no recognised status")
    deps: dict[str, bool] = {}
    for key in DEPENDENCY_KEYS:
        if key in doc:
            for name, value in _dependency_items(doc[key])[:MAX_DEPENDENCIES]:
                dep_state = status_of(value)
                if dep_state is None:
                    raise BadBody(f"dependency {str(name)[:50]!r} has no recognised status")
                deps[_NAME.sub("_", str(name))[:100]] = dep_state != "unhealthy"
            break
    return HealthDoc(state, deps)
