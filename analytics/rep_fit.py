"""Rep fit: which rep should hold which territory, so that each territory's deal flow meets
the rep who wins that kind of deal, while accounts stay with the rep who has them where the
gain does not pay for the handover (issue 15, point 6).

For the plan's territories that have a rep today (the slots), every rep holding one is a
candidate for every slot, and the suggestion is the assignment of reps to slots with the
highest total expected won amount (`scipy.optimize.linear_sum_assignment`):

    expected(r, t) = Σ over segments s of flow(t, s) x rate(r, s)
                     - handover_loss x handed(r, t)

- `flow(t, s)`: the amount of t's deals closed (won or lost) in the period in segment s:
  what the territory puts in front of its rep;
- `rate(r, s)`: the rep's win rate by count in s over all their closed deals (a deal counts
  for its own rep, else its account's territory's: review.closed_counts), pulled towards
  the team's rate in s by `shrink` deals of it: `(won + shrink x team) / (closed + shrink)`,
  so three lucky deals do not move a rep;
- `handed(r, t)`: the won amount in the period of t's accounts owned (`owner_rep_id`) by
  someone other than r: the relationships that would change hands; `handover_loss` (10%)
  of it is counted as lost.

Ties keep today's rep. The suggestion is only shown; `apply_rep_fit` makes it one undoable
edit of the territories' reps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics import edits, plans, review
from analytics.errors import InputError
from analytics.period import Period
from analytics.plans import Plan
from analytics.resolution import resolved_cte
from analytics.store import Store

HANDOVER_LOSS = 0.10
"""Share of a handed-over account's won amount counted as lost with the relationship."""
FIT_COLUMNS = ["territory_id", "territory_name", "current_rep", "current_rep_name",
               "suggested_rep", "suggested_rep_name", "deal_flow", "expected_current",
               "expected_suggested", "handover_accounts", "handover_won", "gain"]


@dataclass
class RepFit:
    table: pd.DataFrame
    """FIT_COLUMNS per territory with a rep, changed territories first (largest gain)."""
    handover_loss: float
    shrink: int

    @property
    def changes(self) -> pd.DataFrame:
        return self.table[self.table["suggested_rep"] != self.table["current_rep"]]

    def headline(self) -> dict:
        t = self.table
        return {"territories": len(t), "changes": len(self.changes),
                "expected_current": float(t["expected_current"].sum()),
                "expected_suggested": float(t["expected_suggested"].sum()),
                "gain": float(t["gain"].sum())}


def _inputs(cur, plan: Plan, period: Period, shrink: int):
    terr = plans.territories(cur, plan)
    slots = terr[terr["rep_id"].notna()].reset_index(drop=True)
    counts = review.closed_counts(cur, plan, period, "segment")
    counts["closed"] = counts["won_deals"] + counts["lost_deals"]
    team = counts.groupby("value")[["won_deals", "closed"]].sum()
    team_rate = team["won_deals"] / team["closed"]
    mine = counts[counts["rep_id"].notna()].groupby(["rep_id", "value"])[
        ["won_deals", "closed"]].sum()
    segments = list(team_rate.index)
    reps = list(dict.fromkeys(slots["rep_id"]))
    rate = pd.DataFrame(np.tile(team_rate.to_numpy(), (len(reps), 1)), index=reps,
                        columns=segments)
    for (rep, seg), row in mine.iterrows():
        if rep in rate.index:
            rate.loc[rep, seg] = (row["won_deals"] + shrink * team_rate[seg]) \
                / (row["closed"] + shrink)
    flow = counts[counts["territory_id"].notna()].pivot_table(
        index="territory_id", columns="value", values="closed_amount", aggfunc="sum",
        fill_value=0.0).reindex(index=slots["territory_id"], columns=segments, fill_value=0.0)
    cte, params = resolved_cte(plan)
    owned = cur.execute(
        f"""WITH {cte}
            SELECT a.territory_id, a.owner_rep_id, count(DISTINCT a.account_id) AS accounts,
                   coalesce(sum(s.amount) FILTER (WHERE s.stage = 'won'), 0) AS won
            FROM resolved a LEFT JOIN sales s ON s.account_id = a.account_id
                 AND s.close_date BETWEEN ? AND ?
            WHERE a.territory_id IS NOT NULL AND a.owner_rep_id IS NOT NULL
            GROUP BY ALL""", [*params, period.start, period.end]).df()
    return slots, rate, flow, owned


def rep_fit(cur, plan: Plan, period: Period, *, handover_loss: float = HANDOVER_LOSS,
            shrink: int = review.MIN_CLOSED) -> RepFit:
    """The suggested reps per territory (see the module docstring)."""
    from scipy.optimize import linear_sum_assignment

    if not 0 <= handover_loss <= 1:
        raise InputError("--handover-loss: a share between 0 and 1")
    if shrink < 0:
        raise InputError("--shrink: 0 or more deals")
    slots, rate, flow, owned = _inputs(cur, plan, period, shrink)
    if slots.empty:
        raise InputError(f"plan {plan.name!r} has no territory with a rep: nothing to fit")
    tids = slots["territory_id"].tolist()
    cands = slots["rep_id"].tolist()  # one column per slot (a rep on two territories twice)
    expected = flow.to_numpy() @ rate.loc[cands].to_numpy().T  # territory x candidate
    by_t = owned.groupby("territory_id")
    handed = np.zeros_like(expected)
    handed_n = np.zeros_like(expected)
    for i, t in enumerate(tids):
        if t not in by_t.groups:
            continue
        g = by_t.get_group(t)
        for j, r in enumerate(cands):
            other = g[g["owner_rep_id"] != r]
            handed[i, j] = other["won"].sum()
            handed_n[i, j] = other["accounts"].sum()
    score = expected - handover_loss * handed
    keep = np.eye(len(tids)) * 1e-6 * (1 + np.abs(score).max())  # ties keep today's rep
    rows, cols = linear_sum_assignment(score + keep, maximize=True)
    pick = dict(zip(rows, cols, strict=True))
    names = dict(cur.execute("SELECT rep_id, name FROM reps").fetchall())
    table = pd.DataFrame({
        "territory_id": tids, "territory_name": slots["territory_name"],
        "current_rep": cands, "current_rep_name": [names.get(r) for r in cands],
        "suggested_rep": [cands[pick[i]] for i in range(len(tids))],
        "deal_flow": flow.sum(axis=1).to_numpy(),
        "expected_current": [score[i, i] for i in range(len(tids))],
        "expected_suggested": [score[i, pick[i]] for i in range(len(tids))],
        "handover_accounts": [int(handed_n[i, pick[i]]) for i in range(len(tids))],
        "handover_won": [handed[i, pick[i]] for i in range(len(tids))],
    })
    table["suggested_rep_name"] = table["suggested_rep"].map(names)
    table["gain"] = table["expected_suggested"] - table["expected_current"]
    table = table.assign(_c=table["suggested_rep"] != table["current_rep"]) \
        .sort_values(["_c", "gain", "territory_id"], ascending=[False, False, True])
    return RepFit(table[FIT_COLUMNS].reset_index(drop=True), handover_loss, shrink)


def apply_rep_fit(store: Store, plan: Plan, fit: RepFit):
    """The suggested reps as one undoable edit (only the territories that change)."""
    changes = dict(zip(fit.changes["territory_id"], fit.changes["suggested_rep"],
                       strict=True))
    expected = dict(zip(fit.changes["territory_id"], fit.changes["current_rep"],
                        strict=True))
    return edits.set_reps(store, plan, changes, expected=expected,
                          label=f"Rep fit: {len(changes)} territories change rep")
