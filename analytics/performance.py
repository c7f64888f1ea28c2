"""High and low performers: every area (unit, territory or rep) measured the same way, ranked.

An area's numbers follow docs/metrics.md (won, open pipeline, potential, quota, attainment,
penetration, whitespace), with the explorer's own measures defined there too:
`growth` (won against the same dates a year earlier), `win_rate_count` and
`win_rate_amount` (won / (won + lost) deals closing in the period, by count and by amount) and
`avg_deal_size` (won amount / won deals). Sales belong to the territory of their account in
the plan being looked at.

Every filter is data passed as a SQL parameter, never SQL text.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

import duckdb
import numpy as np
import pandas as pd

from analytics import catalog
from analytics.cube import AccountFilter
from analytics.errors import InputError
from analytics.period import Period
from analytics.plans import Plan
from analytics.resolution import resolved_cte
from analytics.units import UnitType

RANK_METRICS = {name: catalog.metric(name).help for name in (
    "attainment", "penetration", "won", "whitespace", "growth", "win_rate_count",
    "win_rate_amount", "avg_deal_size", "potential", "open_pipeline", "accounts",
    # against the market (analytics/market.py)
    "accounts_per_1k_establishments", "potential_per_capita", "market_establishments",
    "market_population")}
"""The metrics an area can be ranked by, with their help text (from the catalogue)."""
AREA_COLUMNS = [
    "area", "name", "accounts", "potential", "won", "won_deals", "lost", "lost_deals",
    "open_pipeline", "won_prior", "quota", "attainment", "pace", "penetration", "whitespace",
    "growth", "win_rate_count", "win_rate_amount", "avg_deal_size",
    "market_population", "market_establishments", "accounts_per_1k_establishments",
    "potential_per_capita",
]


def shift_year(day: dt.date, years: int = -1) -> dt.date:
    """The same date `years` away; 29 February becomes the 28th."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def prior_period(period: Period) -> Period:
    """The same dates a year earlier (what `growth` compares with)."""
    return Period(shift_year(period.start), shift_year(period.end))


@dataclass(frozen=True)
class Scope:
    """What the explorer looks at: account/deal filters plus plan-based filters.

    `reps`, `territories` and `regions` keep accounts whose territory (in the plan looked at)
    has one of those reps, ids, or its rep in one of those regions. `min_accounts` drops
    areas with fewer accounts from rankings so tiny areas do not dominate;
    `min_establishments` those with a smaller market ("among counties with > 500
    establishments").
    """

    flt: AccountFilter = field(default_factory=AccountFilter)
    reps: tuple[str, ...] = ()
    territories: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    min_accounts: int = 0
    min_establishments: int = 0

    def describe(self) -> dict[str, str]:
        """The filters as text, to write into exported files."""
        out = {}
        for name, values in (("segment", self.flt.segments), ("industry", self.flt.industries),
                             ("product", self.flt.products), ("rep", self.reps),
                             ("territory", self.territories), ("region", self.regions)):
            out[name] = ", ".join(values) if values else "all"
        out["min_accounts"] = str(self.min_accounts)
        out["min_establishments"] = str(self.min_establishments)
        return out


@dataclass(frozen=True)
class Level:
    """An area level: `unit:<unit type>`, `territory` or `rep`."""

    kind: str  # unit | territory | rep
    unit: UnitType | None = None

    @classmethod
    def parse(cls, text: str) -> Level:
        raw = str(text).strip()
        if raw in ("territory", "rep"):
            return cls(raw)
        if raw.startswith("unit:"):
            return cls("unit", UnitType.parse(raw[5:]))
        raise InputError(f"level {text!r}: expected unit:<unit type> (e.g. unit:h3:6, "
                         "unit:county), territory or rep")

    def __str__(self) -> str:
        return f"unit:{self.unit}" if self.kind == "unit" else self.kind


def scoped_cte(plan: Plan, scope: Scope, area_sql: str) -> tuple[str, list]:
    """`scoped`: one row per account in scope with its territory, rep, region and area key
    (`area_sql` over `b`, the resolved account, and `t`, its territory)."""
    acc_where, acc_params = scope.flt.account_sql("a")
    where, params = [acc_where], list(acc_params)
    for col, values in (("a.territory_id", scope.territories), ("a.rep_id", scope.reps),
                        ("a.region", scope.regions)):
        if values:
            where.append(f"{col} IN (SELECT unnest(?::VARCHAR[]))")
            params.append(list(values))
    base, base_params = resolved_cte(plan, "base")
    sql = f"""
        {base},
        r AS (
            SELECT b.*, t.rep_id, rp.region, {area_sql} AS area
            FROM base b
            LEFT JOIN territories t ON t.plan_id = ? AND t.territory_id = b.territory_id
            LEFT JOIN reps rp ON rp.rep_id = t.rep_id
        ),
        scoped AS (SELECT * FROM r a WHERE {' AND '.join(where)})"""
    return sql, [*base_params, plan.plan_id, *params]


