"""The performance explorer (analytics/performance.py) checked against an independent
computation: plain pandas over the shipped demo files, the plan's CSV and the h3 library.

The only thing taken from the database is each account's county (the demo plan's unit);
every measure is recomputed here from `data/demo/*.parquet`.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from types import SimpleNamespace

import h3
import numpy as np
import pandas as pd
import pytest
from conftest import DEMO_DIR, REPO

from analytics import edits, plans
from analytics.cli import main
from analytics.cube import AccountFilter
from analytics.errors import InputError
from analytics.performance import (
    AREA_COLUMNS,
    Level,
    Scope,
    area_accounts,
    area_deals,
    area_table,
    breakdown,
    monthly_trend,
    prior_period,
    rank,
    shift_year,
)
from analytics.period import Period
from analytics.store import Store

PERIOD = Period.year(2026)
PRIOR = Period.year(2025)
AS_OF = dt.date(2026, 9, 30)
NONE = "__none__"
"""The key that stands for 'no area' in the pandas frames."""

SUMS = ["accounts", "potential", "won", "won_deals", "lost", "lost_deals", "open_pipeline",
        "won_prior"]
RATIOS = ["quota", "attainment", "pace", "penetration", "whitespace", "growth",
          "win_rate_count", "win_rate_amount", "avg_deal_size"]


# --------------------------------------------------------------------------------------
# the independent oracle
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(demo_db, demo_frames) -> SimpleNamespace:
    """Accounts with territory, rep, region and H3 cell (res 5); deals with close dates;
    the annual quota of every territory and rep of the active plan."""
    acc = demo_frames["accounts"].copy()
    reps = demo_frames["reps"].set_index("rep_id")
    plan = pd.read_csv(DEMO_DIR / "plan_current_alignment.csv", dtype=str)
    with Store(demo_db, read_only=True) as store:
        county = dict(store.cursor().execute(
            "SELECT account_id, county FROM accounts").fetchall())
    acc["county"] = acc["account_id"].map(county)
    acc["territory_id"] = acc["county"].map(plan.set_index("unit_id")["territory_id"])
    terr = plan.drop_duplicates("territory_id").set_index("territory_id")
    acc["rep_id"] = acc["territory_id"].map(terr["rep_id"])
    acc["region"] = acc["rep_id"].map(reps["region"])
    zpoint = pd.read_parquet(REPO / "data" / "reference" / "us_zip.parquet").set_index("zip")
    missing = acc["lat"].isna()
    assert missing.sum() == 518
    acc.loc[missing, "lat"] = zpoint.loc[acc.loc[missing, "postal_code"], "lat"].to_numpy()
    acc.loc[missing, "lon"] = zpoint.loc[acc.loc[missing, "postal_code"], "lon"].to_numpy()
    acc["h3_5"] = [h3.latlng_to_cell(a, b, 5)
                   for a, b in zip(acc["lat"], acc["lon"], strict=True)]
    sales = demo_frames["sales"].copy()
    sales["close"] = pd.to_datetime(sales["close_date"])
    # the demo plan's territories carry no quota of their own: the rep's counts
    terr_quota = {t: float(reps.loc[r, "annual_quota"]) for t, r in terr["rep_id"].items()}
    rep_quota: dict[str, float] = {}
    for t, r in terr["rep_id"].items():
        rep_quota[r] = rep_quota.get(r, 0.0) + terr_quota[t]
    return SimpleNamespace(
        accounts=acc, sales=sales, reps=reps, terr_name=terr["territory_name"].to_dict(),
        quota={"territory_id": terr_quota, "rep_id": rep_quota},
    )


def in_period(close: pd.Series, period: Period) -> pd.Series:
    return close.between(pd.Timestamp(period.start), pd.Timestamp(period.end))


def expected(w, key: str, *, segments=(), products=(), territories=(), reps=(), regions=(),
             period: Period = PERIOD, prior: Period = PRIOR,
             as_of: dt.date = AS_OF) -> pd.DataFrame:
    """Every area column, per `key` (territory_id, rep_id, h3_5, segment, ...), indexed by
    area (NONE for accounts with no area)."""
    acc = w.accounts
    keep = pd.Series(True, index=acc.index)
    for col, values in (("segment", segments), ("territory_id", territories),
                        ("rep_id", reps), ("region", regions)):
        if values:
            keep &= acc[col].isin(values)
    a = acc[keep].assign(area=lambda f: f[key].fillna(NONE))
    s = w.sales
    if products:
        s = s[s["product"].isin(products)]
    s = s.merge(a[["account_id", "area"]], on="account_id")
    in_p, in_prior = in_period(s["close"], period), in_period(s["close"], prior)
    out = a.groupby("area").agg(accounts=("account_id", "size"),
                                potential=("potential", "sum"))

    def per_area(mask, how):
        g = s[mask].groupby("area")["amount"]
        return (g.sum() if how == "sum" else g.size()).reindex(out.index, fill_value=0)

    for stage in ("won", "lost"):
        out[stage] = per_area(in_p & (s["stage"] == stage), "sum")
        out[f"{stage}_deals"] = per_area(in_p & (s["stage"] == stage), "size")
    out["open_pipeline"] = per_area(in_p & (s["stage"] == "open"), "sum")
    out["won_prior"] = per_area(in_prior & (s["stage"] == "won"), "sum")

    days = (period.end - period.start).days + 1
    elapsed = min(max(((as_of - period.start).days + 1) / days, 0), 1)
    annual = w.quota.get(key)
    if annual is None:
        out["quota"] = np.nan
    else:
        out["quota"] = [annual.get(x, 0.0) * days / 365 if x != NONE else np.nan
                        for x in out.index]
    won, pot = out["won"], out["potential"] * days / 365
    out["attainment"] = (won / out["quota"]).where(out["quota"] > 0)
    out["pace"] = (out["attainment"] / elapsed) if elapsed > 0 else np.nan
    out["penetration"] = (won / pot).where(pot > 0)
    out["whitespace"] = (pot - won).clip(lower=0)
    out["growth"] = (won / out["won_prior"] - 1).where(out["won_prior"] > 0)
    decided = out["won_deals"] + out["lost_deals"]
    out["win_rate_count"] = (out["won_deals"] / decided).where(decided > 0)
    out["win_rate_amount"] = (won / (won + out["lost"])).where(won + out["lost"] > 0)
    out["avg_deal_size"] = (won / out["won_deals"]).where(out["won_deals"] > 0)
    return out


def by_area(frame: pd.DataFrame, col: str = "area") -> pd.DataFrame:
    return frame.assign(_k=frame[col].fillna(NONE)).set_index("_k")


def assert_same(got: pd.DataFrame, want: pd.DataFrame, columns=SUMS + RATIOS) -> None:
    """Same areas, same numbers (rel 1e-9; empty where the oracle is empty)."""
    assert sorted(got.index) == sorted(want.index)
    got = got.loc[want.index]
    for col in columns:
        np.testing.assert_allclose(got[col].to_numpy(float), want[col].to_numpy(float),
                                   rtol=1e-9, atol=0, equal_nan=True, err_msg=col)


@pytest.fixture(scope="module")
def db(demo_db):
    with Store(demo_db, read_only=True) as store:
        cur = store.cursor()
        yield SimpleNamespace(cur=cur, plan=plans.get_plan(cur))


def table(db, level: str, scope: Scope | None = None, **kw) -> pd.DataFrame:
    got = area_table(db.cur, db.plan, kw.get("period", PERIOD), kw.get("as_of", AS_OF),
                     Level.parse(level), scope)
    assert list(got.columns) == AREA_COLUMNS
    return got


# --------------------------------------------------------------------------------------
# area_table on the demo, per level
# --------------------------------------------------------------------------------------
def test_territory_level_matches_pandas(db, world):
    got = table(db, "territory")
    want = expected(world, "territory_id")
    assert len(want) == 41  # 40 territories and the 3 accounts in no county
    assert want.loc[NONE, "accounts"] == 3
    assert want["won"].gt(0).all()
    assert want.drop(NONE)["growth"].notna().all()
    assert_same(by_area(got), want)
    # the row of accounts in no territory comes last, with no quota and no name
    last = got.iloc[-1]
    assert pd.isna(last["area"])
    assert last["name"] == "(none)"
    assert pd.isna(last["quota"])
    assert pd.isna(last["attainment"])
    assert by_area(got).drop(NONE)["name"].to_dict() == world.terr_name
    # totals add up to every account and every deal of the period
    assert got["accounts"].sum() == 20_564
    s26 = world.sales[in_period(world.sales["close"], PERIOD)]
    assert got["won"].sum() == pytest.approx(s26.loc[s26["stage"] == "won", "amount"].sum(),
                                              rel=1e-12)
    assert got["lost_deals"].sum() == (s26["stage"] == "lost").sum()


def test_rep_level_matches_pandas(db, world):
    got = table(db, "rep")
    want = expected(world, "rep_id")
    assert len(want) == 41
    assert_same(by_area(got), want)
    names = by_area(got).drop(NONE)["name"]
    assert (names == world.reps.loc[names.index, "name"]).all()
    # a rep's numbers are its (single) territory's in the demo plan
    terr = by_area(table(db, "territory")).drop(NONE)
    rep_of = world.accounts.dropna(subset=["territory_id"]).drop_duplicates(
        "territory_id").set_index("territory_id")["rep_id"]
    np.testing.assert_allclose(by_area(got).loc[rep_of[terr.index], "quota"].to_numpy(),
                               terr["quota"].to_numpy(), rtol=1e-12)


def test_h3_unit_level_matches_pandas(db, world):
    got = table(db, "unit:h3:5")
    want = expected(world, "h3_5")
    assert NONE not in want.index  # every demo account has a cell (ZIP point if need be)
    assert len(want) > 1000
    assert_same(by_area(got), want)
    # units have no quota: attainment and pace stay empty
    assert got[["quota", "attainment", "pace"]].isna().all().all()
    assert (got["name"] == got["area"]).all()


def test_period_prior_and_pace(db, world):
    """A period across the new year, compared with the same dates a year earlier; with an
    as-of date before the period starts, elapsed is 0 and pace is empty."""
    period = Period(dt.date(2025, 7, 1), dt.date(2026, 6, 30))
    prior = prior_period(period)
    assert prior == Period(dt.date(2024, 7, 1), dt.date(2025, 6, 30))
    got = table(db, "territory", period=period, as_of=dt.date(2026, 3, 31))
    want = expected(world, "territory_id", period=period, prior=prior,
                    as_of=dt.date(2026, 3, 31))
    assert_same(by_area(got), want)
    got = table(db, "territory", period=period, as_of=dt.date(2025, 6, 30))
    assert got["pace"].isna().all()
    assert got["attainment"].notna().sum() == 40


def test_shift_year_leap_day():
    assert shift_year(dt.date(2028, 2, 29)) == dt.date(2027, 2, 28)
    assert shift_year(dt.date(2026, 3, 1)) == dt.date(2025, 3, 1)
    assert prior_period(Period(dt.date(2028, 2, 1), dt.date(2028, 2, 29))) == Period(
        dt.date(2027, 2, 1), dt.date(2027, 2, 28))


# --------------------------------------------------------------------------------------
# scope filters
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("level", "key", "flt", "extra"),
    [
        ("territory", "territory_id", {"segments": ("Hospital",)}, {}),
        ("territory", "territory_id", {"segments": ("Clinic", "Surgery Center")}, {}),
        ("territory", "territory_id", {"products": ("Infusion pumps",)}, {}),
        ("rep", "rep_id", {"segments": ("Hospital",), "products": ("Patient monitors",)}, {}),
        ("territory", "territory_id", {}, {"territories": ("T05", "T12")}),
        ("territory", "territory_id", {}, {"reps": ("R003",)}),
        ("rep", "rep_id", {}, {"regions": ("South",)}),
        ("unit:h3:5", "h3_5", {}, {"regions": ("Northeast",)}),
        ("territory", "territory_id", {"segments": ("Hospital",)},
         {"regions": ("West", "Midwest"), "reps": ("R003", "R013", "R037")}),
    ],
)
def test_scope_filters_match_pandas(db, world, level, key, flt, extra):
    scope = Scope(AccountFilter(**flt), **extra)
    got = by_area(table(db, level, scope))
    want = expected(world, key, **flt, **extra)
    assert_same(got, want)
    if flt.get("products") and not flt.get("segments"):
        # a product filter keeps every account: only the deal measures change
        everything = expected(world, key)
        np.testing.assert_allclose(want["potential"], everything["potential"])
        assert (want["won"] < everything["won"]).all()
    if extra:
        assert NONE not in want.index  # plan-based filters leave unassigned accounts out


def test_scope_describe():
    scope = Scope(AccountFilter(("Hospital",), (), ("A", "B")), regions=("West",),
                  min_accounts=5, min_establishments=500)
    assert scope.describe() == {"segment": "Hospital", "industry": "all", "product": "A, B",
                                "rep": "all", "territory": "all", "region": "West",
                                "min_accounts": "5", "min_establishments": "500"}


def test_level_parse():
    assert str(Level.parse("territory")) == "territory"
    assert str(Level.parse(" rep ")) == "rep"
    assert str(Level.parse("unit:h3:6")) == "unit:h3:6"
    assert str(Level.parse("unit:county")) == "unit:county"
    for bad in ("county", "unit:", "unit:h3:12", "reps", ""):
        with pytest.raises(InputError):
            Level.parse(bad)


# --------------------------------------------------------------------------------------
# rank on a hand-made frame
# --------------------------------------------------------------------------------------
@pytest.fixture
def small() -> pd.DataFrame:
    """won by area; E has no value, the area-less row is never ranked, F is tiny."""
    return pd.DataFrame({
        "area": ["A", "B", "C", "D", "E", "F", None, "G"],
        "accounts": [5, 5, 5, 5, 5, 1, 5, 5],
        "won": [50.0, 80.0, 80.0, 10.0, np.nan, 30.0, 999.0, 60.0],
        "potential": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
    })


def _ranked(frame) -> list[tuple[int, str]]:
    return list(zip(frame["rank"].tolist(), frame["area"].tolist(), strict=True))


def test_rank_orders_and_cuts(small):
    # ties (B, C at 80) keep the frame's order
    assert _ranked(rank(small, "won")) == [(1, "B"), (2, "C"), (3, "G"), (4, "A"), (5, "F"),
                                           (6, "D")]
    assert _ranked(rank(small, "won", top=2)) == [(1, "B"), (2, "C")]
    assert _ranked(rank(small, "won", top=99)) == _ranked(rank(small, "won"))
    assert _ranked(rank(small, "won", bottom=2)) == [(6, "D"), (5, "F")]
    assert _ranked(rank(small, "won", min_accounts=2)) == [
        (1, "B"), (2, "C"), (3, "G"), (4, "A"), (5, "D")]
    assert _ranked(rank(small, "won", bottom=2, min_accounts=2)) == [(5, "D"), (4, "A")]
    # values 80 80 60 50 30 10: 50th percentile 55, 90th 80, 25th 35, 0th 10, 100th 80
    assert _ranked(rank(small, "won", percentile=50)) == [(1, "B"), (2, "C"), (3, "G")]
    assert _ranked(rank(small, "won", percentile=90)) == [(1, "B"), (2, "C")]
    assert _ranked(rank(small, "won", percentile=100)) == [(1, "B"), (2, "C")]
    assert _ranked(rank(small, "won", percentile=25)) == [(6, "D"), (5, "F")]
    assert _ranked(rank(small, "won", percentile=0)) == [(6, "D")]
    # without F: 10 50 60 80 80, the 49.9th percentile is 50 + 0.996 x 10 = 59.96
    assert _ranked(rank(small, "won", percentile=49.9, min_accounts=2)) == [
        (5, "D"), (4, "A")]
    assert _ranked(rank(small, "won", percentile=50, min_accounts=2)) == [
        (1, "B"), (2, "C"), (3, "G")]
    assert _ranked(rank(small, "potential", top=3)) == [(1, "G"), (2, "F"), (3, "E")]
    # the input frame is left as it was
    assert small["area"].tolist()[:3] == ["A", "B", "C"]
    assert "rank" not in small.columns


def test_rank_nothing_to_rank(small):
    empty = small.assign(won=np.nan)
    assert rank(empty, "won").empty
    assert rank(empty, "won", percentile=90).empty
    assert rank(small, "won", min_accounts=100, bottom=3).empty


@pytest.mark.parametrize(
    "kwargs",
    [
        {"metric": "revenue"},
        {"metric": "won", "top": 2, "bottom": 2},
        {"metric": "won", "top": 2, "percentile": 50},
        {"metric": "won", "bottom": 2, "percentile": 50},
        {"metric": "won", "top": 0},
        {"metric": "won", "bottom": -1},
        {"metric": "won", "percentile": 101},
        {"metric": "won", "percentile": -0.5},
    ],
)
def test_rank_errors(small, kwargs):
    metric = kwargs.pop("metric")
    with pytest.raises(InputError):
        rank(small, metric, **kwargs)


def test_rank_demo_bottom_and_percentile(db, world):
    want = expected(world, "territory_id").drop(NONE)
    got = rank(table(db, "territory"), "win_rate_amount", bottom=3)
    lowest = want["win_rate_amount"].sort_values(kind="stable").index[:3].tolist()
    assert got["area"].tolist() == lowest
    assert got["rank"].tolist() == [40, 39, 38]
    cut = np.percentile(want["growth"].to_numpy(float), 80)
    top = rank(table(db, "territory"), "growth", percentile=80)
    assert set(top["area"]) == set(want.index[want["growth"] >= cut])
    assert top["growth"].is_monotonic_decreasing


# --------------------------------------------------------------------------------------
# breakdowns and the monthly trend
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("by", ["segment", "industry"])
def test_breakdown_matches_pandas(db, world, by):
    got = breakdown(db.cur, db.plan, PERIOD, AS_OF, by)
    want = expected(world, by)
    assert got["potential"].is_monotonic_decreasing
    cols = [c for c in SUMS + RATIOS if c not in ("quota", "attainment", "pace")]
    assert_same(by_area(got, by), want, cols)
    assert got[["quota", "attainment", "pace"]].isna().all().all()


def test_breakdown_with_scope_and_by_product(db, world):
    scope = Scope(AccountFilter(segments=("Hospital", "Clinic")), regions=("South",))
    got = breakdown(db.cur, db.plan, PERIOD, AS_OF, "industry", scope)
    want = expected(world, "industry", segments=("Hospital", "Clinic"), regions=("South",))
    assert_same(by_area(got, "industry"), want, ["accounts", "potential", "won", "lost_deals",
                                                 "won_prior", "growth", "penetration"])
    got = breakdown(db.cur, db.plan, PERIOD, AS_OF, "product").set_index("product")
    s = world.sales
    s26 = s[in_period(s["close"], PERIOD)]
    for product, deals in s26.groupby("product"):
        won = deals.loc[deals["stage"] == "won", "amount"]
        lost = deals.loc[deals["stage"] == "lost", "amount"]
        row = got.loc[product]
        assert row["won"] == pytest.approx(won.sum(), rel=1e-9)
        assert row["won_deals"] == len(won)
        assert row["win_rate_amount"] == pytest.approx(won.sum() / (won.sum() + lost.sum()),
                                                       rel=1e-9)
        assert row["avg_deal_size"] == pytest.approx(won.mean(), rel=1e-9)
        assert pd.isna(row["penetration"])
    one = breakdown(db.cur, db.plan, PERIOD, AS_OF, "product",
                    Scope(AccountFilter(products=("Imaging service",))))
    assert one["product"].tolist() == ["Imaging service"]
    with pytest.raises(InputError):
        breakdown(db.cur, db.plan, PERIOD, AS_OF, "region")


def test_monthly_trend(db, world):
    trend = monthly_trend(db.cur, db.plan, PERIOD)
    assert len(trend) == 12
    assert [pd.Timestamp(m).month for m in trend["month"]] == list(range(1, 13))
    s26 = world.sales[in_period(world.sales["close"], PERIOD)]
    for stage, col in (("won", "won"), ("open", "open_pipeline"), ("lost", "lost")):
        deals = s26[s26["stage"] == stage]
        assert trend[col].sum() == pytest.approx(deals["amount"].sum(), rel=1e-12)
        by_month = deals.groupby(deals["close"].dt.month)["amount"].sum()
        np.testing.assert_allclose(trend[col].to_numpy(), by_month.reindex(
            range(1, 13), fill_value=0).to_numpy(), rtol=1e-9)
    # one territory, within a scope: its won / open / lost for the period
    scope = Scope(AccountFilter(segments=("Hospital",)))
    one = monthly_trend(db.cur, db.plan, PERIOD, scope, Level("territory"), "T05")
    want = expected(world, "territory_id", segments=("Hospital",)).loc["T05"]
    for col in ("won", "open_pipeline", "lost"):
        assert one[col].sum() == pytest.approx(want[col], rel=1e-9)
    # a period of a few days still lists every month it touches
    short = monthly_trend(db.cur, db.plan, Period(dt.date(2026, 1, 31), dt.date(2026, 3, 1)))
    assert len(short) == 3


# --------------------------------------------------------------------------------------
# drilling into one territory
# --------------------------------------------------------------------------------------
def test_area_accounts_and_deals(db, world):
    tid = "T05"
    acc = world.accounts[world.accounts["territory_id"] == tid]
    got = area_accounts(db.cur, db.plan, PERIOD, Level("territory"), tid, limit=100_000)
    assert len(acc) > 50
    assert set(got["account_id"]) == set(acc["account_id"])
    assert got["potential"].is_monotonic_decreasing
    assert (got["territory_id"] == tid).all()
    s26 = world.sales[in_period(world.sales["close"], PERIOD)]
    won = s26[s26["stage"] == "won"].groupby("account_id")["amount"].sum()
    np.testing.assert_allclose(got["won"].to_numpy(),
                               got["account_id"].map(won).fillna(0).to_numpy(), rtol=1e-9)
    # the limit keeps the largest potentials (account id breaks ties)
    top = area_accounts(db.cur, db.plan, PERIOD, Level("territory"), tid, limit=10)
    want = acc.sort_values(["potential", "account_id"], ascending=[False, True]).head(10)
    assert top["account_id"].tolist() == want["account_id"].tolist()

    deals = area_deals(db.cur, db.plan, PERIOD, Level("territory"), tid, limit=100_000)
    mine = s26[s26["account_id"].isin(acc["account_id"])]
    assert set(deals["opportunity_id"]) == set(mine["opportunity_id"])
    close = pd.to_datetime(deals["close_date"])
    assert close.between(pd.Timestamp(PERIOD.start), pd.Timestamp(PERIOD.end)).all()
    assert close.is_monotonic_decreasing
    assert set(deals["account_id"]) <= set(acc["account_id"])
    assert len(area_deals(db.cur, db.plan, PERIOD, Level("territory"), tid, limit=7)) == 7
    # the accounts in no territory are an area too
    none = area_accounts(db.cur, db.plan, PERIOD, Level("territory"), None)
    assert set(none["account_id"]) == set(
        world.accounts.loc[world.accounts["territory_id"].isna(), "account_id"])


def test_area_accounts_with_product_scope(db, world):
    scope = Scope(AccountFilter(products=("Infusion pumps",)))
    got = area_accounts(db.cur, db.plan, PERIOD, Level("rep"), "R003", scope, limit=100_000)
    acc = world.accounts[world.accounts["rep_id"] == "R003"]
    assert set(got["account_id"]) == set(acc["account_id"])
    s = world.sales
    s = s[in_period(s["close"], PERIOD) & (s["product"] == "Infusion pumps")
          & (s["stage"] == "open")]
    assert got["open_pipeline"].sum() == pytest.approx(
        s.loc[s["account_id"].isin(acc["account_id"]), "amount"].sum(), rel=1e-9)
    deals = area_deals(db.cur, db.plan, PERIOD, Level("rep"), "R003", scope, limit=100_000)
    assert (deals["product"] == "Infusion pumps").all()


# --------------------------------------------------------------------------------------
# a pinned account moves its numbers; a territory quota wins over the rep's
# --------------------------------------------------------------------------------------
def test_pin_moves_exactly_that_account(demo_copy, world):
    s26 = world.sales[in_period(world.sales["close"], PERIOD)]
    won = s26[s26["stage"] == "won"].groupby("account_id")["amount"].sum()
    acc = world.accounts[world.accounts["territory_id"] == "T05"].copy()
    acc["won"] = acc["account_id"].map(won).fillna(0)
    account = acc.sort_values("won", ascending=False).iloc[0]
    assert account["won"] > 0
    with Store(demo_copy) as store:
        cur = store.cursor()
        plan = plans.get_plan(cur)
        before = by_area(area_table(cur, plan, PERIOD, AS_OF, Level("territory")))
        edits.pin_account(store, plan, account["account_id"], "T12")
        after = by_area(area_table(store.cursor(), plan, PERIOD, AS_OF, Level("territory")))
        reps_after = by_area(area_table(store.cursor(), plan, PERIOD, AS_OF, Level("rep")))
    delta = after[SUMS] - before[SUMS]
    assert delta.loc["T05", "accounts"] == -1
    assert delta.loc["T12", "accounts"] == 1
    assert delta.loc["T05", "won"] == pytest.approx(-account["won"], rel=1e-9)
    assert delta.loc["T12", "won"] == pytest.approx(account["won"], rel=1e-9)
    assert delta.loc["T12", "potential"] == pytest.approx(account["potential"], rel=1e-9)
    assert delta.loc["T05", "potential"] == pytest.approx(-account["potential"], rel=1e-9)
    # every other territory keeps its numbers (up to the order of a floating-point sum)
    others = before.index.drop(["T05", "T12"])
    assert_same(after.loc[others], before.loc[others])
    totals = after[SUMS].sum() - before[SUMS].sum()
    np.testing.assert_allclose(totals.to_numpy(float), 0, atol=1e-6)
    assert reps_after.loc["R012", "won"] == pytest.approx(after.loc["T12", "won"], rel=1e-12)
    # the oracle, with the pin applied, agrees on every column
    moved = world.accounts.copy()
    i = moved.index[moved["account_id"] == account["account_id"]]
    moved.loc[i, "territory_id"] = "T12"
    assert_same(after, expected(SimpleNamespace(**{**vars(world), "accounts": moved}),
                                "territory_id"))


def test_territory_quota_wins_over_rep_quota(demo_copy, world):
    with Store(demo_copy) as store:
        plan = plans.get_plan(store.cursor())
        edits.update_territory(store, plan, "T05", annual_quota=730_000.0)
        got = by_area(area_table(store.cursor(), plan, PERIOD, AS_OF, Level("territory")))
        reps = by_area(area_table(store.cursor(), plan, PERIOD, AS_OF, Level("rep")))
    assert got.loc["T05", "quota"] == pytest.approx(730_000.0, rel=1e-12)  # 365 days
    assert got.loc["T05", "attainment"] == pytest.approx(got.loc["T05", "won"] / 730_000,
                                                         rel=1e-12)
    rep = world.accounts.loc[world.accounts["territory_id"] == "T05", "rep_id"].iloc[0]
    assert reps.loc[rep, "quota"] == pytest.approx(730_000.0, rel=1e-12)
    assert got.loc["T12", "quota"] == pytest.approx(world.quota["territory_id"]["T12"],
                                                    rel=1e-12)


# --------------------------------------------------------------------------------------
# the rank command
# --------------------------------------------------------------------------------------
def _rank_json(capsys, db_path, *argv) -> list[dict]:
    code = main(["rank", "--db", str(db_path), "--format", "json", *argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_cli_rank_bottom_and_percentile(capsys, demo_db, world):
    want = expected(world, "territory_id").drop(NONE)
    got = _rank_json(capsys, demo_db, "--metric", "win_rate_amount", "--level", "territory",
                     "--bottom", "3")
    lowest = want["win_rate_amount"].sort_values(kind="stable").head(3)
    assert [r["area"] for r in got] == lowest.index.tolist()
    assert [r["win_rate_amount"] for r in got] == pytest.approx(lowest.tolist(), rel=1e-9)
    assert [r["rank"] for r in got] == [40, 39, 38]
    assert list(got[0]) == ["rank", *AREA_COLUMNS]

    got = _rank_json(capsys, demo_db, "--metric", "won", "--level", "territory",
                     "--percentile", "90")
    cut = np.percentile(want["won"].to_numpy(float), 90)
    high = want.loc[want["won"] >= cut, "won"].sort_values(ascending=False)
    assert len(high) == 4
    assert [r["area"] for r in got] == high.index.tolist()
    assert [r["rank"] for r in got] == [1, 2, 3, 4]

    got = _rank_json(capsys, demo_db, "--metric", "growth", "--level", "rep", "--top", "2",
                     "--segment", "Hospital", "--region", "South", "--period", "2026")
    want = expected(world, "rep_id", segments=("Hospital",), regions=("South",))
    assert [r["area"] for r in got] == want["growth"].sort_values(
        ascending=False).index[:2].tolist()


def test_cli_rank_units_min_accounts_csv(capsys, demo_db, world):
    code = main(["rank", "--db", str(demo_db), "--metric", "penetration", "--level",
                 "unit:h3:5", "--min-accounts", "20", "--format", "csv"])
    out, err = capsys.readouterr()
    assert code == 0, err
    got = pd.read_csv(io.StringIO(out), dtype={"area": str, "name": str})
    want = expected(world, "h3_5")
    want = want[want["accounts"] >= 20].sort_values("penetration", ascending=False,
                                                    kind="stable")
    assert got["area"].tolist() == want.index.tolist()
    assert got["accounts"].min() >= 20


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--metric", "attainment", "--level", "unit:county"], "attainment needs a quota"),
        (["--metric", "won", "--level", "county"], "level 'county'"),
        (["--metric", "won", "--level", "territory", "--percentile", "120"],
         "between 0 and 100"),
        (["--metric", "won", "--level", "territory", "--top", "0"], "at least 1"),
    ],
)
def test_cli_rank_input_errors(capsys, demo_db, argv, message):
    code = main(["rank", "--db", str(demo_db), *argv])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert message in err
    assert err.startswith("error: ")


def test_cli_rank_usage_errors(capsys, demo_db):
    for argv in (["--metric", "revenue", "--level", "territory"],
                 ["--metric", "won", "--level", "territory", "--top", "2", "--bottom", "2"]):
        assert main(["rank", "--db", str(demo_db), *argv]) == 2
        assert "usage:" in capsys.readouterr().err


def test_rank_counties_by_accounts_per_1k_establishments_among_big_markets(demo_db):
    """"Bottom 10 counties by accounts per 1,000 establishments, among counties with at
    least 500 establishments": accounts counted with SQL, establishments from the county
    roll-up (tests/test_market.py checks it against the Census table), the share and the
    order worked out here."""
    from analytics import market
    from analytics.units import UnitType

    with Store(demo_db, read_only=True) as store:
        cur = store.cursor()
        plan = plans.get_plan(cur)
        as_of = dt.date(2026, 9, 30)
        table = area_table(cur, plan, Period(dt.date(2026, 1, 1), dt.date(2026, 12, 31)),
                           as_of, Level.parse("unit:county"))
        accounts = dict(cur.execute("SELECT county, count(*) FROM accounts "
                                    "WHERE county IS NOT NULL GROUP BY 1").fetchall())
    est = market.unit_market(UnitType("county")).set_index("unit_id")["market_establishments"]
    expected = sorted(((1000 * n / est[c], c) for c, n in accounts.items()
                       if est.get(c, 0) >= 500), key=lambda x: (x[0], x[1]))[:10]
    got = rank(table, "accounts_per_1k_establishments", bottom=10, min_establishments=500)
    assert list(got["area"]) == [c for _, c in expected]
    np.testing.assert_allclose(got["accounts_per_1k_establishments"],
                               [v for v, _ in expected], rtol=1e-12)
    assert (got["market_establishments"] >= 500).all()
    top = rank(table, "potential_per_capita", top=3)
    pop = market.unit_market(UnitType("county")).set_index("unit_id")["market_population"]
    for row in top.itertuples():
        assert row.potential_per_capita == pytest.approx(row.potential / pop[row.area])
