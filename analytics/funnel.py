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

from analytics import catalog, stage_history
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
    """The open stages in the order deals pass them (kept at import: stage_history.py)."""
    return stage_history.stage_order(cur)


def _cohort_sql(plan: Plan, period: Period, scope: Scope | None) -> tuple[str, list]:
    """`cohort`: the closed deals in scope (opportunity_id, won)."""
    scope = scope or Scope()
    cte, params = scoped_cte(plan, scope, "NULL")
    sale_where, sale_params = scope.flt.sales_sql("s")
    return (f"""{cte},
        cohort AS (
            SELECT s.opportunity_id, s.stage = 'won' AS won
            FROM sales s JOIN scoped sc ON sc.account_key = s.account_key
            WHERE s.stage IN ('won', 'lost') AND s.close_date BETWEEN ? AND ?
              AND {sale_where})""",
            [*params, period.start, period.end, *sale_params])


DEALS_CTE = """d AS MATERIALIZED (
    SELECT c.won, ds.stages, ds.days,
           coalesce(list_max(list_transform(ds.stages, lambda x: list_position(?::VARCHAR[], x))),
                    1) - 1 AS far
    FROM cohort c LEFT JOIN deal_stages ds USING (opportunity_id))"""
"""The cohort's deals with their stages (deal_stages) and the position of the furthest
open stage in the order (a parameter; none recorded: the first)."""


def funnel(cur, plan: Plan, period: Period, scope: Scope | None = None,
           order: list[str] | None = None) -> pd.DataFrame:
    """FUNNEL_COLUMNS, one row per open stage then `Closed Won` (see the module
    docstring); `order`: the stage order when the caller has it already. Summed in the
    database over one row per deal (`deal_stages`, kept at import)."""
    order = stage_order(cur) if order is None else order
    cohort, params = _cohort_sql(plan, period, scope)
    rows = cur.execute(
        f"""WITH {cohort}, {DEALS_CTE},
            per_stage AS (
                SELECT unnest(stages) AS stage, unnest(days) AS d FROM d
                WHERE stages IS NOT NULL)
            SELECT 'deals' AS kind, far, won, stages IS NOT NULL AS has, count(*) AS n,
                   NULL::VARCHAR AS stage, NULL::DOUBLE AS mean, NULL::DOUBLE AS median
            FROM d GROUP BY ALL
            UNION ALL
            SELECT 'days', NULL, NULL, NULL, NULL, stage, avg(d), median(d)
            FROM per_stage WHERE d IS NOT NULL GROUP BY stage""",
        [*params, order]).fetchall()
    by_far = [(f, w, has, n) for kind, f, w, has, n, *_ in rows if kind == "deals"]
    won = sum(n for _, w, _, n in by_far if w)
    closed = sum(n for *_, n in by_far)
    if not order or not any(has for _, _, has, _ in by_far):
        lost = closed - won
        rate = catalog.divide(won, closed).item()
        return pd.DataFrame([
            ["Closed", 0, closed, lost, rate, rate, np.nan, np.nan, CLOSED_ONLY],
            [WON_ROW, 1, won, 0, np.nan, 1.0 if won else np.nan, np.nan, np.nan,
             CLOSED_ONLY]], columns=FUNNEL_COLUMNS)
    n = len(order)
    reached = np.array([sum(d for f, w, _, d in by_far if w or f >= k) for k in range(n)])
    lost_here = np.array([sum(d for f, w, _, d in by_far if not w and f == k)
                          for k in range(n)])
    mean = {r[5]: r[6] for r in rows if r[0] == "days"}
    median = {r[5]: r[7] for r in rows if r[0] == "days"}
    nxt = np.append(reached[1:], won)
    table = pd.DataFrame({
        "stage": order, "position": range(n), "reached": reached, "lost_here": lost_here,
        "conversion_next": catalog.divide(nxt, reached),
        "conversion_won": catalog.divide(np.full(n, won), reached),
        "days_mean": [float(mean.get(s, np.nan)) for s in order],
        "days_median": [float(median.get(s, np.nan)) for s in order],
        "source": FROM_HISTORY})
    last = pd.DataFrame([[WON_ROW, n, won, 0, np.nan, 1.0 if won else np.nan, np.nan,
                          np.nan, FROM_HISTORY]], columns=FUNNEL_COLUMNS)
    return pd.concat([table, last], ignore_index=True)[FUNNEL_COLUMNS]


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
