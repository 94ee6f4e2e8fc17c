"""Render each dashboard's panels to one PNG from a Prometheus, laid out like Grafana.

A reviewer sees what a dashboard change looks like without a Grafana: panels sit where
their gridPos puts them (24 columns, 30 px rows), time series and bars are drawn over
the range, stat/gauge panels show their last value coloured by thresholds, tables list
their rows. A panel whose queries return nothing says so in red instead of staying
blank, so a broken query is visible in the picture. Template variables take their
default (All becomes `.*`); the datasource variable is the Prometheus given.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from ticketmon.reports.prometheus import PromClient, QueryError, Series, duration_text

COLUMNS = 24
ROW_PX = 30
WIDTH_PX = 1440
DPI = 100
SCRAPE = 15.0  # Grafana's default scrape interval for $__rate_interval
RANGE_TYPES = ("timeseries", "barchart", "graph")
VALUE_TYPES = ("stat", "gauge", "bargauge")
COLORS = {"green": "#37872d", "red": "#c4162a", "orange": "#fa6400", "yellow": "#e0b400",
          "blue": "#1f60c4", "purple": "#8f3bb8", "text": "#444"}
_LEGEND = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


@dataclass
class PanelData:
    series: list[Series] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    legends: list[str] = field(default_factory=list)


@dataclass
class Preview:
    uid: str
    title: str
    path: Path
    panels: int
    empty: list[str]  # titles of panels without data
    failed: list[str]  # titles of panels whose query failed


def variables(board: dict, step: float, since: float) -> dict[str, str]:
    """Values for $name, ${name} and [[name]]: defaults, All as a regex for everything."""
    values = {"__rate_interval": duration_text(max(step + SCRAPE, 4 * SCRAPE)),
              "__interval": duration_text(step), "__range": duration_text(since)}
    for var in board.get("templating", {}).get("list", []):
        if var.get("type") == "datasource":
            continue
        current = (var.get("current") or {}).get("value", "")
        picked = current if isinstance(current, list) else [current]
        if not picked or "$__all" in picked or picked == [""]:
            values[var["name"]] = var.get("allValue") or ".*"
        else:
            values[var["name"]] = "|".join(re.escape(str(v)) for v in picked)
    return values


def substitute(expr: str, values: dict[str, str]) -> str:
    for name in sorted(values, key=len, reverse=True):
        value = values[name]
        expr = (expr.replace("${" + name + "}", value).replace("[[" + name + "]]", value)
                .replace("$" + name, value))
    return expr


def legend(fmt: str, labels: dict[str, str]) -> str:
    if fmt and fmt != "__auto":
        return _LEGEND.sub(lambda m: labels.get(m.group(1), ""), fmt)
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    return ", ".join(f"{k}={v}" for k, v in shown.items()) or labels.get("__name__", "value")


def fetch(client: PromClient, panel: dict, values: dict[str, str], start: float, end: float,
          step: float) -> PanelData:
    data = PanelData()
    ranged = panel["type"] in RANGE_TYPES
    for target in panel.get("targets", []):
        expr = target.get("expr")
        if not expr or target.get("hide"):
            continue
        expr = substitute(expr, values)
        try:
            if ranged:
                found = client.query_range(expr, start, end, step)
            else:
                found = [Series(s.labels, np.array([end]), np.array([s.value]))
                         for s in client.query(expr, end)]
        except QueryError as exc:
            data.errors.append(str(exc))
            continue
        for s in found:
            data.series.append(s)
            data.legends.append(legend(target.get("legendFormat", ""), s.labels))
    return data


def fmt_value(value: float, unit: str | None) -> str:
    if value is None or math.isnan(value):
        return "NaN"
    if unit == "percentunit":
        return f"{value * 100:.3g}%"
    if unit == "percent":
        return f"{value:.3g}%"
    if unit == "s":
        return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.3g} s"
    if unit in ("ops", "reqps"):
        return f"{value:.3g}/s"
    if unit and unit.startswith("suffix:"):
        return f"{value:.4g}{unit[7:]}"
    if abs(value) >= 1e6:
        return f"{value / 1e6:.3g}M"
    if abs(value) >= 1e4:
        return f"{value / 1e3:.3g}k"
    return f"{value:.4g}"


def threshold_color(value: float, defaults: dict) -> str:
    color = "green"
    steps = (defaults.get("thresholds") or {}).get("steps") or []
    for s in steps:
        if s.get("value") is None or (not math.isnan(value) and value >= s["value"]):
            color = s.get("color", color)
    return COLORS.get(color, color if color.startswith("#") else "#37872d")


def _panel_axes(fig: Figure, pos: dict, height_units: int) -> tuple[float, ...]:
    x, y, w, h = (pos.get(k, 0) for k in ("x", "y", "w", "h"))
    pad_x, pad_y = 0.004, 0.006 * 24 / max(height_units, 24)
    return (x / COLUMNS + pad_x, 1 - (y + h) / height_units + pad_y,
            w / COLUMNS - 2 * pad_x, h / height_units - 2 * pad_y)


def draw_panel(fig: Figure, panel: dict, data: PanelData, rect: tuple[float, ...]) -> str:
    """Draw one panel into rect; returns "ok", "empty" or "failed"."""
    frame = fig.add_axes(rect)
    frame.set_xticks([])
    frame.set_yticks([])
    frame.set_facecolor("#fbfbfb")
    for spine in frame.spines.values():
        spine.set_edgecolor("#bbb")
    # the title sits inside the panel, as in Grafana, so it never covers the panel above
    frame.text(0.006, 1 - _px(fig, 3, vertical=True) / rect[3], panel.get("title", ""),
               fontsize=8, weight="bold", va="top", transform=frame.transAxes)
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    unit = defaults.get("unit")
    if data.errors and not data.series:
        frame.text(0.5, 0.5, "query error\n" + data.errors[0][:120], ha="center", va="center",
                   color="#c4162a", fontsize=7, wrap=True, transform=frame.transAxes)
        return "failed"
    if not data.series or all(np.all(np.isnan(s.values)) for s in data.series):
        frame.add_patch(Rectangle((0, 0), 1, 1, transform=frame.transAxes, hatch="//",
                                  fill=False, edgecolor="#e8b4b4", linewidth=0))
        frame.text(0.5, 0.5, "NO DATA", ha="center", va="center", color="#c4162a",
                   fontsize=10, weight="bold", transform=frame.transAxes)
        return "empty"
    kind = panel["type"]
    if kind in RANGE_TYPES:
        # tick labels need room inside the panel, or they spill into the neighbours
        left, bottom = _px(fig, 48), _px(fig, 18, vertical=True)
        top, right = _px(fig, 18, vertical=True), _px(fig, 6)
        inner = fig.add_axes((rect[0] + left, rect[1] + bottom, rect[2] - left - right,
                              rect[3] - bottom - top))
        _timeseries(inner, data, unit, defaults)
    elif kind in VALUE_TYPES:
        _values(frame, data, unit, defaults)
    elif kind == "table":
        _table(frame, data, unit)
    else:
        frame.text(0.5, 0.5, f"{kind}: not previewed", ha="center", va="center",
                   fontsize=8, color="#888", transform=frame.transAxes)
    return "ok"


def _px(fig: Figure, pixels: float, vertical: bool = False) -> float:
    """Pixels as a fraction of the figure's width (or height)."""
    size = fig.get_size_inches()[1 if vertical else 0] * fig.dpi
    return pixels / size


