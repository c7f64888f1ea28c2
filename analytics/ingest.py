"""Import accounts, sales and reps from CSV, Excel or Parquet files.

The whole import runs inside one transaction: rows that fail validation are reported (file,
row, column, value, reason) and left out, good rows are added or update the stored ones by id,
and a file that cannot be read or lacks a required column stops the import with nothing
changed. Validation and normalisation run in DuckDB SQL (columns, not Python loops), with
every user value passed as data, never spliced into SQL.

Over 500 lines on purpose: reading, validating, placing and writing are the steps of one
transaction that share its staging views; split apart they would have to pass those around.
"""

from __future__ import annotations

import codecs
import csv
import os
import re
import tempfile
import uuid
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from analytics import geography, units
from analytics.columns import match_columns
from analytics.errors import InputError
from analytics.schema import (
    ACCOUNTS,
    H3_RESOLUTIONS,
    REPS,
    SALES,
    STAGE_HISTORY,
    TABLES,
    Field,
    TableSpec,
)
from analytics.stage_history import NEXT_CHANGE, refresh_deal_stages, store_stage_order
from analytics.store import Store

CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls"}
PARQUET_SUFFIXES = {".parquet", ".pq"}

US_NAMES = {"US", "USA", "U.S.", "U.S.A.", "UNITED STATES", "UNITED STATES OF AMERICA",
            "ETATS-UNIS", "ÉTATS-UNIS"}
FR_NAMES = {"FR", "FRA", "FRANCE", "FRANKREICH"}
WON_STAGES = {"won", "closed won", "closed/won", "win", "closed - won", "gagné", "gagne"}
LOST_STAGES = {"lost", "closed lost", "closed/lost", "loss", "closed - lost", "perdu"}
OPEN_STAGES = {
    "open", "pipeline", "prospecting", "qualification", "needs analysis",
    "value proposition", "id. decision makers", "perception analysis",
    "proposal/price quote", "negotiation/review", "engaging", "proposal", "negotiation",
    "discovery", "demo", "commit", "best case", "en cours",
}


# --------------------------------------------------------------------------------------
# reports
# --------------------------------------------------------------------------------------
@dataclass
class Rejection:
    """One reason one row was left out."""

    file: str
    row: int
    column: str
    value: str | None
    reason: str

    def __str__(self) -> str:
        shown = "(empty)" if self.value is None else repr(self.value)
        return f"{self.file}, row {self.row}, column {self.column!r}: {shown}: {self.reason}"


@dataclass
class TableReport:
    table: str
    file: str
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    removed: int = 0
    columns: dict[str, str] = field(default_factory=dict)
    rejected: list[Rejection] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def rejected_rows(self) -> int:
        return len({r.row for r in self.rejected})

    @property
    def stored(self) -> int:
        return self.inserted + self.updated


@dataclass
class ImportReport:
    tables: list[TableReport] = field(default_factory=list)
    committed: bool = False

    @property
    def rejections(self) -> list[Rejection]:
        return [r for t in self.tables for r in t.rejected]

    @property
    def clean(self) -> bool:
        return not self.rejections

    def frame(self) -> pd.DataFrame:
        """The rejection report as a table (REPORT_COLUMNS)."""
        return pd.DataFrame(
            [(r.file, r.row, r.column, r.value, r.reason) for r in self.rejections],
            columns=REPORT_COLUMNS,
        )

    def summary(self) -> str:
        lines = []
        for t in self.tables:
            line = (
                f"{t.table}: {t.file}: {t.rows} rows read, {t.inserted} added, "
                f"{t.updated} updated, {t.rejected_rows} rejected"
            )
            if t.removed:
                line += f", {t.removed} removed (replaced table)"
            lines.append(line)
            lines.extend(f"  note: {n}" for n in t.notes)
        if not self.committed:
            lines.append("nothing was stored")
        return "\n".join(lines)


class ImportRejected(InputError):
    """The import stored nothing; `report` says why row by row."""

    def __init__(self, message: str, report: ImportReport) -> None:
        super().__init__(message)
        self.report = report


# --------------------------------------------------------------------------------------
# column mapping
# --------------------------------------------------------------------------------------
NUMBER_MAX = 1e12
"""The largest magnitude a number field may hold (a trillion: any real potential, amount,
quota or visit count). 1e308 passed the finite check, then sums overflowed to infinity and
the Map and Coverage pages and the exports failed."""


REPORT_COLUMNS = ["file", "row", "column", "value", "reason"]
"""The rejection report's columns: an import's, and the Spark job's rejected table."""
DUPLICATE_ID = "duplicate %s: the same id is on rows %s (fix the file so each id appears once)"
"""A repeated id's reason (printf: the id's field, the rows that share it), in every engine."""
UNKNOWN_ACCOUNT = "account %s does not exist: import it in the accounts file first"
"""A deal of an account that is not imported (printf: the account id), in every engine."""


def parse_mapping(items: Iterable[str]) -> dict[str, dict[str, str]]:
    """`["accounts.lat=Y", ...]` -> `{"accounts": {"lat": "Y"}}`, checked against the specs."""
    out: dict[str, dict[str, str]] = {}
    for item in items or ():
        target, sep, source = item.partition("=")
        table, dot, fname = target.strip().partition(".")
        if not sep or not dot or not source.strip():
            raise InputError(
                f"--map {item!r}: expected table.field=Column, for example "
                "accounts.lat=BillingLatitude"
            )
        if table not in TABLES:
            raise InputError(f"--map {item!r}: unknown table {table!r}; expected "
                             + ", ".join(TABLES))
        spec = TABLES[table]
        if fname not in spec.names:
            raise InputError(f"--map {item!r}: {table} has no field {fname!r}; its fields are "
                             + ", ".join(spec.names))
        out.setdefault(table, {})[fname] = source.strip()
    return out


# --------------------------------------------------------------------------------------
# reading files
# --------------------------------------------------------------------------------------
def _utf8_copy(path: Path) -> Path | None:
    """None when the file is UTF-8; else a temporary UTF-8 copy, each line decoded on its
    own (UTF-8, else Windows-1252, else Latin-1): a file that mixes UTF-8 rows with rows
    saved by an older tool reads right instead of turning `Café` into `CafÃ©`."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        return None
    except UnicodeDecodeError:
        pass
    fd, tmp = tempfile.mkstemp(suffix=".csv", prefix="atlas-utf8-")
    with open(path, "rb") as src, os.fdopen(fd, "w", encoding="utf-8", newline="") as dst:
        for line in src:  # b"\n" is one byte in all three encodings: lines split alike
            try:
                dst.write(line.decode("utf-8"))
            except UnicodeDecodeError:
                try:
                    dst.write(line.decode("cp1252"))
                except UnicodeDecodeError:
                    dst.write(line.decode("latin-1"))
    return Path(tmp)


CSV_LINE_LIMIT = 2_097_152
"""DuckDB's CSV reader refuses a line longer than this many bytes (its max_line_size)."""


