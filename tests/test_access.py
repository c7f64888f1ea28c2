"""A rep's own view (analytics/access.py): a rep reads only their territories of the active
plan, through every entry point.

The demo database is marked: every account, territory, rep, product, segment, plan and
snapshot a rep must not see carries the word LEAK. Then each read through the rep's cursor,
each command line command run `--as` the rep, and each export format is searched for it,
and the rep's numbers are checked against a plain pandas computation of their accounts.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from analytics import users
from analytics.cli import main
from analytics.exports.formats import FORMATS
from analytics.performance import RANK_METRICS
from analytics.store import Store
from analytics.units import POSTAL_KINDS

PASSWORD = "correct horse battery"
REP, TERRITORY = "R003", "T03"
CANARY = "LEAK"


def expected_accounts(db: Path) -> pd.DataFrame:
    """The rep's accounts worked out with pandas from the raw tables: pin, else the
    territory of the account's county in the active plan."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        acc = con.execute("SELECT account_id, account_key, county, potential FROM accounts").df()
        plan_id = con.execute("SELECT plan_id FROM plans WHERE state = 'active'").fetchone()[0]
        units = con.execute("SELECT unit_id, territory_id FROM plan_units WHERE plan_id = ?",
                            [plan_id]).df()
        pins = con.execute("SELECT account_id, territory_id AS pinned FROM account_overrides "
                           "WHERE plan_id = ?", [plan_id]).df()
    finally:
        con.close()
    acc = acc.merge(units, left_on="county", right_on="unit_id", how="left")
    acc = acc.merge(pins, on="account_id", how="left")
    acc["territory"] = acc["pinned"].fillna(acc["territory_id"])
    return acc[acc["territory"] == TERRITORY]


@pytest.fixture(scope="module")
def marked_db(tmp_path_factory, demo_db):
    """The demo with a rep user, another plan, a snapshot, and everything outside rep
    R003's territory T03 marked LEAK."""
    import shutil

    db = tmp_path_factory.mktemp("access") / "atlas.duckdb"
    shutil.copy(demo_db, db)
    mine = expected_accounts(db)
    assert 50 < len(mine) < 1000  # a real territory, not everything
    with Store(db) as s:
        users.add_user(s, "ada", "admin", PASSWORD)
        with users.acting_as(users.get_user(s.cursor(), "ada")):
            users.add_user(s, "rita", "rep", PASSWORD, rep_id=REP)
            users.add_user(s, "mona", "manager", PASSWORD)
        cur = s.cursor()
        cur.register("mine_df", mine[["account_id"]])
        cur.execute("UPDATE accounts SET name = 'LEAK account ' || account_id, "
                    "segment = 'LEAK segment', industry = 'LEAK industry' "
                    "WHERE account_id NOT IN (SELECT account_id FROM mine_df)")
        cur.execute("UPDATE sales SET product = 'LEAK product' "
                    "WHERE account_id NOT IN (SELECT account_id FROM mine_df)")
        cur.execute("UPDATE territories SET name = 'LEAK territory ' || territory_id "
                    "WHERE territory_id <> ?", [TERRITORY])
        cur.execute("UPDATE reps SET name = 'LEAK rep ' || rep_id WHERE rep_id <> ?", [REP])
    for argv in (["plan", "clone", "--db", str(db), "--name", "LEAK plan"],
                 ["plan", "snapshot", "--db", str(db), "--note", "LEAK snapshot"]):
        assert main(argv) == 0, argv
    return db


@pytest.fixture(scope="module")
def mine(marked_db) -> pd.DataFrame:
    return expected_accounts(marked_db)


def rep_user(db: Path) -> users.User:
    with Store(db, read_only=True) as s:
        return users.get_user(s.cursor(), "rita")


