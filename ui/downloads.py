"""Downloads of any table as shown, CSV and Excel, with the filters that made it.

CSV: the filters come first as `# name:,value` lines, two cells each (read back with
`pandas.read_csv(path, comment="#")`), then the table. Excel: the table on the first sheet,
the filters on a sheet named `filters`. Both are safe to open (analytics/exports/cells.py):
a filter value is a quoted CSV cell, so a name holding a comma cannot start a cell of its
own (`Q3,=WEBSERVICE(...)` would otherwise be a live formula in the second cell).
"""

from __future__ import annotations

import csv
import io

import pandas as pd
import streamlit as st

from analytics.exports.cells import XLSX_OPTIONS, csv_text, quote_formula_like, safe_rows
from analytics.performance import Scope
from ui.context import Context


def filter_lines(ctx: Context, scope: Scope, extra: dict[str, str] | None = None) -> dict:
    out = {
        "plan": ctx.plan.name if ctx.plan is not None else "",
        "period": f"{ctx.period.start.isoformat()}:{ctx.period.end.isoformat()}",
        "as_of": ctx.as_of.isoformat(),
        **scope.describe(),
    }
    out.update({k: str(v) for k, v in (extra or {}).items()})
    return out


def filter_head(filters: dict[str, str]) -> str:
    """The `# name:,value` lines that open a CSV download: comment lines for pandas, two
    cells safe to open for a spreadsheet (line breaks in a value folded)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerows(safe_rows([f"# {k}:", " ".join(str(v).splitlines())]
                               for k, v in filters.items()))
    return buf.getvalue()


def csv_bytes(frame: pd.DataFrame, filters: dict[str, str]) -> bytes:
    return (filter_head(filters) + csv_text(frame)).encode("utf-8")


def excel_bytes(frame: pd.DataFrame, filters: dict[str, str], sheet: str = "table") -> bytes:
    buf = io.BytesIO()
    data = frame.copy()
    for col in data.columns:  # Excel has no time zones
        if isinstance(data[col].dtype, pd.DatetimeTZDtype):
            data[col] = data[col].dt.tz_localize(None)
    # xlsxwriter with text kept as text: openpyxl would store `=...` as a live formula
    with pd.ExcelWriter(buf, engine="xlsxwriter",
                        engine_kwargs={"options": XLSX_OPTIONS}) as writer:
        shown = pd.DataFrame({"filter": list(filters), "value": list(filters.values())})
        for name, table in ((sheet[:31], data), ("filters", shown)):
            table.to_excel(writer, sheet_name=name, index=False)
            quote_formula_like(writer.book, writer.sheets[name], table)
    return buf.getvalue()


def table_downloads(frame: pd.DataFrame, name: str, ctx: Context, scope: Scope,
                    extra: dict[str, str] | None = None, *, key: str) -> None:
    """Two buttons: the table as CSV and as Excel, filters included. Downloads do not
    rerun the page (Streamlit starts a download and the rerun together, and a rerun that
    wins drops the file the click asked for: seen in CI as a click with no download)."""
    filters = filter_lines(ctx, scope, extra)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    c1, c2 = st.columns(2)
    c1.download_button("CSV", lambda: csv_bytes(frame, filters), file_name=f"{safe}.csv",
                       mime="text/csv", key=f"{key}_csv", width="stretch",
                       on_click="ignore")
    # the workbook is built only when asked for (on a thread, after the click)
    c2.download_button("Excel", lambda: excel_bytes(frame, filters),
                       file_name=f"{safe}.xlsx",
                       mime="application/vnd.openxmlformats-officedocument.spreadsheetml"
                       ".sheet", key=f"{key}_xlsx", width="stretch", on_click="ignore")