def _check_text_file(path: Path, label: str) -> None:
    """Refuse, with the reason, a .csv that is not a text table: binary content, a line over
    the reader's limit (with its row), or a header naming a column twice."""
    import csv as csv_module

    with open(path, "rb") as f:
        head = f.read(65536)
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError("the file is UTF-16 text (Excel's \"Unicode Text\"): save it as "
                         "CSV UTF-8, Excel (.xlsx) or Parquet", file=label)
    if b"\x00" in head:
        raise InputError("this is not a text file (it holds binary data): export the table "
                         "as CSV (UTF-8), Excel (.xlsx) or Parquet", file=label)
    with open(path, "rb") as f:
        for n, line in enumerate(f, start=1):
            if len(line) > CSV_LINE_LIMIT:
                raise InputError(
                    f"line {n} is {len(line):,} bytes long, over the {CSV_LINE_LIMIT:,}-byte "
                    "limit of a CSV line: a field holds something other than a value (a "
                    "pasted document, or a quote left open); fix or remove that row",
                    file=label)
    first = head.split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r")
    try:
        dialect = csv_module.Sniffer().sniff(first, delimiters=",;\t|")
        names = next(csv_module.reader([first], dialect))
    except (csv_module.Error, StopIteration):
        return  # one column, or no header to judge: the reader says more
    seen: dict[str, int] = {}
    for k, name in enumerate(names, start=1):
        key = name.strip().lower()
        if key and key in seen:
            raise InputError(f"the header names column {name.strip()!r} twice (columns "
                             f"{seen[key]} and {k}): rename or remove one, so it is clear "
                             "which one holds the data", file=label)
        seen[key] = k


def _has_formulas(path: Path) -> bool:
    """Whether any worksheet of an .xlsx holds a formula element (`<f>`), read as bytes:
    most workbooks hold none, and then need no second parse."""
    import zipfile

    marks = (b"<f>", b"<f ", b":f>", b":f ")
    try:
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if not (name.startswith("xl/worksheets/") and name.endswith(".xml")):
                    continue
                with z.open(name) as f:
                    tail = b""
                    while chunk := f.read(1 << 20):
                        block = tail + chunk
                        if any(m in block for m in marks):
                            return True
                        tail = block[-3:]
    except zipfile.BadZipFile:
        return False  # not a workbook: the reader says so
    return False


def _check_formula_values(path: Path, label: str) -> None:
    """Refuse a workbook whose formula cells carry no saved result: files written by a
    program rather than saved by Excel often hold only the formula, and reading the
    values would take those cells as empty (an account without a name, a deal of 0)."""
    from openpyxl import load_workbook

    if not _has_formulas(path):
        return

    formulas = load_workbook(path, read_only=True, data_only=False)
    values = load_workbook(path, read_only=True, data_only=True)
    try:
        header: list = []
        missing = []
        rows = zip(formulas.worksheets[0].iter_rows(), values.worksheets[0].iter_rows(),
                   strict=False)
        for n, (frow, vrow) in enumerate(rows, start=1):
            if n == 1:
                header = [c.value for c in vrow]
            for k, (f, v) in enumerate(zip(frow, vrow, strict=False)):
                if f.data_type == "f" and v.value is None:
                    name = header[k] if k < len(header) and header[k] is not None else \
                        f"column {k + 1}"
                    missing.append((n, str(name), str(f.value)[:60]))
            if len(missing) >= 5:
                break
    finally:
        formulas.close()
        values.close()
    if missing:
        where = "; ".join(f"row {r}, column {c!r}: {f}" for r, c, f in missing)
        raise InputError(
            f"formula cells with no saved value ({where}{'; ...' if len(missing) >= 5 else ''}"
            "): the file holds the formulas but not their results, which would import as "
            "empty. Open it in Excel (or LibreOffice) and save it, or paste the values",
            file=label)


def read_source(
    cur: duckdb.DuckDBPyConnection, path: Path, view: str, label: str | None = None
) -> list[str]:
    """Expose a file as a view `view` with a `__row` column; return its headers.

    `__row` is the row a spreadsheet shows (header is row 1) for CSV and Excel, and the
    1-based record number for Parquet.
    """
    label = label or str(path)
    if path.is_symlink():
        raise InputError("is a symbolic link: give the data file itself (the import reads "
                         "only the file you name, never where a link leads)", file=label)
    if not path.exists():
        raise InputError("file not found", file=label)
    if path.is_dir():
        raise InputError("is a folder, not a file", file=label)
    if not path.is_file():
        raise InputError("is not a regular file (a device or a pipe): give a CSV, Excel or "
                         "Parquet file", file=label)
    suffix = path.suffix.lower()
    lines = None
    cur.complete()  # DuckDB 2: the relation API needs no pending result on the connection
    try:
        if suffix in PARQUET_SUFFIXES:
            # scanned in place, streaming (no copy in memory); `load` turns off DuckDB's
            # statistics propagation, which trusts Parquet min/max (NaN left out) and would
            # fold NaN tests away
            rel = cur.read_parquet(str(path), file_row_number=True)
            headers = [c for c in rel.columns if c != "file_row_number"]
            rel.create_view(f"{view}_parquet", replace=True)
            cur.execute(
                f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT "
                f"CAST(file_row_number + 1 AS BIGINT) AS __row, * EXCLUDE (file_row_number) "
                f"FROM {view}_parquet"
            )
            return headers
        if suffix in EXCEL_SUFFIXES:
            if suffix in (".xlsx", ".xlsm"):
                _check_formula_values(path, label)
            frame = pd.read_excel(path, dtype=str, sheet_name=0)
            table = pa.Table.from_pandas(frame, preserve_index=False)
            offset = 2
        elif suffix in CSV_SUFFIXES or suffix == "":
            if path.stat().st_size == 0:
                raise InputError("the file is empty", file=label)
            _check_text_file(path, label)
            utf8 = _utf8_copy(path)
            try:
                rel = cur.read_csv(str(utf8 or path), all_varchar=True, header=True)
                table = rel.to_arrow_table()
                offset = 2
                lines = _record_lines(cur, utf8 or path, table.num_rows)
            finally:
                if utf8 is not None:
                    utf8.unlink(missing_ok=True)
        else:
            raise InputError(
                f"unsupported file type {suffix!r}: use .csv, .txt, .tsv, .xlsx or .parquet",
                file=label,
            )
    except InputError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        first = re.sub(r"\S*atlas-utf8-\S*\.csv", "the file", first)  # our temporary copy
        kind = {".xlsx": "Excel", ".xlsm": "Excel", ".xls": "Excel", ".parquet": "Parquet",
                ".pq": "Parquet"}.get(suffix, "CSV")
        raise InputError(
            f"cannot read the file as {kind}: {first}. Check that it is a {kind} file "
            "(re-export it, or save it as CSV UTF-8)",
            file=label,
        ) from exc
    headers = [str(c) for c in table.column_names]
    if lines is not None:
        rows = pa.array(lines)
    else:
        rows = pa.array(np.arange(offset, offset + table.num_rows, dtype=np.int64))
    table = table.append_column("__row", rows)
    name = f"{view}_arrow"
    cur.register(name, table)
    cur.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {name}")
    return headers


