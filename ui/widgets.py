"""Small shared widgets: KPI cards and the territory table."""

from __future__ import annotations

import pandas as pd
import streamlit as st


def money(value: float) -> str:
    """Money for a KPI card: whole units with thousands separators, or M/k when large."""
    if value is None or pd.isna(value):
        return "–"
    if abs(value) >= 1_000_000_000:
        return f"{value / 1_000_000_000:,.2f}B"
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:,.1f}M"
    return f"{value:,.0f}"


def percent(value: float | None) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.1%}"


def kpi_row(items: list[tuple[str, str, str | None]]) -> None:
    """A row of metric cards: (label, value, help)."""
    cols = st.columns(len(items))
    for col, (label, value, help_text) in zip(cols, items, strict=True):
        col.metric(label, value, help=help_text, border=True)


def territory_table(table: pd.DataFrame, colors: dict[str, str], key: str) -> None:
    """The per-territory numbers with each territory's map colour as a swatch."""
    shown = table.copy()
    shown.insert(0, "color", shown["territory_id"].map(colors).fillna("#E6E6E6"))
    styled = shown.style.apply(
        lambda col: [f"background-color: {c}; color: {c}" for c in col], subset=["color"]
    )
    st.dataframe(
        styled,
        key=key,
        hide_index=True,
        column_config={
            "color": st.column_config.TextColumn("", width=28),
            "territory_id": st.column_config.TextColumn("Territory"),
            "territory_name": st.column_config.TextColumn("Name"),
            "rep_id": st.column_config.TextColumn("Rep id"),
            "rep_name": st.column_config.TextColumn("Rep"),
            "units": st.column_config.NumberColumn("Units", format="localized"),
            "accounts": st.column_config.NumberColumn("Accounts", format="localized"),
            "potential": st.column_config.NumberColumn("Potential", format="localized"),
            "won": st.column_config.NumberColumn("Won", format="localized"),
            "open_pipeline": st.column_config.NumberColumn("Open pipeline",
                                                           format="localized"),
            "quota": st.column_config.NumberColumn("Quota (period)", format="localized"),
            "attainment": st.column_config.NumberColumn("Attainment", format="percent"),
        },
    )
