"""The Excel export: the plan's data as a workbook (xlsxwriter), one sheet per table.

Sheets: `units` (unit -> territory; first, so that the workbook imports back as a plan as it
is), `territories` (the `summary` rows and the `__plan__` row; the sheet shown on opening),
`accounts` (every account and its territory), `settings` (the conditions and settings used),
and `comparison` with a baseline. Numbers are written as numbers, formatted as the pages
print them (shares as percentages, amounts whole).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analytics import geography, metrics
from analytics.exports.cells import XLSX_OPTIONS, quote_formula_like
from analytics.exports.comparison import COMPARED
from analytics.exports.deck import AUTHOR, plan_subtitle, plan_title
from analytics.exports.labels import LABELS, RATIO, WHOLE, format_value
from analytics.exports.pack import PlanPack
from analytics.units import POLYGON_KINDS, UnitType

XLSX_SHEETS = ("units", "territories", "accounts", "settings")
"""Sheet order (+ `comparison` with a baseline). `units` comes first: `plan import` reads a
workbook's first sheet, so the exported workbook imports back as a plan as it is."""
_PERCENT_COLUMNS = {c for c in LABELS if format_value(c, 0.5).endswith("%")}


def _unit_names(unit: UnitType, ids: list[str]) -> list:
    if unit.kind == "h3":
        return [None] * len(ids)
    if unit.kind in POLYGON_KINDS:
        all_ids, names, _ = geography.unit_polygons(unit.kind)
        index = dict(zip(all_ids, names, strict=True))
    else:
        pts = geography.postal_points(unit.kind)
        index = dict(zip(pts["unit_id"], pts["name"], strict=True))
    return [index.get(u) for u in ids]


def unit_sheet(pack: PlanPack) -> pd.DataFrame:
    """unit_id, unit_name, territory_id, territory_name, rep_id (plan-import columns)."""
    frame = pack.assign.merge(pack.terr[["territory_id", "territory_name", "rep_id"]],
                              on="territory_id", how="left")
    frame.insert(1, "unit_name", _unit_names(pack.plan.unit, frame["unit_id"].tolist()))
    return frame


def account_sheet(pack: PlanPack) -> pd.DataFrame:
    """Every account and the territory it resolves to (pins included), `metrics.
    resolved_accounts` with names, the territory's name and rep, and whether it is pinned."""
    acc = metrics.resolved_accounts(pack.cur, pack.plan)
    extra = pack.cur.execute(
        "SELECT a.account_id, a.name, o.account_id IS NOT NULL AS pinned FROM accounts a "
        "LEFT JOIN account_overrides o ON o.plan_id = ? AND o.account_id = a.account_id",
        [pack.plan.plan_id]).df()
    frame = acc.merge(extra, on="account_id", how="left").merge(
        pack.terr[["territory_id", "territory_name", "rep_id"]], on="territory_id", how="left")
    return frame[["account_id", "name", "territory_id", "territory_name", "rep_id",
                  "potential", "pinned"]].sort_values("account_id", ignore_index=True)


def settings_sheet(pack: PlanPack) -> pd.DataFrame:
    rows = [("plan", pack.plan.name), ("unit", str(pack.plan.unit)),
            ("period", str(pack.period)), ("as_of", pack.as_of.isoformat()),
            ("baseline", pack.baseline.name if pack.baseline is not None else ""),
            ("exported_at", pack.created.isoformat(sep=" ")), *pack.settings.as_rows()]
    return pd.DataFrame(rows, columns=["setting", "value"])


def territory_sheet(pack: PlanPack) -> pd.DataFrame:
    """`metrics.summary_frame` (the `summary` command's CSV) with the rep's name."""
    frame = metrics.summary_frame(pack.rows, pack.plan_row)
    frame.insert(3, "rep_name", frame["territory_id"].map(pack.rep_names))
    return frame


def write_xlsx(pack: PlanPack, out: Path) -> Path:
    import xlsxwriter

    sheets = {"units": unit_sheet(pack), "territories": territory_sheet(pack),
              "accounts": account_sheet(pack), "settings": settings_sheet(pack)}
    if pack.comparison is not None:
        sheets["comparison"] = pack.comparison
    book = xlsxwriter.Workbook(str(out), XLSX_OPTIONS)  # text stays text
    book.set_properties({"title": plan_title(pack), "author": AUTHOR,
                         "comments": plan_subtitle(pack)})
    head = book.add_format({"bold": True, "bottom": 1})
    formats = {"pct": book.add_format({"num_format": "0.0%"}),
               "whole": book.add_format({"num_format": "#,##0"}),
               "two": book.add_format({"num_format": "0.00"})}
    for name, frame in sheets.items():
        ws = book.add_worksheet(name)
        ws.write_row(0, 0, [str(c) for c in frame.columns], head)
        for j, col in enumerate(frame.columns):
            kind = ("pct" if col in _PERCENT_COLUMNS
                    else "whole" if col in WHOLE or col in COMPARED
                    or col.endswith(("_delta", "_baseline"))
                    else "two" if col in RATIO or col == "travel_km" else None)
            ws.set_column(j, j, max(10, min(32, len(str(col)) + 2)), formats.get(kind))
            values = frame[col].astype(object)
            ws.write_column(1, j, values.where(values.notna(), None).tolist())
        quote_formula_like(book, ws, frame)  # `=...` stays text when edited in Excel
        ws.freeze_panes(1, 1 if name != "settings" else 0)
        ws.autofilter(0, 0, len(frame), max(len(frame.columns) - 1, 0))
    book.worksheets()[list(sheets).index("territories")].activate()
    book.close()
    return out
