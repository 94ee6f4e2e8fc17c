"""Lint rules, rule unit tests and dashboards against our conventions and the catalog.

Each check returns a list of problems (one line each, naming file and rule) so the CLI
can print them all at once; an empty list means clean.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

import yaml

from ticketmon.core.config import ConfigError
from ticketmon.rules import REPO
from ticketmon.rules.catalog import TARGET_LABELS, Catalog
from ticketmon.rules.promql import regex_alternatives, selectors

SEVERITIES = ("critical", "warning", "info")
REQUIRED_ANNOTATIONS = ("summary", "description", "runbook_url")
RUNBOOK_BASE = "https://github.com/ticketmon/ticketmon/blob/main/"
ALERT_NAME = re.compile(r"^[A-Z][A-Za-z0-9]*$")
RECORD_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_]+:[a-zA-Z0-9_]+$")
# Labels every firing alert must carry: Alertmanager groups, routes and inhibits on them.
ALERT_LABELS = ("severity", "service")
JSONNET_CONFIG = "config.libsonnet"
_LITERALS = re.compile(r"""\"(?:\\.|[^"\\])*"|'[^']*'|`[^`]*`|\{[^}]*\}|\[[^\]]*\]""")
_COMPARISON = re.compile(
    r"(?:==|!=|>=|<=|>|<)\s*(?:bool\s+)?([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)")


def read_doc(path: Path) -> dict:
    """A YAML mapping, or ConfigError naming the file (the CLI prints it, exit 2)."""
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read YAML: {exc}") from exc
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return doc


def _mappings(value, what: str, path: Path) -> list[dict]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConfigError(f"{path}: {what} must be a list of mappings")
    return value


def load_rules(files: Iterable[Path]) -> Iterator[tuple[Path, str, dict]]:
    """(file, group name, rule) for every rule in the files."""
    for path in files:
        for group in _mappings(read_doc(path).get("groups", []), "groups", path):
            for rule in _mappings(group.get("rules", []), "rules", path):
                yield path, group.get("name", "?"), rule


def recorded_names(files: Iterable[Path]) -> set[str]:
    return {r["record"] for _, _, r in load_rules(files) if "record" in r}


def alert_names(files: Iterable[Path]) -> set[str]:
    return {r["alert"] for _, _, r in load_rules(files) if "alert" in r}


def group_dependencies(files: Iterable[Path]) -> set[tuple[str, str]]:
    """(recording group, reading group) wherever a group reads a name only others record."""
    rules = list(load_rules(files))
    recorded_in: dict[str, set[str]] = defaultdict(set)
    for _, group, rule in rules:
        if "record" in rule:
            recorded_in[rule["record"]].add(group)
    return {(recording, group)
            for _, group, rule in rules for sel in selectors(str(rule.get("expr", "")))
            if group not in recorded_in.get(sel.metric, {group})
            for recording in recorded_in[sel.metric]}


def _runbook_problem(url: str, alert: str, repo: Path) -> str | None:
    if not url.startswith(RUNBOOK_BASE) or "#" not in url:
        return f"runbook_url must be {RUNBOOK_BASE}<file>#<anchor>, got {url!r}"
    rel, anchor = url[len(RUNBOOK_BASE):].split("#", 1)
    page = repo / rel
    if not page.is_file():
        return f"runbook_url points at {rel}, which does not exist"
    headings = {line[3:].strip().lower() for line in page.read_text().splitlines()
                if line.startswith("## ")}
    if anchor != alert.lower() or anchor not in headings:
        return f"runbook {rel} has no '## {alert}' section for anchor #{anchor}"
    return None


def lint_rule_style(files: list[Path], repo: Path = REPO) -> list[str]:
    """Names, required labels and annotations, and runbook links of every rule."""
    problems = []
    for path, group, rule in load_rules(files):
        where = f"{path.name}: group {group}"
        if "record" in rule:
            if not RECORD_NAME.match(rule["record"]):
                problems.append(f"{where}: recording rule {rule['record']!r} is not "
                                "named level:metric:operations")
            continue
        name = rule.get("alert", "")
        where = f"{where}: alert {name}"
        if not ALERT_NAME.match(name):
            problems.append(f"{where}: alert names are CamelCase")
        severity = rule.get("labels", {}).get("severity")
        if severity not in SEVERITIES:
            problems.append(f"{where}: label severity must be one of {SEVERITIES}, "
                            f"got {severity!r}")
        annotations = rule.get("annotations", {})
        for key in REQUIRED_ANNOTATIONS:
            if not str(annotations.get(key, "")).strip():
                problems.append(f"{where}: missing annotation {key}")
        if annotations.get("runbook_url"):
            issue = _runbook_problem(annotations["runbook_url"], name, repo)
            if issue:
                problems.append(f"{where}: {issue}")
    return problems


