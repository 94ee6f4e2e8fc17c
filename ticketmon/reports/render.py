"""A report as HTML (charts embedded as base64 PNG: one file travels by email),
Markdown (for a pull request or a wiki; charts are written beside it) or JSON."""

from __future__ import annotations

import base64
import html
import json
import math
from datetime import UTC, datetime

from ticketmon.reports.figures import BusinessFigure, Report


def pct(value: float | None, digits: int = 3) -> str:
    return "no data" if value is None or math.isnan(value) else f"{value * 100:.{digits}f} %"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s" if seconds % 60 else f"{seconds // 60}m"
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m"


def when(value: datetime | float) -> str:
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(value, UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def business_value(b: BusinessFigure) -> str:
    if b.unit == "money":
        if not b.detail:
            return "no data"
        return ", ".join(f"{v:,.2f} {cur}" for cur, v in sorted(b.detail.items()))
    if b.value is None:
        return "no data"
    text = pct(b.value, 2) if b.unit == "ratio" else f"{b.value:,.0f}"
    extra = "; ".join(f"{k} {pct(v, 2)}" for k, v in b.detail.items())
    return f"{text} ({extra})" if extra else text


def _met(flag: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "no data"}[flag]


def tables(report: Report) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report's sections as (title, header, rows), shared by HTML and Markdown."""
    slo_rows = []
    for svc in report.services:
        for f in svc.slos:
            target = (f"{f.slo.objective:.2%} within {f.slo.sli.threshold_seconds:g}s"
                      if f.slo.sli.kind == "latency" else f"{f.slo.objective:.2%}")
            slo_rows.append([
                svc.service, f.slo.name, target, pct(f.attainment), _met(f.met),
                pct(f.budget_spent, 1), pct(f.budget_left, 1),
                f"{len(f.violations)} ({duration(f.violation_seconds)})" if f.error_ratio
                is not None else "–"])
    svc_rows = []
    for svc in report.services:
        p95 = "no data" if svc.p95 is None else f"{svc.p95 * 1000:.0f} ms"
        if svc.p95 is not None and svc.p95_threshold:
            p95 += " (ok)" if svc.p95 <= svc.p95_threshold else (
                f" (over {svc.p95_threshold * 1000:.0f} ms)")
        i = svc.incidents
        svc_rows.append([svc.service, p95, str(i.count), duration(i.mtta), duration(i.mttr)])
    by_count = sorted(report.alerts, key=lambda a: (-a.count, a.alertname))
    by_time = sorted(report.alerts, key=lambda a: (-a.firing_seconds, a.alertname))
    top = report.spec.top_alerts
    return [
        ("Service level objectives",
         ["service", "SLO", "objective", "attained", "", "budget spent (of window)",
          "budget left (window)", "violations"], slo_rows),
        ("Latency and incidents",
         ["service", "latency p95", "incidents", "MTTA", "MTTR"], svc_rows),
        ("Platform", ["figure", "value"],
         [[b.label, business_value(b)] for b in report.business]),
        ("Top alerts by count", ["alert", "firing episodes", "time firing"],
         [[a.alertname, str(a.count), duration(a.firing_seconds)] for a in by_count[:top]]),
        ("Top alerts by time firing", ["alert", "time firing", "firing episodes"],
         [[a.alertname, duration(a.firing_seconds), str(a.count)] for a in by_time[:top]]),
    ]


def heading(report: Report) -> str:
    return (f"{report.spec.title}: {when(report.start)} – {when(report.end)} "
            f"({duration(report.seconds)})")


def to_html(report: Report, charts: dict[str, bytes]) -> str:
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'>",
             f"<title>{e(heading(report))}</title><style>",
             "body{font-family:sans-serif;font-size:14px;color:#222;max-width:960px}",
             "table{border-collapse:collapse;margin:6px 0 18px}",
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}",
             "th{background:#f3f3f3}.note{color:#a33}</style></head><body>",
             f"<h1>{e(heading(report))}</h1>",
             f"<p>Prometheus {e(report.prometheus)}, generated {e(when(report.generated_at))}, "
             f"chart windows {duration(report.step)}.</p>"]
    if report.notes:
        parts.append("<ul>" + "".join(f"<li class='note'>{e(n)}</li>" for n in report.notes)
                     + "</ul>")
    for title, header, rows in tables(report):
        parts.append(f"<h2>{e(title)}</h2>")
        if not rows:
            parts.append("<p>none in this period</p>")
            continue
        parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
        for row in rows:
            parts.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
        parts.append("</table>")
    parts.append("<h2>Charts</h2>")
    for name, png in charts.items():
        data = base64.b64encode(png).decode("ascii")
        parts.append(f"<p><img alt='{e(name)}' src='data:image/png;base64,{data}'></p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def to_markdown(report: Report, chart_files: dict[str, str] | None = None) -> str:
    lines = [f"## {heading(report)}", "",
             f"Prometheus {report.prometheus}, chart windows {duration(report.step)}.", ""]
    lines += [f"- **{n}**" for n in report.notes]
    for title, header, rows in tables(report):
        lines += ["", f"### {title}", ""]
        if not rows:
            lines.append("none in this period")
            continue
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    for name, path in (chart_files or {}).items():
        lines += ["", f"![{name}]({path})"]
    return "\n".join(lines) + "\n"


def _num(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def to_json(report: Report) -> str:
    return json.dumps({
        "report": report.spec.name, "title": report.spec.title,
        "start": report.start.isoformat(), "end": report.end.isoformat(),
        "prometheus": report.prometheus, "notes": report.notes,
        "services": [{
            "service": svc.service, "latency_p95_seconds": _num(svc.p95),
            "latency_threshold_seconds": svc.p95_threshold,
            "incidents": vars(svc.incidents),
            "slos": [{"slo": f.slo.name, "kind": f.slo.sli.kind,
                      "objective": f.slo.objective, "attained": _num(f.attainment),
                      "met": f.met, "budget_spent": _num(f.budget_spent),
                      "budget_left": _num(f.budget_left),
                      "violations": [[when(a), when(b)] for a, b in f.violations],
                      "coverage": f.coverage} for f in svc.slos],
        } for svc in report.services],
        "business": {b.key: {"value": _num(b.value), "unit": b.unit,
                             "detail": {k: _num(v) for k, v in b.detail.items()}}
                     for b in report.business},
        "alerts": [vars(a) for a in sorted(report.alerts, key=lambda a: -a.count)],
    }, indent=2) + "\n"
