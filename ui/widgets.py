"""Small shared widgets: KPI cards and the territory table."""

from __future__ import annotations

import pandas as pd
import streamlit as st

STATUS_BADGE = {  # symbols every font has (no emoji font needed), plus a cell colour
    "under-served": "▲ under-served",
    "over-served": "▼ over-served",
    "balanced": "● balanced",
    "no rep": "○ no rep",
}
STATUS_COLOR = {  # colour-blind-safe (Tol), light enough for dark text
    "▲ under-served": "#F4C2C2", "▼ over-served": "#BBD7EE", "● balanced": "#CDE8C9",
    "○ no rep": "#E6E6E6",
}
PERCENT_COLUMNS = ("attainment", "pace", "penetration", "utilization", "reach_pct",
                   "touched_pct", "deviation_potential", "deviation_workload_hours",
                   "deviation_accounts")


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


def kpi_row(items: list[tuple[str, str, str | None]]) -> None:
    """A row of metric cards: (label, value, help)."""
    cols = st.columns(len(items))
    for col, (label, value, help_text) in zip(cols, items, strict=True):
        col.metric(label, value, help=help_text, border=True)


def territory_table(table: pd.DataFrame, colors: dict[str, str], key: str,
                    selectable: bool = False):
    """Per-territory metrics: map colour swatch, status at a glance, shares as percentages."""
    shown = table.copy()
    shown.insert(0, "color", shown["territory_id"].map(colors).fillna("#E6E6E6"))
    if "status" in shown:
        shown["status"] = shown["status"].map(STATUS_BADGE).fillna(shown["status"])
    for col in PERCENT_COLUMNS:  # fractions in the data, percentages on screen
        if col in shown:
            shown[col] = shown[col].astype(float) * 100
    styled = shown.style.apply(
        lambda col: [f"background-color: {c}; color: {c}" for c in col], subset=["color"]
    )
    if "status" in shown:
        styled = styled.apply(
            lambda col: [f"background-color: {STATUS_COLOR.get(v, '#FFFFFF')}" for v in col],
            subset=["status"],
        )
    money_cols = ("potential", "won", "open_pipeline", "quota", "whitespace")
    config = {
        "color": st.column_config.TextColumn("", width=28),
        "territory_id": st.column_config.TextColumn("Territory", pinned=True),
        "territory_name": st.column_config.TextColumn("Name", pinned=True),
        "rep_id": st.column_config.TextColumn("Rep"),
        "rep_name": st.column_config.TextColumn("Rep name"),
        "status": st.column_config.TextColumn("Status"),
        "units": st.column_config.NumberColumn("Units", format="localized"),
        "accounts": st.column_config.NumberColumn("Accounts", format="localized"),
        "pipeline_coverage": st.column_config.NumberColumn("Pipeline coverage",
                                                           format="%.2fx"),
        "travel_km": st.column_config.NumberColumn("Travel km (mean)", format="%.0f"),
        "workload_hours": st.column_config.NumberColumn("Workload h", format="%.0f"),
        "capacity_hours": st.column_config.NumberColumn("Capacity h", format="%.0f"),
        "components": st.column_config.NumberColumn("Pieces"),
        "contiguous": st.column_config.CheckboxColumn("Contiguous"),
        "polsby_popper": st.column_config.NumberColumn("Compactness", format="%.2f",
                                                       help="Polsby-Popper: 1 = a circle"),
    }
    labels = {
        "attainment": "Attainment", "pace": "Pace", "penetration": "Penetration",
        "utilization": "Utilization", "reach_pct": "Reach", "touched_pct": "Touched",
        "deviation_potential": "Dev. potential", "deviation_workload_hours":
        "Dev. workload", "deviation_accounts": "Dev. accounts",
    }
    for col in PERCENT_COLUMNS:
        config[col] = st.column_config.NumberColumn(labels[col], format="%.1f%%")
    names = {"potential": "Potential", "won": "Won", "open_pipeline": "Open pipeline",
             "quota": "Quota (period)", "whitespace": "Whitespace"}
    for col in money_cols:
        config[col] = st.column_config.NumberColumn(names[col], format="localized")
    if selectable:  # a selected row is read back from st.session_state[key]
        return st.dataframe(styled, key=key, hide_index=True, column_config=config,
                            on_select="rerun", selection_mode="single-row")
    return st.dataframe(styled, key=key, hide_index=True, column_config=config)


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