def lint_expr(expr: str, catalog: Catalog, recorded: set[str], where: str) -> list[str]:
    """Dangling metric names, unknown labels and unlisted label values in one expression."""
    problems = []
    for sel in selectors(expr):
        if sel.metric in recorded or sel.metric == "__var__":
            continue
        spec = catalog.resolve(sel.metric)
        if spec is None:
            problems.append(f"{where}: dangling metric name {sel.metric}")
            continue
        known = set(spec.labels) | TARGET_LABELS | {"__name__"}
        if sel.metric.endswith("_bucket") and spec.type == "histogram":
            known.add("le")
        for label, op, value in sel.matchers:
            if label not in known:
                problems.append(f"{where}: {sel.metric} has no label {label!r} in the catalog")
            elif label in spec.values and op in ("=", "=~") and "__var__" not in value:
                literals = [value] if op == "=" else regex_alternatives(value)
                bad = [v for v in literals or [] if v not in spec.values[label]]
                if bad:
                    problems.append(f"{where}: {sel.metric}{{{label}}} value(s) {bad} are not "
                                    f"in the catalog's {spec.values[label]}")
    return problems


def lint_rule_metrics(files: list[Path], catalog: Catalog) -> list[str]:
    recorded = recorded_names(files)
    problems = []
    for path, _group, rule in load_rules(files):
        name = rule.get("alert") or rule.get("record")
        problems += lint_expr(str(rule.get("expr", "")), catalog, recorded,
                              f"{path.name}: {name}")
    return problems


def test_case_counts(test_files: list[Path]) -> dict[str, int]:
    """How many unit-test cases there are: firing and quiet alert cases, PromQL cases."""
    counts = {"firing": 0, "quiet": 0, "promql": 0}
    for test_file in test_files:
        for test in read_doc(test_file).get("tests", []):
            for case in test.get("alert_rule_test", []):
                counts["firing" if case.get("exp_alerts") else "quiet"] += 1
            counts["promql"] += len(test.get("promql_expr_test", []))
    return counts


def lint_tests(rule_files: list[Path], test_files: list[Path]) -> list[str]:
    """Every alert has a firing and a non-firing unit test; tests name only real alerts.

    promtool passes a test that expects no alert from a rule that does not exist, so a
    misspelt alert name would silently test nothing: that is caught here. promtool also
    evaluates a test's groups in random order unless `group_eval_order` names them; an
    alert that reads a recording rule from another group then sees last step's value or,
    on a long evaluation interval, none, and the test passes or fails by chance.
    """
    problems = []
    firing: dict[str, int] = defaultdict(int)
    quiet: dict[str, int] = defaultdict(int)
    for test_file in test_files:
        doc = read_doc(test_file)
        loaded: set[Path] = set()
        for pattern in doc.get("rule_files", []):
            loaded.update(test_file.parent.glob(pattern) if any(c in pattern for c in "*?[")
                          else [test_file.parent / pattern])
        loaded = {p.resolve() for p in loaded if p.exists()}
        known = alert_names(loaded)
        order = doc.get("group_eval_order") or []
        for recording, reading in sorted(group_dependencies(loaded)):
            if not (recording in order and reading in order
                    and order.index(recording) < order.index(reading)):
                problems.append(f"{test_file.name}: group_eval_order must put {recording} "
                                f"before {reading}, which reads its recorded names: promtool "
                                "evaluates groups in random order otherwise")
        for test in doc.get("tests", []):
            for case in test.get("alert_rule_test", []):
                name = case.get("alertname")
                where = f"{test_file.name}: {test.get('name', 'test')}"
                if name not in known:
                    problems.append(f"{where}: alert {name!r} does not exist in the rule files "
                                    "this test loads")
                    continue
                expected = case.get("exp_alerts") or []
                if expected:
                    firing[name] += 1
                    for alert in expected:
                        missing = [k for k in ALERT_LABELS if k not in alert.get("exp_labels", {})]
                        if missing:
                            problems.append(f"{where}: firing {name} lacks label(s) {missing}")
                else:
                    quiet[name] += 1
    for name in sorted(alert_names(rule_files)):
        if not firing[name]:
            problems.append(f"alert {name} has no unit test in which it fires")
        if not quiet[name]:
            problems.append(f"alert {name} has no unit test in which it stays quiet")
    return problems


