"""SLO spec -> multiwindow, multi-burn-rate Prometheus rules (the Sloth approach).

`generate()` is a pure function of the spec, so golden-file tests pin its output and
`ticketmon rules build --check` can prove the committed rules match the spec. Alerts
carry `burn_tier` (page|ticket) and `severity`, which the receiver's escalation routes on.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from ticketmon.core.config import ConfigError, Settings, format_errors, read_yaml
from ticketmon.rules import RULES_DIR
from ticketmon.rules.promql import parse_matchers

SPEC_FILE = RULES_DIR / "slo" / "slos.yaml"
OUTPUT_FILE = RULES_DIR / "generated" / "slos.yml"
RUNBOOK = "https://github.com/ticketmon/ticketmon/blob/main/rules/runbooks/slo.md"

# (tier, severity, alert name, [(long window, short window, burn factor)]), from the
# Google SRE workbook: 2% of a 30-day budget in 1 h, 5% in 6 h page; 10% in 1 d, 10% in 3 d
# open a ticket.
TIERS = [
    ("page", "critical", "ErrorBudgetBurnFast", [("1h", "5m", 14.4), ("6h", "30m", 6)]),
    ("ticket", "warning", "ErrorBudgetBurnSlow", [("1d", "2h", 3), ("3d", "6h", 1)]),
]
RATE_WINDOWS = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
_DURATION = re.compile(r"^[1-9][0-9]*[mhdw]$")
_METRIC = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


class Sli(Settings):
    kind: Literal["availability", "latency"]
    metric: str
    selector: str = ""
    bad: str | None = None  # availability: matchers picking the bad requests
    threshold_seconds: float | None = Field(default=None, gt=0)  # latency

    @model_validator(mode="after")
    def _complete(self) -> Sli:
        if not _METRIC.match(self.metric):
            raise ValueError(f"metric {self.metric!r} is not a valid metric name")
        if self.selector and not parse_matchers(self.selector):
            raise ValueError(f"selector {self.selector!r} has no label matcher like a=\"b\"")
        if self.kind == "availability":
            if not self.bad or not parse_matchers(self.bad):
                raise ValueError("availability SLI needs `bad`, label matchers like code=~\"5..\"")
            if self.threshold_seconds is not None:
                raise ValueError("threshold_seconds is for latency SLIs only")
        elif self.threshold_seconds is None:
            raise ValueError("latency SLI needs threshold_seconds")
        elif self.bad is not None:
            raise ValueError("`bad` is for availability SLIs only")
        return self


class Slo(Settings):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    service: str = Field(min_length=1)
    description: str = Field(min_length=1)
    objective: float = Field(gt=0, lt=1)
    window: str = "30d"
    sli: Sli

    @model_validator(mode="after")
    def _window(self) -> Slo:
        if not _DURATION.match(self.window):
            raise ValueError(f"window {self.window!r} is not a duration like 30d")
        return self


class SloSpec(Settings):
    slos: list[Slo] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> SloSpec:
        names = [s.name for s in self.slos]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"SLO names must be unique: {dupes}")
        return self


def load_spec(path: str | Path | None = None) -> SloSpec:
    path = Path(path or SPEC_FILE)
    try:
        return SloSpec.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, str(path))) from exc


def _num(value: float) -> str:
    return repr(round(value, 10))


def _selector(*parts: str) -> str:
    inner = ",".join(p for p in parts if p)
    return "{" + inner + "}" if inner else ""


def _le_matcher(threshold: float) -> str:
    text = _num(threshold)
    if float(threshold).is_integer():  # Go clients write le="1", Python ones le="1.0"
        whole = str(int(threshold))
        return f'le=~"{whole}|{whole}\\\\.0"'
    return f'le="{text}"'


def error_ratio_expr(sli: Sli, window: str) -> str:
    """The share of bad events over `window`, for one SLI."""
    if sli.kind == "availability":
        bad = f"sum(rate({sli.metric}{_selector(sli.selector, sli.bad or '')}[{window}]))"
        total = f"sum(rate({sli.metric}{_selector(sli.selector)}[{window}]))"
        return f"(({bad}) or vector(0))\n/\n{total}"
    good = (f"sum(rate({sli.metric}_bucket"
            f"{_selector(sli.selector, _le_matcher(sli.threshold_seconds or 0))}[{window}]))")
    total = f"sum(rate({sli.metric}_count{_selector(sli.selector)}[{window}]))"
    return f"1 - (\n{good}\n/\n{total}\n)"


def _slo_group(slo: Slo) -> dict:
    labels = {"slo": slo.name, "service": slo.service}
    me = f'{{slo="{slo.name}"}}'
    budget = _num(1 - slo.objective)
    rules: list[dict] = [
        {"record": f"slo:sli_error:ratio_rate{w}", "expr": error_ratio_expr(slo.sli, w),
         "labels": dict(labels)}
        for w in RATE_WINDOWS
    ]
    rules += [
        {"record": f"slo:sli_error:ratio_rate{slo.window}",
         "expr": (f"sum_over_time(slo:sli_error:ratio_rate5m{me}[{slo.window}])\n/\n"
                  f"count_over_time(slo:sli_error:ratio_rate5m{me}[{slo.window}])"),
         "labels": dict(labels)},
        {"record": "slo:objective:ratio", "expr": f"vector({_num(slo.objective)})",
         "labels": dict(labels)},
        {"record": "slo:error_budget:ratio", "expr": f"vector({budget})", "labels": dict(labels)},
        {"record": "slo:error_budget_remaining:ratio",
         "expr": f"1 - slo:sli_error:ratio_rate{slo.window}{me} / {budget}",
         "labels": dict(labels)},
        {"record": "slo:burn_rate:ratio_rate1h",
         "expr": f"slo:sli_error:ratio_rate1h{me} / {budget}", "labels": dict(labels)},
    ]
    for tier, severity, alert, windows in TIERS:
        conditions = [
            f"(\n  slo:sli_error:ratio_rate{long}{me} > ({_num(factor)} * {budget})\n"
            f"  and\n  slo:sli_error:ratio_rate{short}{me} > ({_num(factor)} * {budget})\n)"
            for long, short, factor in windows
        ]
        spent = ", ".join(f"{long}/{short} x{_num(factor)}" for long, short, factor in windows)
        rules.append({
            "alert": alert,
            "expr": "\nor\n".join(conditions),
            "labels": {**labels, "severity": severity, "burn_tier": tier},
            "annotations": {
                "summary": f"{slo.name}: error budget burning too fast ({tier})",
                "description": (f"{slo.description} Objective {_num(slo.objective * 100)}% over "
                                f"{slo.window}; the error ratio exceeds the burn rate of a "
                                f"{tier} tier ({spent})."),
                "runbook_url": f"{RUNBOOK}#{alert.lower()}",
            },
        })
    return {"name": f"slo-{slo.name}", "rules": rules}


def generate(spec: SloSpec) -> dict:
    """The rule file (as a mapping) for every SLO in the spec."""
    return {"groups": [_slo_group(slo) for slo in spec.slos]}


class _BlockDumper(yaml.SafeDumper):
    """Multi-line PromQL as `|` blocks, so the generated file reads like a handwritten one."""


def _str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str)

HEADER = ("# Generated by `ticketmon rules build` from rules/slo/slos.yaml: do not edit.\n"
          "# Change the spec and rebuild; CI fails when this file differs from a fresh build.\n")


def render(rules: dict) -> str:
    return HEADER + yaml.dump(rules, Dumper=_BlockDumper, sort_keys=False, width=100)