def _timeseries(ax, data: PanelData, unit: str | None, defaults: dict) -> None:
    ax.set_facecolor("none")
    for s, label in list(zip(data.series, data.legends, strict=True))[:12]:
        ax.plot([datetime.fromtimestamp(t, UTC) for t in s.times], s.values, linewidth=1,
                label=label[:40])
    locator = AutoDateLocator(maxticks=6)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, show_offset=False))
    ax.tick_params(labelsize=6, pad=1)
    ax.yaxis.set_major_formatter(lambda v, _: fmt_value(v, unit))
    ax.yaxis.set_major_locator(MaxNLocator(4))
    low, high = ax.get_ylim()
    if high - low <= 1e-9 * max(abs(high), 1.0):  # flat: float jitter would fill the axis
        mid = (high + low) / 2
        ax.set_ylim(mid - abs(mid) * 0.05 - 1e-9, mid + abs(mid) * 0.05 + 1e-9)
    if defaults.get("min") is not None or defaults.get("max") is not None:
        ax.set_ylim(defaults.get("min"), defaults.get("max"))
    ax.grid(True, alpha=0.3)
    if len(data.series) > 1 or data.series[0].labels:
        ax.legend(fontsize=5, loc="upper left", ncols=min(4, len(data.series)),
                  framealpha=0.6, handlelength=1)


