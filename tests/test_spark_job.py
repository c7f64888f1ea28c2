"""One answer, two engines: the same messy files through `load` and through the Spark job
(pyspark, local[2], a real JVM) give the same rejected rows, the same stored accounts,
deals and reps, and the same `units`, `summary`, `rank` and `coverage` output."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import h3
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import snapshot

from analytics import attach, ingest
from analytics.cli import main
from analytics.errors import InputError
from analytics.performance import RANK_METRICS
from analytics.schema import H3_RESOLUTIONS
from analytics.spark import job, output
from analytics.store import Store

KEYS = {"accounts": "account_id", "sales": "opportunity_id", "reps": "rep_id"}
UNIT_TYPES = [f"h3:{r}" for r in H3_RESOLUTIONS] + ["zip3", "zip5", "county", "state",
                                                     "fr_dept", "fr_commune"]


def _cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def _table(db: Path, table: str) -> pd.DataFrame:
    with Store(db, read_only=True) as s:
        return s.cursor().execute(f"SELECT * FROM {table} ORDER BY {KEYS[table]}").df()


def _same_frame(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal frames, money and other numbers to 1e-9 relative."""
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True),
                                  check_exact=False, rtol=1e-9, atol=0, check_dtype=False)


def test_the_job_rejects_exactly_what_load_rejects(spark_world):
    by_load = sorted((r.file, r.row, r.column, r.value, r.reason)
                     for r in spark_world["report"].rejections)
    by_job = attach.rejected_rows(spark_world["out"])
    assert sorted(by_job) == by_load
    reasons = {(Path(f).name, c, v): why for f, _, c, v, why in by_job}
    # worked by hand from tests/spark_inputs.py
    assert reasons[("accounts.parquet", "Latitude", "95.0")] == \
        "latitude must be between -90 and 90"
    assert reasons[("accounts.parquet", "AnnualRevenue", "abc")] == "not a number"
    assert reasons[("accounts.parquet", "AnnualRevenue", "-5")] == "must not be negative"
    assert reasons[("sales.parquet", "AccountId", "NO-SUCH-ACCOUNT")].startswith(
        "account NO-SUCH-ACCOUNT does not exist")
    assert reasons[("sales.parquet", "AccountId", "X-DUP")].startswith("account X-DUP")
    assert reasons[("sales.parquet", "StageName", "Maybe")].startswith("unknown stage")
    dup_rows = [r for r in by_job if r[3] == "X-DUP" and r[2] == "Account ID"]
    assert len(dup_rows) == 2
    assert all("duplicate account_id" in r[4] for r in dup_rows)
    # the second X-DUP row cannot be placed either, but like `load` the job says only
    # that its id repeats
    assert not [r for r in by_job if r[1] in {d[1] for d in dup_rows}
                and r[4].startswith("no coordinates")]
    assert [r for r in by_job if r[2] == "Id" and r[3] == "D-TWICE"]


@pytest.mark.parametrize("table", ["accounts", "sales", "reps"])
def test_the_job_stores_what_load_stores(spark_world, table):
    _same_frame(_table(spark_world["loaded"], table), _table(spark_world["attached"], table))


def test_every_unit_column_from_coordinates_and_postal_codes(spark_world):
    """Each H3 column is the cell of the account's own point at that resolution (the h3
    library, not the parent of a finer cell); postal-only accounts are placed by code."""
    acc = _table(spark_world["attached"], "accounts").set_index("account_id")
    for res in H3_RESOLUTIONS:
        expected = [h3.str_to_int(h3.latlng_to_cell(lat, lon, res))
                    for lat, lon in zip(acc["lat"], acc["lon"], strict=True)]
        assert np.array_equal(acc[f"h3_r{res}"].to_numpy(), np.asarray(expected))
    assert acc.loc["X-NAN-ZIP", ["placed_by", "zip5", "state"]].tolist() == \
        ["postal_code", "10001", "NY"]
    assert acc.loc["X-BLANK-ZIP", ["placed_by", "zip5", "zip3"]].tolist() == \
        ["postal_code", "60601", "606"]
    assert acc.loc["X-ZIP3", "zip5"] == "02134"
    assert acc.loc["X-FR-CP", ["placed_by", "fr_dept", "country"]].tolist() == \
        ["postal_code", "75", "FR"]
    assert acc.loc["X-FR-XY", ["placed_by", "fr_dept"]].tolist() == ["file", "75"]
    assert acc.loc["X-ZERO", "placed_by"] == "postal_code"      # 0,0: an empty geocode
    assert "X-TRIM" in acc.index
    assert "X-DUP" not in acc.index
    assert sorted(acc["account_key"]) == list(range(1, len(acc) + 1))