def _record_lines(cur, path: Path, n_records: int) -> np.ndarray | None:
    """The line each CSV record starts on, when the file has blank lines (else None).

    DuckDB's reader skips blank lines, so record numbers would drift from the rows a
    spreadsheet shows. Only files with a blank line pay for this second, Python read.
    """
    with open(path, "rb") as f:
        data = f.read()
    body = data.replace(b"\r\n", b"\n")
    if b"\n\n" not in body.rstrip(b"\n"):
        return None
    dialect = cur.execute(
        "SELECT Delimiter, Quote FROM sniff_csv(?, header = true)", [str(path)]
    ).fetchall()
    delimiter, quote = dialect[0] if dialect else (",", '"')
    delimiter = delimiter if delimiter and len(delimiter) == 1 else ","
    quote = quote if quote and len(quote) == 1 else '"'  # DuckDB says "(empty)" for none
    starts = []
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter=delimiter, quotechar=quote)
        previous = 0
        for record in reader:
            start, previous = previous + 1, reader.line_num
            if record:  # a blank line reads as []
                starts.append(start)
    starts = starts[1:]  # the header
    if len(starts) != n_records:  # a dialect the two readers see differently: keep order
        return None
    return np.asarray(starts, dtype=np.int64)


# --------------------------------------------------------------------------------------
# typed staging
# --------------------------------------------------------------------------------------
def _q(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def _lit(text: str) -> str:
    """A SQL string literal for fixed text written in this module (never user data)."""
    return "'" + text.replace("'", "''") + "'"


def date_format_counts(cur, view: str, column: str) -> tuple[int, int]:
    """(values only month-first reads, values only day-first reads) of a slash-date column
    (its header): summed over a file's parts, they decide its format (`date_format_of`)."""
    mdy, dmy = cur.execute(
        f"SELECT count(*) FILTER (WHERE try_strptime(v, '%m/%d/%Y') IS NULL "
        f"AND try_strptime(v, '%d/%m/%Y') IS NOT NULL), "
        f"count(*) FILTER (WHERE try_strptime(v, '%d/%m/%Y') IS NULL "
        f"AND try_strptime(v, '%m/%d/%Y') IS NOT NULL) "
        f"FROM (SELECT trim(CAST({_q(column)} AS VARCHAR)) AS v FROM {view})"
    ).fetchone()
    return int(mdy), int(dmy)


def date_format_of(mdy: int, dmy: int) -> str:
    """Day-first or month-first for slash dates, decided once per column."""
    return "%d/%m/%Y" if mdy > 0 and dmy == 0 else "%m/%d/%Y"


def _field_sql(cur, view: str, f: Field, src: str | None, src_type: str | None,
               date_format: str | None = None):
    """(value expression, raw text expression, error expression) for one field;
    `date_format`: the column's slash-date order when decided elsewhere (over a whole
    file read in parts), else decided here from `view`."""
    if src is None:
        null = {"number": "NULL::DOUBLE", "lat": "NULL::DOUBLE", "lon": "NULL::DOUBLE",
                "date": "NULL::DATE", "flag": "NULL::BOOLEAN"}.get(f.kind, "NULL::VARCHAR")
        return null, "NULL::VARCHAR", "NULL::VARCHAR"
    col = _q(src)
    raw = f"NULLIF(trim(CAST({col} AS VARCHAR)), '')"
    is_text = src_type is None or src_type.upper().startswith("VARCHAR")
    # "a value is there": typed columns are tested without turning them into text
    present = f"({raw} IS NOT NULL)" if is_text else f"({col} IS NOT NULL)"
    is_float = (src_type or "").upper() in ("DOUBLE", "FLOAT", "REAL", "FLOAT4", "FLOAT8")
    if f.kind in ("number", "lat", "lon"):
        if is_text:
            no_code = rf"regexp_replace({raw}, '^[A-Za-z]{{3}}\s+|\s+[A-Za-z]{{3}}$', '')"
            s = rf"regexp_replace({no_code}, '[\s\x{{00a0}}$€£¥]', '', 'g')"
            value = (
                f"TRY_CAST(CASE "
                rf"WHEN regexp_full_match({s}, '[-+]?\d{{1,3}}(,\d{{3}})+(\.\d*)?') "
                f"THEN replace({s}, ',', '') "
                rf"WHEN regexp_full_match({s}, '[-+]?\d{{1,3}}(\.\d{{3}})+,\d*') "
                f"THEN replace(replace({s}, '.', ''), ',', '.') "
                rf"WHEN regexp_full_match({s}, '[-+]?\d*,\d+') THEN replace({s}, ',', '.') "
                f"ELSE {s} END AS DOUBLE)"
            )
        else:
            value = f"TRY_CAST({col} AS DOUBLE)"
            if is_float:  # NaN is a missing number (`load` turns off the statistics
                # propagation that would fold isnan() away for Parquet columns)
                present = f"({col} IS NOT NULL AND NOT isnan({col}))"
                raw = f"(CASE WHEN NOT isnan({col}) THEN {raw} END)"
        value = f"(CASE WHEN isfinite({value}) THEN {value} END)"
        checks = [f"WHEN {present} AND {value} IS NULL THEN 'not a number'"]
        if f.kind == "lat":
            checks.append(
                f"WHEN {value} NOT BETWEEN -90 AND 90 THEN 'latitude must be between -90 and 90'"
            )
        if f.kind == "lon":
            checks.append(f"WHEN {value} NOT BETWEEN -180 AND 180 "
                          "THEN 'longitude must be between -180 and 180'")
        if f.minimum is not None:
            checks.append(f"WHEN {value} < {f.minimum} THEN 'must not be negative'")
        if f.kind not in ("lat", "lon"):
            checks.append(f"WHEN abs({value}) > {NUMBER_MAX:.0f} THEN 'too large: more than "
                          f"{NUMBER_MAX:,.0f}; check the column and its unit'")
    elif f.kind == "date":
        if is_text:
            fmt = date_format or date_format_of(*date_format_counts(cur, view, src))
            value = (
                f"COALESCE(TRY_CAST({raw} AS DATE), "
                f"CAST(try_strptime({raw}, '{fmt}') AS DATE), "
                f"CAST(try_strptime({raw}, '%Y/%m/%d') AS DATE), "
                f"CAST(try_strptime({raw}, '%d.%m.%Y') AS DATE), "
                f"CAST(try_strptime({raw}, '{fmt} %I:%M %p') AS DATE), "
                f"CAST(try_strptime({raw}, '{fmt} %H:%M') AS DATE), "
                f"CAST(TRY_CAST({raw} AS TIMESTAMP) AS DATE), "
                f"CAST(TRY_CAST({raw} AS TIMESTAMPTZ) AS DATE))"
            )
        else:
            value = f"TRY_CAST({col} AS DATE)"
        checks = [
            f"WHEN {present} AND {value} IS NULL "
            "THEN 'not a date (use YYYY-MM-DD, or MM/DD/YYYY)'"
        ]
    elif f.kind == "flag":
        value = (
            f"CASE WHEN lower({raw}) IN ('true', '1', 'yes', 'y', 't') THEN true "
            f"WHEN lower({raw}) IN ('false', '0', 'no', 'n', 'f') THEN false END"
        )
        checks = [f"WHEN {raw} IS NOT NULL AND ({value}) IS NULL THEN 'not true/false'"]
    else:  # text, id, postal, stage
        value = raw
        checks = []
    if f.required:
        missing = f"{raw} IS NULL" if is_text else f"NOT {present}"
        checks.insert(0, f"WHEN {missing} THEN 'missing value (this column is required)'")
    error = f"(CASE {' '.join(checks)} END)" if checks else "NULL::VARCHAR"
    return value, raw, error


def stage_table(
    cur, view: str, spec: TableSpec, chosen: dict[str, str], *, materialize: bool = True,
    date_formats: dict[str, str] | None = None, whole_file: bool = True,
) -> tuple[str, list[str]]:
    """Stage `t_<table>` with value, raw_ and err_ columns, and collect rejections in `rej`;
    return it and the fields whose values are checked.

    `materialize=False` makes `t_<table>` a view: DuckDB then computes only the columns a
    query reads (the big deal files never get their raw and error texts copied), and the
    checks wait for the table's rules, which run them in one scan (`scan_checks`).
    `whole_file=False`: `view` is one part of a file (the Spark job's partition): only the
    checks of single values run, ids repeated across parts are the caller's to find, and
    `date_formats` (field -> slash-date order) says what the whole file decided.
    """
    types = dict(cur.execute(f"SELECT column_name, column_type FROM "
                             f"(DESCRIBE SELECT * FROM {view})").fetchall())
    parts = ["__row"]
    checked = []
    for f in spec.fields:
        src = chosen.get(f.name)
        value, raw, error = _field_sql(cur, view, f, src, types.get(src) if src else None,
                                       (date_formats or {}).get(f.name))
        parts += [f"{value} AS {f.name}", f"{raw} AS raw_{f.name}", f"{error} AS err_{f.name}"]
        if src is not None and error != "NULL::VARCHAR":
            checked.append(f.name)
    table = f"t_{spec.name}"
    kind = "TABLE" if materialize else "VIEW"
    cur.execute(f"CREATE OR REPLACE TEMP {kind} {table} AS SELECT {', '.join(parts)} FROM {view}")
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE rej (__row BIGINT, col VARCHAR, value VARCHAR, "
        "reason VARCHAR)"
    )
    if materialize and whole_file:
        scan_checks(cur, table, spec, chosen, checked, {})
    elif materialize:
        value_checks(cur, table, spec, chosen, checked)
    return table, checked


def value_checks(cur, table: str, spec: TableSpec, chosen: dict[str, str],
                 checked: list[str], rows: str | None = None) -> None:
    """Rejections for values that did not parse (`err_<field>`), one per bad cell; `rows`:
    a query of the rows to look at (all when None)."""
    if not checked:
        return
    any_bad = " OR ".join(f"err_{n} IS NOT NULL" for n in checked)
    cols = ", ".join(f"raw_{n}, err_{n}" for n in checked)
    within = f" AND __row IN ({rows})" if rows else ""
    cur.execute(f"CREATE OR REPLACE TEMP TABLE bad AS SELECT __row, {cols} FROM {table} "
                f"WHERE ({any_bad}){within}")
    for n in checked:
        cur.execute(
            f"INSERT INTO rej SELECT __row, {_lit(chosen[n])}, raw_{n}, err_{n} "
            f"FROM bad WHERE err_{n} IS NOT NULL"
        )


def scan_checks(cur, table: str, spec: TableSpec, chosen: dict[str, str],
                checked: list[str], rules: dict[str, str]) -> set[str]:
    """One pass over a staged table or view: which rows have a bad value, which ids may
    repeat (by hash) and which rows break each of `rules` (name -> SQL condition on the
    row `s`).
    The detailed reports then read only what this found, so a clean 10M-row file is read
    once here instead of once per check. Returns the names of the rules some row breaks."""
    key = spec.key
    any_bad = " OR ".join(f"err_{n} IS NOT NULL" for n in checked) or "false"
    flags = "".join(f", ({cond}) AS rule_{i}" for i, cond in enumerate(rules.values()))
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE scan AS SELECT __row, "
        f"CASE WHEN {key} IS NOT NULL THEN hash({key}) END AS key_hash, "
        f"({any_bad}) AS bad{flags} FROM {table} s"
    )
    counts = cur.execute(
        "SELECT count(*) FILTER (WHERE bad)"
        + "".join(f", count(*) FILTER (WHERE rule_{i})" for i in range(len(rules)))
        + " FROM scan"
    ).fetchone()
    if counts[0]:
        value_checks(cur, table, spec, chosen, checked,
                     rows="SELECT __row FROM scan WHERE bad")
    # ids that may repeat: equal hashes, found by sorting them (a DuckDB GROUP BY of 10M
    # distinct hashes took 2.8 s, the sort 1 s)
    hashes = np.asarray(cur.execute("SELECT key_hash FROM scan WHERE key_hash IS NOT NULL")
                        .fetchnumpy()["key_hash"], dtype=np.uint64)
    hashes.sort()
    repeated = np.unique(hashes[1:][hashes[1:] == hashes[:-1]])
    cur.execute("CREATE OR REPLACE TEMP TABLE dup_hashes (key_hash UBIGINT)")
    if len(repeated):
        cur.execute("INSERT INTO dup_hashes SELECT unnest(?::UBIGINT[])",
                    [repeated.tolist()])
    cur.execute(  # the repeated ids, looked for only among equal hashes
        f"CREATE OR REPLACE TEMP TABLE dup_keys AS SELECT {key} FROM {table} "
        f"WHERE {key} IS NOT NULL AND hash({key}) IN (SELECT key_hash FROM dup_hashes) "
        f"GROUP BY {key} HAVING count(*) > 1"
        if len(repeated) else
        f"CREATE OR REPLACE TEMP TABLE dup_keys AS SELECT {key} FROM {table} LIMIT 0"
    )
    if len(repeated):
        duplicate_rows(cur, table, spec, chosen)
    return {name for name, n in zip(rules, counts[1:], strict=True) if n}


