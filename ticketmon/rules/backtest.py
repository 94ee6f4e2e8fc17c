"""Backtest alerting rules over real history: when would each alert have fired?

Each rule's expression is evaluated with query_range at a fixed step (default 1m) and
Prometheus's alert state machine is replayed on the result: an alert fires once its
expression has held for `for:` and keeps firing `keep_firing_for:` after it stops
holding. With a git ref, the rules of that ref are backtested too and both are shown
side by side, so a pull request can say "this would have paged 3 times last week
instead of 11". Recording rules are read as Prometheus stored them: a change to a
recording rule shows only through the alerts that inline its expression.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from ticketmon.reports.prometheus import PromClient

PAGING = ("critical", "page")  # severities that page someone


@dataclass(frozen=True)
class AlertRule:
    name: str
    expr: str
    for_seconds: float
    keep_seconds: float
    labels: tuple[tuple[str, str], ...]
    source: str

    @property
    def severity(self) -> str:
        return dict(self.labels).get("severity", "")

    @property
    def pages(self) -> bool:
        return self.severity in PAGING


@dataclass
class Firing:
    alert: str
    labels: dict[str, str]
    start: float
    end: float | None  # None: still firing at the end of the range

    def seconds(self, until: float) -> float:
        return (self.end if self.end is not None else until) - self.start


@dataclass
class RuleResult:
    rule: AlertRule
    firings: list[Firing] = field(default_factory=list)
    error: str | None = None


def _seconds(value: object) -> float:
    if value in (None, "", 0):
        return 0.0
    text = str(value)
    total, number = 0.0, ""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    i = 0
    while i < len(text):  # Prometheus durations may chain units: 1h30m
        if text[i].isdigit():
            number += text[i]
            i += 1
            continue
        unit = "ms" if text[i:i + 2] == "ms" else text[i]
        if unit not in units or not number:
            raise ValueError(f"bad duration {text!r}")
        total += int(number) * units[unit]
        number = ""
        i += len(unit)
    if number:
        raise ValueError(f"bad duration {text!r}")
    return total


def parse_rules(text: str, source: str) -> list[AlertRule]:
    """Alerting rules of one Prometheus rule file (recording rules are skipped)."""
    data = yaml.safe_load(text) or {}
    out = []
    for group in data.get("groups") or []:
        for rule in group.get("rules") or []:
            if "alert" not in rule:
                continue
            labels = tuple(sorted((str(k), str(v)) for k, v in (rule.get("labels") or {})
                                  .items()))
            out.append(AlertRule(rule["alert"], str(rule["expr"]).strip(),
                                 _seconds(rule.get("for")),
                                 _seconds(rule.get("keep_firing_for")), labels, source))
    return out


def load_files(paths: list[Path]) -> list[AlertRule]:
    return [r for p in paths for r in parse_rules(p.read_text(encoding="utf-8"), str(p))]


def load_ref(ref: str, paths: list[Path], repo: Path) -> list[AlertRule]:
    """The same rule files as they were at a git ref (files absent there are skipped)."""
    rules = []
    for path in paths:
        rel = path.resolve().relative_to(repo.resolve()).as_posix()
        shown = subprocess.run(["git", "show", f"{ref}:{rel}"], cwd=repo, capture_output=True,
                               text=True)
        if shown.returncode == 0:
            rules += parse_rules(shown.stdout, f"{ref}:{rel}")
        elif "does not exist" not in shown.stderr and "exists on disk" not in shown.stderr:
            raise ValueError(f"git show {ref}:{rel}: {shown.stderr.strip()}")
    return rules


def replay(times: np.ndarray, rule: AlertRule, labels: dict[str, str], step: float,
           until: float) -> list[Firing]:
    """Prometheus's pending -> firing -> (keep firing) -> resolved at each evaluation."""
    out: list[Firing] = []
    present = set(np.round(times).astype(np.int64).tolist())
    if not present:
        return out
    grid = np.arange(min(present), until + step / 2, step)  # absent points: not active
    active_since = None
    last_active = None
    firing: Firing | None = None
    for t in grid:
        t = float(t)
        if int(round(t)) in present:
            if active_since is None:
                active_since = t
            last_active = t
            if firing is None and t - active_since >= rule.for_seconds:
                firing = Firing(rule.name, labels, t, None)
                out.append(firing)
            continue
        active_since = None
        if firing is not None and (last_active is None or t - last_active > rule.keep_seconds):
            firing.end = t
            firing = None
    return out


def backtest_rule(client: PromClient, rule: AlertRule, start: float, end: float,
                  step: float) -> RuleResult:
    from ticketmon.reports.prometheus import QueryError

    result = RuleResult(rule)
    lead = rule.for_seconds + step  # history before `start` that decides pending state
    try:
        found = client.query_range(rule.expr, start - lead, end, step)
    except QueryError as exc:
        result.error = str(exc)
        return result
    for series in found:
        labels = {k: v for k, v in series.labels.items() if k != "__name__"}
        labels.update(dict(rule.labels))
        keep = ~np.isnan(series.values)
        for firing in replay(series.times[keep], rule, labels, step, end):
            if firing.start > end:
                continue
            if firing.end is not None and firing.end > end:
                firing.end = None
            if firing.end is None or firing.end >= start:
                result.firings.append(firing)
    result.firings.sort(key=lambda f: f.start)
    return result