def _area_sql(level: Level) -> str:
    if level.kind == "unit":
        return level.unit.unit_id_sql("b")
    return "b.territory_id" if level.kind == "territory" else "t.rep_id"


def _measures(cur, plan: Plan, period: Period, scope: Scope, area_sql: str) -> pd.DataFrame:
    """area, accounts, potential and the deal sums (period and a year earlier) per area,
    ordered by area (no area last): the one query behind areas and breakdowns."""
    prior = prior_period(period)
    cte, params = scoped_cte(plan, scope, area_sql)
    sale_where, sale_params = scope.flt.sales_sql("s")
    sql = f"""
        WITH {cte},
        deals AS (
            SELECT sc.area,
                   sum(s.amount) FILTER (WHERE s.stage = 'won' AND in_p) AS won,
                   count(*) FILTER (WHERE s.stage = 'won' AND in_p) AS won_deals,
                   sum(s.amount) FILTER (WHERE s.stage = 'lost' AND in_p) AS lost,
                   count(*) FILTER (WHERE s.stage = 'lost' AND in_p) AS lost_deals,
                   sum(s.amount) FILTER (WHERE s.stage = 'open' AND in_p) AS open_pipeline,
                   sum(s.amount) FILTER (WHERE s.stage = 'won' AND in_prior) AS won_prior
            FROM (SELECT *, close_date BETWEEN ? AND ? AS in_p,
                            close_date BETWEEN ? AND ? AS in_prior
                  FROM sales s WHERE (close_date BETWEEN ? AND ? OR close_date BETWEEN ? AND ?)
                    AND {sale_where}) s
            JOIN scoped sc ON sc.account_key = s.account_key
            GROUP BY sc.area
        ),
        accs AS (
            SELECT area, count(*) AS accounts, sum(potential) AS potential
            FROM scoped GROUP BY area
        )
        SELECT accs.area, accs.accounts, accs.potential,
               coalesce(d.won, 0) AS won, coalesce(d.won_deals, 0) AS won_deals,
               coalesce(d.lost, 0) AS lost, coalesce(d.lost_deals, 0) AS lost_deals,
               coalesce(d.open_pipeline, 0) AS open_pipeline,
               coalesce(d.won_prior, 0) AS won_prior
        FROM accs LEFT JOIN deals d ON d.area IS NOT DISTINCT FROM accs.area
        ORDER BY accs.area NULLS LAST"""
    frame = cur.execute(sql, [*params, period.start, period.end, prior.start, prior.end,
                              period.start, period.end, prior.start, prior.end,
                              *sale_params]).df()
    for col in ("accounts", "won_deals", "lost_deals"):
        frame[col] = frame[col].astype("int64")
    return frame


def area_table(cur: duckdb.DuckDBPyConnection, plan: Plan, period: Period, as_of: dt.date,
               level: Level, scope: Scope | None = None) -> pd.DataFrame:
    """One row per area with AREA_COLUMNS (areas with no account in scope are left out).

    Accounts with no area (no unit of that type, no territory, no rep) are one row whose
    `area` is empty, so the totals add up; rankings leave it out.
    """
    scope = scope or Scope()
    frame = _measures(cur, plan, period, scope, _area_sql(level))
    frame["quota"] = _quota(cur, plan, level, frame["area"], period)
    _derive(frame, period, as_of)
    frame["name"] = _names(cur, plan, level, frame["area"])
    _market(cur, plan, level, frame)
    return frame[AREA_COLUMNS]


def _market(cur, plan: Plan, level: Level, frame: pd.DataFrame) -> None:
    """The market of each area (the whole market: filters choose our accounts, not the
    market) and our accounts and potential in scope against it."""
    from analytics import market, plans

    if level.kind == "unit":
        got = market.for_units(level.unit, frame["area"].fillna("").tolist())
        got.index = frame.index
    else:
        terr = market.territory_market(plan.unit, plans.assignment(cur, plan))
        if level.kind == "rep":
            reps = dict(cur.execute("SELECT territory_id, rep_id FROM territories "
                                    "WHERE plan_id = ?", [plan.plan_id]).fetchall())
            terr = terr.assign(area=terr["territory_id"].map(reps)).dropna(subset=["area"])
            terr = terr.groupby("area")[list(market.SUMS)].sum().reset_index()
        else:
            terr = terr.rename(columns={"territory_id": "area"})
        got = frame[["area"]].merge(terr, on="area", how="left")
        got.index = frame.index
    for col in ("market_population", "market_establishments"):
        frame[col] = got[col].fillna(0).astype("int64")
    frame.loc[frame["area"].isna(), ["market_population", "market_establishments"]] = 0
    catalog.derive(frame, market.SHARES, days=365, elapsed=1.0)