def _frames(argv: list[str], world) -> tuple[pd.DataFrame, pd.DataFrame]:
    frames = []
    for db in (world["loaded"], world["attached"]):
        code, out, err = _cli(*argv, "--db", str(db), "--format", "csv")
        assert code == 0, err
        frames.append(pd.read_csv(io.StringIO(out), dtype={"unit_id": str}))
    return frames[0], frames[1]


@pytest.mark.parametrize("unit", UNIT_TYPES)
def test_units_are_the_same(spark_world, unit):
    a, b = _frames(["units", "--unit", unit], spark_world)
    assert len(a) > 0
    _same_frame(a, b)


def test_summary_is_the_same(spark_world):
    a, b = _frames(["summary"], spark_world)
    assert a["won"].sum() > 0
    _same_frame(a, b)


@pytest.mark.parametrize("metric", list(RANK_METRICS))
@pytest.mark.parametrize("level", ["territory", "rep", "unit:county", "unit:h3:5"])
def test_rank_is_the_same(spark_world, metric, level):
    argv = ["rank", "--metric", metric, "--level", level, "--top", "15"]
    if level.startswith("unit:") and metric == "attainment":
        answers = [_cli(*argv, "--db", str(spark_world[db]))
                   for db in ("loaded", "attached")]
        assert answers[0][0] == answers[1][0] == 2      # needs a quota: said by both
        assert answers[0][2] == answers[1][2]
        return
    a, b = _frames(argv, spark_world)
    _same_frame(a, b)


@pytest.mark.parametrize("what", ["territories", "accounts"])
def test_coverage_is_the_same(spark_world, what):
    # 40 hours a visit (a sixth of the accounts here): a territory over its band
    a, b = _frames(["coverage", "--what", what, "--setting", "visit_minutes=2400"],
                   spark_world)
    assert len(a) > 0
    _same_frame(a, b)


def test_a_folder_of_files_numbers_rows_as_one_file(spark, spark_world, tmp_path):
    """The lake's way: the deals split over files; rows count on across them in name
    order, so each rejection names the same row as for the single file."""
    deals = pq.read_table(spark_world["sales"])
    folder = tmp_path / "deals"
    folder.mkdir()
    cut = deals.num_rows // 3
    for i, (start, stop) in enumerate(((0, cut), (cut, 2 * cut), (2 * cut, deals.num_rows))):
        pq.write_table(deals.slice(start, stop - start), folder / f"part-{i:05d}.parquet")
    out = tmp_path / "out"
    job.run(spark, accounts=str(spark_world["accounts"]), sales=str(folder),
            reps=str(spark_world["reps"]), out=str(out),
            labels={"sales": str(spark_world["sales"])})
    assert attach.rejected_rows(out) == attach.rejected_rows(spark_world["out"])
    con = duckdb.connect()
    q = "SELECT * FROM read_parquet(?) ORDER BY opportunity_id"
    assert con.execute(q, [str(out / "sales" / "*.parquet")]).fetchall() == \
        con.execute(q, [str(spark_world["out"] / "sales" / "*.parquet")]).fetchall()


