"""The territory review's rep strengths (analytics/review.py): the Wilson interval against
published values and the formula written out, a hand-worked small world, the demo data
against plain pandas, and the command line."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from conftest import SMALL_PERIOD

from analytics import plans, review
from analytics.cli import main
from analytics.errors import InputError
from analytics.period import Period
from analytics.store import Store


def wilson_by_hand(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


@pytest.mark.parametrize(("k", "n", "published"), [
    (8, 10, (0.4902, 0.9433)), (0, 10, (0.0, 0.2775)), (10, 10, (0.7225, 1.0)),
    (1, 2, (0.0945, 0.9055)),
])
def test_wilson_interval_matches_published_values_and_the_formula(k, n, published):
    lo, hi = review.wilson_interval([k], [n])
    assert (lo[0], hi[0]) == pytest.approx(published, abs=5e-5)
    assert (lo[0], hi[0]) == pytest.approx(wilson_by_hand(k, n), abs=1e-12)


def test_wilson_interval_is_empty_without_deals():
    lo, hi = review.wilson_interval([0], [0])
    assert np.isnan(lo[0])
    assert np.isnan(hi[0])


def test_rep_strengths_in_the_small_world_by_hand(small_db):
    # Deals closed in the period (no rep on the deals: the account's territory's rep):
    # R1: A1 Hospital won 10,000; A2 Clinic won 7,000 and lost 99,999; A3 Lab won 1,000.
    # R2: A4 Clinic won 800,000. R4: A7 Clinic won 2,500. A6 is in no territory: no rep.
    # Team Clinic: 3 won, 1 lost -> 75%; average won (7,000 + 800,000 + 2,500) / 3.
    with Store(small_db, read_only=True) as s:
        cur = s.cursor()
        got = review.rep_strengths(cur, plans.get_plan(cur, "Base"), SMALL_PERIOD,
                                   min_closed=1).set_index(["rep_id", "value"])
    assert sorted(got.index) == [("R1", "Clinic"), ("R1", "Hospital"), ("R1", "Lab"),
                                 ("R2", "Clinic"), ("R4", "Clinic")]
    r1 = got.loc[("R1", "Clinic")]
    assert (r1["won_deals"], r1["lost_deals"], r1["closed"]) == (1, 1, 2)
    assert r1["win_rate"] == 0.5
    assert (r1["win_rate_low"], r1["win_rate_high"]) == pytest.approx(wilson_by_hand(1, 2))
    assert r1["team_win_rate"] == 0.75
    assert r1["team_closed"] == 4
    assert r1["avg_deal_size"] == 7000
    assert r1["team_avg_deal_size"] == pytest.approx((7000 + 800000 + 2500) / 3)
    assert r1["verdict"] == "as the team"  # 75% lies inside 9%-91%
    assert got.loc[("R1", "Hospital"), "team_win_rate"] == 1.0
    with Store(small_db, read_only=True) as s:
        cur = s.cursor()
        default = review.rep_strengths(cur, plans.get_plan(cur, "Base"), SMALL_PERIOD)
    assert set(default["verdict"]) == {"fewer than 10 closed"}


def test_rep_strengths_on_the_demo_against_pandas(demo_db, demo_frames):
    period = Period.year(2026)
    with Store(demo_db, read_only=True) as s:
        cur = s.cursor()
        got = review.rep_strengths(cur, plans.get_plan(cur, None), period, by="segment")
    sales, acc = demo_frames["sales"], demo_frames["accounts"]
    close = pd.to_datetime(sales["close_date"])
    closed = sales[sales["stage"].isin(["won", "lost"]) & (close >= "2026-01-01")
                   & (close <= "2026-12-31")].merge(acc[["account_id", "segment"]],
                                                   on="account_id")
    closed["won"] = closed["stage"] == "won"
    mine = closed.groupby(["rep_id", "segment"]).agg(
        closed_pd=("won", "size"), won_deals_pd=("won", "sum"))
    mine.index.names = ["rep_id", "value"]
    team = closed.groupby("segment")["won"].mean()
    got = got.set_index(["rep_id", "value"])
    assert sorted(got.index) == sorted(mine.index)
    joined = got.join(mine)
    assert (joined["closed"] == joined["closed_pd"]).all()
    assert (joined["won_deals"] == joined["won_deals_pd"]).all()
    np.testing.assert_allclose(joined["team_win_rate"],
                               team.loc[joined.index.get_level_values(1)].to_numpy())
    strong = got[got["verdict"] == "strong"]
    assert (strong["closed"] >= 10).all()
    assert (strong["win_rate_low"] > strong["team_win_rate"]).all()
    weak = got[got["verdict"] == "weak"]
    assert (weak["win_rate_high"] < weak["team_win_rate"]).all()


@pytest.mark.parametrize("by", list(review.BY))
def test_cli_strengths_by_every_choice(demo_db, tmp_path, by):
    out = tmp_path / "s.json"
    assert main(["strengths", "--db", str(demo_db), "--by", by, "--format", "json",
                 "--out", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert rows
    assert {r["by"] for r in rows} == {by}
    assert set(rows[0]) == set(review.STRENGTH_COLUMNS)
    assert review.strength_line(rows[0]).startswith(rows[0]["rep_name"])


def test_cli_strengths_bad_input(demo_db, capsys):
    assert main(["strengths", "--db", str(demo_db), "--min-closed", "0"]) == 2
    assert "at least 1" in capsys.readouterr().err
    assert main(["strengths", "--db", str(demo_db), "--by", "color"]) == 2
    with Store(demo_db, read_only=True) as s, pytest.raises(InputError, match="one of"):
        review.closed_counts(s.cursor(), plans.get_plan(s.cursor(), None),
                             Period.year(2026), by="color")


# -- products bought together ----------------------------------------------------------------
def with_products(db) -> None:
    """Won deals in the period by product: A1 {X, Y}, A2 {X}, A3 {Y, Z}, A4 {X, Y}; a lost
    deal (A2, Y) and a won deal before the period (A2, Z) that must not count."""
    with Store(db) as s:
        cur = s.cursor()
        for opp, product in (("S1", "X"), ("S4", "X"), ("S7", "Y"), ("S8", "X")):
            cur.execute("UPDATE sales SET product = ? WHERE opportunity_id = ?", [product, opp])
        for opp, acc, product, day, stage in (
                ("S20", "A1", "Y", "2026-01-10", "won"), ("S21", "A3", "Z", "2026-02-01", "won"),
                ("S22", "A4", "Y", "2026-03-01", "won"), ("S23", "A2", "Y", "2026-03-01", "lost"),
                ("S24", "A2", "Z", "2025-06-01", "won")):
            cur.execute("INSERT INTO sales (opportunity_id, account_id, account_key, amount, "
                        "close_date, stage, product) SELECT ?, account_id, account_key, 100, "
                        "?, ?, ? FROM accounts WHERE account_id = ?",
                        [opp, day, stage, product, acc])


def test_product_pairs_worked_by_hand(small_copy):
    # 4 accounts; X in 3, Y in 3, Z in 1. X-Y in A1 and A4: support 2/4, confidence X->Y
    # 2/3, lift 0.5 / (0.75 x 0.75) = 0.889. Y-Z in A3: support 1/4, lift 0.25 / (0.75 x
    # 0.25) = 1.333. X-Z: no account. Highest lift first.
    with_products(small_copy)
    with Store(small_copy, read_only=True) as s:
        cur = s.cursor()
        plan = plans.get_plan(cur, "Base")
        got = review.product_pairs(cur, plan, SMALL_PERIOD)
        t1 = review.product_pairs(cur, plan, SMALL_PERIOD, territories=("T1",))
        few = review.product_pairs(cur, plan, SMALL_PERIOD, min_accounts=2)
    assert got[["product_a", "product_b"]].values.tolist() == [["Y", "Z"], ["X", "Y"]]
    yz, xy = got.iloc[0], got.iloc[1]
    assert (yz["accounts_both"], yz["accounts_a"], yz["accounts_b"], yz["accounts"]) == \
        (1, 3, 1, 4)
    assert yz["support"] == 0.25
    assert yz["lift"] == pytest.approx(0.25 / (0.75 * 0.25))
    assert yz["confidence_b_to_a"] == 1.0
    assert xy["support"] == 0.5
    assert xy["confidence_a_to_b"] == pytest.approx(2 / 3)
    assert xy["lift"] == pytest.approx(0.5 / (0.75 * 0.75))
    # T1 holds A1, A2 and A3 (pinned): X-Y in A1 only, Y-Z in A3
    assert t1.set_index(["product_a", "product_b"])["lift"].to_dict() == pytest.approx(
        {("Y", "Z"): (1 / 3) / ((2 / 3) * (1 / 3)), ("X", "Y"): (1 / 3) / ((2 / 3) ** 2)})
    assert few[["product_a", "product_b"]].values.tolist() == [["X", "Y"]]


def test_strengths_of_one_territory_count_its_accounts_deals_only(small_db):
    with Store(small_db, read_only=True) as s:
        cur = s.cursor()
        got = review.rep_strengths(cur, plans.get_plan(cur, "Base"), SMALL_PERIOD,
                                   min_closed=1, territories=("T1",))
    clinic = got.set_index(["rep_id", "value"]).loc[("R1", "Clinic")]
    assert (clinic["team_closed"], clinic["team_win_rate"]) == (2, 0.5)  # A2's deals only
    assert set(got["rep_id"]) == {"R1"}


@pytest.mark.parametrize("command", ["pairs", "strengths"])
def test_cli_a_territory_not_in_the_plan_is_refused(demo_db, capsys, command):
    assert main([command, "--db", str(demo_db), "--territory", "T99"]) == 2
    assert "'T99' is not in plan" in capsys.readouterr().err


def test_cli_pairs_of_a_territory(demo_db, tmp_path):
    out = tmp_path / "p.csv"
    assert main(["pairs", "--db", str(demo_db), "--territory", "T39", "--out",
                 str(out)]) == 0
    frame = pd.read_csv(out)
    assert list(frame.columns) == review.PAIR_COLUMNS
    assert (frame["lift"].diff().dropna() <= 1e-12).all()
