"""The territory review, first part: where each rep wins, measured against the team.

Rep strengths (issue 15, point 4): per rep and segment (or product, or industry), the deals
closed in the period, won and lost, the win rate by count with its Wilson score interval
(95%), the average won deal, and the same for the whole team in that segment. A rep is
called **strong** in a segment only when the interval's lower end is above the team's win
rate there, and **weak** only when its upper end is below it, and only with at least
`min_closed` closed deals: "strong in hospitals" is never said of a rep on three deals.

Attribution: a deal counts for the rep who worked it (its `rep_id`); a deal without one
counts for the rep of its account's territory in the plan (pin, else unit: the one rule of
analytics/resolution.py). Unlike the territory metrics (what-if attribution to the plan's
territories), strengths describe people, so the deal's own rep wins.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analytics import catalog
from analytics.errors import InputError
from analytics.performance import Scope, prior_period, scoped_cte
from analytics.period import Period
from analytics.plans import Plan
from analytics.resolution import resolved_cte

BY = {"segment": "a.segment", "industry": "a.industry", "product": "s.product"}
"""What a strength is measured by: the account's segment or industry, the deal's product."""
MIN_CLOSED = 10
"""Closed deals a rep needs in a segment before it is called a strength or a weakness."""
Z95 = 1.959963984540054
"""The standard normal quantile of 97.5%: a two-sided 95% interval."""
STRENGTH_COLUMNS = ["rep_id", "rep_name", "by", "value", "closed", "won_deals",
                    "lost_deals", "win_rate", "win_rate_low", "win_rate_high",
                    "team_closed", "team_win_rate", "avg_deal_size", "team_avg_deal_size",
                    "verdict"]


def wilson_interval(successes, n, z: float = Z95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson's score interval of a proportion (successes of n), NaN where n = 0:
    (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)."""
    k = np.asarray(successes, float)
    n = np.asarray(n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = np.where(n > 0, np.clip(centre - half, 0, 1), np.nan)
    hi = np.where(n > 0, np.clip(centre + half, 0, 1), np.nan)
    return lo, hi


def territory_sql(territories) -> tuple[str, list]:
    if not territories:
        return "true", []
    return "a.territory_id IN (SELECT unnest(?::VARCHAR[]))", [list(territories)]


def closed_counts(cur, plan: Plan, period: Period, by: str = "segment",
                  territories: tuple[str, ...] = ()) -> pd.DataFrame:
    """The deals won or lost with a close date in the period (of accounts in `territories`
    when given), counted per rep_id (the deal's, else its account's territory rep), the
    account's territory_id and the `by` value ("(none)" when empty): won_deals,
    lost_deals, won_amount, closed_amount. Summed in the database: 10M deals come back as
    a few thousand rows."""
    if by not in BY:
        raise InputError(f"--by {by!r}: one of {', '.join(BY)}")
    cte, params = resolved_cte(plan)
    where, where_params = territory_sql(territories)
    return cur.execute(
        f"""WITH {cte}
            SELECT coalesce(s.rep_id, t.rep_id) AS rep_id, a.territory_id,
                   coalesce({BY[by]}, '(none)') AS value,
                   count(*) FILTER (WHERE s.stage = 'won') AS won_deals,
                   count(*) FILTER (WHERE s.stage = 'lost') AS lost_deals,
                   coalesce(sum(s.amount) FILTER (WHERE s.stage = 'won'), 0) AS won_amount,
                   sum(s.amount) AS closed_amount
            FROM sales s JOIN resolved a ON a.account_id = s.account_id
            LEFT JOIN territories t ON t.plan_id = ? AND t.territory_id = a.territory_id
            WHERE s.stage IN ('won', 'lost') AND s.close_date BETWEEN ? AND ? AND {where}
            GROUP BY ALL""",
        [*params, plan.plan_id, period.start, period.end, *where_params]).df()


def rep_strengths(cur, plan: Plan, period: Period, *, by: str = "segment",
                  min_closed: int = MIN_CLOSED, territories: tuple[str, ...] = (),
                  counts: pd.DataFrame | None = None) -> pd.DataFrame:
    """STRENGTH_COLUMNS, one row per (rep, value) with a closed deal, strongest first.
    With `territories`, the deals of those territories' accounts, against the team there.
    `counts`: `closed_counts` of the same arguments when the caller has them."""
    if min_closed < 1:
        raise InputError("--min-closed: at least 1")
    if counts is None:
        counts = closed_counts(cur, plan, period, by, territories)
    out = versus_team(counts[counts["rep_id"].notna()], "rep_id", min_closed)
    out["by"] = by
    names = dict(cur.execute("SELECT rep_id, name FROM reps").fetchall())
    out["rep_name"] = out["rep_id"].map(names)
    order = {"strong": 0, "as the team": 1, "weak": 2}
    out = out.assign(_o=out["verdict"].map(order).fillna(3),
                     _m=out["win_rate_low"] - out["team_win_rate"])
    return out.sort_values(["_o", "_m", "rep_id", "value"],
                           ascending=[True, False, True, True])[STRENGTH_COLUMNS] \
        .reset_index(drop=True)


def versus_team(counts: pd.DataFrame, who: str, min_closed: int) -> pd.DataFrame:
    """Per (`who`, value) of `closed_counts`: won and lost deals, win rate with its Wilson
    interval, average won deal, the same for everyone in the value (the team: every row
    given), and the verdict (strong / weak / as the team / too few closed)."""
    sums = ["won_deals", "lost_deals", "won_amount"]
    mine = counts.groupby([who, "value"], as_index=False)[sums].sum()
    team = counts.groupby("value")[sums].sum()
    out = pd.DataFrame({who: mine[who], "value": mine["value"]})
    out["won_deals"] = mine["won_deals"].astype(int)
    out["lost_deals"] = mine["lost_deals"].astype(int)
    out["closed"] = out["won_deals"] + out["lost_deals"]
    out["win_rate"] = catalog.win_rate(out["won_deals"], out["lost_deals"])
    out["win_rate_low"], out["win_rate_high"] = wilson_interval(out["won_deals"],
                                                                out["closed"])
    t = team.loc[out["value"]]
    out["team_closed"] = (t["won_deals"] + t["lost_deals"]).to_numpy().astype(int)
    out["team_win_rate"] = catalog.win_rate(t["won_deals"], t["lost_deals"])
    out["avg_deal_size"] = catalog.avg_deal_size(mine["won_amount"], out["won_deals"])
    out["team_avg_deal_size"] = catalog.avg_deal_size(t["won_amount"], t["won_deals"])
    out["verdict"] = verdicts(out, min_closed)
    return out


def verdicts(frame: pd.DataFrame, min_closed: int) -> np.ndarray:
    """strong: at least `min_closed` closed and the interval's low end above the team's
    rate; weak: its high end below it; else as the team (or too few closed)."""
    enough = frame["closed"] >= min_closed
    return np.select(
        [enough & (frame["win_rate_low"] > frame["team_win_rate"]),
         enough & (frame["win_rate_high"] < frame["team_win_rate"]), ~enough],
        ["strong", "weak", f"fewer than {min_closed} closed"], "as the team")


def pct(value) -> str:
    """A rate in whole percent, "-" when empty (review sentences)."""
    return "-" if catalog.missing(value) else f"{value:.0%}"


def wins_text(who: str, row) -> str:
    """"WHO wins 62% of Hospital deals (95% interval 48%-74%, 34 closed) against the
    team's 41%" from a `versus_team` row (a mapping)."""
    return (f"{who} wins {pct(row['win_rate'])} of {row['value']} deals (95% interval "
            f"{pct(row['win_rate_low'])}-{pct(row['win_rate_high'])}, {row['closed']} "
            f"closed) against the team's {pct(row['team_win_rate'])}")


def strength_line(row) -> str:
    """One sentence with its evidence and the verdict, for a rep_strengths row."""
    who = f"{row['rep_name']} ({row['rep_id']})" if isinstance(row["rep_name"], str) \
        else str(row["rep_id"])
    return f"{wins_text(who, row)}: {row['verdict']}"


PAIR_COLUMNS = ["product_a", "product_b", "accounts_both", "accounts_a", "accounts_b",
                "accounts", "support", "confidence_a_to_b", "confidence_b_to_a", "lift"]


def product_pairs(cur, plan: Plan, period: Period, *, territories: tuple[str, ...] = (),
                  min_accounts: int = 1) -> pd.DataFrame:
    """Products bought together by the same accounts (won deals closing in the period):
    over the `accounts` with a won deal of a named product, support = accounts with both /
    accounts, confidence A -> B = accounts with both / accounts with A, lift = support /
    (share with A x share with B) (above 1: bought together more often than chance).
    Pairs held by fewer than `min_accounts` accounts are left out; highest lift first."""
    cte, params = resolved_cte(plan)
    where, where_params = territory_sql(territories)
    bought = cur.execute(
        f"""WITH {cte}
            SELECT DISTINCT s.account_id, s.product
            FROM sales s JOIN resolved a ON a.account_id = s.account_id
            WHERE s.stage = 'won' AND s.product IS NOT NULL
              AND s.close_date BETWEEN ? AND ? AND {where}""",
        [*params, period.start, period.end, *where_params]).df()
    n = bought["account_id"].nunique()
    per_product = bought.groupby("product")["account_id"].nunique()
    both = bought.merge(bought, on="account_id", suffixes=("_a", "_b"))
    both = both[both["product_a"] < both["product_b"]]
    pairs = both.groupby(["product_a", "product_b"], as_index=False)["account_id"] \
        .nunique().rename(columns={"account_id": "accounts_both"})
    pairs = pairs[pairs["accounts_both"] >= min_accounts]
    pairs["accounts_a"] = pairs["product_a"].map(per_product).astype(int)
    pairs["accounts_b"] = pairs["product_b"].map(per_product).astype(int)
    pairs["accounts"] = n
    pairs["support"] = pairs["accounts_both"] / n if n else np.nan
    pairs["confidence_a_to_b"] = pairs["accounts_both"] / pairs["accounts_a"]
    pairs["confidence_b_to_a"] = pairs["accounts_both"] / pairs["accounts_b"]
    pairs["lift"] = pairs["support"] / ((pairs["accounts_a"] / n) * (pairs["accounts_b"] / n))
    return pairs.sort_values(["lift", "accounts_both", "product_a", "product_b"],
                             ascending=[False, False, True, True])[PAIR_COLUMNS] \
        .reset_index(drop=True)


DIMENSIONS = {"segment": "sc.segment", "industry": "sc.industry", "product": "s.product",
              "lead_source": "s.lead_source"}
"""What the segment analysis cuts by: the account's segment or industry, the deal's product
or lead source."""
SEGMENT_COLUMNS = ["by", "value", "won_deals", "lost_deals", "win_rate", "won",
                   "share_of_won", "avg_deal_size", "sales_cycle_days", "cycle_deals",
                   "won_prior", "growth", "open_pipeline"]


def segment_analysis(cur, plan: Plan, period: Period, by: str = "segment",
                     scope: Scope | None = None) -> pd.DataFrame:
    """SEGMENT_COLUMNS per value of `by` (deals of accounts in scope, by their account's
    territory): won and lost deals closing in the period, win rate by count, won amount
    and its share, average won deal, mean sales cycle (created -> close, days, of the won
    deals that have a created date), won in the same dates a year earlier and growth,
    open pipeline closing in the period. Largest won first."""
    if by not in DIMENSIONS:
        raise InputError(f"--by {by!r}: one of {', '.join(DIMENSIONS)}")
    scope = scope or Scope()
    prior = prior_period(period)
    cte, params = scoped_cte(plan, scope, "NULL")
    sale_where, sale_params = scope.flt.sales_sql("s")
    now = "s.close_date BETWEEN ? AND ?"
    frame = cur.execute(
        f"""WITH {cte}
            SELECT coalesce({DIMENSIONS[by]}, '(none)') AS value,
                   count(*) FILTER (WHERE s.stage = 'won' AND {now}) AS won_deals,
                   count(*) FILTER (WHERE s.stage = 'lost' AND {now}) AS lost_deals,
                   coalesce(sum(s.amount) FILTER (WHERE s.stage = 'won' AND {now}), 0)
                       AS won,
                   avg(s.close_date - s.created_date)
                       FILTER (WHERE s.stage = 'won' AND {now}) AS sales_cycle_days,
                   count(s.created_date) FILTER (WHERE s.stage = 'won' AND {now})
                       AS cycle_deals,
                   coalesce(sum(s.amount) FILTER (WHERE s.stage = 'won'
                       AND s.close_date BETWEEN ? AND ?), 0) AS won_prior,
                   coalesce(sum(s.amount) FILTER (WHERE s.stage = 'open' AND {now}), 0)
                       AS open_pipeline
            FROM sales s JOIN scoped sc ON sc.account_key = s.account_key
            WHERE ({now} OR s.close_date BETWEEN ? AND ?) AND {sale_where}
            GROUP BY 1""",
        [*params, *[period.start, period.end] * 5, prior.start, prior.end,
         period.start, period.end, period.start, period.end, prior.start, prior.end,
         *sale_params]).df()
    frame.insert(0, "by", by)
    frame["win_rate"] = catalog.win_rate(frame["won_deals"], frame["lost_deals"])
    frame["share_of_won"] = catalog.divide(frame["won"], frame["won"].sum())
    frame["avg_deal_size"] = catalog.avg_deal_size(frame["won"], frame["won_deals"])
    frame["growth"] = catalog.growth(frame["won"], frame["won_prior"])
    return frame.sort_values(["won", "value"], ascending=[False, True])[SEGMENT_COLUMNS] \
        .reset_index(drop=True)


PROFILE_COLUMNS = ["what", "value", "top", "rest"]
TOP_N = 20


def top_accounts_profile(cur, plan: Plan, period: Period, scope: Scope | None = None,
                         top: int = TOP_N) -> pd.DataFrame:
    """The `top` accounts by won amount in the period against the rest of the accounts in
    scope: the share of each segment and industry, the median potential, the mean number
    of products bought (won in the period), and the share of the won amount they hold.
    Ties at the cut go by account id."""
    scope = scope or Scope()
    cte, params = scoped_cte(plan, scope, "NULL")
    sale_where, sale_params = scope.flt.sales_sql("s")
    acc = cur.execute(
        f"""WITH {cte}
            SELECT sc.account_id, sc.segment, sc.industry, sc.potential,
                   coalesce(sum(s.amount) FILTER (WHERE s.stage = 'won'), 0) AS won,
                   count(DISTINCT s.product) FILTER (WHERE s.stage = 'won') AS products
            FROM scoped sc LEFT JOIN sales s ON s.account_key = sc.account_key
                 AND s.close_date BETWEEN ? AND ? AND {sale_where}
            GROUP BY ALL""",
        [*params, period.start, period.end, *sale_params]).df()
    acc = acc.sort_values(["won", "account_id"], ascending=[False, True])
    is_top = np.zeros(len(acc), bool)
    is_top[:min(top, len(acc))] = True
    acc = acc.assign(top=is_top)
    head, rest = acc[acc["top"]], acc[~acc["top"]]
    rows = [["accounts", "", float(len(head)), float(len(rest))],
            ["share of won", "", catalog.divide(head["won"].sum(), acc["won"].sum()).item(),
             catalog.divide(rest["won"].sum(), acc["won"].sum()).item()],
            ["median potential", "", head["potential"].median(), rest["potential"].median()],
            ["products bought (mean)", "", head["products"].mean(), rest["products"].mean()]]
    for what in ("segment", "industry"):
        values = acc[what].fillna("(none)")
        for v in sorted(values.unique()):
            rows.append([what, v, float((values[acc["top"]] == v).mean()) if len(head)
                         else np.nan,
                         float((values[~acc["top"]] == v).mean()) if len(rest) else np.nan])
    return pd.DataFrame(rows, columns=PROFILE_COLUMNS)