def duplicate_rows(cur, table: str, spec: TableSpec, chosen: dict[str, str]) -> None:
    """Rejections for every row of an id in `dup_keys`, naming the rows that share it."""
    key = spec.key
    cur.execute(
        f"""INSERT INTO rej
        SELECT t.__row, {_lit(chosen[key])}, t.{key},
               printf({_lit(DUPLICATE_ID)}, {_lit(key)}, d.rows_list)
        FROM (SELECT __row, {key} FROM {table} WHERE {key} IN (SELECT {key} FROM dup_keys)) t
        JOIN (
            SELECT {key}, string_agg(CAST(__row AS VARCHAR), ', ' ORDER BY __row) AS rows_list
            FROM {table} WHERE {key} IN (SELECT {key} FROM dup_keys) GROUP BY {key}
        ) d USING ({key})"""
    )


# --------------------------------------------------------------------------------------
# per-table rules
# --------------------------------------------------------------------------------------
def accounts_rules(cur, chosen: dict[str, str], report: TableReport) -> None:
    lat_c, lon_c = chosen.get("lat", "lat"), chosen.get("lon", "lon")
    zeros = cur.execute(
        "SELECT count(*) FROM t_accounts WHERE lat = 0 AND lon = 0"
    ).fetchone()[0]
    if zeros:
        cur.execute("UPDATE t_accounts SET lat = NULL, lon = NULL WHERE lat = 0 AND lon = 0")
        report.notes.append(
            f"{zeros} rows had coordinates 0,0 (an empty geocode); placed by postal code"
        )
    cur.execute(
        f"""INSERT INTO rej
        SELECT __row, CASE WHEN lat IS NULL THEN {_lit(lat_c)} ELSE {_lit(lon_c)} END,
               CASE WHEN lat IS NULL THEN raw_lat ELSE raw_lon END,
               'latitude and longitude must be given together'
        FROM t_accounts
        WHERE (lat IS NULL) <> (lon IS NULL) AND err_lat IS NULL AND err_lon IS NULL"""
    )
    # country and postal code, normalised; then placement by postal code where needed
    us = ", ".join(_lit(x) for x in sorted(US_NAMES))
    fr = ", ".join(_lit(x) for x in sorted(FR_NAMES))
    cur.execute(
        f"""CREATE OR REPLACE TEMP TABLE p_accounts AS
        WITH c AS (
            SELECT __row, account_id, lat, lon, raw_postal_code,
                   regexp_replace(coalesce(postal_code, ''), '\\s', '', 'g') AS pc,
                   CASE WHEN upper(trim(country)) IN ({us}) THEN 'US'
                        WHEN upper(trim(country)) IN ({fr}) THEN 'FR'
                        WHEN country IS NOT NULL THEN upper(trim(country))
                        WHEN lat BETWEEN 41.3 AND 51.1 AND lon BETWEEN -5.2 AND 9.6 THEN 'FR'
                        ELSE 'US' END AS country
            FROM t_accounts WHERE __row NOT IN (SELECT __row FROM rej)
        ), n AS (
            SELECT *,
              CASE WHEN country = 'US' AND regexp_full_match(pc, '\\d{{3,5}}(-\\d{{4}})?')
                   THEN lpad(split_part(pc, '-', 1), 5, '0') END AS zip5,
              CASE WHEN country = 'FR' AND regexp_full_match(pc, '\\d{{4,5}}')
                   THEN lpad(pc, 5, '0') END AS fr_pc
            FROM c
        ), fr_pick AS (
            SELECT n.__row,
                   arg_min(r.commune, CASE WHEN n.lat IS NULL THEN -r.population
                       ELSE (r.lat - n.lat) ^ 2 + ((r.lon - n.lon) * cos(radians(n.lat))) ^ 2
                       END) AS commune,
                   arg_max(r.departement, r.population) AS dept,
                   arg_max(r.lat, r.population) AS lat,
                   arg_max(r.lon, r.population) AS lon
            FROM n JOIN read_parquet(?) r ON r.postal_code = n.fr_pc
            GROUP BY n.__row
        )
        SELECT n.__row, n.account_id, n.raw_postal_code, n.country,
               coalesce(n.lat, z.lat, f.lat) AS lat, coalesce(n.lon, z.lon, f.lon) AS lon,
               CASE WHEN n.lat IS NOT NULL THEN 'file'
                    WHEN z.lat IS NOT NULL OR f.lat IS NOT NULL THEN 'postal_code' END
                 AS placed_by,
               CASE WHEN n.country = 'US' THEN n.zip5 WHEN n.country = 'FR' THEN n.fr_pc
                    ELSE nullif(n.pc, '') END AS postal_code,
               n.zip5, left(n.zip5, 3) AS zip3, z.state AS zip_state,
               f.commune AS fr_commune,
               CASE WHEN f.dept IS NOT NULL THEN f.dept
                    WHEN n.fr_pc LIKE '97%' THEN left(n.fr_pc, 3)
                    WHEN n.fr_pc LIKE '20%' THEN
                         CASE WHEN n.fr_pc < '20200' THEN '2A' ELSE '2B' END
                    ELSE left(n.fr_pc, 2) END AS fr_dept
        FROM n
        LEFT JOIN read_parquet(?) z ON z.zip = n.zip5
        LEFT JOIN fr_pick f ON f.__row = n.__row""",
        [str(geography.FR_POSTAL_FILE), str(geography.US_ZIP_FILE)],
    )
    pc_col = chosen.get("postal_code", "postal_code")
    cur.execute(
        f"""INSERT INTO rej
        SELECT __row, {_lit(pc_col)}, raw_postal_code,
          CASE WHEN raw_postal_code IS NULL
               THEN 'no coordinates and no postal code: add lat/lon or a postal code'
               WHEN country NOT IN ('US', 'FR')
               THEN 'no coordinates, and postal codes are placed only for US and France '
                    || '(country ' || country || '): add lat/lon'
               ELSE 'no coordinates, and this postal code is not in the shipped ' ||
                    CASE country WHEN 'US' THEN 'US ZIP' ELSE 'French postal code' END ||
                    ' reference: add lat/lon or correct the postal code' END
        FROM p_accounts WHERE lat IS NULL"""
    )
    placed = cur.execute(
        "SELECT count(*) FROM p_accounts WHERE placed_by = 'postal_code'"
    ).fetchone()[0]
    if placed:
        report.notes.append(f"{placed} accounts had no coordinates and were placed by "
                            "postal code")


