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
        review.closed_deals(s.cursor(), plans.get_plan(s.cursor(), None),
                            Period.year(2026), by="color")
