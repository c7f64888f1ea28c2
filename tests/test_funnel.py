"""The pipeline funnel (analytics/funnel.py) on a hand-worked stage history in the small
world, its closed-only fallback, and the demo against a plain pandas funnel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import SMALL_PERIOD, write_csv

from analytics import funnel, ingest, plans
from analytics.cli import main
from analytics.performance import Scope
from analytics.period import Period
from analytics.store import Store

# S13: a lost deal of A1 (T1) whose history holds only its loss
EXTRA_DEAL = ["S13", "A1", 1_000, "2026-02-01", "lost"]
HISTORY = [
    ["OpportunityId", "StageName", "CreatedDate"],
    ["S1", "Prospecting", "2025-05-01"], ["S1", "Qualification", "2025-05-11"],
    ["S1", "Negotiation", "2025-06-01"], ["S1", "Closed Won", "2025-07-01"],
    ["S4", "Prospecting", "2025-11-01"], ["S4", "Closed Won", "2026-01-15"],
    ["S6", "Prospecting", "2025-09-01"], ["S6", "Qualification", "2025-09-21"],
    ["S6", "Closed Lost", "2025-12-01"],
    ["S8", "Prospecting", "2025-12-01"], ["S8", "Qualification", "2026-01-01"],
    ["S8", "Closed Won", "2026-02-01"],
    ["S10", "Prospecting", "2025-08-01"], ["S10", "Closed Won", "2025-10-01"],
    ["S13", "Closed Lost", "2026-02-01"],
]


@pytest.fixture
def with_history(small_copy, tmp_path):
    with Store(small_copy) as s:
        deals = write_csv(tmp_path / "s13.csv", [
            ["opportunity_id", "account_id", "amount", "close_date", "stage"], EXTRA_DEAL])
        assert ingest.load(s, sales=deals).clean
        assert ingest.load(s, stage_history=write_csv(tmp_path / "h.csv", HISTORY)).clean
    return small_copy


def run(db, scope=None) -> pd.DataFrame:
    with Store(db, read_only=True) as s:
        cur = s.cursor()
        return funnel.funnel(cur, plans.get_plan(cur, "Base"), SMALL_PERIOD, scope)


def test_stage_order_follows_the_history(with_history):
    with Store(with_history, read_only=True) as s:
        assert funnel.stage_order(s.cursor()) == ["Prospecting", "Qualification",
                                                  "Negotiation"]


def test_team_funnel_by_hand(with_history):
    # closed in the period: S1 S4 S7 S8 S10 S11 won, S6 S13 lost (8; S7 and S11 have no
    # history: won deals reach every stage). Furthest open stage: S1 Negotiation, S6
    # Qualification, S13 none (lost at the first stage).
    got = run(with_history).set_index("stage")
    assert list(got.index) == ["Prospecting", "Qualification", "Negotiation", "Closed Won"]
    assert got["reached"].tolist() == [8, 7, 6, 6]
    assert got["lost_here"].tolist() == [1, 1, 0, 0]
    assert got["conversion_next"].iloc[:3].tolist() == pytest.approx([7 / 8, 6 / 7, 1.0])
    assert got["conversion_won"].tolist() == pytest.approx([6 / 8, 6 / 7, 1.0, 1.0])
    # days in Prospecting: S1 10, S4 75, S6 20, S8 31, S10 61; Qualification: S1 21,
    # S6 71, S8 31; Negotiation: S1 30
    assert got.loc["Prospecting", "days_mean"] == pytest.approx(197 / 5)
    assert got.loc["Prospecting", "days_median"] == 31
    assert got.loc["Qualification", "days_mean"] == pytest.approx(41)
    assert got.loc["Negotiation", "days_median"] == 30
    assert set(got["source"]) == {funnel.FROM_HISTORY}


def test_territory_funnel_by_hand(with_history):
    # T1 (A1, A2 and A3 pinned): S1 S4 S7 won, S6 S13 lost
    got = run(with_history, Scope(territories=("T1",))).set_index("stage")
    assert got["reached"].tolist() == [5, 4, 3, 3]
    assert got["lost_here"].tolist() == [1, 1, 0, 0]
    assert got["conversion_next"].iloc[:3].tolist() == pytest.approx([4 / 5, 3 / 4, 1.0])


def test_without_a_history_only_closed_to_won_is_measured(small_db):
    got = run(small_db)  # S1 S4 S7 S8 S10 S11 won, S6 lost
    assert got["stage"].tolist() == ["Closed", "Closed Won"]
    assert got["reached"].tolist() == [7, 6]
    assert got["lost_here"].tolist() == [1, 0]
    assert got["conversion_next"].iloc[0] == pytest.approx(6 / 7)
    assert set(got["source"]) == {funnel.CLOSED_ONLY}


def test_worst_leak_needs_a_clear_shortfall(with_history):
    team = run(with_history)
    mine = team.copy()
    assert funnel.worst_leak(mine, team, 1) is None  # equal to the team: no leak
    mine.loc[0, ["reached", "conversion_next"]] = [400, 0.5]  # 200 of 400 vs the team's 7/8
    leak = funnel.worst_leak(mine, team, 10)
    assert leak["stage"] == "Prospecting"
    assert leak["conversion_next_team"] == pytest.approx(7 / 8)
    mine.loc[0, ["reached", "conversion_next"]] = [4, 0.75]  # 3 of 4: Wilson 30%-95%
    assert funnel.worst_leak(mine, team, 1) is None


def pandas_funnel(sales, history, ids) -> pd.DataFrame:
    """An independent funnel: the module docstring's rules written with pandas."""
    closed = sales[sales["opportunity_id"].isin(ids)
                   & sales["stage"].isin(["won", "lost"])]
    h = history.rename(columns={"OpportunityId": "opp", "StageName": "stage",
                                "CreatedDate": "at"})
    opn = h[~h["stage"].isin(["Closed Won", "Closed Lost"])]
    first = opn.groupby(["opp", "stage"])["at"].min().reset_index()
    first["pos"] = first.groupby("opp")["at"].rank(method="dense")
    order = first.groupby("stage")["pos"].mean().reset_index() \
        .sort_values(["pos", "stage"])["stage"].tolist()
    rank = {s: i for i, s in enumerate(order)}
    far = opn.assign(p=opn["stage"].map(rank)).groupby("opp")["p"].max()
    f = closed.set_index("opportunity_id")
    furthest = far.reindex(f.index).fillna(0).to_numpy()
    won = (f["stage"] == "won").to_numpy()
    reached = [int(((furthest >= k) | won).sum()) for k in range(len(order))]
    return pd.DataFrame({"stage": order, "reached": reached,
                         "lost_here": [int(((furthest == k) & ~won).sum())
                                       for k in range(len(order))]})


