"""Careless and hostile input to the command line: each refused with a clear message and
exit 2, and nothing stored changed (a snapshot of every table before and after)."""

from __future__ import annotations

import pytest
from conftest import snapshot, write_csv

from analytics.cli import main
from analytics.store import Store


@pytest.mark.parametrize("body", [[], [["account_id", "name", "lat", "lon"]]],
                         ids=["empty", "header only"])
def test_replace_with_an_empty_file_is_refused(small_copy, tmp_path, capsys, body):
    path = tmp_path / "accounts.csv"
    if body:
        write_csv(path, body)
    else:
        path.write_text("")
    with Store(small_copy) as s:
        before = snapshot(s)
        held = s.cursor().execute("SELECT count(*) FROM accounts").fetchone()[0]
    code = main(["load", "--db", str(small_copy), "--accounts", str(path), "--replace"])
    err = capsys.readouterr().err
    assert code == 2
    if body:  # header only: the row count and the way out are named
        assert f"would delete all {held:,} stored accounts and their deals" in err
        assert "--allow-empty" in err
    with Store(small_copy) as s:
        assert snapshot(s) == before


def test_replace_with_an_empty_file_on_purpose(small_copy, tmp_path, capsys):
    path = write_csv(tmp_path / "reps.csv", [["rep_id", "name"]])
    code = main(["load", "--db", str(small_copy), "--reps", str(path), "--replace",
                 "--allow-empty"])
    assert code == 0, capsys.readouterr().err
    with Store(small_copy) as s:
        assert s.cursor().execute("SELECT count(*) FROM reps").fetchone()[0] == 0


@pytest.mark.parametrize(("argv", "needle"), [
    (["summary", "--out", "{tmp}/missing/out.csv"], "does not exist"),
    (["summary", "--out", "{tmp}"], "is a folder"),
    (["plan", "list", "--out", "{tmp}/no/such/dir/x.json", "--format", "json"],
     "does not exist"),
    (["export", "--format", "xlsx", "--out", "{tmp}/missing/plan.xlsx"], "does not exist"),
    (["load", "--accounts", "{accounts}", "--report", "{tmp}/missing/rejected.csv"],
     "does not exist"),
    (["load", "--accounts", "{accounts}", "--report", "{tmp}"], "is a folder"),
])
def test_outputs_are_checked_before_any_work(small_copy, tmp_path, capsys, argv, needle):
    accounts = write_csv(tmp_path / "accounts.csv", [
        ["account_id", "name", "lat", "lon", "potential"],
        ["NEW1", "New", "42.36", "-71.06", "not a number"],
        ["NEW2", "New", "41.88", "-87.63", "100"],
    ])
    with Store(small_copy) as s:
        before = snapshot(s)
    args = [a.format(tmp=tmp_path, accounts=accounts) for a in argv]
    words = 2 if args[0] == "plan" else 1  # the command's own words, then --db
    code = main([*args[:words], "--db", str(small_copy), *args[words:]])
    err = capsys.readouterr().err
    assert code == 2, err
    assert needle in err
    with Store(small_copy) as s:
        assert snapshot(s) == before  # load --report into a missing folder stored nothing


@pytest.mark.parametrize(("argv", "needle"), [
    (["plan", "create", "--unit", "county", "--name", "x" * 5000], "at most 200 characters"),
    (["plan", "create", "--unit", "county", "--name", "a\x1b[2Jb"], "control characters"),
    (["plan", "create", "--unit", "county", "--name", "   "], "needs a name"),
    (["plan", "rename", "--name", "y" * 201], "at most 200 characters"),
    (["plan", "territory", "T1", "--name", "z" * 300], "at most 200 characters"),
])
def test_names_are_bounded(small_copy, capsys, argv, needle):
    with Store(small_copy) as s:
        before = snapshot(s)
    code = main([*argv[:2], "--db", str(small_copy), *argv[2:]])
    err = capsys.readouterr().err
    assert code == 2, err
    assert needle in err
    assert len(err) < 500  # the message quotes the start of the name, not all of it
    with Store(small_copy) as s:
        assert snapshot(s) == before


def test_a_long_name_still_exports_to_a_file(small_copy, tmp_path, capsys):
    name = "Q" * 200  # the longest allowed: the file name is cut, the export works
    assert main(["plan", "clone", "--db", str(small_copy), "--name", name]) == 0
    assert main(["export", "--db", str(small_copy), "--plan", name, "--format", "xlsx",
                 "--out", str(tmp_path)]) == 0, capsys.readouterr().err
    written = list(tmp_path.glob("*.xlsx"))
    assert [len(p.name) for p in written] == [100 + len(".xlsx")]


