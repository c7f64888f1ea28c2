"""Territory plans: import, states, and territory numbers checked by hand.

The tiny dataset (all numbers below are worked out by hand):

    reps      R1 quota 365,000   R2 quota 730,000   R3 quota 1,000 (in no territory)
    accounts  A1 Boston      (county 25025)  potential 100
              A2 Cambridge   (county 25017)  potential 200
              A3 Chicago     (county 17031)  potential 300  segment Hospital
              A4 Los Angeles (county 06037)  potential 400  county in no territory
              A5 Paris, France (no county)   potential 500  no unit at all
              A6 Boston      (county 25025)  potential 600  pinned to T2 by an override,
                                                            segment Hospital
              (the others are segment Clinic)
    plan      25025 -> T1 "East" (R1), 25017 -> T1, 17031 -> T2 "Midwest" (R2),
              06001 -> T3 "Bay" (no rep, no accounts)
    period    2026-01-01 .. 2026-06-30 = 31+28+31+30+31+30 = 181 days
    deals (product "monitors" for S5 and S9, "pumps" for the others)
              S1  A1 won  1,000 2026-02-01  in
              S2  A1 won  5,000 2025-12-31  before the period
              S3  A2 open 2,000 2026-06-30  in (last day)
              S4  A2 won    300 2026-07-01  after the period
              S5  A3 won  4,000 2026-01-01  in (first day)
              S6  A3 lost 9,999 2026-03-01  lost: counts nowhere
              S7  A4 won    700 2026-03-01  in, unassigned
              S8  A6 won    800 2026-04-01  in, pinned to T2
              S9  A6 open    50 2026-05-01  in, pinned to T2
              S10 A5 open    60 2026-05-01  in, unassigned
"""

from __future__ import annotations

import datetime as dt
import math
import shutil

import h3
import pandas as pd
import pytest
from conftest import rows, scalar, snapshot, territory_numbers, write_csv

from analytics import ingest, plans
from analytics.cube import AccountFilter
from analytics.errors import InputError
from analytics.ingest import ImportRejected
from analytics.period import Period
from analytics.store import Store
from analytics.units import UnitType

H1 = Period(dt.date(2026, 1, 1), dt.date(2026, 6, 30))
POINTS = {
    "A1": (42.3601, -71.0589), "A2": (42.3736, -71.1097), "A3": (41.8781, -87.6298),
    "A4": (34.0522, -118.2437), "A5": (48.8566, 2.3522), "A6": (42.3550, -71.0600),
}
POTENTIAL = {"A1": 100, "A2": 200, "A3": 300, "A4": 400, "A5": 500, "A6": 600}
COUNTY_PLAN = [
    ["unit_id", "territory_id", "territory_name", "rep_id"],
    ["25025", "T1", "East", "R1"],
    ["25017", "T1", "East", "R1"],
    ["17031", "T2", "Midwest", "R2"],
    ["6001", "T3", "Bay", ""],  # county FIPS without its leading zero
]