def test_demo_territory_funnel_against_pandas(demo_db, demo_frames):
    period = Period.year(2026)
    with Store(demo_db, read_only=True) as s:
        cur = s.cursor()
        plan = plans.get_plan(cur, None)
        got = funnel.funnel(cur, plan, period, Scope(territories=("T07",)))
        # the territory's accounts as the database resolves them (the one rule)
        mine = {r[0] for r in cur.execute(
            "SELECT account_id FROM accounts a JOIN plan_units u ON u.plan_id = ? AND "
            "u.unit_id = a.county WHERE u.territory_id = 'T07'", [plan.plan_id]).fetchall()}
    sales = demo_frames["sales"]
    close = pd.to_datetime(sales["close_date"])
    ids = sales.loc[sales["account_id"].isin(mine) & (close >= "2026-01-01")
                    & (close <= "2026-12-31"), "opportunity_id"]
    want = pandas_funnel(sales, demo_frames["stage_history"], set(ids))
    got = got[got["stage"] != funnel.WON_ROW]
    assert got["stage"].tolist() == want["stage"].tolist()
    assert got["reached"].tolist() == want["reached"].tolist()
    assert got["lost_here"].tolist() == want["lost_here"].tolist()
    assert np.all(np.diff(got["reached"]) <= 0)


def test_cli_funnel_and_segments(demo_db, capsys, tmp_path):
    assert main(["funnel", "--db", str(demo_db), "--territory", "T07", "--format",
                 "json"]) == 0
    assert capsys.readouterr().out.count('"stage"') == 6
    for by in ("segment", "industry", "product", "lead_source"):
        assert main(["segments", "--db", str(demo_db), "--by", by, "--out",
                     str(tmp_path / f"{by}.csv")]) == 0
        assert pd.read_csv(tmp_path / f"{by}.csv")["by"].eq(by).all()
    assert main(["funnel", "--db", str(demo_db), "--territory", "T99"]) == 2
    assert "T99" in capsys.readouterr().err