def accounts_final(cur, keep_row: bool = False) -> pa.Table:
    """Valid accounts with every unit column computed (vectorised), in file order;
    `keep_row` keeps each one's `__row`."""
    cur.complete()
    rel = cur.sql(
        """SELECT t.__row, t.account_id, t.name, p.lat, p.lon, p.postal_code, p.country, t.segment,
                  t.industry, coalesce(t.potential, 0) AS potential, t.owner_rep_id,
                  t.last_activity_date, t.visits_per_year, p.placed_by, p.zip5, p.zip3,
                  p.zip_state, p.fr_dept, p.fr_commune
           FROM t_accounts t JOIN p_accounts p USING (__row)
           WHERE t.__row NOT IN (SELECT __row FROM rej)
           ORDER BY t.__row"""
    )
    table = rel.to_arrow_table()
    lat = table.column("lat").to_numpy()
    lon = table.column("lon").to_numpy()
    is_us = pc_equal(table.column("country"), "US")
    cells = units.h3_cells(lat, lon)
    county = geography.locate_county(lat, lon, is_us, cells["h3_r8"])
    state = np.array(
        [geography.STATE_FIPS.get(c[:2]) if c else None for c in county], dtype=object
    )
    zip_state = table.column("zip_state").to_numpy(zero_copy_only=False)
    state = np.where(pd.isna(state) & is_us, zip_state, state)
    # French accounts with coordinates but no usable postal code: the departement they lie in
    fr_dept = table.column("fr_dept").to_numpy(zero_copy_only=False).astype(object)
    no_dept = pc_equal(table.column("country"), "FR") & pd.isna(fr_dept)
    if no_dept.any():
        fr_dept[no_dept] = geography.locate("fr_dept", lat[no_dept], lon[no_dept], 0.1)
        table = table.set_column(table.schema.get_field_index("fr_dept"), "fr_dept",
                                 pa.array(fr_dept, pa.string()))
    table = table.drop_columns(["zip_state"])
    table = table.append_column("county", pa.array(county, pa.string()))
    table = table.append_column("state", pa.array(state, pa.string()))
    for name, arr in cells.items():
        table = table.append_column(name, pa.array(arr, pa.int64()))
    # same column order as the table
    order = [
        "account_id", "name", "lat", "lon", "postal_code", "country", "segment", "industry",
        "potential", "owner_rep_id", "last_activity_date", "visits_per_year", "placed_by",
        "zip5", "zip3", "county", "state", "fr_dept", "fr_commune",
        *[f"h3_r{r}" for r in H3_RESOLUTIONS],
    ]
    return table.select(["__row", *order] if keep_row else order)


