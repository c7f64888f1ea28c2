"""The pipeline funnel: where deals go from stage to stage, how long they stay, where they
are lost (issue 15, point 3).

The cohort is the deals **closed** (won or lost) in the period, of accounts in scope (the
explorer's `Scope`: plan, territory, rep, segment and the other filters; a deal belongs to
its account's territory, as in every territory metric). Open deals are left out: counting
them would call a deal that is still moving a drop-out.

From the stage history (`stage_history`, when imported):
- **stage order**: the open stages ordered by the mean position at which deals first enter
  them (the whole history, so a territory and the team share one order), ties by name;
- a deal **reached** a stage when its history holds that stage or a later one, or it was
  won (a won deal passed every stage); a lost deal with no open stage recorded reached the
  first stage only;
- **lost here**: lost deals whose furthest stage is this one;
- **conversion to next** = reached(next) / reached(this); **to won** = won / reached(this);
- **days in stage**: from entering a stage to the deal's next change (summed per deal when
  it came back), mean and median over the deals that left it.

Without a stage history for the cohort the funnel has one measured step, closed -> won,
and says so in `source` (no stage is guessed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics import catalog
from analytics.performance import Scope, scoped_cte
from analytics.period import Period
from analytics.plans import Plan
from analytics.review import wilson_interval

FUNNEL_COLUMNS = ["stage", "position", "reached", "lost_here", "conversion_next",
                  "conversion_won", "days_mean", "days_median", "source"]
FROM_HISTORY = "stage history"
CLOSED_ONLY = "closed deals only (no stage history imported)"
WON_ROW = "Closed Won"


def stage_order(cur) -> list[str]:
    """The open stages in the order deals pass them (see the module docstring)."""
    rows = cur.execute(
        """WITH firsts AS (
               SELECT opportunity_id, stage, min(changed_at) AS first_at FROM stage_history
               WHERE stage_class = 'open' GROUP BY ALL),
           ranked AS (
               SELECT stage, dense_rank() OVER (PARTITION BY opportunity_id ORDER BY first_at)
                      AS pos FROM firsts)
           SELECT stage FROM ranked GROUP BY stage ORDER BY avg(pos), stage""").fetchall()
    return [r[0] for r in rows]


def cohort(cur, plan: Plan, period: Period, scope: Scope | None = None) -> pd.DataFrame:
    """The closed deals in scope: opportunity_id, stage (won | lost), territory_id,
    rep_id (the territory's), segment."""
    scope = scope or Scope()
    cte, params = scoped_cte(plan, scope, "NULL")
    sale_where, sale_params = scope.flt.sales_sql("s")
    return cur.execute(
        f"""WITH {cte}
            SELECT s.opportunity_id, s.stage, sc.territory_id, sc.rep_id, sc.segment
            FROM sales s JOIN scoped sc ON sc.account_key = s.account_key
            WHERE s.stage IN ('won', 'lost') AND s.close_date BETWEEN ? AND ?
              AND {sale_where}""",
        [*params, period.start, period.end, *sale_params]).df()


def funnel(cur, plan: Plan, period: Period, scope: Scope | None = None,
           order: list[str] | None = None) -> pd.DataFrame:
    """FUNNEL_COLUMNS, one row per open stage then `Closed Won` (see the module
    docstring); `order`: the stage order when the caller has it already."""
    deals = cohort(cur, plan, period, scope)
    return funnel_of(cur, deals, order)


def funnel_of(cur, deals: pd.DataFrame, order: list[str] | None = None) -> pd.DataFrame:
    """The funnel of a cohort (`cohort`'s columns; at least opportunity_id and stage)."""
    won = int((deals["stage"] == "won").sum())
    closed = len(deals)
    order = stage_order(cur) if order is None else order
    hist = pd.DataFrame(columns=["opportunity_id", "stage", "changed_at", "next_at"])
    if order and closed:
        cur.register("funnel_cohort", deals[["opportunity_id"]])
        try:
            hist = cur.execute(
                """SELECT h.opportunity_id, h.stage, h.stage_class, h.changed_at,
                          lead(h.changed_at) OVER (PARTITION BY h.opportunity_id
                              ORDER BY h.changed_at, h.stage_class DESC, h.stage) AS next_at
                   FROM stage_history h
                   WHERE h.opportunity_id IN (SELECT opportunity_id FROM funnel_cohort)"""
            ).df()
        finally:
            cur.unregister("funnel_cohort")
    if hist.empty:
        lost = closed - won
        return pd.DataFrame([
            ["Closed", 0, closed, lost, catalog.divide(won, closed).item(),
             catalog.divide(won, closed).item(), np.nan, np.nan, CLOSED_ONLY],
            [WON_ROW, 1, won, 0, np.nan, 1.0 if won else np.nan, np.nan, np.nan,
             CLOSED_ONLY]], columns=FUNNEL_COLUMNS)
    pos = {s: i for i, s in enumerate(order)}
    opn = hist[hist["stage"].isin(pos)]
    furthest = opn.assign(p=opn["stage"].map(pos)).groupby("opportunity_id")["p"].max()
    d = deals.set_index("opportunity_id")
    far = furthest.reindex(d.index).fillna(0).astype(int).to_numpy()  # no open stage: 1st
    is_won = (d["stage"] == "won").to_numpy()
    n = len(order)
    reached = np.array([int(((far >= k) | is_won).sum()) for k in range(n)])
    lost_here = np.array([int(((far == k) & ~is_won).sum()) for k in range(n)])
    left = opn[opn["next_at"].notna()]
    spent = (left.assign(days=(pd.to_datetime(left["next_at"])
                               - pd.to_datetime(left["changed_at"])).dt.days)
             .groupby(["opportunity_id", "stage"])["days"].sum().reset_index())
    mean = spent.groupby("stage")["days"].mean()
    median = spent.groupby("stage")["days"].median()
    nxt = np.append(reached[1:], won)
    rows = pd.DataFrame({
        "stage": order, "position": range(n), "reached": reached, "lost_here": lost_here,
        "conversion_next": catalog.divide(nxt, reached),
        "conversion_won": catalog.divide(np.full(n, won), reached),
        "days_mean": [mean.get(s, np.nan) for s in order],
        "days_median": [median.get(s, np.nan) for s in order],
        "source": FROM_HISTORY})
    last = pd.DataFrame([[WON_ROW, n, won, 0, np.nan, 1.0 if won else np.nan, np.nan,
                          np.nan, FROM_HISTORY]], columns=FUNNEL_COLUMNS)
    return pd.concat([rows, last], ignore_index=True)[FUNNEL_COLUMNS]


def worst_leak(mine: pd.DataFrame, team: pd.DataFrame, min_reached: int) -> dict | None:
    """The stage whose conversion to the next falls furthest below the team's, where at
    least `min_reached` deals reached it and the shortfall is clear of chance (the Wilson
    95% upper end of this funnel's rate below the team's rate); None otherwise."""
    both = mine.merge(team, on="stage", suffixes=("", "_team"))
    both = both[(both["stage"] != WON_ROW) & (both["reached"] >= min_reached)]
    if both.empty or (both["source"] != FROM_HISTORY).any():
        return None
    nxt = np.rint(both["conversion_next"] * both["reached"])
    _, hi = wilson_interval(nxt, both["reached"])
    both = both.assign(high=hi, gap=both["conversion_next"] - both["conversion_next_team"])
    clear = both[both["high"] < both["conversion_next_team"]]
    if clear.empty:
        return None
    row = clear.sort_values(["gap", "position"]).iloc[0]
    return row.to_dict()
