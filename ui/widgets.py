"""Small shared widgets: KPI cards and the territory table (labels, formats and help text
from the metric catalogue, `analytics.catalog`)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analytics import catalog, edits

STATUS_BADGE = {  # symbols every font has (no emoji font needed)
    "under-served": "▲ under-served",
    "over-served": "▼ over-served",
    "balanced": "● balanced",
    "no rep": "○ no rep",
}
COLUMN_FORMATS = {"percent": "%.1f%%", "deviation": "%+.1f%%", "money": "localized",
                  "count": "localized", "hours": "%.0f", "km": "%.0f", "ratio": "%.2f",
                  "index": "%.2f"}
"""How a table column of each catalogue kind is printed (shares are scaled to percent)."""


def money(value: float) -> str:
    """Money for a KPI card: whole units with thousands separators, or M/B when large."""
    if value is None or pd.isna(value):
        return "–"
    if abs(value) >= 1_000_000_000:
        return f"{value / 1_000_000_000:,.2f}B"
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:,.1f}M"
    return f"{value:,.0f}"


def percent(value: float | None, digits: int = 1) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.{digits}%}"


def metric_column(name: str, label: str | None = None):
    """A Streamlit column config for a catalogue metric: its short label, help and format."""
    m = catalog.METRICS.get(name)
    if m is None:
        return st.column_config.Column(label or name)
    label = label or m.short_label
    if m.kind == "flag":
        return st.column_config.CheckboxColumn(label, help=m.help)
    if m.kind == "text":
        return st.column_config.TextColumn(label, help=m.help)
    return st.column_config.NumberColumn(label, help=m.help, format=COLUMN_FORMATS[m.kind])


def as_shown(frame: pd.DataFrame) -> pd.DataFrame:
    """Shares (fractions in the data) as percentages, for tables using `metric_column`."""
    shown = frame.copy()
    for col in shown.columns:
        if catalog.is_share(col):
            shown[col] = pd.to_numeric(shown[col], errors="coerce").astype(float) * 100
    return shown


def metric_card(name: str, value, help_text: str | None = None) -> tuple[str, str, str]:
    """(label, value, help) of a KPI card for a catalogue metric."""
    return (catalog.label(name, short=True), catalog.format_compact(name, value),
            help_text or catalog.metric(name).help)


def kpi_row(items: list[tuple[str, str, str | None]]) -> None:
    """A row of metric cards: (label, value, help)."""
    cols = st.columns(len(items))
    for col, (label, value, help_text) in zip(cols, items, strict=True):
        col.metric(label, value, help=help_text, border=True)


def color_swatch(color: str) -> str:
    """A small square of `color` as an image URL (a table cell shows it as the swatch);
    grey for anything the engine would not store as a colour (`edits.COLOR`)."""
    from urllib.parse import quote

    if not edits.COLOR.fullmatch(str(color)):
        color = "#E6E6E6"
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16">'
           f'<rect width="16" height="16" rx="3" fill="{color}"/></svg>')
    return "data:image/svg+xml," + quote(svg)


def territory_table(table: pd.DataFrame, colors: dict[str, str], key: str,
                    selectable: bool = False):
    """Per-territory metrics: map colour swatch, status at a glance, shares as percentages.

    Plain data and column settings, no pandas Styler: a Styler sends every cell's CSS and
    took ~45 ms a rerun to build (the map page reruns this after each stroke)."""
    shown = as_shown(table)
    hexes = shown["territory_id"].map(colors).fillna("#E6E6E6")
    shown.insert(0, "color", [color_swatch(c) for c in hexes])
    if "status" in shown:
        shown["status"] = shown["status"].map(STATUS_BADGE).fillna(shown["status"])
    config = {col: metric_column(col) for col in shown.columns if col in catalog.METRICS}
    config.update({
        "color": st.column_config.ImageColumn("", width=28),
        "territory_id": st.column_config.TextColumn("Territory", pinned=True),
        "territory_name": st.column_config.TextColumn("Name", pinned=True),
        "rep_id": st.column_config.TextColumn("Rep"),
        "rep_name": st.column_config.TextColumn("Rep name"),
    })
    if selectable:  # a selected row is read back from st.session_state[key]
        return st.dataframe(shown, key=key, hide_index=True, column_config=config,
                            on_select="rerun", selection_mode="single-row")
    return st.dataframe(shown, key=key, hide_index=True, column_config=config)


def balance_chart(rows: pd.DataFrame, tolerance: float, colors: dict[str, str]) -> None:
    """Each territory's deviation from the mean (potential, workload, accounts) and the
    tolerance band, for territories with a rep (those the balance metrics are over)."""
    import plotly.graph_objects as go

    data = rows.dropna(subset=["deviation_workload_hours"])
    fig = go.Figure()
    for col, name, color in (("deviation_potential", "Potential", "#4477AA"),
                             ("deviation_workload_hours", "Workload", "#EE6677"),
                             ("deviation_accounts", "Accounts", "#228833")):
        fig.add_bar(x=data["territory_id"], y=data[col] * 100, name=name,
                    marker_color=color,
                    hovertemplate="%{x}: %{y:+.1f}% vs mean<extra>" + name + "</extra>")
    fig.add_hrect(y0=-tolerance * 100, y1=tolerance * 100, fillcolor="#BBBBBB",
                  opacity=0.25, line_width=0,
                  annotation_text=f"±{tolerance:.0%} band", annotation_position="top left")
    fig.update_layout(
        barmode="group", height=260, margin={"l": 10, "r": 10, "t": 30, "b": 10},
        title={"text": "Balance: deviation from the mean (%)", "font": {"size": 13}},
        legend={"orientation": "h", "y": -0.25}, yaxis={"ticksuffix": "%"},
    )
    st.plotly_chart(fig, width="stretch", config={"displayModeBar": False},
                    key="balance_chart")