def pc_equal(column: pa.ChunkedArray, value: str) -> np.ndarray:
    return np.asarray(column.to_numpy(zero_copy_only=False) == value, dtype=bool)


def sales_stage_view(cur, chosen: dict[str, str], report: TableReport) -> None:
    """`s_sales`: the staged deals with each one's stage class (`stage_norm`)."""
    stage_c = chosen.get("stage")
    has_flags = "is_won" in chosen and "is_closed" in chosen
    won = ", ".join(_lit(s) for s in sorted(WON_STAGES))
    lost = ", ".join(_lit(s) for s in sorted(LOST_STAGES))
    opn = ", ".join(_lit(s) for s in sorted(OPEN_STAGES))
    if has_flags:
        stage_sql = ("CASE WHEN is_won THEN 'won' WHEN is_closed THEN 'lost' "
                     "WHEN is_closed = false THEN 'open' END")
    elif stage_c:
        stage_sql = (f"CASE WHEN lower(trim(stage)) IN ({won}) THEN 'won' "
                     f"WHEN lower(trim(stage)) IN ({lost}) THEN 'lost' "
                     f"WHEN lower(trim(stage)) IN ({opn}) THEN 'open' END")
    else:  # orders / invoices exports: every row is a booked sale
        stage_sql = "'won'"
        report.notes.append(
            "no stage column (nor IsWon/IsClosed): every row is counted as a won sale; map "
            "one with --map sales.stage=COLUMN if the file holds open or lost deals"
        )
    cur.execute(f"CREATE OR REPLACE TEMP VIEW s_sales AS SELECT *, {stage_sql} AS stage_norm "
                "FROM t_sales")


def sales_row_rules(chosen: dict[str, str]) -> dict[str, str]:
    """The deal rules that look at one row alone (name -> SQL condition on the row `s`)."""
    stage_c = chosen.get("stage")
    has_flags = "is_won" in chosen and "is_closed" in chosen
    rules = {}
    if "created_date" in chosen:
        rules["created"] = "s.created_date > s.close_date"
    if stage_c and not has_flags:
        rules["stage"] = "s.stage_norm IS NULL"
    elif has_flags:
        rules["stage"] = ("s.stage_norm IS NULL AND s.err_is_closed IS NULL "
                          "AND s.err_is_won IS NULL")
    return rules


def sales_row_rejections(cur, chosen: dict[str, str], broken: set[str]) -> None:
    """Rejections of the single-row rules in `broken` (names of `sales_row_rules`)."""
    stage_c = chosen.get("stage")
    has_flags = "is_won" in chosen and "is_closed" in chosen
    if "stage" in broken and stage_c and not has_flags:
        cur.execute(
            f"""INSERT INTO rej SELECT __row, {_lit(stage_c)}, raw_stage,
            CASE WHEN raw_stage IS NULL THEN 'missing stage'
                 ELSE 'unknown stage: use won, open or lost (or Closed Won / Closed Lost / '
                      || 'an open Salesforce stage), or map IsWon and IsClosed' END
            FROM s_sales WHERE stage_norm IS NULL"""
        )
    elif "stage" in broken:
        cur.execute(
            f"""INSERT INTO rej SELECT __row, {_lit(chosen['is_closed'])}, raw_is_closed,
            'missing IsClosed/IsWon value' FROM s_sales
            WHERE stage_norm IS NULL AND err_is_closed IS NULL AND err_is_won IS NULL"""
        )
    if "created" in broken:
        cur.execute(
            f"""INSERT INTO rej SELECT __row, {_lit(chosen['created_date'])}, raw_created_date,
            'created after its close date (' || CAST(close_date AS VARCHAR) || '): check '
            || 'the created and close date columns'
            FROM s_sales WHERE created_date > close_date"""
        )


def _sales_rules(cur, chosen, checked: list[str], report: TableReport,
                 account_source: str) -> None:
    sales_stage_view(cur, chosen, report)
    rules = {"account": ("s.account_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
                         f"{account_source} a WHERE a.account_id = s.account_id)"),
             **sales_row_rules(chosen)}
    broken = scan_checks(cur, "s_sales", SALES, chosen, checked, rules)
    sales_row_rejections(cur, chosen, broken)
    if "account" in broken:
        cur.execute(
            f"""INSERT INTO rej SELECT s.__row, {_lit(chosen['account_id'])}, s.account_id,
            printf({_lit(UNKNOWN_ACCOUNT)}, s.account_id)
            FROM t_sales s
            WHERE s.account_id IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM {account_source} a
                              WHERE a.account_id = s.account_id)"""
        )