def _quota(cur, plan: Plan, level: Level, areas: pd.Series, period: Period) -> np.ndarray:
    """Quota for the period: territory quota (else its rep's); a rep: the sum over their
    territories. Units have no quota (NaN)."""
    if level.kind == "unit":
        return np.full(len(areas), np.nan)
    key = "t.territory_id" if level.kind == "territory" else "t.rep_id"
    rows = cur.execute(
        f"""SELECT {key} AS area, sum(coalesce(t.annual_quota, r.annual_quota, 0)) AS annual
            FROM territories t LEFT JOIN reps r ON r.rep_id = t.rep_id
            WHERE t.plan_id = ? GROUP BY 1""", [plan.plan_id]).fetchall()
    annual = {a: q for a, q in rows if a is not None}
    return np.array([catalog.period_quota(annual.get(a, 0.0), period.days)
                     if isinstance(a, str) else np.nan for a in areas], dtype=float)


def _names(cur, plan: Plan, level: Level, areas: pd.Series) -> list:
    if level.kind == "territory":
        names = dict(cur.execute("SELECT territory_id, name FROM territories WHERE plan_id = ?",
                                 [plan.plan_id]).fetchall())
    elif level.kind == "rep":
        names = dict(cur.execute("SELECT rep_id, name FROM reps").fetchall())
    else:
        names = {}
    return [names.get(a, a) if isinstance(a, str) else "(none)" for a in areas]


def _derive(frame: pd.DataFrame, period: Period, as_of: dt.date) -> None:
    """The ratio columns of an area (docs/metrics.md), from its sums."""
    catalog.derive(frame, catalog.EXPLORER_RATIOS, days=period.days,
                   elapsed=period.elapsed(as_of))


def rank(frame: pd.DataFrame, metric: str, *, top: int | None = None,
         bottom: int | None = None, percentile: float | None = None,
         min_accounts: int = 0, min_establishments: int = 0) -> pd.DataFrame:
    """Areas ordered by `metric` with a `rank` column (1 = highest), then cut.

    `top N` / `bottom N` keep the N highest / lowest; `percentile P` keeps the areas at or
    above the P-th percentile when P >= 50 (high performers), at or below it when P < 50
    (low performers). Areas with fewer than `min_accounts` accounts or `min_establishments`
    establishments, with no value for the metric, or with no area (accounts outside every
    area) are left out. Ties keep area order.
    """
    if metric not in RANK_METRICS:
        raise InputError(f"unknown metric {metric!r}; metrics: {', '.join(RANK_METRICS)}")
    if sum(x is not None for x in (top, bottom, percentile)) > 1:
        raise InputError("choose one of top N, bottom N or a percentile")
    for n, what in ((top, "top"), (bottom, "bottom")):
        if n is not None and n < 1:
            raise InputError(f"{what} N must be at least 1")
    if percentile is not None and not 0 <= percentile <= 100:
        raise InputError("the percentile must be between 0 and 100")
    keep = frame["area"].notna() & (frame["accounts"] >= min_accounts) & frame[metric].notna()
    if min_establishments:
        keep &= frame["market_establishments"] >= min_establishments
    ranked = frame[keep].sort_values(metric, ascending=False, kind="stable").reset_index(
        drop=True)
    ranked.insert(0, "rank", np.arange(1, len(ranked) + 1))
    if top is not None:
        return ranked.head(top)
    if bottom is not None:
        return ranked.tail(bottom).iloc[::-1].reset_index(drop=True)
    if percentile is not None and len(ranked):
        cut = float(np.percentile(ranked[metric].to_numpy(float), percentile))
        if percentile >= 50:
            return ranked[ranked[metric] >= cut].reset_index(drop=True)
        return ranked[ranked[metric] <= cut].iloc[::-1].reset_index(drop=True)
    return ranked


# --------------------------------------------------------------------------------------
# drilling into one area, trends and breakdowns
# --------------------------------------------------------------------------------------
def area_accounts(cur, plan: Plan, period: Period, level: Level, area: str | None,
                  scope: Scope | None = None, limit: int = 500) -> pd.DataFrame:
    """The accounts of one area, largest potential first, with their won and open amounts."""
    scope = scope or Scope()
    cte, params = scoped_cte(plan, scope, _area_sql(level))
    sale_where, sale_params = scope.flt.sales_sql("s")
    return cur.execute(
        f"""WITH {cte}
            SELECT sc.account_id, sc.name, sc.segment, sc.industry, sc.postal_code,
                   sc.territory_id, sc.rep_id, sc.potential,
                   coalesce(sum(s.amount) FILTER (WHERE s.stage = 'won'), 0) AS won,
                   coalesce(sum(s.amount) FILTER (WHERE s.stage = 'open'), 0) AS open_pipeline,
                   sc.last_activity_date
            FROM scoped sc LEFT JOIN sales s ON s.account_key = sc.account_key
                 AND s.close_date BETWEEN ? AND ? AND {sale_where}
            WHERE sc.area IS NOT DISTINCT FROM ?
            GROUP BY ALL ORDER BY sc.potential DESC, sc.account_id LIMIT ?""",
        [*params, period.start, period.end, *sale_params, area, limit]).df()


