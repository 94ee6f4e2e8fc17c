"""Every dashboard query against a real Prometheus scraping the real components.

No query may fail, and every panel whose metrics come from a component running here
must return data. Exporter outputs are checked against the metric catalog on the way.
"""

from __future__ import annotations

import re
import time

import pytest
import requests

from ticketmon.dashboards import build
from ticketmon.rules import lint, promtool
from ticketmon.rules.catalog import load_catalog
from ticketmon.rules.promql import selectors

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def boards():
    return build.evaluate()


@pytest.fixture(scope="module")
def recorded_inputs() -> dict[str, set[str]]:
    """Recorded name -> the raw metric names it is computed from (through other records)."""
    direct: dict[str, set[str]] = {}
    for _, _, rule in lint.load_rules(promtool.rule_files()):
        if "record" in rule:
            direct.setdefault(rule["record"], set()).update(
                s.metric for s in selectors(rule["expr"]))

    def expand(name: str, seen: frozenset = frozenset()) -> set[str]:
        if name not in direct or name in seen:
            return {name}
        return {m for dep in direct[name] for m in expand(dep, seen | {name})}

    return {name: expand(name) for name in direct}


def _variables(board: dict) -> list[str]:
    return [v["name"] for v in board["templating"]["list"] if v["type"] == "query"]


def substitute(expr: str, variables: list[str]) -> str:
    """Grafana's variables as a dashboard opened with defaults would send them."""
    expr = expr.replace("$__rate_interval", "1m").replace("${__rate_interval}", "1m")
    for name in variables:  # every query variable defaults to All (.*)
        expr = re.sub(rf"\$\{{{name}\}}|\${name}\b", ".*", expr)
    return expr


def _prom_panels(boards):
    for file, board in sorted(boards.items()):
        for panel in board["panels"]:
            targets = [t for t in panel.get("targets", [])
                       if t.get("datasource", {}).get("type") == "prometheus"]
            if panel["type"] != "row" and targets:
                yield file, board, panel, targets


def _query(prom_url: str, expr: str) -> tuple[list | None, str | None]:
    body = requests.get(f"{prom_url}/api/v1/query", params={"query": expr}, timeout=30).json()
    if body.get("status") != "success":
        return None, body.get("error")
    return body["data"]["result"], None


def _sources(exprs, catalog, recorded_inputs) -> set[str]:
    out = set()
    for expr in exprs:
        for sel in selectors(expr):
            for name in recorded_inputs.get(sel.metric, {sel.metric}):
                spec = catalog.resolve(name)
                out.add(spec.source if spec else f"uncatalogued:{name}")
    return out


def test_every_query_runs(live_stack, boards):
    errors = []
    for file, board, panel, targets in _prom_panels(boards):
        for target in targets:
            expr = substitute(target["expr"], _variables(board))
            _, error = _query(live_stack.prometheus.url, expr)
            if error:
                errors.append(f"{file} panel {panel['id']} {panel['title']!r}: {error}")
        for annotation in board["annotations"]["list"]:
            if annotation.get("expr"):
                _, error = _query(live_stack.prometheus.url, annotation["expr"])
                if error:
                    errors.append(f"{file} annotation {annotation['name']}: {error}")
    assert errors == []


def test_panels_whose_sources_run_return_data(live_stack, boards, recorded_inputs, capsys):
    catalog = load_catalog()
    proven, empty, not_expected = [], [], []
    for file, board, panel, targets in _prom_panels(boards):
        name = f"{file} panel {panel['id']} {panel['title']!r}"
        needed = _sources([t["expr"] for t in targets], catalog, recorded_inputs)
        if not needed <= live_stack.sources:
            not_expected.append(f"{name}: needs {sorted(needed - live_stack.sources)}")
            continue
        results = [_query(live_stack.prometheus.url,
                          substitute(t["expr"], _variables(board)))[0] for t in targets]
        (proven if any(results) else empty).append(name)
    with capsys.disabled():
        print(f"\ndashboard panels: {len(proven)} returned data, {len(empty)} empty, "
              f"{len(not_expected)} not expected (source not running); "
              f"components not started: {live_stack.missing or 'none'}")
        for line in not_expected:
            print(f"  not expected: {line}")
    assert empty == []
    assert len(proven) >= 90


def test_template_variables_have_values(live_stack, boards):
    catalog = load_catalog()
    for file, board in boards.items():
        for var in board["templating"]["list"]:
            if var["type"] != "query":
                continue
            metric, label = re.fullmatch(r"label_values\((.+), (\w+)\)",
                                         var["query"]["query"]).groups()
            spec = catalog.resolve(metric)
            if spec and spec.source not in live_stack.sources:
                continue
            result, error = _query(live_stack.prometheus.url, f"group by ({label}) ({metric})")
            assert error is None and result, f"{file}: variable {var['name']} has no values"


def _infinity_queries(board: dict):
    """(where, target) of every Infinity query: table panels and annotations."""
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            if target.get("datasource", {}).get("type") == "yesoreyeram-infinity-datasource":
                yield f"panel {panel['title']!r}", target["datasource"]["uid"], target
    for annotation in board["annotations"]["list"]:
        if annotation.get("datasource", {}).get("type") == "yesoreyeram-infinity-datasource":
            yield (f"annotation {annotation['name']!r}", annotation["datasource"]["uid"],
                   annotation["target"])


def test_infinity_queries_read_the_real_apis(live_stack, boards):
    """Receiver tables and annotations, fraud annotations: each query's URL, parameters
    (Grafana's ${__from}/${__to} as the last hour in ms) and column selectors against
    the running services, each holding at least one row."""
    if not (live_stack.receiver_url and live_stack.fraud_url):
        pytest.fail("the receiver and the fraud service are part of the repository; "
                    "they must run here")
    now_ms = int(time.time() * 1000)
    macros = {"${__from}": str(now_ms - 3_600_000), "${__to}": str(now_ms)}
    apis = {"ticketmon-receiver": (live_stack.receiver_url, {}),
            "ticketmon-fraud": (live_stack.fraud_url,
                                {"Authorization": f"Bearer {live_stack.fraud_viewer_token}"})}
    checked = set()
    for file, board in boards.items():
        for where, uid, target in _infinity_queries(board):
            base, headers = apis[uid]
            params = {p["key"]: macros.get(p["value"], p["value"])
                      for p in target["url_options"]["params"]}
            resp = requests.get(base + target["url"], params=params, headers=headers,
                                timeout=10)
            assert resp.status_code == 200, (file, where, resp.text)
            body = resp.json()
            rows = body[target["root_selector"]] if target["root_selector"] else body
            assert rows, f"{file} {where}: no rows (an incident is open, bots check out)"
            for column in target["columns"]:
                assert all(column["selector"] in row for row in rows), \
                    f"{file} {where}: column {column['selector']!r} is not in the API's rows"
            checked.add((uid, "annotation" if where.startswith("annotation") else "panel"))
    assert checked == {("ticketmon-receiver", "panel"), ("ticketmon-receiver", "annotation"),
                       ("ticketmon-fraud", "annotation")}


def test_component_metrics_match_the_catalog(live_stack):
    """Both ways: nothing exposed that the catalog lacks, nothing catalogued left unexposed."""
    catalog = load_catalog()
    problems = []
    for name, (url, sources) in sorted(live_stack.endpoints.items()):
        text = requests.get(url, timeout=10).text
        problems += [f"{name}: {p}" for p in catalog.check_exposition(text, sources,
                                                                       require_all=True)]
    assert problems == [], "\n".join(problems)
