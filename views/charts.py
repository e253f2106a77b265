"""Plotly figures built from report results; pages embed `figure_json(...)` and static/js/charts.js draws it."""
from __future__ import annotations

import importlib
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from billing.periods import period_label

if TYPE_CHECKING:
    import plotly.graph_objects as go


class _OnFirstUse:
    """A module imported when first used: plotly takes a large part of a second to import, and commands draw
    nothing (`flask --app app --help` must start fast)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self._name), attr)


if not TYPE_CHECKING:
    go = _OnFirstUse("plotly.graph_objects")


def to_json_plotly(value: Any) -> str:
    """plotly's JSON encoder (dates, NaN), imported on first use."""
    from plotly.io.json import to_json_plotly as encode

    return encode(value)

OVERAGE_COLOR = "#d9534f"
BUFFER_COLOR = "#f0ad4e"
REVENUE_COLOR = "#0275d8"
STATUS_COLORS = {"over": "#d9534f", "under": "#f0ad4e", "mixed": "#5bc0de", "at": "#5cb85c"}
STATUS_LABELS = {"over": "Over commit", "under": "Under commit", "mixed": "Mixed", "at": "At commit"}


TEMPLATE_KEYS = frozenset({"hovertemplate", "texttemplate"})  # our own constant formats: `%{x}`, `<extra>`
GRID = "#e9ecef"
FONT = dict(family="-apple-system, 'Segoe UI', Roboto, sans-serif", size=12, color="#343a40")


def _figure(traces, money: bool = True, height: int = 300, **extra) -> go.Figure:
    """A figure with a light look and no Plotly template: the default template costs ~25 ms per figure, and it
    is applied at construction unless the layout names a template."""
    layout = dict(
        template="none", height=height, margin=dict(l=60, r=10, t=10, b=40), paper_bgcolor="white",
        plot_bgcolor="white", font=FONT, legend=dict(orientation="h", y=-0.2), hovermode="x unified",
        xaxis=dict(gridcolor=GRID, linecolor=GRID, automargin=True),
        yaxis=dict(gridcolor=GRID, zerolinecolor=GRID, automargin=True),
    )
    if money:
        layout["yaxis"].update(tickprefix="$", tickformat=",.0f", rangemode="tozero")
        layout["xaxis"].update(type="category")
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(layout.get(key), dict):
            layout[key] = {**layout[key], **value}
        else:
            layout[key] = value
    return go.Figure(data=traces, layout=layout)


def _labels(periods: Sequence[datetime]) -> list[str]:
    return [period_label(p) for p in periods]


def _floats(values: Sequence[Decimal | None]) -> list[float | None]:
    return [None if v is None else float(v) for v in values]


def revenue_by_period(points: Sequence[tuple[datetime, Decimal]]) -> go.Figure:
    return _figure([go.Bar(x=_labels([p for p, _ in points]), y=_floats([v for _, v in points]), name="Revenue",
                           marker_color=REVENUE_COLOR, hovertemplate="%{x}: $%{y:,.2f}<extra></extra>")],
                   hovermode="closest")


def avg_revenue_per_client(points: Sequence[tuple[datetime, Decimal | None]]) -> go.Figure:
    return _figure([go.Scatter(x=_labels([p for p, _ in points]), y=_floats([v for _, v in points]),
                               mode="lines+markers", name="Avg revenue per client", line_color=REVENUE_COLOR,
                               hovertemplate="%{x}: $%{y:,.2f}<extra></extra>")],
                   hovermode="closest")


def client_status(counts: dict[str, int]) -> go.Figure:
    keys = [k for k in STATUS_LABELS if counts.get(k)]
    return _figure([go.Pie(labels=[STATUS_LABELS[k] for k in keys], values=[counts[k] for k in keys], hole=0.45,
                           marker_colors=[STATUS_COLORS[k] for k in keys], sort=False, textinfo="value+percent",
                           hovertemplate="%{label}: %{value} clients<extra></extra>")],
                   money=False, legend=dict(orientation="v", y=0.5, x=1.0), hovermode=False)


def revenue_by_source_type(rows: Sequence[tuple[str, Decimal]]) -> go.Figure:
    return _figure([go.Bar(x=_floats([v for _, v in rows]), y=[s for s, _ in rows], orientation="h",
                           marker_color=REVENUE_COLOR, hovertemplate="%{y}: $%{x:,.2f}<extra></extra>")],
                   money=False, hovermode="closest", xaxis=dict(tickprefix="$", tickformat=",.0f"),
                   yaxis=dict(autorange="reversed"))


def overage_buffer(points: Sequence[Any]) -> go.Figure:
    """Overage and Buffer $ side by side per period (Over/Under trend, a client's billing history): points with
    `period`, `overage` and `buffer`."""
    labels = _labels([p.period for p in points])
    return _figure([
        go.Bar(x=labels, y=_floats([p.overage for p in points]), name="Overage", marker_color=OVERAGE_COLOR,
               hovertemplate="Overage: $%{y:,.2f}<extra></extra>"),
        go.Bar(x=labels, y=_floats([p.buffer for p in points]), name="Buffer", marker_color=BUFFER_COLOR,
               hovertemplate="Buffer: $%{y:,.2f}<extra></extra>"),
    ], barmode="group")