@pytest.fixture(scope="module")
def base_db(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plans")
    reps = write_csv(folder / "reps.csv", [
        ["rep_id", "name", "annual_quota"],
        ["R1", "Ann", "365000"], ["R2", "Bob", "730000"], ["R3", "Cy", "1000"],
    ])
    acc = write_csv(folder / "accounts.csv", [
        ["account_id", "lat", "lon", "potential", "segment"],
        *[[k, lat, lon, POTENTIAL[k], "Hospital" if k in ("A3", "A6") else "Clinic"]
          for k, (lat, lon) in POINTS.items()],
    ])
    sales = write_csv(folder / "sales.csv", [
        ["opportunity_id", "account_id", "amount", "close_date", "stage", "product"],
        ["S1", "A1", "1000", "2026-02-01", "won", "pumps"],
        ["S2", "A1", "5000", "2025-12-31", "won", "pumps"],
        ["S3", "A2", "2000", "2026-06-30", "open", "pumps"],
        ["S4", "A2", "300", "2026-07-01", "won", "pumps"],
        ["S5", "A3", "4000", "2026-01-01", "won", "monitors"],
        ["S6", "A3", "9999", "2026-03-01", "lost", "pumps"],
        ["S7", "A4", "700", "2026-03-01", "won", "pumps"],
        ["S8", "A6", "800", "2026-04-01", "won", "pumps"],
        ["S9", "A6", "50", "2026-05-01", "open", "monitors"],
        ["S10", "A5", "60", "2026-05-01", "open", "pumps"],
    ])
    path = folder / "base.duckdb"
    with Store(path) as s:
        assert ingest.load(s, reps=reps, accounts=acc, sales=sales).clean
        got = dict(rows(s, "SELECT account_id, county FROM accounts"))
    assert got == {"A1": "25025", "A2": "25017", "A3": "17031", "A4": "06037", "A5": None,
                   "A6": "25025"}
    return path


@pytest.fixture
def db(base_db, tmp_path):
    path = tmp_path / "plans.duckdb"
    shutil.copyfile(base_db, path)
    with Store(path) as s:
        yield s


@pytest.fixture
def county_plan(db, make_csv):
    path = make_csv("county_plan.csv", COUNTY_PLAN)
    plan, report = plans.import_plan(db, "Base", UnitType.parse("county"), path)
    return plan, report


# --------------------------------------------------------------------------------------
# import
# --------------------------------------------------------------------------------------
def test_import_county_plan(db, county_plan):
    plan, report = county_plan
    assert report.committed
    assert report.clean
    assert report.tables[0].rows == 4
    assert report.tables[0].inserted == 4
    assert (plan.name, str(plan.unit), plan.state) == ("Base", "county", "active")
    assert rows(db, "SELECT unit_id, territory_id FROM plan_units ORDER BY 1") == [
        ("06001", "T3"), ("17031", "T2"), ("25017", "T1"), ("25025", "T1"),
    ]
    assert rows(db, "SELECT territory_id, name, rep_id FROM territories ORDER BY 1") == [
        ("T1", "East", "R1"), ("T2", "Midwest", "R2"), ("T3", "Bay", None),
    ]
    assert plans.get_plan(db.cursor()) == plan  # the first plan is the active one
    assert plans.get_plan(db.cursor(), "Base") == plan


def test_import_h3_plan(db, make_csv):
    boston = h3.latlng_to_cell(*POINTS["A1"], 5)
    chicago = h3.latlng_to_cell(*POINTS["A3"], 5)
    path = make_csv("hex.csv", [
        ["h3", "territory"],          # aliases of unit_id and territory_id
        [f"0x{boston.upper()}", "NE"],  # typed with 0x and in capitals
        [chicago, "MW"],
    ])
    plan, report = plans.import_plan(db, "Hexes", UnitType.parse("h3:5"), path)
    assert report.clean
    assert str(plan.unit) == "h3:5"
    assert rows(db, "SELECT unit_id, territory_id FROM plan_units ORDER BY 2") == [
        (chicago, "MW"), (boston, "NE"),
    ]
    # territories without a name column are named by their id
    assert rows(db, "SELECT territory_id, name, rep_id FROM territories ORDER BY 1") == [
        ("MW", "MW", None), ("NE", "NE", None),
    ]
    table, totals = territory_numbers(db.cursor(), plan, H1)
    got = table.set_index("territory_id")
    # which accounts lie in those two cells, by the h3 library
    in_cell = {c: [k for k, p in POINTS.items() if h3.latlng_to_cell(*p, 5) == c]
               for c in (boston, chicago)}
    assert sorted(in_cell[boston]) == ["A1", "A2", "A6"]  # Boston and Cambridge share it
    assert got.loc["NE", "accounts"] == 3
    assert got.loc["NE", "potential"] == 900
    assert got.loc["NE", "won"] == 1000 + 800
    assert got.loc["NE", "open_pipeline"] == 2000 + 50
    assert got.loc["MW", "accounts"] == 1
    assert got.loc["MW", "won"] == 4000
    assert totals["accounts"] == 6
    assert totals["unassigned_accounts"] == 2


def test_bad_plan_rows_store_nothing(db, make_csv):
    before = snapshot(db)
    path = make_csv("bad_plan.csv", [
        ["unit_id", "territory_id", "territory_name", "rep_id"],
        ["25025", "T1", "East", "R1"],      # row 2: fine
        ["2502X", "T1", "East", "R1"],      # row 3: not a county code
        ["25025", "T2", "West", "R2"],      # row 4: unit already on row 2
        ["17031", "T1", "Eastern", "R1"],   # row 5: T1 already named East
        ["06037", "T3", "South", "R99"],    # row 6: no such rep
        ["", "T3", "South", ""],            # row 7: no unit id
        ["36061", "", "", ""],              # row 8: no territory id
    ])
    with pytest.raises(ImportRejected) as exc:
        plans.import_plan(db, "Broken", UnitType.parse("county"), path)
    assert "6 of 7 rows are wrong; the plan was not created" in str(exc.value)
    got = {(r.row, r.column, r.value): r.reason for r in exc.value.report.rejections}
    assert {r.file for r in exc.value.report.rejections} == {str(path)}
    assert set(got) == {
        (3, "unit_id", "2502X"), (4, "unit_id", "25025"), (5, "territory_name", "Eastern"),
        (6, "rep_id", "R99"), (7, "unit_id", None), (8, "territory_id", None),
    }
    assert got[(3, "unit_id", "2502X")].startswith("not a US county code")
    assert got[(4, "unit_id", "25025")] == "unit listed twice (also on row 2)"
    assert "territory T1 already has territory_name 'East'" in got[
        (5, "territory_name", "Eastern")]
    assert got[(6, "rep_id", "R99")].startswith("no rep with this id")
    assert snapshot(db) == before


def test_bad_h3_plan_rows(db, make_csv):
    cell5 = h3.latlng_to_cell(*POINTS["A1"], 5)
    cell6 = h3.latlng_to_cell(*POINTS["A1"], 6)
    path = make_csv("bad_hex.csv", [
        ["cell", "territory_id"], [cell5, "T1"], [cell6, "T1"], ["zzz", "T1"],
    ])
    with pytest.raises(ImportRejected) as exc:
        plans.import_plan(db, "Hex", UnitType.parse("h3:5"), path)
    assert {(r.row, r.value) for r in exc.value.report.rejections} == {(3, cell6), (4, "zzz")}
    assert all("not an H3 cell at resolution 5" in r.reason
               for r in exc.value.report.rejections)
    assert scalar(db, "SELECT count(*) FROM plans") == 0


def test_plan_file_missing_columns(db, make_csv):
    path = make_csv("p.csv", [["county", "rep"], ["25025", "R1"]])
    with pytest.raises(InputError, match=r"missing required column\(s\) territory_id") as exc:
        plans.import_plan(db, "P", UnitType.parse("county"), path)
    assert "Found columns: county, rep" in str(exc.value)
    assert scalar(db, "SELECT count(*) FROM plans") == 0


def test_duplicate_plan_name_and_states(db, county_plan, make_csv):
    first, _ = county_plan
    assert first.state == "active"
    path = make_csv("second.csv", [["unit_id", "territory_id"], ["25025", "X"]])
    before = snapshot(db)
    with pytest.raises(InputError, match="a plan named 'Base' already exists"):
        plans.import_plan(db, "Base", UnitType.parse("county"), path)
    assert snapshot(db) == before
    second, _ = plans.import_plan(db, "Second", UnitType.parse("county"), path)
    assert second.state == "planning"  # not the first plan: not made active
    assert plans.get_plan(db.cursor()).name == "Base"
    third, _ = plans.import_plan(db, "Third", UnitType.parse("state"),
                                 make_csv("third.csv", [["unit_id", "territory_id"],
                                                        ["ma", "X"]]), state="active")
    assert third.state == "active"
    assert dict(rows(db, "SELECT name, state FROM plans")) == {
        "Base": "planning", "Second": "planning", "Third": "active",
    }
    listed = plans.list_plans(db.cursor())
    assert listed["name"].tolist() == ["Third", "Base", "Second"]  # the active plan first
    assert listed.set_index("name").loc["Base", "territories"] == 3
    assert listed.set_index("name").loc["Base", "units"] == 4
    assert rows(db, "SELECT unit_id FROM plan_units WHERE plan_id = ?", [third.plan_id]) == [
        ("MA",)]


@pytest.mark.parametrize(
    ("name", "state", "needle"),
    [("", None, "a plan needs a name"), ("  ", None, "a plan needs a name"),
     ("P", "done", "unknown plan state 'done'")],
)
def test_plan_name_and_state_checked(db, make_csv, name, state, needle):
    path = make_csv("p.csv", [["unit_id", "territory_id"], ["25025", "X"]])
    with pytest.raises(InputError, match=needle):
        plans.import_plan(db, name, UnitType.parse("county"), path, state=state)


def test_get_plan_errors(db, county_plan):
    with pytest.raises(InputError, match="no plan named 'Nope'; plans: Base"):
        plans.get_plan(db.cursor(), "Nope")
    db.cursor().execute("UPDATE plans SET state = 'archived'")
    with pytest.raises(InputError, match="there is no active plan"):
        plans.get_plan(db.cursor())


# --------------------------------------------------------------------------------------
# territory numbers
# --------------------------------------------------------------------------------------
def _pin_a6_to_t2(db, plan):
    db.cursor().execute("INSERT INTO account_overrides VALUES (?, 'A6', 'T2')", [plan.plan_id])


def test_territory_numbers_by_hand(db, county_plan):
    plan, _ = county_plan
    _pin_a6_to_t2(db, plan)
    table, totals = territory_numbers(db.cursor(), plan, H1)
    assert table["territory_id"].tolist() == ["T1", "T2", "T3"]
    t = table.set_index("territory_id")
    # T1 East = A1 + A2 (A6 lies in Boston but is pinned to T2)
    assert t.loc["T1", "accounts"] == 2
    assert t.loc["T1", "potential"] == 100 + 200
    assert t.loc["T1", "won"] == 1000               # S1; S2 before, S4 after the period
    assert t.loc["T1", "open_pipeline"] == 2000     # S3 on the last day
    assert t.loc["T1", "quota"] == pytest.approx(365_000 * 181 / 365)  # = 181,000
    assert t.loc["T1", "quota"] == pytest.approx(181_000)
    assert t.loc["T1", "attainment"] == pytest.approx(1000 / 181_000)
    assert t.loc["T1", "units"] == 2
    assert (t.loc["T1", "territory_name"], t.loc["T1", "rep_id"], t.loc["T1", "rep_name"]) == (
        "East", "R1", "Ann")
    # T2 Midwest = A3 + pinned A6
    assert t.loc["T2", "accounts"] == 2
    assert t.loc["T2", "potential"] == 300 + 600
    assert t.loc["T2", "won"] == 4000 + 800         # S5 on the first day, S8; S6 is lost
    assert t.loc["T2", "open_pipeline"] == 50       # S9
    assert t.loc["T2", "quota"] == pytest.approx(362_000)  # 730,000 x 181 / 365
    assert t.loc["T2", "attainment"] == pytest.approx(4800 / 362_000)
    assert t.loc["T2", "units"] == 1
    # T3 Bay: no rep, no accounts: quota 0 and no attainment
    assert t.loc["T3", "accounts"] == 0
    assert t.loc["T3", "potential"] == 0
    assert t.loc["T3", "quota"] == 0
    assert pd.isna(t.loc["T3", "attainment"])
    assert t.loc["T3", "units"] == 1
    # whole plan: every account counts, A4 (county not in the plan) and A5 (no county)
    # are unassigned
    assert totals["accounts"] == 6
    assert totals["potential"] == 2100
    assert totals["won"] == 1000 + 4000 + 700 + 800
    assert totals["open_pipeline"] == 2000 + 50 + 60
    assert totals["unassigned_accounts"] == 2
    assert totals["unassigned_potential"] == 400 + 500
    assert totals["territories"] == 3
    assert totals["units"] == 4


def test_territory_numbers_without_the_override(db, county_plan):
    plan, _ = county_plan
    table, totals = territory_numbers(db.cursor(), plan, H1)
    t = table.set_index("territory_id")
    # A6 now follows its county into T1
    assert (t.loc["T1", "accounts"], t.loc["T1", "potential"]) == (3, 900)
    assert (t.loc["T1", "won"], t.loc["T1", "open_pipeline"]) == (1800, 2050)
    assert (t.loc["T2", "accounts"], t.loc["T2", "won"]) == (1, 4000)
    assert totals["unassigned_accounts"] == 2


def test_override_of_an_unassigned_account(db, county_plan):
    plan, _ = county_plan
    # A4 (Los Angeles, a county in no territory) and A5 (no county) pinned to T3
    db.cursor().execute("INSERT INTO account_overrides VALUES (?, 'A4', 'T3'), (?, 'A5', 'T3')",
                        [plan.plan_id, plan.plan_id])
    table, totals = territory_numbers(db.cursor(), plan, H1)
    t = table.set_index("territory_id")
    assert t.loc["T3", "accounts"] == 2
    assert t.loc["T3", "potential"] == 900
    assert t.loc["T3", "won"] == 700
    assert t.loc["T3", "open_pipeline"] == 60
    assert totals["unassigned_accounts"] == 0
    assert totals["unassigned_potential"] == 0
    assert totals["accounts"] == 6


def test_territory_quota_overrides_rep_quota(db, county_plan):
    plan, _ = county_plan
    db.cursor().execute("UPDATE territories SET annual_quota = 36500 WHERE territory_id = 'T3'")
    db.cursor().execute("UPDATE territories SET annual_quota = 0 WHERE territory_id = 'T1'")
    table, _ = territory_numbers(db.cursor(), plan, Period.year(2024))
    t = table.set_index("territory_id")
    assert t.loc["T3", "quota"] == pytest.approx(36500 * 366 / 365)  # leap year: 366 days
    assert t.loc["T1", "quota"] == 0
    assert math.isnan(t.loc["T1", "attainment"])
    assert t.loc["T2", "quota"] == pytest.approx(730_000 * 366 / 365)


def test_territory_numbers_with_filters(db, county_plan):
    plan, _ = county_plan
    _pin_a6_to_t2(db, plan)
    flt = AccountFilter(segments=("Hospital",), products=("pumps",))
    table, totals = territory_numbers(db.cursor(), plan, H1, flt)
    t = table.set_index("territory_id")
    # Hospitals: A3 (T2 by its county) and A6 (pinned to T2); pump deals only:
    # A3 has S5 (monitors, left out) and S6 (lost); A6 has S8 won 800 and S9 (monitors)
    assert t.loc["T1", "accounts"] == 0
    assert t.loc["T1", "won"] == 0
    assert t.loc["T2", "accounts"] == 2
    assert t.loc["T2", "potential"] == 900
    assert t.loc["T2", "won"] == 800
    assert t.loc["T2", "open_pipeline"] == 0
    assert totals["accounts"] == 2
    assert totals["won"] == 800
    assert totals["unassigned_accounts"] == 0