def dashboard_exprs(dashboard: dict) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target and templating query of a dashboard."""
    def panels(items):
        for panel in items or []:
            yield panel
            yield from panels(panel.get("panels"))

    for panel in panels(dashboard.get("panels")):
        for target in panel.get("targets") or []:
            if target.get("expr"):
                yield f"panel {panel.get('id')} {panel.get('title')!r}", target["expr"]
    for var in dashboard.get("templating", {}).get("list", []):
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if var.get("type") == "query" and isinstance(query, str):
            match = re.fullmatch(r"\s*label_values\((.*),\s*[A-Za-z_]\w*\s*\)\s*", query)
            if match:
                yield f"variable {var.get('name')}", match.group(1)
            elif not query.startswith(("label_names(", "metrics(")):
                yield f"variable {var.get('name')}", query


def lint_dashboards(files: list[Path], catalog: Catalog, recorded: set[str]) -> list[str]:
    problems = []
    for path in files:
        try:
            dashboard = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            problems.append(f"{path.name}: not valid JSON: {exc}")
            continue
        if not isinstance(dashboard, dict):
            problems.append(f"{path.name}: a dashboard is a JSON object")
            continue
        for where, expr in dashboard_exprs(dashboard):
            problems += lint_expr(expr, catalog, recorded, f"{path.name}: {where}")
    return problems


def compared_numbers(expr: str) -> list[float]:
    """Numbers the expression compares against (`x > 0.1`), in order of appearance."""
    return [float(n) for n in _COMPARISON.findall(_LITERALS.sub(" ", expr))]


def dashboard_config(jsonnet_dir: Path) -> dict:
    """The mixin's _config as the dashboards see it; ConfigError if it does not evaluate."""
    import _jsonnet

    snippet = f'(import "{JSONNET_CONFIG}")._config'
    try:
        return json.loads(_jsonnet.evaluate_snippet("lint", snippet, jpathdir=[str(jsonnet_dir)]))
    except RuntimeError as exc:
        raise ConfigError(f"{jsonnet_dir / JSONNET_CONFIG}: does not evaluate: {exc}") from exc


def lint_thresholds(files: list[Path], jsonnet_dir: Path) -> list[str]:
    """Dashboard thresholds (_config.thresholds) equal the alerts' thresholds.

    Panels turn red at _config.thresholds.X; the alert _config.thresholdAlerts.X names
    must fire at the same value, its first comparison against a number. The rule YAML
    stays the alerts' source (promtool tests read it); this ties the two copies.
    """
    config = dashboard_config(jsonnet_dir)
    where = f"{JSONNET_CONFIG}: _config"
    thresholds = config.get("thresholds", {})
    mirrors = config.get("thresholdAlerts", {})
    exprs = {r["alert"]: (path, str(r.get("expr", "")))
             for path, _, r in load_rules(files) if "alert" in r}
    problems = [f"{where}.thresholdAlerts.{key}: no such threshold in _config.thresholds"
                for key in sorted(set(mirrors) - set(thresholds))]
    for key, value in sorted(thresholds.items()):
        if key not in mirrors:
            problems.append(f"{where}.thresholds.{key}: name the alert it mirrors in "
                            f"_config.thresholdAlerts.{key} (null if only panels use it)")
            continue
        alert = mirrors[key]
        if alert is None:
            continue
        if alert not in exprs:
            problems.append(f"{where}.thresholdAlerts.{key}: alert {alert!r} is in no rule file")
            continue
        path, expr = exprs[alert]
        numbers = compared_numbers(expr)
        if not numbers:
            problems.append(f"{path.name}: alert {alert} compares against no number, so it "
                            f"cannot mirror {where}.thresholds.{key}")
        elif not isinstance(value, int | float) or numbers[0] != float(value):
            problems.append(f"{path.name}: alert {alert} fires at {numbers[0]:g} but "
                            f"{where}.thresholds.{key} is {value!r}: dashboards and alerts "
                            "must turn red at the same value")
    return problems