STAGE_FIELD_NAMES = ("stagename", "stage", "stage name")
"""OpportunityFieldHistory rows count only when their Field is one of these (any case)."""


def stage_class_sql(column: str) -> str:
    """SQL of a stage name's class: won, lost, else open (a custom pipeline stage)."""
    won = ", ".join(_lit(s) for s in sorted(WON_STAGES))
    lost = ", ".join(_lit(s) for s in sorted(LOST_STAGES))
    return (f"CASE WHEN lower(trim({column})) IN ({won}) THEN 'won' "
            f"WHEN lower(trim({column})) IN ({lost}) THEN 'lost' ELSE 'open' END")


def _history_rules(cur, chosen, checked: list[str], report: TableReport) -> str:
    """Stage history rows: bad values and unknown deals rejected; field-history rows of
    other fields skipped (noted). Returns the view of the rows to read."""
    if "field" in chosen:
        names = ", ".join(_lit(n) for n in STAGE_FIELD_NAMES)
        skipped = cur.execute(
            f"SELECT count(*) FROM t_stage_history WHERE field IS NOT NULL "
            f"AND lower(trim(field)) NOT IN ({names})").fetchone()[0]
        cur.execute(f"CREATE OR REPLACE TEMP VIEW h_stage_history AS SELECT * FROM "
                    f"t_stage_history WHERE field IS NULL OR lower(trim(field)) IN ({names})")
        if skipped:
            report.notes.append(f"{skipped} rows change other fields than the stage; "
                                "skipped")
    else:
        cur.execute("CREATE OR REPLACE TEMP VIEW h_stage_history AS "
                    "SELECT * FROM t_stage_history")
    value_checks(cur, "h_stage_history", STAGE_HISTORY, chosen, checked)
    cur.execute(
        f"""INSERT INTO rej SELECT h.__row, {_lit(chosen['opportunity_id'])},
        h.opportunity_id, 'deal ' || h.opportunity_id || ' does not exist: import it in '
        || 'the deals file first'
        FROM h_stage_history h
        WHERE h.opportunity_id IS NOT NULL AND h.err_changed_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM sales s WHERE s.opportunity_id = h.opportunity_id)"""
    )
    return "h_stage_history"


def _write_history(cur, report: TableReport, replace: bool) -> None:
    """A deal's history in the file replaces the one stored for it (all of it with
    `replace`); identical rows count once."""
    cur.execute(
        f"""CREATE OR REPLACE TEMP TABLE new_history AS
        WITH rows AS (
            SELECT DISTINCT opportunity_id, trim(stage) AS stage,
                   {stage_class_sql('stage')} AS stage_class, changed_at
            FROM h_stage_history WHERE __row NOT IN (SELECT __row FROM rej))
        SELECT *, {NEXT_CHANGE} - changed_at AS days_in_stage FROM rows"""
    )
    if replace:
        report.removed = cur.execute("SELECT count(*) FROM stage_history").fetchone()[0]
        cur.execute("DELETE FROM stage_history")
    else:
        report.updated = cur.execute(
            "SELECT count(*) FROM stage_history WHERE opportunity_id IN "
            "(SELECT opportunity_id FROM new_history)").fetchone()[0]
        cur.execute("DELETE FROM stage_history WHERE opportunity_id IN "
                    "(SELECT opportunity_id FROM new_history)")
        if report.updated:
            report.notes.append(f"{report.updated} stored stage changes of the same deals "
                                "were replaced by the file's")
    total = cur.execute("INSERT INTO stage_history BY NAME SELECT * FROM new_history") \
        .fetchone()[0]
    report.inserted, report.updated = total, 0
    refresh_deal_stages(cur, None if replace else "SELECT opportunity_id FROM new_history")
    store_stage_order(cur)


# --------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------
def _collect(cur, report: TableReport, table: str) -> None:
    report.rows = cur.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    for row, col, value, reason in cur.execute(
        "SELECT __row, col, value, reason FROM rej ORDER BY __row, col"
    ).fetchall():
        report.rejected.append(Rejection(report.file, int(row), col, value, reason))


def _write(cur, spec: TableSpec, source: str, report: TableReport, replace: bool) -> None:
    key = spec.key
    existing = cur.execute(f"SELECT count(*) FROM {spec.name}").fetchone()[0]
    if replace:
        if existing:
            report.updated = cur.execute(
                f"SELECT count(*) FROM {source} WHERE {key} IN (SELECT {key} FROM {spec.name})"
            ).fetchone()[0]
            report.removed = existing - report.updated
            cur.execute(f"DELETE FROM {spec.name}")
    elif existing:
        report.updated = cur.execute(
            f"SELECT count(*) FROM {spec.name} WHERE {key} IN (SELECT {key} FROM {source})"
        ).fetchone()[0]
        if report.updated:
            cur.execute(
                f"DELETE FROM {spec.name} WHERE {key} IN (SELECT {key} FROM {source})"
            )
    total = cur.execute(f"INSERT INTO {spec.name} BY NAME SELECT * FROM {source}").fetchone()[0]
    report.inserted = total - report.updated