DAY_MS = 86_400_000
MIN_DAYS_SHOWN = 7


def day_axis(days: Sequence[str]) -> dict[str, Any]:
    """A date axis of whole days: ticks are days (`Nov 25`), never hours or milliseconds, and a short series (one
    day of readings) is shown in a week-wide window ending at its last day instead of a zoom into one instant."""
    axis: dict[str, Any] = {"type": "date", "tickformat": "%b %-d", "hoverformat": "%Y-%m-%d"}
    if not days:
        return axis
    first, last = date.fromisoformat(min(days)[:10]), date.fromisoformat(max(days)[:10])
    if (last - first).days < MIN_DAYS_SHOWN:
        start = min(first, last - timedelta(days=MIN_DAYS_SHOWN - 1))
        axis.update(range=[f"{start - timedelta(days=1)} 12:00", f"{last} 12:00"], dtick=DAY_MS)
    else:
        axis.update(tick0=f"{first}", nticks=10)
    return axis
def bucket_history(lines: Sequence[Any]) -> go.Figure:
    """A bucket's usage per billed period (bars) against its commit (line): lines with `period_start`,
    `total_usage` and `commit`, oldest first."""
    labels = _labels([line.period_start for line in lines])
    return _figure([
        go.Bar(x=labels, y=_floats([line.total_usage for line in lines]), name="Usage", marker_color=REVENUE_COLOR,
               hovertemplate="Usage: %{y:,.3f}<extra></extra>"),
        go.Scatter(x=labels, y=_floats([line.commit for line in lines]), name="Commit", mode="lines+markers",
                   line_color=BUFFER_COLOR, hovertemplate="Commit: %{y:,.3f}<extra></extra>"),
    ], money=False, xaxis=dict(type="category"), yaxis=dict(rangemode="tozero"))


def asset_usage(series: dict[str, list[tuple[str, Decimal]]]) -> go.Figure:
    """One line per unit type, each in its own row (units differ, so one shared y axis would mislead)."""
    names = list(series)
    x_axis = day_axis([day for points in series.values() for day, _ in points])
    rows = len(names)
    gap = 0.12 if rows > 1 else 0.0
    height = (1 - gap * (rows - 1)) / rows
    layout: dict = {"showlegend": False, "margin": dict(l=60, r=10, t=30, b=30), "annotations": []}
    traces = []
    for index, name in enumerate(names):
        suffix = "" if index == 0 else str(index + 1)
        top = round(1 - index * (height + gap), 6)  # rounded: 3 rows left the last at -5.6e-17, which plotly refuses
        bottom = max(0.0, round(top - height, 6))
        layout[f"yaxis{suffix}"] = dict(domain=[bottom, top], gridcolor=GRID, zerolinecolor=GRID,
                                        rangemode="tozero", automargin=True)
        layout[f"xaxis{suffix}"] = dict(x_axis, anchor=f"y{suffix}", gridcolor=GRID,
                                        **({"matches": "x"} if index else {}))
        layout["annotations"].append(dict(text=name, x=0.5, y=top, xref="paper", yref="paper", showarrow=False,
                                          yanchor="bottom", font=dict(size=13)))
        points = series[name]
        traces.append(go.Scatter(x=[d for d, _ in points], y=_floats([v for _, v in points]), name=name,
                                 mode="lines+markers", xaxis=f"x{suffix}", yaxis=f"y{suffix}",
                                 hovertemplate="%{x}: %{y:,.3f}<extra>%{fullData.name}</extra>"))
    return _figure(traces, money=False, height=max(240, 210 * rows), **layout)


def plain_text(value: Any, key: str | None = None) -> Any:
    """`value` (a figure as plain data) with `&`, `<` and `>` as HTML entities in every string but the templates.

    Plotly draws a subset of HTML in trace names, category ticks, pie labels, legends, annotations and hover text
    (`<a href>` becomes a link, `<b>` bold) and shows `&lt;` `&gt;` `&amp;` as the characters, so a name written
    this way reads exactly as typed and is never markup. Templates are ours (`%{x}`, `<extra>`), never data."""
    if isinstance(value, str):
        if key in TEMPLATE_KEYS:
            return value
        return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if isinstance(value, dict):
        return {name: plain_text(item, name) for name, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_text(item, key) for item in value]
    return value


def figure_json(fig: go.Figure) -> str:
    """The figure as the JSON every page and endpoint sends: every label as plain text (`plain_text`), and safe
    inside a <script> element: `<`, `>` and `&` as JSON escapes, so no text (a client named `</script>…` or
    `<!--<script>`) can end or confuse the element."""
    text = to_json_plotly(plain_text(fig.to_plotly_json()))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