def test_the_job_refuses_bad_inputs_before_writing(spark, spark_world, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(InputError, match="file not found"):
        job.run(spark, accounts=str(tmp_path / "nope.parquet"),
                sales=str(spark_world["sales"]), out=str(out))
    no_id = tmp_path / "no_id.parquet"
    pq.write_table(pq.read_table(spark_world["accounts"]).drop_columns(["Account ID"]), no_id)
    with pytest.raises(InputError, match="account_id"):
        job.run(spark, accounts=str(no_id), sales=str(spark_world["sales"]), out=str(out))
    assert not out.exists()


# --------------------------------------------------------------------------------------
# attach: bad inputs refused, nothing changed
# --------------------------------------------------------------------------------------
@pytest.fixture
def attached_copy(spark_world, tmp_path) -> tuple[Path, Path]:
    out = tmp_path / "out"
    shutil.copytree(spark_world["out"], out)
    db = tmp_path / "attached.duckdb"
    code, _, err = _cli("attach", "--db", str(db), "--from", str(out))
    assert code == 0, err
    return db, out


def _broken(out: Path, how: str) -> Path:
    bad = out.parent / f"bad-{how}"
    shutil.copytree(out, bad)
    if how == "no manifest":
        (bad / output.MANIFEST).unlink()
    elif how == "other version":
        m = json.loads((bad / output.MANIFEST).read_text())
        m["schema_version"] -= 1
        (bad / output.MANIFEST).write_text(json.dumps(m))
    elif how == "file missing":
        next(iter(output.parquet_files(bad / "sales"))).unlink()
    elif how == "file added":
        src = output.parquet_files(bad / "sales")[0]
        shutil.copy(src, bad / "sales" / "part-99999-extra.parquet")
    elif how == "file cut short":
        src = output.parquet_files(bad / "accounts")[0]
        src.write_bytes(src.read_bytes()[:100])
    elif how == "not a manifest":
        (bad / output.MANIFEST).write_text("{ half")
    return bad


@pytest.mark.parametrize(("how", "message"), [
    ("missing folder", "no such folder"),
    ("no manifest", "not a finished Spark job output"),
    ("not a manifest", "cannot be read"),
    ("other version", "schema version"),
    ("file missing", "missing part-"),
    ("file added", "not from this run"),
    ("file cut short", "changed since written"),
])
def test_attach_refuses_a_bad_output_and_changes_nothing(attached_copy, how, message):
    db, out = attached_copy
    bad = out.parent / "gone" if how == "missing folder" else _broken(out, how)
    with Store(db, read_only=True) as s:
        before = snapshot(s)
    code, _, err = _cli("attach", "--db", str(db), "--from", str(bad))
    assert code == 2
    assert message in err
    assert str(bad) in err
    with Store(db, read_only=True) as s:
        assert snapshot(s) == before
        assert s.attached_from == str(out)
    new = db.parent / "new.duckdb"
    assert _cli("attach", "--db", str(new), "--from", str(bad))[0] == 2
    assert not new.exists()


def test_attach_refuses_a_database_with_imported_data(spark_world, tmp_path):
    db = tmp_path / "loaded.duckdb"
    shutil.copy(spark_world["loaded"], db)
    with Store(db, read_only=True) as s:
        before = snapshot(s)
    code, _, err = _cli("attach", "--db", str(db), "--from", str(spark_world["out"]))
    assert code == 2
    assert "attach the job's output into a new database file" in err
    with Store(db, read_only=True) as s:
        assert snapshot(s) == before
        assert s.attached_from is None


def test_attach_again_keeps_the_plans(attached_copy, spark_world):
    db, out = attached_copy
    code, _, err = _cli("plan", "import", "--db", str(db), "--name", "Mine", "--unit",
                        "county", str(Path("data/demo/plan_current_alignment.csv")))
    assert code == 0, err
    assert _cli("attach", "--db", str(db), "--from", str(out))[0] == 0
    code, text, _ = _cli("info", "--db", str(db))
    info = json.loads(text)
    assert [p["name"] for p in info["plans"]] == ["Mine"]
    assert info["sales"] == json.loads((out / output.MANIFEST).read_text())["tables"][
        "sales"]["rows"]


def test_an_attached_database_refuses_imports_and_says_where_its_data_is(attached_copy,
                                                                          spark_world):
    db, out = attached_copy
    with Store(db) as s:
        before = snapshot(s)
        with pytest.raises(InputError, match="run the job on the new files"):
            ingest.load(s, accounts=spark_world["accounts"])
        assert snapshot(s) == before
    moved = out.parent / "moved"
    out.rename(moved)
    code, _, err = _cli("info", "--db", str(db))
    assert code == 2
    assert "not usable now" in err
    assert "python -m analytics attach" in err
    moved.rename(out)
    assert _cli("info", "--db", str(db))[0] == 0


def test_a_rep_reads_only_their_own_deals_from_the_attached_files(attached_copy, spark_world):
    """The rep's cursor shadows the Parquet-backed `sales` view like the stored table:
    their deals are the deals of their territory's accounts, worked out in pandas."""
    from analytics import users

    db, out = attached_copy
    code, _, err = _cli("plan", "import", "--db", str(db), "--name", "Current", "--unit",
                        "county", "--state", "active",
                        str(Path("data/demo/plan_current_alignment.csv")))
    assert code == 0, err
    plan = pd.read_csv("data/demo/plan_current_alignment.csv", dtype=str)
    accounts = pq.read_table(out / "accounts").to_pandas()
    deals = pq.read_table(out / "sales").to_pandas()
    rep = "R003"
    counties = set(plan.loc[plan["rep_id"] == rep, "unit_id"])
    mine = set(accounts.loc[accounts["county"].isin(counties), "account_key"])
    expected = sorted(deals.loc[deals["account_key"].isin(mine), "opportunity_id"])
    assert 0 < len(expected) < len(deals)
    with Store(db) as s:
        users.add_user(s, "ada", "admin", "correct horse battery")
        with users.acting_as(users.get_user(s.cursor(), "ada")):
            users.add_user(s, "rita", "rep", "correct horse battery", rep_id=rep)
    with Store(db, read_only=True) as s, \
            users.acting_as(users.get_user(s.unscoped_cursor(), "rita")):
        got = [r[0] for r in s.cursor().execute(
            "SELECT opportunity_id FROM sales ORDER BY opportunity_id").fetchall()]
    assert got == expected


def test_the_job_command_maps_columns_and_exits_2_on_bad_input(spark, spark_world, tmp_path,
                                                               capsys):
    """`python -m analytics.spark.job` as a person runs it: --map names a column the
    matcher cannot guess; a missing file exits 2 with the file named, nothing written."""
    deals = pq.read_table(spark_world["sales"]).rename_columns(
        ["Customer Ref" if c == "AccountId" else c
         for c in pq.read_table(spark_world["sales"]).column_names])
    renamed = tmp_path / "deals.parquet"
    pq.write_table(deals, renamed)
    out = tmp_path / "out"
    common = ["--accounts", str(spark_world["accounts"]), "--reps", str(spark_world["reps"]),
              "--out", str(out)]
    assert job.main([*common, "--sales", str(tmp_path / "nope.parquet")]) == 2
    assert "nope.parquet" in capsys.readouterr().err
    assert not (out / output.MANIFEST).exists()
    assert job.main([*common, "--sales", str(renamed)]) == 2       # no account column
    assert "account_id" in capsys.readouterr().err
    assert job.main([*common, "--sales", str(renamed),
                     "--map", "sales.account_id=Customer Ref"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows["sales"] == json.loads((spark_world["out"] / output.MANIFEST).read_text())[
        "tables"]["sales"]["rows"]
    by_column = {(r[1], r[3], r[4]) for r in attach.rejected_rows(out)}
    assert by_column == {(r[1], r[3], r[4]) for r in attach.rejected_rows(spark_world["out"])}


def test_the_reference_data_can_live_apart_from_the_package(tmp_path):
    """A cluster's executors get the package and the reference data separately: the
    job's geography reads $TERRITORY_ATLAS_DATA when set (a copy here), and places an
    account from it as from the checkout."""
    copy = tmp_path / "atlas-data"
    for part in ("reference", "geo"):
        shutil.copytree(Path("data") / part, copy / part)
    code = ("from analytics import geography, units; import numpy as np; "
            "print(geography.US_ZIP_FILE); "
            "lat, lon = np.array([39.96]), np.array([-83.0]); "
            "c = units.h3_cells(lat, lon)['h3_r8']; "
            "print(geography.locate_county(lat, lon, np.array([True]), c)[0])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ,
                                          "TERRITORY_ATLAS_DATA": str(copy)}).stdout
    lines = out.split()
    assert lines[0] == str(copy / "reference" / "us_zip.parquet")
    assert lines[1] == "39049"      # Franklin County, Ohio (Columbus)
