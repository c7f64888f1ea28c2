"""Coverage (analytics/coverage.py): per-account distance, reach, touch and workload checked
against plain pandas over the demo files, their sums against `metrics.summary`, and the
"what would it take" lines on a hand-worked frame.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import DEMO_DIR, REPO

from analytics import edits, metrics, plans
from analytics.cli import main
from analytics.coverage import ACCOUNT_COLUMNS, account_coverage, what_it_takes
from analytics.cube import AccountFilter
from analytics.performance import Level, Scope, area_table
from analytics.period import Period
from analytics.settings import Settings, load_settings
from analytics.store import Store

PERIOD = Period.year(2026)
AS_OF = dt.date(2026, 9, 30)
R_KM = 6371.0088
WHAT_COLUMNS = ["territory_id", "territory_name", "rep_id", "workload_hours",
                "capacity_hours", "band_top_hours", "hours_over", "accounts_to_move",
                "hours_moved", "potential_moved", "line"]


def haversine(lat1, lon1, lat2, lon2):
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = (np.sin((p2 - p1) / 2) ** 2
         + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2)
    return 2 * R_KM * np.arcsin(np.sqrt(a))


def oracle(demo_db, demo_frames, pins: dict[str, str] | None = None,
           max_km: float = 150.0, touch_days: int = 90) -> pd.DataFrame:
    """Per account, from the parquet files: territory (pins win), rep, km to the rep's
    home, out of reach, touched, visits and workload hours (the demo's settings)."""
    acc = demo_frames["accounts"].copy()
    reps = demo_frames["reps"].set_index("rep_id")
    plan = pd.read_csv(DEMO_DIR / "plan_current_alignment.csv", dtype=str)
    with Store(demo_db, read_only=True) as store:
        county = dict(store.cursor().execute(
            "SELECT account_id, county FROM accounts").fetchall())
    acc["territory_id"] = acc["account_id"].map(county).map(
        plan.set_index("unit_id")["territory_id"])
    for account, territory in (pins or {}).items():
        acc.loc[acc["account_id"] == account, "territory_id"] = territory
    acc["rep_id"] = acc["territory_id"].map(
        plan.drop_duplicates("territory_id").set_index("territory_id")["rep_id"])
    zpoint = pd.read_parquet(REPO / "data" / "reference" / "us_zip.parquet").set_index("zip")
    missing = acc["lat"].isna()
    acc.loc[missing, "lat"] = zpoint.loc[acc.loc[missing, "postal_code"], "lat"].to_numpy()
    acc.loc[missing, "lon"] = zpoint.loc[acc.loc[missing, "postal_code"], "lon"].to_numpy()
    home_lat = acc["rep_id"].map(reps["home_lat"])
    home_lon = acc["rep_id"].map(reps["home_lon"])
    acc["travel_km"] = haversine(acc["lat"], acc["lon"], home_lat, home_lon)
    acc["out_of_reach"] = acc["travel_km"] > max_km  # NaN (no rep) compares False
    last = pd.to_datetime(acc["last_activity_date"])
    acc["touched"] = last.between(pd.Timestamp(AS_OF) - pd.Timedelta(days=touch_days),
                                  pd.Timestamp(AS_OF))
    by_segment = json.loads((DEMO_DIR / "dataset.json").read_text())["settings"][
        "visits_by_segment"]
    acc["visits"] = acc["visits_per_year"].fillna(acc["segment"].map(by_segment)).fillna(12)
    acc["workload_hours"] = acc["visits"] * (
        45 + 2 * acc["travel_km"].fillna(0) * 1.3 / 60 * 60) / 60
    return acc.sort_values("account_id").reset_index(drop=True)


@pytest.fixture(scope="module")
def want(demo_db, demo_frames) -> pd.DataFrame:
    return oracle(demo_db, demo_frames)


@pytest.fixture(scope="module")
def demo(demo_db):
    """The engine's per-account coverage and `metrics.summary` on the demo."""
    with Store(demo_db, read_only=True) as store:
        cur = store.cursor()
        plan = plans.get_plan(cur)
        settings = load_settings(store)
        got = account_coverage(cur, plan, AS_OF, settings)
        rows, _ = metrics.summary(cur, plan, PERIOD, AS_OF, settings)
        areas = area_table(cur, plan, PERIOD, AS_OF, Level("territory"))
    return SimpleNamespace(accounts=got, rows=rows.set_index("territory_id", drop=False),
                           areas=areas.set_index("area"), settings=settings, plan=plan)


def assert_accounts_match(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == ACCOUNT_COLUMNS
    assert got["account_id"].tolist() == want["account_id"].tolist()
    for col in ("territory_id", "rep_id"):
        assert got[col].fillna("-").tolist() == want[col].fillna("-").tolist(), col
    for col in ("potential", "visits", "travel_km", "workload_hours"):
        np.testing.assert_allclose(got[col].to_numpy(float), want[col].to_numpy(float),
                                   rtol=1e-9, equal_nan=True, err_msg=col)
    for col in ("out_of_reach", "touched"):
        assert got[col].astype(bool).tolist() == want[col].tolist(), col


# --------------------------------------------------------------------------------------
# account_coverage on the demo
# --------------------------------------------------------------------------------------
def test_account_coverage_matches_pandas(demo, want):
    got = demo.accounts
    assert len(got) == 20_564
    assert_accounts_match(got, want)
    # the 3 accounts in no territory: no rep, no distance, visits only
    none = got[got["territory_id"].isna()]
    assert len(none) == 3
    assert none["travel_km"].isna().all()
    assert not none["out_of_reach"].any()
    np.testing.assert_allclose(none["workload_hours"], none["visits"] * 45 / 60, rtol=1e-12)
    assert 0 < got["out_of_reach"].sum() < len(got)
    assert 0 < got["touched"].sum() < got["last_activity_date"].notna().sum()
    names = demo.accounts.dropna(subset=["rep_id"]).drop_duplicates("rep_id")
    reps = pd.read_parquet(DEMO_DIR / "reps.parquet").set_index("rep_id")["name"]
    assert (names["rep_name"].to_numpy() == reps.loc[names["rep_id"]].to_numpy()).all()


def test_account_sums_equal_summary(demo, want):
    """Summed per territory, the per-account rows give the summary's workload, reach,
    touched share, accounts and potential (two independent code paths)."""
    got = demo.accounts.dropna(subset=["territory_id"])
    per = got.groupby("territory_id").agg(
        accounts=("account_id", "size"), potential=("potential", "sum"),
        workload_hours=("workload_hours", "sum"), travel_km=("travel_km", "mean"),
        reach=("out_of_reach", lambda s: 1 - s.mean()), touched=("touched", "mean"))
    rows = demo.rows.loc[per.index]
    assert len(per) == 40
    for col, other in (("accounts", "accounts"), ("potential", "potential"),
                       ("workload_hours", "workload_hours"), ("travel_km", "travel_km"),
                       ("reach", "reach_pct"), ("touched", "touched_pct")):
        np.testing.assert_allclose(per[col].to_numpy(float), rows[other].to_numpy(float),
                                   rtol=1e-9, err_msg=col)
    # the explorer's territory numbers agree with the summary's too
    areas = demo.areas.loc[per.index]
    for col in ("accounts", "potential", "won", "open_pipeline", "quota", "attainment",
                "pace", "penetration", "whitespace"):
        np.testing.assert_allclose(areas[col].to_numpy(float), rows[col].to_numpy(float),
                                   rtol=1e-9, err_msg=col)


def test_account_coverage_settings_and_scope(demo_db, demo_frames, demo):
    settings = replace(demo.settings, max_travel_km=80.0, touch_days=30)
    scope = Scope(AccountFilter(segments=("Hospital",)), regions=("South", "Northeast"))
    with Store(demo_db, read_only=True) as store:
        got = account_coverage(store.cursor(), demo.plan, AS_OF, settings, scope)
    want = oracle(demo_db, demo_frames, max_km=80.0, touch_days=30)
    reps = demo_frames["reps"].set_index("rep_id")["region"]
    want = want[(want["segment"] == "Hospital")
                & want["rep_id"].map(reps).isin(["South", "Northeast"])]
    assert len(want) > 100
    assert_accounts_match(got.reset_index(drop=True), want.reset_index(drop=True))


def test_pinned_account_travels_to_its_new_rep(demo_copy, demo_frames, want):
    """A pin wins over the unit's territory: the account is now R001's (Honolulu)."""
    account = want.loc[(want["territory_id"] == "T40") & (want["visits"] > 0),
                       "account_id"].iloc[0]
    with Store(demo_copy) as store:
        plan = plans.get_plan(store.cursor())
        edits.pin_account(store, plan, account, "T01")
        settings = load_settings(store)
        got = account_coverage(store.cursor(), plan, AS_OF, settings)
        rows, _ = metrics.summary(store.cursor(), plan, PERIOD, AS_OF, settings)
    moved = oracle(demo_copy, demo_frames, pins={account: "T01"})
    assert_accounts_match(got, moved)
    row = got.set_index("account_id").loc[account]
    assert (row["territory_id"], row["rep_id"]) == ("T01", "R001")
    assert row["travel_km"] > 7000
    assert row["out_of_reach"]
    per = got.groupby("territory_id")["workload_hours"].sum()
    np.testing.assert_allclose(per.loc[["T01", "T40"]].to_numpy(),
                               rows.set_index("territory_id").loc[["T01", "T40"],
                                                                  "workload_hours"],
                               rtol=1e-9)


# --------------------------------------------------------------------------------------
# what it takes
# --------------------------------------------------------------------------------------
def _what_rows() -> pd.DataFrame:
    return pd.DataFrame([
        # T1: band top 100 x 1.1 = 110, 150 h -> 40 h over
        ("T1", "One", "R1", 150.0, 100.0, "under-served"),
        # T2: band top 55, 60.5 h -> 5.5 h over; two accounts tie at 6 h
        ("T2", "Two", "R2", 60.5, 50.0, "under-served"),
        ("T3", "Three", "R3", 105.0, 100.0, "balanced"),       # within the band: left out
        ("T4", "Four", "R4", 20.0, 100.0, "over-served"),      # left out
        ("T5", "Five", "R5", 45.0, 40.0, "under-served"),      # 1 h over, no account listed
        ("T6", "Six", "R6", 100.0, 50.0, "under-served"),      # 45 h over: exactly 2 accounts
    ], columns=["territory_id", "territory_name", "rep_id", "workload_hours",
                "capacity_hours", "status"])


def _what_accounts() -> pd.DataFrame:
    rows = [("T1", "a", 30.0, 1000.0), ("T1", "b", 15.0, 200.0), ("T1", "c", 5.0, 50.0)]
    rows += [("T1", f"x{i:02d}", 5.0, 1.0) for i in range(20)]          # 20 x 5 h
    rows += [("T2", "z", 6.0, 7.0), ("T2", "y", 6.0, 3.0), ("T2", "w", 48.5, 0.0)]
    rows += [("T3", "t3", 105.0, 9.0)]
    rows += [("T6", "p", 30.0, 1.0), ("T6", "q", 15.0, 2.0), ("T6", "r", 55.0, 4.0)]
    return pd.DataFrame(rows, columns=["territory_id", "account_id", "workload_hours",
                                       "potential"])


def test_what_it_takes_hand_worked():
    got = what_it_takes(_what_rows(), _what_accounts(), Settings()).set_index("territory_id")
    assert list(got.reset_index().columns) == WHAT_COLUMNS
    assert got.index.tolist() == ["T1", "T2", "T5", "T6"]
    t1 = got.loc["T1"]
    assert t1["band_top_hours"] == pytest.approx(110.0, rel=1e-12)
    assert t1["hours_over"] == pytest.approx(40.0, rel=1e-12)
    # costliest first: 30 (a), then 15 (b): 45 h >= 40 h
    assert (t1["accounts_to_move"], t1["hours_moved"], t1["potential_moved"]) == (2, 45, 1200)
    assert t1["line"] == ("T1: 40 h over the band; moving its 2 costliest accounts (45 h, "
                          "1,200 potential) brings it within 10% of capacity")
    # T2: 48.5 h (w) covers the 5.5 h over
    t2 = got.loc["T2"]
    assert t2["hours_over"] == pytest.approx(5.5, rel=1e-12)
    assert (t2["accounts_to_move"], t2["hours_moved"], t2["potential_moved"]) == (1, 48.5, 0)
    # no account listed for T5: nothing to move
    assert (got.loc["T5", "accounts_to_move"], got.loc["T5", "hours_moved"]) == (0, 0)
    # T6: r (55 h) alone covers the 45 h over
    assert (got.loc["T6", "accounts_to_move"], got.loc["T6", "hours_moved"]) == (1, 55)


def test_what_it_takes_ties_and_exact_fit():
    rows = _what_rows()
    acc = _what_accounts()
    # T2 without w: the 6 h accounts tie; account id breaks the tie (y before z)
    got = what_it_takes(rows, acc[acc["account_id"] != "w"], Settings()).set_index(
        "territory_id")
    assert (got.loc["T2", "accounts_to_move"], got.loc["T2", "potential_moved"]) == (1, 3)
    # T6 without r: 30 + 15 = 45 h is exactly the 45 h over: 2 accounts, not 3
    got = what_it_takes(rows, acc[acc["account_id"] != "r"], Settings()).set_index(
        "territory_id")
    assert got.loc["T6", "hours_over"] == pytest.approx(45.0, rel=1e-12)
    assert (got.loc["T6", "accounts_to_move"], got.loc["T6", "hours_moved"]) == (2, 45)
    # a wider band (tolerance 0.5): T1 150 h against a top of 150 h is no longer over
    got = what_it_takes(rows, acc, Settings(overload_tolerance=0.5)).set_index("territory_id")
    assert got.loc["T1", "hours_over"] == pytest.approx(0.0, abs=1e-12)
    assert got.loc["T1", "accounts_to_move"] == 0
    assert "within 50% of capacity" in got.loc["T1", "line"]
    # nothing under-served: an empty frame with the columns
    empty = what_it_takes(rows[rows["status"] != "under-served"], acc, Settings())
    assert empty.empty
    assert list(empty.columns) == WHAT_COLUMNS


def test_what_it_takes_on_the_demo(demo):
    got = what_it_takes(demo.rows.reset_index(drop=True), demo.accounts, demo.settings)
    under = demo.rows[demo.rows["status"] == "under-served"]
    assert len(under) > 0
    assert got["territory_id"].tolist() == under["territory_id"].tolist()
    for r in got.itertuples(index=False):
        top = under.loc[r.territory_id, "capacity_hours"] * 1.1
        assert r.hours_over == pytest.approx(under.loc[r.territory_id, "workload_hours"] - top,
                                             rel=1e-9)
        costs = np.sort(demo.accounts.loc[demo.accounts["territory_id"] == r.territory_id,
                                          "workload_hours"].to_numpy())[::-1]
        n = int(np.argmax(np.cumsum(costs) >= r.hours_over - 1e-9)) + 1
        assert r.accounts_to_move == n
        assert r.hours_moved == pytest.approx(costs[:n].sum(), rel=1e-9)
        # what stays fits in the band; one account fewer would not
        assert r.workload_hours - r.hours_moved <= top + 1e-6
        assert r.workload_hours - costs[: n - 1].sum() > top


# --------------------------------------------------------------------------------------
# the coverage command
# --------------------------------------------------------------------------------------
def _coverage(capsys, db, *argv) -> str:
    code = main(["coverage", "--db", str(db), *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_cli_coverage_territories_csv(capsys, demo_db, demo):
    got = pd.read_csv(io.StringIO(_coverage(capsys, demo_db, "--format", "csv")))
    assert list(got.columns) == WHAT_COLUMNS
    under = demo.rows[demo.rows["status"] == "under-served"]
    assert got["territory_id"].tolist() == under["territory_id"].tolist()
    np.testing.assert_allclose(got["workload_hours"], under["workload_hours"], rtol=1e-9)


def test_cli_coverage_accounts(capsys, demo_db, want):
    far = pd.read_csv(io.StringIO(_coverage(capsys, demo_db, "--what", "accounts",
                                            "--only", "out-of-reach")))
    assert len(far) > 0
    assert (far["travel_km"] > 150).all()
    assert set(far["account_id"]) == set(want.loc[want["out_of_reach"], "account_id"])
    near = json.loads(_coverage(capsys, demo_db, "--what", "accounts", "--only",
                                "out-of-reach", "--setting", "max_travel_km=400",
                                "--format", "json"))
    assert all(r["travel_km"] > 400 for r in near)
    assert len(near) == (want["travel_km"] > 400).sum()
    idle = pd.read_csv(io.StringIO(_coverage(capsys, demo_db, "--what", "accounts",
                                             "--only", "not-touched", "--territory", "T05")))
    assert set(idle["account_id"]) == set(want.loc[~want["touched"]
                                                   & (want["territory_id"] == "T05"),
                                                   "account_id"])
    lost = pd.read_csv(io.StringIO(_coverage(capsys, demo_db, "--what", "accounts",
                                             "--only", "unassigned", "--format", "csv")))
    assert list(lost.columns) == ACCOUNT_COLUMNS
    assert set(lost["account_id"]) == set(want.loc[want["territory_id"].isna(), "account_id"])
    hospitals = pd.read_csv(io.StringIO(_coverage(capsys, demo_db, "--what", "accounts",
                                                  "--segment", "Hospital", "--territory",
                                                  "T05")))
    assert set(hospitals["account_id"]) == set(want.loc[
        (want["segment"] == "Hospital") & (want["territory_id"] == "T05"), "account_id"])


def test_cli_coverage_input_errors(capsys, demo_db):
    assert main(["coverage", "--db", str(demo_db), "--setting", "max_travel_km=x"]) == 2
    assert "not a number" in capsys.readouterr().err
    assert main(["coverage", "--db", str(demo_db), "--plan", "Nope"]) == 2
    assert "no plan named 'Nope'" in capsys.readouterr().err
    assert main(["coverage", "--db", str(demo_db), "--only", "far"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_what_it_takes_says_when_the_accounts_given_fall_short():
    got = what_it_takes(_what_rows(), _what_accounts(), Settings()).set_index("territory_id")
    # T5 has no account listed: moving accounts cannot cover its hours over, and it says so
    assert "moving accounts alone cannot bring it into the band" in got.loc["T5", "line"]
    assert "brings it within" not in got.loc["T5", "line"]


def test_cli_coverage_lines_ignore_account_filters(capsys, demo_db):
    """A territory's workload counts all its accounts: a segment filter leaves the lines as
    they are, a territory filter keeps only that territory's line."""
    plain = pd.read_csv(io.StringIO(_coverage(capsys, demo_db, "--format", "csv")))
    seg = pd.read_csv(io.StringIO(_coverage(capsys, demo_db, "--format", "csv", "--segment",
                                            "Physician Practice")))
    pd.testing.assert_frame_equal(plain, seg)
    first = plain["territory_id"].iloc[0]
    one = pd.read_csv(io.StringIO(_coverage(capsys, demo_db, "--format", "csv",
                                            "--territory", first)))
    pd.testing.assert_frame_equal(one, plain.head(1))