def load(
    store: Store,
    *,
    accounts: str | Path | None = None,
    sales: str | Path | None = None,
    reps: str | Path | None = None,
    stage_history: str | Path | None = None,
    mapping: dict[str, dict[str, str]] | None = None,
    replace: bool = False,
    all_or_nothing: bool = False,
    labels: dict[str, str] | None = None,
    allow_empty: bool = False,
) -> ImportReport:
    """Import the given files in one transaction and return the report.

    Rows that fail validation are left out and reported; the others are stored (added, or
    replacing the stored record with the same id). `replace=True` empties each loaded table
    first, and is refused unless its file imported with no rejected row, and (unless
    `allow_empty`) when its file holds no row while the table holds some: an empty export
    would otherwise wipe every account and deal.
    `all_or_nothing=True` stores nothing when any row is rejected. `labels` names the
    files in messages (for uploads saved under a temporary name).
    Raises `InputError` (nothing stored) for unreadable files or missing required columns,
    `ImportRejected` (nothing stored) when `all_or_nothing` or `replace` refuse.
    """
    from analytics import users

    users.require("import data")
    mapping = mapping or {}
    files = {"reps": reps, "accounts": accounts, "sales": sales,
             "stage_history": stage_history}
    if not any(files.values()):
        raise InputError("nothing to load: give --accounts, --sales, --reps and/or "
                         "--stage-history")
    if store.attached_from and (accounts or sales or reps):
        raise InputError(
            f"this database reads its accounts and deals from the Spark job's output "
            f"{store.attached_from}: run the job on the new files and attach its output "
            "again (docs/scale-out.md); a stage history file can still be loaded here",
            file=str(store.path))
    report = ImportReport()
    accounts_source = "accounts"  # where this import's accepted accounts are read
    with _no_statistics_folding(store), store.transaction() as cur:
        for name in ("reps", "accounts", "sales", "stage_history"):
            path = files[name]
            if path is None:
                continue
            spec = TABLES[name]
            label = (labels or {}).get(name) or str(path)
            tr = TableReport(name, label)
            report.tables.append(tr)
            view = f"raw_{name}"
            headers = read_source(cur, Path(path), view, label)
            chosen = match_columns(headers, spec, mapping.get(name), file=label)
            tr.columns = chosen
            table, checked = stage_table(cur, view, spec, chosen,
                                    materialize=name not in ("sales", "stage_history"))
            if name == "stage_history":
                table = _history_rules(cur, chosen, checked, tr)
            elif name == "accounts":
                accounts_rules(cur, chosen, tr)
            elif name == "sales":
                source = "accounts"
                if files["accounts"] is not None:
                    source = (f"(SELECT account_id FROM {accounts_source})" if replace else
                              "(SELECT account_id FROM accounts UNION ALL "
                              f"SELECT account_id FROM {accounts_source})")
                _sales_rules(cur, chosen, checked, tr, source)
            _collect(cur, tr, table)
            if replace and not allow_empty and tr.rows == 0:
                held = cur.execute(f"SELECT count(*) FROM {spec.name}").fetchone()[0]
                if held:
                    more = (" and their deals" if name == "accounts" else "")
                    raise InputError(
                        f"{label}: the file holds no {name} rows (a header at most), and "
                        f"--replace would delete all {held:,} stored {name}{more}; nothing "
                        "was changed. Check the file, or give --allow-empty to empty the "
                        "table on purpose")
            if replace and tr.rejected:
                raise ImportRejected(
                    f"{tr.file}: --replace needs a file that imports cleanly, and "
                    f"{tr.rejected_rows} rows were rejected; nothing was changed",
                    report,
                )
            if name == "reps":
                cur.execute(
                    """CREATE OR REPLACE TEMP TABLE new_reps AS
                    SELECT rep_id, name, home_lat, home_lon,
                           coalesce(annual_quota, 0) AS annual_quota, capacity_hours,
                           manager_id, region
                    FROM t_reps WHERE __row NOT IN (SELECT __row FROM rej) ORDER BY __row"""
                )
                _write(cur, REPS, "new_reps", tr, replace)
            elif name == "accounts":
                accounts_source = _new_accounts(cur, accounts_final(cur))
                _write(cur, ACCOUNTS, accounts_source, tr, replace)
                if replace:
                    _drop_orphans(cur, tr, sales_loaded=files["sales"] is not None)
            elif name == "sales":
                cur.execute(  # a view: the deals are read once more, never copied
                    """CREATE OR REPLACE TEMP VIEW new_sales AS
                    SELECT s.opportunity_id, s.account_id, a.account_key, s.amount,
                           s.close_date, s.stage_norm AS stage, s.product, s.rep_id,
                           s.created_date, s.lead_source, s.lost_to, s.loss_reason
                    FROM s_sales s JOIN accounts a ON a.account_id = s.account_id
                    WHERE s.__row NOT IN (SELECT __row FROM rej)"""
                )
                _write(cur, SALES, "new_sales", tr, replace)
                if replace:
                    _drop_orphan_history(cur)
            elif name == "stage_history":
                _write_history(cur, tr, replace)
            else:
                raise AssertionError(name)
        if all_or_nothing and not report.clean:
            bad_rows = sum(t.rejected_rows for t in report.tables)
            raise ImportRejected(
                f"{len(report.rejections)} problems in {bad_rows} rows; nothing was stored "
                "(all-or-nothing import)",
                report,
            )
        store.set_meta("data_version", _new_version(), cur)
        report.committed = True
    return report


def _new_accounts(cur, final: pa.Table) -> str:
    """The accepted accounts with their integer keys: the name to read them by.

    An account keeps its key across updates; new ones get keys above the largest stored.
    When no stored account is there (a first import, the usual big one) the keys are
    numbered in Arrow and the table is not copied again (1.3 s of a 1M-account import).
    """
    if cur.execute("SELECT count(*) FROM accounts").fetchall()[0][0] == 0:
        keyed = final.append_column("account_key",
                                    pa.array(np.arange(1, final.num_rows + 1), pa.int64()))
        cur.register("new_accounts_arrow", keyed)
        return "new_accounts_arrow"
    cur.register("new_accounts_arrow", final)
    cur.execute(
        """CREATE OR REPLACE TEMP TABLE new_accounts AS
        SELECT n.*, coalesce(a.account_key,
            (SELECT coalesce(max(account_key), 0) FROM accounts)
            + row_number() OVER ()) AS account_key
        FROM new_accounts_arrow n LEFT JOIN accounts a USING (account_id)"""
    )
    return "new_accounts"


def _new_version() -> str:
    """A fresh token for caches keyed on the data (any import changes it)."""
    return uuid.uuid4().hex


@contextmanager
def _no_statistics_folding(store: Store):
    """Parquet statistics leave NaN out; with them DuckDB decides `isnan(x)` is false.

    The setting is global to the database, so it is set and reset on a cursor of its own,
    outside the import's transaction (an aborted transaction refuses any statement).
    """
    cur = store.cursor()
    cur.execute("SET disabled_optimizers = 'statistics_propagation'")
    try:
        yield
    finally:
        cur.execute("RESET disabled_optimizers")
        cur.close()


def _drop_orphan_history(cur) -> None:
    """The history of deals no longer stored goes with them."""
    for table in ("stage_history", "deal_stages"):
        cur.execute(f"DELETE FROM {table} WHERE opportunity_id NOT IN "
                    "(SELECT opportunity_id FROM sales)")
    store_stage_order(cur)


def _drop_orphans(cur, tr: TableReport, sales_loaded: bool) -> None:
    """After replacing accounts: deals and pins of accounts that are gone go too."""
    if not sales_loaded:
        gone = cur.execute(
            "SELECT count(*) FROM sales WHERE account_id NOT IN (SELECT account_id FROM accounts)"
        ).fetchone()[0]
        if gone:
            cur.execute(
                "DELETE FROM sales WHERE account_id NOT IN (SELECT account_id FROM accounts)"
            )
            tr.notes.append(f"{gone} deals of accounts no longer in the file were removed")
        _drop_orphan_history(cur)
    cur.execute(
        "DELETE FROM account_overrides WHERE account_id NOT IN (SELECT account_id FROM accounts)"
    )