def area_deals(cur, plan: Plan, period: Period, level: Level, area: str | None,
               scope: Scope | None = None, limit: int = 1000) -> pd.DataFrame:
    """The deals of one area closing in the period, newest first."""
    scope = scope or Scope()
    cte, params = scoped_cte(plan, scope, _area_sql(level))
    sale_where, sale_params = scope.flt.sales_sql("s")
    return cur.execute(
        f"""WITH {cte}
            SELECT s.opportunity_id, s.close_date, s.stage, s.amount, s.product,
                   sc.account_id, sc.name AS account_name, s.rep_id AS closed_by
            FROM sales s JOIN scoped sc ON sc.account_key = s.account_key
            WHERE s.close_date BETWEEN ? AND ? AND {sale_where}
              AND sc.area IS NOT DISTINCT FROM ?
            ORDER BY s.close_date DESC, s.opportunity_id LIMIT ?""",
        [*params, period.start, period.end, *sale_params, area, limit]).df()


def monthly_trend(cur, plan: Plan, period: Period, scope: Scope | None = None,
                  level: Level | None = None, area: str | None = None) -> pd.DataFrame:
    """Per month of the period: won, open pipeline and lost by close month (one area, or
    everything in scope when `level` is None)."""
    scope = scope or Scope()
    level = level or Level("territory")
    cte, params = scoped_cte(plan, scope, _area_sql(level))
    sale_where, sale_params = scope.flt.sales_sql("s")
    area_clause = "AND sc.area IS NOT DISTINCT FROM ?" if area is not None else ""
    extra = [area] if area is not None else []
    frame = cur.execute(
        f"""WITH {cte}, months AS (
                SELECT unnest(generate_series(date_trunc('month', ?::DATE),
                                              date_trunc('month', ?::DATE),
                                              INTERVAL 1 MONTH))::DATE AS month
            ), m AS (
                SELECT date_trunc('month', s.close_date)::DATE AS month,
                       sum(s.amount) FILTER (WHERE s.stage = 'won') AS won,
                       sum(s.amount) FILTER (WHERE s.stage = 'open') AS open_pipeline,
                       sum(s.amount) FILTER (WHERE s.stage = 'lost') AS lost
                FROM sales s JOIN scoped sc ON sc.account_key = s.account_key
                WHERE s.close_date BETWEEN ? AND ? AND {sale_where} {area_clause}
                GROUP BY 1
            )
            SELECT months.month, coalesce(m.won, 0) AS won,
                   coalesce(m.open_pipeline, 0) AS open_pipeline, coalesce(m.lost, 0) AS lost
            FROM months LEFT JOIN m USING (month) ORDER BY months.month""",
        [*params, period.start, period.end, period.start, period.end, *sale_params, *extra],
    ).df()
    return frame


def breakdown(cur, plan: Plan, period: Period, as_of: dt.date, by: str,
              scope: Scope | None = None) -> pd.DataFrame:
    """Win rate, penetration and deal size by `segment`, `industry` or `product`.

    By product only the deal measures mean something (potential belongs to accounts):
    penetration is left empty there.
    """
    if by not in ("segment", "industry", "product"):
        raise InputError(f"breakdown by {by!r}: expected segment, industry or product")
    scope = scope or Scope()
    if by == "product":
        frames = []
        products = [r[0] for r in cur.execute(
            "SELECT DISTINCT product FROM sales WHERE product IS NOT NULL ORDER BY 1"
        ).fetchall()]
        for product in products:
            if scope.flt.products and product not in scope.flt.products:
                continue
            sub = replace(scope, flt=replace(scope.flt, products=(product,)))
            row = area_table(cur, plan, period, as_of, Level("territory"), sub)
            total = row.drop(columns=["area", "name"]).sum(numeric_only=True)
            frames.append({"product": product, **total.to_dict()})
        frame = pd.DataFrame(frames)
        if frame.empty:
            return frame
        frame["quota"] = np.nan
        _derive(frame, period, as_of)
        frame["penetration"] = np.nan
        frame["whitespace"] = np.nan
        return frame
    frame = _measures(cur, plan, period, scope, f"b.{by}")
    frame.insert(0, by, frame.pop("area").fillna("(none)"))
    frame = frame.sort_values("potential", ascending=False, kind="stable").reset_index(
        drop=True)
    frame["quota"] = np.nan
    _derive(frame, period, as_of)
    return frame