# -- the engine: what a rep's cursor holds ------------------------------------------------
def test_a_reps_cursor_holds_only_their_rows(marked_db, mine):
    with Store(marked_db, read_only=True) as s, users.acting_as(rep_user(marked_db)):
        cur = s.cursor()
        accounts = cur.execute("SELECT account_id FROM accounts").df()
        assert set(accounts["account_id"]) == set(mine["account_id"])
        deals = cur.execute("SELECT DISTINCT account_id FROM sales").df()
        assert set(deals["account_id"]) <= set(mine["account_id"])
        all_deals = s.con.cursor().execute("SELECT account_id FROM sales").df()
        assert cur.execute("SELECT count(*) FROM sales").fetchone()[0] == \
            all_deals["account_id"].isin(set(mine["account_id"])).sum()
        assert cur.execute("SELECT DISTINCT territory_id FROM territories").fetchall() == \
            [(TERRITORY,)]
        assert {r[0] for r in cur.execute("SELECT DISTINCT territory_id FROM plan_units")
                .fetchall()} == {TERRITORY}
        assert cur.execute("SELECT name, state FROM plans").fetchall() == \
            [("Current alignment", "active")]
        assert cur.execute("SELECT rep_id FROM reps").fetchall() == [(REP,)]
        assert cur.execute("SELECT username, password_hash FROM users").fetchall() == \
            [("rita", None)]
        for table in ("snapshots", "plan_edits", "plan_edit_changes",
                      "raw_accounts_parquet"):
            assert cur.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table
        # a transaction's cursor is scoped too
        with s.transaction() as tcur:
            assert tcur.execute("SELECT count(*) FROM accounts").fetchone()[0] == len(mine)


def test_other_roles_read_everything(marked_db):
    with Store(marked_db, read_only=True) as s:
        whole = s.con.cursor().execute("SELECT count(*) FROM accounts").fetchone()[0]
        for name in ("ada", "mona"):
            with users.acting_as(users.get_user(s.cursor(), name)):
                assert s.cursor().execute("SELECT count(*) FROM accounts").fetchone()[0] \
                    == whole


def test_a_rep_with_no_territory_in_the_active_plan_sees_nothing(marked_db):
    nobody = users.User("newrep", "rep", rep_id="R999")
    with Store(marked_db, read_only=True) as s, users.acting_as(nobody):
        cur = s.cursor()
        for table in ("accounts", "sales", "territories", "plan_units", "reps"):
            assert cur.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0, table


# -- the command line: every read command as the rep ------------------------------------
def run_as_rep(capsys, db, *argv) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["--as", "rita", *argv[:2], "--db", str(db), *argv[2:]]
                if argv[0] in ("plan", "rules") else
                ["--as", "rita", argv[0], "--db", str(db), *argv[1:]])
    out = capsys.readouterr()
    return code, out.out + out.err


READ_COMMANDS = [
    ("info",),
    ("territories",),
    ("territories", "--format", "json"),
    ("summary",),
    ("summary", "--format", "json"),
    ("coverage",),
    ("coverage", "--format", "json"),
    ("balance", "--territories", "1"),
    ("plan", "list"),
    ("plan", "history"),
    ("plan", "snapshots"),
    ("plan", "rollup"),
    ("plan", "compare", "--baseline", "Current alignment"),
    ("rules", "list"),
    ("rules", "preview"),
    ("rules", "types"),
    *[("units", "--unit", u) for u in (*POSTAL_KINDS, "h3:3", "h3:5", "h3:7")],
    *[("rank", "--metric", m, "--level", level) for m in RANK_METRICS
      for level in ("territory", "rep", "unit:county", "unit:zip5")],
]


@pytest.mark.parametrize("argv", READ_COMMANDS, ids=" ".join)
def test_no_command_shows_a_rep_anything_outside_their_territory(capsys, marked_db, argv,
                                                                 mine):
    code, text = run_as_rep(capsys, marked_db, *argv)
    assert code in (0, 2), text
    assert CANARY not in text
    if code == 0 and argv[0] in ("units", "rank"):  # numbers without names: counted
        table = pd.read_csv(io.StringIO(text))
        total = table["accounts"].fillna(0).sum()
        assert total <= len(mine)
        assert total > 0 or "fr_" in " ".join(argv)  # no French accounts in an OR territory
    if argv[0] == "rank" and "attainment" in argv and argv[-1].startswith("unit"):
        assert code == 2  # units have no quota: refused with a message, as for anyone
    else:
        assert code == 0, text


