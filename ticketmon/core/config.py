"""One YAML file plus TICKETMON_* environment overrides, validated by pydantic.

Every component declares its settings as a pydantic model with safe defaults; this
module loads the file, lays the environment on top and turns validation failures into
one error that names each bad key, so a typo fails at start-up, not at 3 a.m.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from ticketmon.core import redact

ENV_PREFIX = "TICKETMON_"
CONFIG_ENV = "TICKETMON_CONFIG"

M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """A configuration problem, with a message that names the bad key."""


class Settings(BaseModel):
    """Base for settings models: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


def read_yaml(path: str | Path | None) -> dict[str, Any]:
    """Read a YAML mapping; an empty file is an empty mapping."""
    if path is None:
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping")
    return data


def _env_value(raw: str) -> Any:
    """Environment values are strings; JSON lists and objects are accepted too."""
    if raw[:1] in "[{":
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def env_overrides(model: type[BaseModel], environ: dict[str, str] | None = None) -> dict:
    """Map TICKETMON_A__B=v to {"a": {"b": v}} for keys the model knows.

    Only top-level field names of the model are taken, so one environment can hold
    the overrides of several components without each rejecting the others'.
    """
    environ = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV:
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        if path[0] not in model.model_fields:
            continue
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = _env_value(raw)
    return out


def merge(base: dict, top: dict) -> dict:
    """Deep-merge two mappings, `top` winning."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def format_errors(exc: ValidationError, source: str) -> str:
    """One line for one problem (what a newcomer meets first), one line per key beyond."""
    problems = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        key = ".".join(str(p) for p in err["loc"])
        problems.append(f"{key}: {msg}" if key else msg)
    if len(problems) == 1:
        return f"invalid configuration ({source}): {problems[0]}"
    return "\n".join([f"invalid configuration ({source}):", *(f"  {p}" for p in problems)])


def load(
    model: type[M],
    path: str | Path | None = None,
    environ: dict[str, str] | None = None,
    overrides: dict | None = None,
) -> M:
    """Load settings: defaults < YAML file (path or $TICKETMON_CONFIG) < env < overrides."""
    environ = os.environ if environ is None else environ
    path = path or environ.get(CONFIG_ENV) or None
    data = merge(read_yaml(path), env_overrides(model, environ))
    data = merge(data, overrides or {})
    try:
        settings = model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, str(path or "defaults and environment"))) from exc
    # every configured secret is masked in logs and served error texts, whatever its shape
    redact.remember_model(settings)
    return settings