def _values(frame, data: PanelData, unit: str | None, defaults: dict) -> None:
    shown = list(zip(data.series, data.legends, strict=True))[:8]
    n = len(shown)
    for i, (s, label) in enumerate(shown):
        finite = s.values[~np.isnan(s.values)]
        value = float(finite[-1]) if len(finite) else math.nan
        cx = (i + 0.5) / n
        frame.text(cx, 0.42, fmt_value(value, unit), ha="center", va="center",
                   fontsize=max(8, 18 - 2 * n), weight="bold",
                   color=threshold_color(value, defaults), transform=frame.transAxes)
        if n > 1 or s.labels:
            frame.text(cx, 0.12, label[:30], ha="center", va="center", fontsize=6,
                       color="#555", transform=frame.transAxes)


def _table(frame, data: PanelData, unit: str | None) -> None:
    names = sorted({k for s in data.series for k in s.labels if k != "__name__"})
    rows = [[s.labels.get(k, "") for k in names] +
            [fmt_value(float(s.values[-1]), unit)] for s in data.series[:14]]
    table = frame.table(cellText=rows, colLabels=[*names, "Value"], loc="upper center",
                        cellLoc="left", bbox=[0.005, 0.01, 0.99, 0.84])
    table.auto_set_font_size(False)
    table.set_fontsize(6)
    for cell in table.get_celld().values():
        cell.set_linewidth(0.3)


def render(client: PromClient, board: dict, since: float, end: float, out_dir: Path,
           points: int = 200) -> Preview:
    step = max(15.0, round(since / points))
    start = end - since
    values = variables(board, step, since)
    panels = [p for p in board.get("panels", []) for p in [p, *p.get("panels", [])]]
    height = max((p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels if "gridPos" in p),
                 default=1)
    fig = Figure(figsize=(WIDTH_PX / DPI, height * ROW_PX / DPI + 0.4), dpi=DPI)
    FigureCanvasAgg(fig)
    top = 0.4 / (height * ROW_PX / DPI + 0.4)
    fig.text(0.005, 1 - top / 2, f"{board.get('title', board.get('uid'))} — last "
             f"{duration_text(since)} to {datetime.fromtimestamp(end, UTC):%Y-%m-%d %H:%M} UTC",
             fontsize=11, weight="bold", va="center")
    empty, failed, count = [], [], 0
    for panel in panels:
        pos = panel.get("gridPos")
        if not pos:
            continue
        rect = _panel_axes(fig, pos, height)
        rect = (rect[0], rect[1] * (1 - top), rect[2], rect[3] * (1 - top))
        if panel["type"] == "row":
            fig.text(rect[0], rect[1] + rect[3] / 2, panel.get("title", ""), fontsize=10,
                     weight="bold", va="center", color="#333")
            continue
        count += 1
        state = draw_panel(fig, panel, fetch(client, panel, values, start, end, step), rect)
        if state == "empty":
            empty.append(panel.get("title", "?"))
        elif state == "failed":
            failed.append(panel.get("title", "?"))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{board['uid']}.png"
    fig.savefig(path, dpi=DPI)
    return Preview(board["uid"], board.get("title", ""), path, count, empty, failed)
