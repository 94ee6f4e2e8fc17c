"""Find the metric names (and their label matchers) a PromQL expression reads.

A small tokenizer, not a full parser: enough to tell metric names from functions,
keywords, label lists and durations, so lint can check every name against the catalog.
Grafana template variables ($var, ${var}, [[var]]) are neutralised first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

KEYWORDS = frozenset({
    "by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
    "and", "or", "unless", "inf", "nan", "atan2",
    # aggregation operators, which may be followed by `by (...)` instead of `(`
    "sum", "avg", "min", "max", "count", "group", "stddev", "stdvar", "topk", "bottomk",
    "quantile", "count_values",
})
_LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_TOKEN = re.compile(
    r"""
    (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<matchers>\{[^}]*\})
  | (?P<range>\[[^\]]*\])
  | (?P<number>\d[\w.]*)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<open>\()
  | (?P<close>\))
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_MATCHER = re.compile(
    r"""\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:\\.|[^"\\])*"|'[^']*')"""
)
_GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\[\[[^\]]*\]\]|\$[A-Za-z_][A-Za-z0-9_]*")


@dataclass
class Selector:
    metric: str
    matchers: list[tuple[str, str, str]] = field(default_factory=list)  # (label, op, value)


def neutralise_grafana(expr: str) -> str:
    """Replace Grafana variables by harmless placeholders PromQL accepts in their place."""
    expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "1m")
    expr = expr.replace("${__rate_interval}", "1m").replace("$__range", "1h")
    return _GRAFANA_VAR.sub("__var__", expr)


def parse_matchers(text: str) -> list[tuple[str, str, str]]:
    """Label matchers of a `{...}` block, values unquoted."""
    out = []
    for label, op, raw in _MATCHER.findall(text.strip("{}")):
        out.append((label, op, raw[1:-1]))
    return out


def selectors(expr: str) -> list[Selector]:
    """Each metric selector in the expression, in order of appearance."""
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(neutralise_grafana(expr))]
    tokens = [t for t in tokens if not (t[0] == "other" and t[1].isspace())]
    found: list[Selector] = []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else (None, "")
        if kind == "ident" and text in _LABEL_LIST_KEYWORDS and nxt[0] == "open":
            depth, i = 0, i + 1
            while i < len(tokens):  # skip the label list
                depth += {"open": 1, "close": -1}.get(tokens[i][0], 0)
                if depth == 0:
                    break
                i += 1
        elif kind == "ident" and text.lower() not in KEYWORDS and nxt[0] != "open":
            sel = Selector(text)
            if nxt[0] == "matchers":
                sel.matchers = parse_matchers(nxt[1])
            found.append(sel)
        elif kind == "matchers" and (i == 0 or tokens[i - 1][0] != "ident"):
            named = [v for label, op, v in parse_matchers(text)
                     if label == "__name__" and op == "="]
            found.extend(Selector(n, parse_matchers(text)) for n in named)
        i += 1
    return found


def metric_names(expr: str) -> set[str]:
    return {s.metric for s in selectors(expr)}


def regex_alternatives(pattern: str) -> list[str] | None:
    """The literals of a plain `a|b|c` regex, or None when it uses real regex syntax."""
    parts = pattern.split("|")
    if all(re.fullmatch(r"[A-Za-z0-9_\-]+", p) for p in parts):
        return parts
    return None
