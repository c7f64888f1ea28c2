"""The command line, in-process (`cli.main`) and as a real `python -m analytics` process.

Totals are checked against plain pandas over the shipped demo files and the h3 library.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import h3
import pandas as pd
import pytest
from conftest import REPO, rows, write_csv

from analytics import __version__
from analytics.cli import main
from analytics.store import Store

ACCOUNTS = [
    ["account_id", "name", "lat", "lon", "potential"],
    ["A1", "Boston", "42.3601", "-71.0589", "100"],
    ["A2", "Chicago", "41.8781", "-87.6298", "200"],
]


@pytest.fixture(scope="module")
def expected_units(demo_frames) -> dict[str, pd.DataFrame]:
    """Per-unit numbers for calendar 2026 computed from the parquet files with pandas/h3."""
    acc = demo_frames["accounts"].copy()
    sales = demo_frames["sales"]
    zips = pd.read_parquet(REPO / "data" / "reference" / "us_zip.parquet")
    zpoint = zips.set_index("zip")[["lat", "lon"]]
    missing = acc["lat"].isna()
    assert missing.sum() == 518
    acc.loc[missing, "lat"] = zpoint.loc[acc.loc[missing, "postal_code"], "lat"].to_numpy()
    acc.loc[missing, "lon"] = zpoint.loc[acc.loc[missing, "postal_code"], "lon"].to_numpy()
    acc["h3_6"] = [h3.latlng_to_cell(a, b, 6) for a, b in zip(acc["lat"], acc["lon"],
                                                                strict=True)]
    close = pd.to_datetime(sales["close_date"])
    s26 = sales[close.dt.year == 2026]
    won = s26[s26["stage"] == "won"].groupby("account_id")["amount"].sum()
    opn = s26[s26["stage"] == "open"].groupby("account_id")["amount"].sum()
    acc["won"] = acc["account_id"].map(won).fillna(0.0)
    acc["open_pipeline"] = acc["account_id"].map(opn).fillna(0.0)
    per_cell = acc.groupby("h3_6").agg(
        accounts=("account_id", "size"), potential=("potential", "sum"),
        won=("won", "sum"), open_pipeline=("open_pipeline", "sum"),
    )
    totals = acc[["potential", "won", "open_pipeline"]].sum()
    return {"h3_6": per_cell, "totals": totals, "accounts": acc}


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# --------------------------------------------------------------------------------------
# load
# --------------------------------------------------------------------------------------
def test_load_ok(capsys, tmp_path):
    db = tmp_path / "cli.duckdb"
    acc = write_csv(tmp_path / "accounts.csv", ACCOUNTS)
    code, out, err = run(capsys, "load", "--db", db, "--accounts", acc)
    assert code == 0, err
    assert f"accounts: {acc}: 2 rows read, 2 added, 0 updated, 0 rejected" in out
    assert err == ""
    with Store(db, read_only=True) as s:
        assert rows(s, "SELECT account_id, state FROM accounts ORDER BY 1") == [
            ("A1", "MA"), ("A2", "IL")]


def test_load_bad_rows_exit_2(capsys, tmp_path):
    db = tmp_path / "cli.duckdb"
    acc = write_csv(tmp_path / "accounts.csv", [
        *ACCOUNTS, ["A3", "Nowhere", "95", "-71", "1"], ["A4", "Neg", "42", "-71", "-1"],
    ])
    report = tmp_path / "rejected.csv"
    code, out, err = run(capsys, "load", "--db", db, "--accounts", acc, "--report", report)
    assert code == 2
    assert "2 added" in out
    assert "2 rejected" in out
    assert (f"rejected: {acc}, row 4, column 'lat': '95': latitude must be between -90 and 90"
            in err)
    assert f"rejected: {acc}, row 5, column 'potential': '-1': must not be negative" in err
    assert "the rows above were not stored; the others were" in err
    written = pd.read_csv(report, dtype=str)
    assert written[["row", "column", "value"]].values.tolist() == [
        ["4", "lat", "95"], ["5", "potential", "-1"]]
    with Store(db, read_only=True) as s:
        assert [r[0] for r in rows(s, "SELECT account_id FROM accounts ORDER BY 1")] == [
            "A1", "A2"]


def test_load_all_or_nothing_exit_2(capsys, tmp_path):
    db = tmp_path / "cli.duckdb"
    acc = write_csv(tmp_path / "accounts.csv", [*ACCOUNTS, ["A3", "x", "42", "-500", "1"]])
    code, _, err = run(capsys, "load", "--db", db, "--accounts", acc, "--all-or-nothing")
    assert code == 2
    assert f"{acc}, row 4, column 'lon': '-500'" in err
    assert "nothing was stored" in err
    with Store(db, read_only=True) as s:
        assert s.counts()["accounts"] == 0


def test_load_missing_column_exit_2(capsys, tmp_path):
    db = tmp_path / "cli.duckdb"
    deals = write_csv(tmp_path / "deals.csv", [["opportunity_id", "amount"], ["S1", "5"]])
    code, out, err = run(capsys, "load", "--db", db, "--sales", deals)
    assert code == 2
    assert out == ""
    assert err.startswith(f"error: {deals}: missing required column(s) account_id, close_date")
    assert "Found columns: opportunity_id, amount" in err


def test_load_with_map(capsys, tmp_path):
    db = tmp_path / "cli.duckdb"
    acc = write_csv(tmp_path / "a.csv", [["account_id", "Y_COORD", "X_COORD"],
                                         ["A1", "42.3601", "-71.0589"]])
    code, _, err = run(capsys, "load", "--db", db, "--accounts", acc,
                       "--map", "accounts.lat=Y_COORD", "--map", "accounts.lon=X_COORD")
    assert code == 0, err
    code, _, err = run(capsys, "load", "--db", db, "--accounts", acc, "--map", "accounts.lat")
    assert code == 2
    assert "expected table.field=Column" in err


def test_usage_errors(capsys, tmp_path):
    code, _, err = run(capsys, "units")
    assert code == 2
    assert "--unit" in err
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert __version__ in out
    code, _, err = run(capsys, "load", "--db", tmp_path / "x.duckdb")
    assert code == 2
    assert "nothing to load" in err


# --------------------------------------------------------------------------------------
# units, territories, info on the demo database
# --------------------------------------------------------------------------------------
def test_units_h3_json_equals_pandas(capsys, demo_db, expected_units):
    code, out, err = run(capsys, "units", "--db", demo_db, "--unit", "h3:6", "--format", "json")
    assert code == 0, err
    assert err == ""  # every account has a cell
    got = pd.DataFrame(json.loads(out))
    assert list(got.columns) == ["unit_id", "accounts", "potential", "won", "open_pipeline"]
    assert got["unit_id"].is_monotonic_increasing
    got = got.set_index("unit_id")
    exp = expected_units["h3_6"]
    assert sorted(got.index) == sorted(exp.index)
    assert (got["accounts"] == exp.loc[got.index, "accounts"]).all()
    for col in ("potential", "won", "open_pipeline"):
        assert got[col].to_numpy() == pytest.approx(exp.loc[got.index, col].to_numpy(),
                                                    rel=1e-9, abs=1e-6)
    totals = expected_units["totals"]
    assert got["accounts"].sum() == 20564
    assert got["potential"].sum() == pytest.approx(totals["potential"], rel=1e-12)
    assert got["won"].sum() == pytest.approx(totals["won"], rel=1e-12)
    assert got["open_pipeline"].sum() == pytest.approx(totals["open_pipeline"], rel=1e-12)


def test_units_state_csv_totals(capsys, demo_db, expected_units):
    code, out, err = run(capsys, "units", "--db", demo_db, "--unit", "state")  # csv default
    assert code == 0, err
    got = pd.read_csv(io.StringIO(out), dtype={"unit_id": str})
    assert list(got.columns) == ["unit_id", "accounts", "potential", "won", "open_pipeline"]
    assert got["unit_id"].str.fullmatch(r"[A-Z]{2}").all()
    acc = expected_units["accounts"]
    # the state of every account, as far as its ZIP code says (independent of the polygons)
    zips = pd.read_parquet(REPO / "data" / "reference" / "us_zip.parquet")
    zip_state = acc["postal_code"].map(zips.set_index("zip")["state"])
    unplaced = len(acc) - int(got["accounts"].sum())
    assert 0 <= unplaced <= 10  # all but a handful of accounts lie in a state
    if unplaced:
        assert f"note: {unplaced} accounts have no state unit" in err
    by_zip = acc.groupby(zip_state)["account_id"].size()
    listed = got.set_index("unit_id")["accounts"]
    # polygons and ZIP codes agree on the state of almost every account
    diff = (listed - by_zip.reindex(listed.index).fillna(0)).abs().sum()
    assert diff <= 0.01 * len(acc)
    totals = expected_units["totals"]
    if unplaced == 0:
        assert got["potential"].sum() == pytest.approx(totals["potential"], rel=1e-9)
        assert got["won"].sum() == pytest.approx(totals["won"], rel=1e-9)
        assert got["open_pipeline"].sum() == pytest.approx(totals["open_pipeline"], rel=1e-9)
    else:
        assert got["potential"].sum() <= totals["potential"]


def test_units_period_and_errors(capsys, demo_db, expected_units):
    code, out, _ = run(capsys, "units", "--db", demo_db, "--unit", "state", "--format", "json",
                       "--period", "2026-01-01:2026-12-31")
    assert code == 0
    got = pd.DataFrame(json.loads(out))
    assert got["won"].sum() <= expected_units["totals"]["won"] + 1e-6
    code, out, _ = run(capsys, "units", "--db", demo_db, "--unit", "state", "--format", "json",
                       "--period", "1990")
    assert code == 0
    assert pd.DataFrame(json.loads(out))["won"].sum() == 0
    code, _, err = run(capsys, "units", "--db", demo_db, "--unit", "h3:12")
    assert code == 2
    assert "error: unknown unit 'h3:12'" in err
    code, _, err = run(capsys, "units", "--db", demo_db, "--unit", "state", "--period", "soon")
    assert code == 2
    assert "period 'soon'" in err


def test_units_to_file(capsys, demo_db, tmp_path):
    out_file = tmp_path / "units.csv"
    code, out, _ = run(capsys, "units", "--db", demo_db, "--unit", "zip3", "--out", out_file)
    assert code == 0
    assert out == ""
    frame = pd.read_csv(out_file, dtype={"unit_id": str})
    assert frame["unit_id"].str.fullmatch(r"\d{3}").all()
    assert frame["accounts"].sum() == 20564


def test_territories_and_info(capsys, demo_db):
    code, out, err = run(capsys, "territories", "--db", demo_db, "--format", "json")
    assert code == 0, err
    table = pd.DataFrame(json.loads(out))
    assert len(table) == 40
    assert {"territory_id", "accounts", "potential", "won", "quota", "attainment"} <= set(
        table.columns)
    code, out, _ = run(capsys, "info", "--db", demo_db)
    assert code == 0
    info = json.loads(out)
    assert (info["accounts"], info["sales"], info["reps"]) == (20564, 72674, 44)
    assert info["plans"] == [
        {"name": "Current alignment", "unit_type": "county", "state": "active"}]
    code, _, err = run(capsys, "territories", "--db", demo_db, "--plan", "Nope")
    assert code == 2
    assert "no plan named 'Nope'" in err


def test_demo_refuses_a_database_with_data(capsys, demo_copy):
    code, out, err = run(capsys, "demo", "--db", demo_copy)
    assert code == 2
    assert out == ""
    assert f"error: {demo_copy}: the database already holds data (20564 accounts, 1 plans)" in err
    assert "--force" in err


def test_not_a_database(capsys, tmp_path):
    bogus = tmp_path / "bogus.duckdb"
    bogus.write_text("hello")
    code, _, err = run(capsys, "info", "--db", bogus)
    assert code == 2
    assert str(bogus) in err


# --------------------------------------------------------------------------------------
# plans
# --------------------------------------------------------------------------------------
def test_plan_import_and_list(capsys, demo_copy, tmp_path):
    plan_file = write_csv(tmp_path / "plan.csv", [
        ["county", "territory", "territory name", "owner"],
        ["25025", "N1", "Boston", "R001"],
        ["25017", "N1", "Boston", ""],
        ["17031", "N2", "Chicago", "R002"],
    ])
    code, out, err = run(capsys, "plan", "import", "--db", demo_copy, "--name", "What if",
                         "--unit", "county", plan_file)
    assert code == 0, err
    assert out.strip() == "plan 'What if' created (county, planning): 3 units"
    code, out, err = run(capsys, "plan", "list", "--db", demo_copy, "--format", "json")
    assert code == 0, err
    listed = json.loads(out)
    assert [(p["name"], p["state"], p["territories"], p["units"]) for p in listed] == [
        ("Current alignment", "active", 40, 3141), ("What if", "planning", 2, 3),
    ]
    code, out, _ = run(capsys, "plan", "list", "--db", demo_copy)
    assert out.splitlines()[0].startswith("name,unit_type,state,territories,units")
    # the same name again: refused, exit 2
    code, _, err = run(capsys, "plan", "import", "--db", demo_copy, "--name", "What if",
                       "--unit", "county", plan_file)
    assert code == 2
    assert "a plan named 'What if' already exists" in err
    code, out, _ = run(capsys, "territories", "--db", demo_copy, "--plan", "What if",
                       "--format", "json")
    assert [t["territory_id"] for t in json.loads(out)] == ["N1", "N2"]


def test_no_active_plan_advice_works(capsys, tmp_path):
    db = tmp_path / "cli.duckdb"
    acc = write_csv(tmp_path / "accounts.csv", ACCOUNTS)
    assert run(capsys, "load", "--db", db, "--accounts", acc)[0] == 0
    plan_file = write_csv(tmp_path / "p.csv", [["unit_id", "territory_id"], ["MA", "T1"]])
    assert run(capsys, "plan", "import", "--db", db, "--name", "P", "--unit", "state",
               "--state", "archived", plan_file)[0] == 0
    code, _, err = run(capsys, "territories", "--db", db)
    assert code == 2
    assert "there is no active plan" in err
    # the command the message advises exists and makes a plan active
    assert "`plan import --state active`" in err
    code, out, err = run(capsys, "plan", "import", "--db", db, "--name", "Q", "--unit",
                         "state", "--state", "active", plan_file)
    assert code == 0, err
    assert "(state, active)" in out
    code, out, _ = run(capsys, "territories", "--db", db)
    assert code == 0
    table = pd.read_csv(io.StringIO(out))
    assert table[["territory_id", "accounts", "potential"]].values.tolist() == [["T1", 1, 100]]


def test_plan_import_bad_rows(capsys, demo_copy, tmp_path):
    plan_file = write_csv(tmp_path / "plan.csv", [
        ["unit_id", "territory_id", "rep_id"],
        ["25025", "N1", "R001"],
        ["25025", "N2", "R002"],
        ["ABCDE", "N2", "NOBODY"],
    ])
    code, out, err = run(capsys, "plan", "import", "--db", demo_copy, "--name", "Bad",
                         "--unit", "county", plan_file)
    assert code == 2
    assert out == ""
    assert f"rejected: {plan_file}, row 3, column 'unit_id': '25025': unit listed twice" in err
    assert f"rejected: {plan_file}, row 4, column 'unit_id': 'ABCDE': not a US county" in err
    assert f"rejected: {plan_file}, row 4, column 'rep_id': 'NOBODY': no rep" in err
    assert "error: " in err
    assert "the plan was not created" in err
    with Store(demo_copy, read_only=True) as s:
        assert s.counts()["plans"] == 1


# --------------------------------------------------------------------------------------
# a real process
# --------------------------------------------------------------------------------------
def _python_m(*argv, env_db=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if env_db is not None:
        env["TERRITORY_ATLAS_DB"] = str(env_db)
    return subprocess.run(
        [sys.executable, "-m", "analytics", *map(str, argv)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_subprocess_units_and_bad_load(demo_db, tmp_path, expected_units):
    done = _python_m("units", "--unit", "h3:6", "--format", "csv", env_db=demo_db)
    assert done.returncode == 0, done.stderr
    got = pd.read_csv(io.StringIO(done.stdout))
    assert got["accounts"].sum() == 20564
    assert len(got) == len(expected_units["h3_6"])
    assert got["potential"].sum() == pytest.approx(expected_units["totals"]["potential"],
                                                   rel=1e-9)

    bad = write_csv(tmp_path / "bad.csv", [["account_id", "lat", "lon"], ["X", "95", "1"]])
    done = _python_m("load", "--db", tmp_path / "new.duckdb", "--accounts", bad)
    assert done.returncode == 2
    assert f"{bad}, row 2, column 'lat': '95'" in done.stderr
