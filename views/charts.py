"""Plotly figures built from report results; pages embed `figure_json(...)` and static/js/charts.js draws it."""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import plotly.graph_objects as go

from billing.periods import period_label

OVERAGE_COLOR = "#d9534f"
BUFFER_COLOR = "#f0ad4e"
REVENUE_COLOR = "#0275d8"
STATUS_COLORS = {"over": "#d9534f", "under": "#f0ad4e", "mixed": "#5bc0de", "at": "#5cb85c"}
STATUS_LABELS = {"over": "Over commit", "under": "Under commit", "mixed": "Mixed", "at": "At commit"}


def _layout(fig: go.Figure, money: bool = True, height: int = 300) -> go.Figure:
    fig.update_layout(
        height=height, margin=dict(l=50, r=10, t=10, b=40), template="plotly_white",
        legend=dict(orientation="h", y=-0.2), hovermode="x unified",
        font=dict(family="-apple-system, 'Segoe UI', Roboto, sans-serif", size=12),
    )
    if money:
        fig.update_yaxes(tickprefix="$", tickformat=",.0f", rangemode="tozero")
        fig.update_xaxes(type="category")
    return fig


def _labels(periods: Sequence[datetime]) -> list[str]:
    return [period_label(p) for p in periods]


def _floats(values: Sequence[Decimal | None]) -> list[float | None]:
    return [None if v is None else float(v) for v in values]


def revenue_by_period(points: Sequence[tuple[datetime, Decimal]]) -> go.Figure:
    fig = go.Figure(go.Bar(x=_labels([p for p, _ in points]), y=_floats([v for _, v in points]),
                           name="Revenue", marker_color=REVENUE_COLOR, hovertemplate="%{x}: $%{y:,.2f}<extra></extra>"))
    return _layout(fig)


def avg_revenue_per_client(points: Sequence[tuple[datetime, Decimal | None]]) -> go.Figure:
    fig = go.Figure(go.Scatter(x=_labels([p for p, _ in points]), y=_floats([v for _, v in points]),
                               mode="lines+markers", name="Avg revenue per client", line_color=REVENUE_COLOR,
                               hovertemplate="%{x}: $%{y:,.2f}<extra></extra>"))
    return _layout(fig)


def client_status(counts: dict[str, int]) -> go.Figure:
    keys = [k for k in STATUS_LABELS if counts.get(k)]
    fig = go.Figure(go.Pie(labels=[STATUS_LABELS[k] for k in keys], values=[counts[k] for k in keys], hole=0.45,
                           marker_colors=[STATUS_COLORS[k] for k in keys], sort=False,
                           hovertemplate="%{label}: %{value} clients<extra></extra>"))
    fig = _layout(fig, money=False)
    fig.update_layout(legend=dict(orientation="v", y=0.5, x=1.0), hovermode=False)
    return fig


def revenue_by_source_type(rows: Sequence[tuple[str, Decimal]]) -> go.Figure:
    fig = go.Figure(go.Bar(x=_floats([v for _, v in rows]), y=[s for s, _ in rows], orientation="h",
                           marker_color=REVENUE_COLOR, hovertemplate="%{y}: $%{x:,.2f}<extra></extra>"))
    fig = _layout(fig, money=False)
    fig.update_xaxes(tickprefix="$", tickformat=",.0f")
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(hovermode="closest")
    return fig


def overage_buffer(periods: Sequence[datetime], overage: Sequence[Decimal], buffer: Sequence[Decimal]) -> go.Figure:
    """Overage and Buffer $ side by side per period (Over/Under trend, a client's billing history)."""
    labels = _labels(periods)
    fig = go.Figure([
        go.Bar(x=labels, y=_floats(overage), name="Overage", marker_color=OVERAGE_COLOR,
               hovertemplate="Overage: $%{y:,.2f}<extra></extra>"),
        go.Bar(x=labels, y=_floats(buffer), name="Buffer", marker_color=BUFFER_COLOR,
               hovertemplate="Buffer: $%{y:,.2f}<extra></extra>"),
    ])
    fig.update_layout(barmode="group")
    return _layout(fig)


def asset_usage(series: dict[str, list[tuple[str, Decimal]]]) -> go.Figure:
    """One line per unit type; a second y axis per unit type would mislead, so each gets its own row."""
    from plotly.subplots import make_subplots

    names = list(series)
    fig = make_subplots(rows=len(names), cols=1, shared_xaxes=True, subplot_titles=names, vertical_spacing=0.12)
    for row, name in enumerate(names, start=1):
        points = series[name]
        fig.add_trace(go.Scatter(x=[d for d, _ in points], y=_floats([v for _, v in points]), name=name,
                                 mode="lines+markers", hovertemplate="%{x}: %{y:,.3f}<extra>" + name + "</extra>"),
                      row=row, col=1)
    fig = _layout(fig, money=False, height=max(220, 200 * len(names)))
    fig.update_layout(showlegend=False, margin=dict(l=50, r=10, t=30, b=30))
    return fig


def figure_json(fig: go.Figure) -> str:
    """The figure as JSON that is safe inside a <script> element."""
    return fig.to_json().replace("</", "<\\/")