@pytest.mark.parametrize("value", ["1e308", "-1e308", "1e13", "inf", "NaN", "1e999"])
def test_numbers_too_large_are_rejected_by_row_and_column(tmp_path, capsys, value):
    acc = write_csv(tmp_path / "accounts.csv", [
        ["account_id", "name", "lat", "lon", "potential"],
        ["A1", "Boston", "42.36", "-71.06", value],
        ["A2", "Chicago", "41.88", "-87.63", "1000000000000"],  # the limit itself: fine
    ])
    db = tmp_path / "x.duckdb"
    code = main(["load", "--db", str(db), "--accounts", str(acc)])
    err = capsys.readouterr().err
    assert code == 2
    assert "row 2" in err
    assert "potential" in err
    assert any(why in err for why in ("too large", "not a number", "must not be negative"))
    with Store(db) as s:
        got = s.cursor().execute("SELECT account_id, potential FROM accounts").fetchall()
    assert got == [("A2", 1e12)]


def _accounts_file(tmp_path, raw: bytes):
    path = tmp_path / "accounts.csv"
    path.write_bytes(raw)
    return path


@pytest.mark.parametrize(("raw", "needle"), [
    (b"account_id,name,name,lat,lon\nA1,Alpha,Beta,42.36,-71.06\n",
     "names column 'name' twice (columns 2 and 3)"),
    (b"account_id;Name;lat;NAME\nA1;x;42.36;y\n", "twice (columns 2 and 4)"),
    (b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 8, "not a text file"),
    ("account_id,name\nA1,x\n".encode("utf-16"), "UTF-16"),
    (b"account_id,name,lat,lon\nA1,ok,42.36,-71.06\nA2," + b"x" * 2_200_000
     + b",41.88,-87.63\n", "line 3 is 2,200,017 bytes long"),
])
def test_unreadable_files_say_why(small_copy, tmp_path, capsys, raw, needle):
    path = _accounts_file(tmp_path, raw)
    with Store(small_copy) as s:
        before = snapshot(s)
    code = main(["load", "--db", str(small_copy), "--accounts", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err
    assert str(path) in err  # the file is named
    with Store(small_copy) as s:
        assert snapshot(s) == before


def test_a_file_mixing_utf8_and_latin1_rows_reads_right(tmp_path, capsys):
    path = _accounts_file(tmp_path, b"account_id,name,lat,lon\n"
                          + "A1,Café Zürich,42.36,-71.06\n".encode()
                          + "A2,Café Genève,41.88,-87.63\n".encode("latin-1")
                          + "A3,Crème brûlée,40.71,-74.00\n".encode("cp1252"))
    db = tmp_path / "x.duckdb"
    assert main(["load", "--db", str(db), "--accounts", str(path)]) == 0, \
        capsys.readouterr().err
    with Store(db) as s:
        got = dict(s.cursor().execute("SELECT account_id, name FROM accounts").fetchall())
    assert got == {"A1": "Café Zürich", "A2": "Café Genève", "A3": "Crème brûlée"}


def _refused(db, path, needle, capsys, *, named=True):
    with Store(db) as s:
        before = snapshot(s)
    code = main(["load", "--db", str(db), "--accounts", str(path)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert needle in err
    if named:
        assert str(path) in err
    with Store(db) as s:
        assert snapshot(s) == before
    return err


def test_excel_formulas_without_saved_values_are_named_by_row_and_column(
        small_copy, tmp_path, capsys):
    """A workbook written by a program holds formulas without their results (openpyxl
    writes exactly that): read as values, those cells would be empty names and zero
    potentials. Refused, naming the rows and columns, saying how to fix it."""
    from openpyxl import Workbook

    book = Workbook()
    ws = book.active
    ws.append(["account_id", "name", "lat", "lon", "potential"])
    ws.append(["A1", "Alpha", 42.36, -71.06, 100])
    ws.append(["A2", '=CONCAT("Be", "ta")', 41.88, -87.63, "=2*50"])
    path = tmp_path / "accounts.xlsx"
    book.save(path)
    err = _refused(small_copy, path, "formula cells with no saved value", capsys)
    assert "row 3, column 'name': =CONCAT" in err
    assert "row 3, column 'potential': =2*50" in err
    assert "save it" in err


def test_an_excel_file_without_formulas_still_loads(tmp_path, capsys):
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["account_id", "name", "lat", "lon"])
    book.active.append(["A1", "=not a formula, text", 42.36, -71.06])
    book.active["B2"].data_type = "s"  # text that starts with '=' (a quoted cell)
    path = tmp_path / "accounts.xlsx"
    book.save(path)
    db = tmp_path / "x.duckdb"
    assert main(["load", "--db", str(db), "--accounts", str(path)]) == 0, \
        capsys.readouterr().err


def test_a_symlinked_file_is_refused_without_reading_it(small_copy, tmp_path, capsys):
    secret = tmp_path / "elsewhere.txt"
    secret.write_text("root:SECRET-CONTENT:0:0\n")
    link = tmp_path / "accounts.csv"
    link.symlink_to(secret)
    err = _refused(small_copy, link, "is a symbolic link", capsys)
    assert "SECRET-CONTENT" not in err


def test_a_pipe_is_refused_instead_of_waiting_forever(small_copy, tmp_path, capsys):
    import os

    fifo = tmp_path / "accounts.csv"
    os.mkfifo(fifo)
    _refused(small_copy, fifo, "not a regular file", capsys)
