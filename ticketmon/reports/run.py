"""One report, end to end: figures, charts, rendered text. Used by the CLI and the worker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ticketmon.reports import charts, render
from ticketmon.reports.figures import Report, build_report
from ticketmon.reports.prometheus import PromClient
from ticketmon.reports.spec import ReportSpec
from ticketmon.rules.slo import SloSpec, load_spec


@dataclass
class Produced:
    report: Report
    text: str
    charts: dict[str, bytes]


def produce(spec: ReportSpec, start: datetime, end: datetime, prometheus_url: str,
            fmt: str | None = None, database_url: str | None = None,
            slos: SloSpec | None = None, client: PromClient | None = None,
            chart_dir: Path | None = None) -> Produced:
    """Raises PrometheusUnavailable (retry later) or QueryError (a bug in a query)."""
    incidents = None
    if database_url:
        from ticketmon.reports.incidents import load_incidents

        incidents = load_incidents(database_url, spec.tenant, start, end)
    client = client or PromClient(prometheus_url)
    report = build_report(client, spec, slos or load_spec(), start, end, incidents)
    fmt = fmt or spec.format
    pictures = charts.all_charts(report) if fmt != "json" else {}
    if fmt == "html":
        text = render.to_html(report, pictures)
    elif fmt == "md":
        files = {}
        if chart_dir is not None:
            for name, png in pictures.items():
                path = chart_dir / f"{spec.name}-{name}.png"
                path.write_bytes(png)
                files[name] = path.name
        text = render.to_markdown(report, files)
    else:
        text = render.to_json(report)
    return Produced(report, text, pictures)