def backtest(client: PromClient, rules: list[AlertRule], start: float, end: float,
             step: float = 60.0, cache: dict | None = None) -> list[RuleResult]:
    """Every rule once; identical rules (same expr, for, keep) share one query."""
    cache = {} if cache is None else cache
    out = []
    for rule in rules:
        key = (rule.expr, rule.for_seconds, rule.keep_seconds, rule.labels, rule.name)
        if key not in cache:
            cache[key] = backtest_rule(client, rule, start, end, step)
        hit = cache[key]
        out.append(RuleResult(rule, hit.firings, hit.error))
    return out


def when(ts: float) -> str:
    from ticketmon.reports.render import when as fmt

    return fmt(ts)


def _dur(seconds: float) -> str:
    from ticketmon.reports.render import duration

    return duration(seconds)


def _summary(results: list[RuleResult], end: float) -> dict[str, tuple[int, float, int, str]]:
    """alert name -> (firings, seconds firing, series, severity); open firings last to end."""
    out: dict[str, tuple[int, float, int, str]] = {}
    for r in results:
        n, secs, series, _ = out.get(r.rule.name, (0, 0.0, 0, r.rule.severity))
        secs += sum(f.seconds(end) for f in r.firings)
        series += len({tuple(sorted(f.labels.items())) for f in r.firings})
        out[r.rule.name] = (n + len(r.firings), secs, series, r.rule.severity)
    return out


def markdown(results: list[RuleResult], start: float, end: float, step: float,
             prometheus: str, title: str = "Rule backtest") -> str:
    pages = sum(len(r.firings) for r in results if r.rule.pages)
    lines = [f"### {title}: {when(start)} – {when(end)}", "",
             f"{len(results)} alerting rules evaluated every {_dur(step)} against "
             f"{prometheus}; `for:` and `keep_firing_for:` honoured. **{pages} page(s)** "
             f"(severity {'/'.join(PAGING)}), "
             f"{sum(len(r.firings) for r in results)} firing(s) in all.", ""]
    lines += ["| alert | severity | firings | series | time firing |", "|---|---|---|---|---|"]
    for name, (n, secs, series, severity) in sorted(_summary(results, end).items(),
                                                    key=lambda kv: (-kv[1][0], kv[0])):
        if n:
            lines.append(f"| {name} | {severity} | {n} | {series} | {_dur(secs)} |")
    quiet = sorted({r.rule.name for r in results} - {r.rule.name for r in results
                                                      if r.firings})
    lines += ["", f"Quiet over the range: {', '.join(quiet) or 'none'}."]
    errors = [r for r in results if r.error]
    for r in errors:
        lines.append(f"- **{r.rule.name}** ({r.rule.source}): query failed: {r.error}")
    firings = sorted((f for r in results for f in r.firings), key=lambda f: f.start)
    if firings:
        lines += ["", "<details><summary>Every firing</summary>", "",
                  "| alert | labels | from | to | for |", "|---|---|---|---|---|"]
        for f in firings[:500]:
            shown = ", ".join(f"{k}={v}" for k, v in sorted(f.labels.items())
                              if k not in ("alertname", "severity"))
            to = when(f.end) if f.end is not None else "still firing"
            lines.append(f"| {f.alert} | {shown} | {when(f.start)} | {to} | "
                         f"{_dur(f.seconds(end))} |")
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


def diff_markdown(old: list[RuleResult], new: list[RuleResult], ref: str, start: float,
                  end: float, step: float, prometheus: str) -> str:
    before, after = _summary(old, end), _summary(new, end)
    old_pages = sum(len(r.firings) for r in old if r.rule.pages)
    new_pages = sum(len(r.firings) for r in new if r.rule.pages)
    lines = [f"### Rule backtest: `{ref}` against the working tree, "
             f"{when(start)} – {when(end)}", "",
             f"**This change would have paged {new_pages} time(s) over "
             f"{_dur(end - start)} instead of {old_pages}** "
             f"(firings of every severity: {sum(len(r.firings) for r in new)} instead of "
             f"{sum(len(r.firings) for r in old)}). Evaluated every {_dur(step)} against "
             f"{prometheus}.", "",
             f"| alert | severity | firings at `{ref}` | firings now | time firing at "
             f"`{ref}` | time firing now |", "|---|---|---|---|---|---|"]
    changed = 0
    for name in sorted(set(before) | set(after)):
        b = before.get(name, (0, 0.0, 0, ""))
        a = after.get(name, (0, 0.0, 0, ""))
        if b[:2] == a[:2] and not _rule_changed(name, old, new):
            continue
        changed += 1
        gone = " (removed)" if name not in after else " (new)" if name not in before else ""
        lines.append(f"| {name}{gone} | {a[3] or b[3]} | {b[0]} | {a[0]} | {_dur(b[1])} | "
                     f"{_dur(a[1])} |")
    if not changed:
        lines.append("| (no alert changed) | | | | | |")
    for r in new:
        if r.error:
            lines.append(f"\n- **{r.rule.name}**: query failed: {r.error}")
    return "\n".join(lines) + "\n"


def _rule_changed(name: str, old: list[RuleResult], new: list[RuleResult]) -> bool:
    def key(results: list[RuleResult]) -> set:
        return {(r.rule.expr, r.rule.for_seconds, r.rule.keep_seconds, r.rule.labels)
                for r in results if r.rule.name == name}

    return key(old) != key(new)
