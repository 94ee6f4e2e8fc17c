"""Dashboard queries as Grafana sends them: variables at their defaults, per panel."""

from __future__ import annotations

import re


def variables(board: dict) -> list[str]:
    return [v["name"] for v in board["templating"]["list"] if v["type"] == "query"]


def substitute(expr: str, names: list[str]) -> str:
    """Grafana's variables as a dashboard opened with defaults would send them."""
    expr = expr.replace("$__rate_interval", "1m").replace("${__rate_interval}", "1m")
    for name in names:  # every query variable defaults to All (.*)
        expr = re.sub(rf"\$\{{{name}\}}|\${name}\b", ".*", expr)
    return expr


def prom_panels(boards):
    for file, board in sorted(boards.items()):
        for panel in board["panels"]:
            targets = [t for t in panel.get("targets", [])
                       if t.get("datasource", {}).get("type") == "prometheus"]
            if panel["type"] != "row" and targets:
                yield file, board, panel, targets


# how a panel description says that no data is its truth for now (see jsonnet/README.md)
NO_DATA_DOCUMENTED = re.compile(r"Shows no data (until|while) ")


def empty_panels(prometheus: str, boards: dict) -> list[tuple[str, bool]]:
    """(panel, whether its description says why) for every panel none of whose queries
    returns a series."""
    import requests

    empty = []
    for file, board, panel, targets in prom_panels(boards):
        found = False
        for target in targets:
            body = requests.get(f"{prometheus}/api/v1/query", timeout=30, params={
                "query": substitute(target["expr"], variables(board))}).json()
            found |= bool(body.get("status") == "success" and body["data"]["result"])
        if not found:
            documented = bool(NO_DATA_DOCUMENTED.search(panel.get("description", "")))
            empty.append((f"{file} panel {panel['id']} {panel['title']!r}", documented))
    return empty
