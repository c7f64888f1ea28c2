"""Coverage: which accounts a plan serves badly, and what it would take to fix a territory.

Per account, with the docs/metrics.md definitions: its territory (pin, else its unit's), the
distance to that territory's rep home (haversine), whether it is out of reach (beyond
`max_travel_km`), whether it was touched within `touch_days` before the as-of date, and its
share of the territory's workload (`visits x (visit_minutes + 2 x km x road_factor /
speed_kmh x 60) / 60`, visit_minutes its segment's when set). Summed over a territory's
accounts these give its workload hours exactly, which is what the "what would it take" line
needs.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd

from analytics import catalog
from analytics.metrics import haversine_km
from analytics.performance import Scope, scoped_cte
from analytics.plans import Plan
from analytics.settings import Settings

ACCOUNT_COLUMNS = [
    "account_id", "name", "segment", "postal_code", "state", "territory_id", "rep_id",
    "rep_name", "potential", "visits", "travel_km", "out_of_reach", "last_activity_date",
    "touched", "workload_hours",
]


def account_coverage(cur: duckdb.DuckDBPyConnection, plan: Plan, as_of: dt.date,
                     settings: Settings, scope: Scope | None = None) -> pd.DataFrame:
    """One row per account in scope with ACCOUNT_COLUMNS (travel empty without a rep home)."""
    scope = scope or Scope()
    cte, params = scoped_cte(plan, scope, "b.territory_id")
    visits, visit_params = catalog.visits_sql(settings)
    minutes, minute_params = catalog.visit_minutes_sql(settings)
    frame = cur.execute(
        f"""WITH {cte}
            SELECT a.account_id, a.name, a.segment, a.postal_code, a.state, a.territory_id,
                   a.rep_id, rp.name AS rep_name, a.potential, {visits} AS visits,
                   {minutes} AS minutes,
                   a.lat, a.lon, rp.home_lat, rp.home_lon, a.last_activity_date
            FROM scoped a LEFT JOIN reps rp ON rp.rep_id = a.rep_id
            ORDER BY a.account_id""",
        [*params, *visit_params, *minute_params]).df()
    km = haversine_km(frame["lat"].to_numpy(float), frame["lon"].to_numpy(float),
                      frame["home_lat"].to_numpy(float), frame["home_lon"].to_numpy(float))
    frame["travel_km"] = km
    frame["out_of_reach"] = ~np.isnan(km) & (km > settings.max_travel_km)
    touch_from = catalog.touch_from(as_of, settings.touch_days)
    last = pd.to_datetime(frame["last_activity_date"])
    frame["touched"] = (last >= pd.Timestamp(touch_from)) & (last <= pd.Timestamp(as_of))
    visits = frame["visits"].to_numpy(float)
    frame["workload_hours"] = catalog.workload_hours(
        visits * frame["minutes"].to_numpy(float), visits * np.where(np.isnan(km), 0.0, km),
        settings)
    return frame[ACCOUNT_COLUMNS]


def territory_scope(scope: Scope) -> Scope:
    """The scope's territory, rep and region filters only: what "what would it take" uses,
    since a territory's workload counts all its accounts."""
    return Scope(territories=scope.territories, reps=scope.reps, regions=scope.regions)


def what_it_takes(rows: pd.DataFrame, accounts: pd.DataFrame,
                  settings: Settings) -> pd.DataFrame:
    """For each under-served territory: hours over the band, and the accounts to move.

    The band's top is `capacity x (1 + overload_tolerance)`. Accounts are taken farthest
    workload first (the ones costing the most hours) until the rest fits in the band: the
    count, their potential and their hours are what moving them to another territory would
    take. Moving them does not itself say where to; that is the map's job. `accounts` must
    hold every account of those territories (no segment or product filter): the line says so
    when the accounts given cannot cover the hours over.
    """
    out = []
    under = rows[rows["status"] == "under-served"]
    for t in under.itertuples(index=False):
        top = t.capacity_hours * (1 + settings.overload_tolerance)
        over = t.workload_hours - top
        acc = accounts[accounts["territory_id"] == t.territory_id].sort_values(
            ["workload_hours", "account_id"], ascending=[False, True])
        cum = acc["workload_hours"].cumsum().to_numpy()
        n = int(np.searchsorted(cum, over - 1e-9) + 1) if len(cum) and over > 0 else 0
        n = min(n, len(acc))
        moved = acc.head(n)
        enough = float(moved["workload_hours"].sum()) >= over - 1e-9
        line = (f"{t.territory_id}: {over:,.0f} h over the band; moving its {n} "
                f"costliest accounts ({moved['workload_hours'].sum():,.0f} h, "
                f"{moved['potential'].sum():,.0f} potential) brings it within "
                f"{settings.overload_tolerance:.0%} of capacity") if enough else (
                f"{t.territory_id}: {over:,.0f} h over the band; its {len(acc)} accounts "
                f"listed carry only {moved['workload_hours'].sum():,.0f} h: moving accounts "
                "alone cannot bring it into the band")
        out.append({
            "territory_id": t.territory_id, "territory_name": t.territory_name,
            "rep_id": t.rep_id, "workload_hours": t.workload_hours,
            "capacity_hours": t.capacity_hours, "band_top_hours": top,
            "hours_over": over, "accounts_to_move": n,
            "hours_moved": float(moved["workload_hours"].sum()),
            "potential_moved": float(moved["potential"].sum()),
            "line": line,
        })
    return pd.DataFrame(out, columns=[
        "territory_id", "territory_name", "rep_id", "workload_hours", "capacity_hours",
        "band_top_hours", "hours_over", "accounts_to_move", "hours_moved", "potential_moved",
        "line"])
