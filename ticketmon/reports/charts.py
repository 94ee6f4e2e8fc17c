"""Report charts as PNG bytes (matplotlib, Agg, no pyplot state, safe in threads).

Small images (about 900x300 px) so an HTML report with every chart embedded in base64
still travels as one email attachment-free message.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

from ticketmon.reports.figures import Curve, Report

SIZE = (9.0, 3.0)
DPI = 100


def _dates(times: np.ndarray) -> list[datetime]:
    return [datetime.fromtimestamp(t, UTC) for t in times]


def _axes(title: str) -> tuple[Figure, object]:
    fig = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(title, loc="left", fontsize=10)
    ax.grid(True, alpha=0.3)
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.tick_params(labelsize=8)
    return fig, ax


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _plot(ax, curves: list[Curve]) -> bool:
    """Draw each curve; returns False (and says so on the chart) when none has data."""
    drawn = False
    for curve in curves:
        if curve.coverage == 0:
            continue
        ax.plot(_dates(curve.times), curve.values, label=curve.label, linewidth=1.2)
        drawn = True
    if not drawn:
        ax.text(0.5, 0.5, "no data in this period", transform=ax.transAxes, ha="center",
                va="center", color="#a33", fontsize=12)
    elif len(curves) > 1:
        # below the axes: inside, it hides exactly the lines near 100 %
        ax.figure.legend(fontsize=7, loc="outside lower center", ncols=min(5, len(curves)),
                         frameon=False)
    return drawn


def availability(report: Report) -> bytes:
    fig, ax = _axes("Availability per window (1 - error ratio), dashed: objectives; "
                    "deeper dips are clipped")
    curves, objectives = [], []
    for svc in report.services:
        for f in svc.slos:
            if f.slo.sli.kind == "availability":
                curves.append(Curve(f.slo.name, f.error.times, 1.0 - f.error.values))
                objectives.append(f.slo.objective)
    if _plot(ax, curves):
        for objective in sorted(set(objectives)):
            ax.axhline(objective, linestyle="--", color="#888", linewidth=0.8)
        # zoom on the objectives: an outage at 70 % would flatten every other line
        worst = min(objectives)
        low = np.nanmin([np.nanmin(c.values) for c in curves if c.coverage])
        floor = max(low, worst - 2 * (1 - worst))
        ax.set_ylim(floor - (1 - floor) * 0.05, 1 + (1 - floor) * 0.05)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    return _png(fig)


def latency(report: Report) -> bytes:
    fig, ax = _axes("Latency p95 per window, dashed: latency SLO threshold")
    curves = [svc.p95_curve for svc in report.services]
    if _plot(ax, curves):
        for svc in report.services:
            if svc.p95_threshold:
                ax.axhline(svc.p95_threshold, linestyle="--", color="#888", linewidth=0.8)
        ax.set_ylim(bottom=0)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v * 1000:.0f} ms"))
    return _png(fig)


def burn(report: Report) -> bytes:
    fig, ax = _axes("Error budget burn rate per window (log above 1x); dashed: 1x, "
                    "14.4x page tier")
    curves = [Curve(f.slo.name, f.error.times, f.error.values / f.budget)
              for svc in report.services for f in svc.slos]
    if _plot(ax, curves):
        for level in (1.0, 14.4):
            ax.axhline(level, linestyle="--", color="#888", linewidth=0.8)
        ax.set_yscale("symlog", linthresh=1.0)
        top = max(np.nanmax(c.values) for c in curves if c.coverage)
        ax.set_ylim(0, max(20.0, top * 2))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
    return _png(fig)


def all_charts(report: Report) -> dict[str, bytes]:
    return {"availability": availability(report), "latency": latency(report),
            "burn": burn(report)}
