"""Small shared widgets: KPI cards and the territory table (labels, formats and help text
from the metric catalogue, `analytics.catalog`)."""

from __future__ import annotations

import numpy as np
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


BALANCE_SERIES = (("deviation_potential", "Potential", "#4477AA"),
                  ("deviation_workload_hours", "Workload", "#EE6677"),
                  ("deviation_accounts", "Accounts", "#228833"))
"""The balance chart's bars: column, legend name, colour (Paul Tol's bright scheme)."""


def balance_svg(rows: pd.DataFrame, tolerance: float) -> str:
    """The balance chart as an SVG: per territory with a rep, its deviation from the mean
    of potential, workload and accounts as grouped bars, the tolerance band in grey, and
    each bar's value as its tooltip where the SVG is shown inline. Drawn here, not by
    Plotly: the map page's first load waited about a second for Plotly's script, and
    every stroke redrew the chart."""
    from html import escape

    data = rows.dropna(subset=["deviation_workload_hours"])
    w, h, left, top, bottom = 380.0, 250.0, 40.0, 36.0, 20.0
    plot_h = h - top - bottom
    values = data[[c for c, _, _ in BALANCE_SERIES]].to_numpy(float) * 100
    finite = values[np.isfinite(values)]
    hi = max([tolerance * 100, *finite], default=tolerance * 100)
    lo = min([-tolerance * 100, *finite], default=-tolerance * 100)
    step = next(s for s in (1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000, 2000, 5000, 1e9)
                if (hi - lo) / s <= 6)
    hi, lo = step * max(np.ceil(hi / step), 1), step * min(np.floor(lo / step), -1)

    def y(v: float) -> float:
        return top + (hi - v) / (hi - lo) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w:.0f} {h:.0f}" '
           f'width="{w:.0f}" height="{h:.0f}" role="img" data-chart="balance" '
           'style="font-family:sans-serif;font-size:11px">',
           '<title>Balance: deviation from the mean (%)</title>',
           '<text x="0" y="13" font-size="13" font-weight="600">Balance: deviation from '
           'the mean (%)</text>']
    for k, (_, name, color) in enumerate(BALANCE_SERIES):
        x = left + k * 90
        out.append(f'<rect x="{x}" y="19" width="10" height="10" fill="{color}"/>'
                   f'<text x="{x + 14}" y="28">{name}</text>')
    tol = tolerance * 100
    out.append(f'<rect x="{left}" y="{y(tol):.1f}" width="{w - left:.0f}" '
               f'height="{y(-tol) - y(tol):.1f}" fill="#BBBBBB" fill-opacity="0.3">'
               f'<title>±{tolerance:.0%} band</title></rect>')
    for v in np.arange(lo, hi + step / 2, step):
        out.append(f'<line x1="{left}" x2="{w}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                   f'stroke="{"#888" if v == 0 else "#E5E5E5"}" stroke-width="1"/>'
                   f'<text x="{left - 4}" y="{y(v) + 4:.1f}" text-anchor="end">'
                   f'{v:+.0f}%</text>')
    n = len(data)
    slot = (w - left) / max(n, 1)
    bar = slot * 0.8 / len(BALANCE_SERIES)
    every = max(1, int(np.ceil(n * 36 / (w - left))))  # labels at least 36 px apart
    for i, tid in enumerate(data["territory_id"].astype(str)):
        x0 = left + i * slot + slot * 0.1
        for k, (_, name, color) in enumerate(BALANCE_SERIES):
            v = values[i, k]
            if not np.isfinite(v):
                continue
            y0, y1 = sorted((y(0), y(float(np.clip(v, lo, hi)))))
            out.append(f'<rect x="{x0 + k * bar:.1f}" y="{y0:.1f}" width="{bar:.1f}" '
                       f'height="{max(y1 - y0, 0.5):.1f}" fill="{color}" '
                       f'data-territory="{escape(tid)}" data-series="{name}" '
                       f'data-value="{v:.4f}"><title>{escape(tid)} · {name}: {v:+.1f}% vs '
                       f'mean</title></rect>')
        if i % every == 0:
            out.append(f'<text x="{x0 + slot * 0.4:.1f}" y="{h - bottom + 13}" '
                       f'text-anchor="middle">{escape(tid[:8])}</text>')
    out.append("</svg>")
    return "".join(out)


def balance_chart(rows: pd.DataFrame, tolerance: float) -> None:
    """Each territory's deviation from the mean (potential, workload, accounts) and the
    tolerance band, for territories with a rep (those the balance metrics are over)."""
    # an image: Streamlit's HTML element keeps only HTML (its sanitiser drops SVG); the
    # exact deviations are columns of the territory table below
    with st.container(key="balance_chart"):
        st.image(balance_svg(rows, tolerance), width="stretch")