def test_a_reps_numbers_are_the_sums_of_their_accounts(capsys, marked_db, mine):
    code, text = run_as_rep(capsys, marked_db, "summary", "--format", "json")
    assert code == 0
    out = json.loads(text)
    assert [r["territory_id"] for r in out["territories"]] == [TERRITORY]
    plan_row = out["plan"]
    assert plan_row["accounts"] == len(mine)
    assert plan_row["potential"] == pytest.approx(mine["potential"].sum(), rel=1e-12)
    assert plan_row["coverage_accounts_pct"] == 1.0  # of what they can see
    code, text = run_as_rep(capsys, marked_db, "units", "--unit", "county", "--format",
                            "json")
    units = pd.DataFrame(json.loads(text))
    assert units["accounts"].sum() == len(mine)
    assert set(units["unit_id"]) == set(mine["county"])


def test_a_rep_cannot_name_another_plan(capsys, marked_db):
    code, text = run_as_rep(capsys, marked_db, "summary", "--plan", "LEAK plan")
    assert code == 2
    assert "no plan named" in text


# -- exports: every format as the rep ----------------------------------------------------
def _texts(path: Path, fmt: str) -> str:
    """Every piece of text a person could read in the exported file."""
    if fmt == "pptx":
        from pptx import Presentation

        deck = Presentation(str(path))
        return "\n".join(sh.text_frame.text if sh.has_text_frame else
                         "\n".join(c.text for r in sh.table.rows for c in r.cells)
                         if sh.has_table else ""
                         for slide in deck.slides for sh in slide.shapes)
    if fmt == "pdf":
        from pypdf import PdfReader

        return "\n".join(p.extract_text() or "" for p in PdfReader(str(path)).pages)
    if fmt == "xlsx":
        from openpyxl import load_workbook

        book = load_workbook(path)
        return "\n".join(str(c.value) for ws in book.worksheets for row in ws.iter_rows()
                         for c in row if c.value is not None)
    if fmt == "salesforce":
        with zipfile.ZipFile(path) as z:
            return "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    if fmt == "gpkg":
        import geopandas as gpd

        return gpd.read_file(path).to_csv()
    if fmt == "png":
        return ""  # pixels: checked by what drew them (the same scoped reads)
    return path.read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_export_carries_anything_outside_the_reps_territory(capsys, marked_db, tmp_path,
                                                                fmt, mine):
    out = tmp_path / f"pack.{ {'salesforce': 'zip'}.get(fmt, fmt) }"
    code, text = run_as_rep(capsys, marked_db, "export", "--format", fmt, "--out", str(out))
    assert code == 0, text
    assert out.stat().st_size > 0
    body = _texts(out, fmt)
    assert CANARY not in body
    if fmt in ("xlsx", "pdf", "pptx", "geojson", "gpkg"):
        assert TERRITORY in body  # the rep's own territory is there


def test_the_rep_is_read_only_everywhere(capsys, marked_db):
    with Store(marked_db, read_only=True) as s:
        before = s.con.cursor().execute("SELECT count(*), max(updated_at) FROM plans"
                                        ).fetchone()
    for argv in (("plan", "assign", "--territory", TERRITORY, "06001"),
                 ("plan", "create", "--name", "mine", "--unit", "county"),
                 ("balance", "--territories", "1", "--apply")):
        code, text = run_as_rep(capsys, marked_db, *argv)
        assert code == 2, (argv, text)
        assert "rita is a rep" in text, (argv, text)
    with Store(marked_db, read_only=True) as s:
        assert s.con.cursor().execute("SELECT count(*), max(updated_at) FROM plans"
                                      ).fetchone() == before


def test_no_rep_reads_deals_through_a_stored_view(marked_db):
    """Tables added later are hidden from reps unless access.py says otherwise."""
    with Store(marked_db) as s:
        s.con.execute("CREATE TABLE later_table AS SELECT 'LEAK' AS x")
    try:
        with Store(marked_db, read_only=True) as s, users.acting_as(rep_user(marked_db)):
            assert s.cursor().execute("SELECT count(*) FROM later_table").fetchone()[0] == 0
    finally:
        with Store(marked_db) as s:
            s.con.execute("DROP TABLE later_table")


def test_info_counts_only_what_the_rep_sees(capsys, marked_db, mine):
    code, text = run_as_rep(capsys, marked_db, "info")
    assert code == 0
    info = json.loads(text)
    assert (info["accounts"], info["reps"]) == (len(mine), 1)
    assert [p["name"] for p in info["plans"]] == ["Current alignment"]
