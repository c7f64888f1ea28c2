"""Two plans (or snapshots) side by side: what moved, and what it does to every territory.

- units that moved (same unit type only: from -> to, with their accounts and potential),
- accounts that moved (any unit types: each account's territory under each plan, pins
  included),
- per-territory metric deltas (plan minus baseline) on the docs/metrics.md columns,
- disruption (docs/metrics.md: share of accounts, and of potential, whose territory differs).

A snapshot is compared with the numbers frozen in it; a plan with its numbers now.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from analytics import metrics
from analytics.period import Period
from analytics.plans import Plan, assignment
from analytics.settings import Settings

DELTA_COLUMNS = ["accounts", "potential", "won", "open_pipeline", "quota", "workload_hours",
                 "utilization", "attainment", "penetration", "units", "components"]


@dataclass
class Comparison:
    plan: Plan
    baseline: Plan
    territories: pd.DataFrame  # territory_id, name, <m>_plan, <m>_baseline, <m>_delta
    moved_units: pd.DataFrame  # unit_id, from_territory, to_territory, accounts, potential
    moved_accounts: pd.DataFrame  # account_id, name, potential, from_territory, to_territory
    disruption: dict  # disruption_accounts_pct, disruption_potential_pct
    same_units: bool


def _numbers(cur, plan: Plan, period, as_of, settings) -> pd.DataFrame:
    if plan.state == "snapshot":
        from analytics.snapshots import snapshot_summary

        rows, _ = snapshot_summary(cur, plan)
        return rows
    rows, _ = metrics.summary(cur, plan, period, as_of, settings)
    return rows


def compare_plans(cur: duckdb.DuckDBPyConnection, plan: Plan, baseline: Plan,
                  period: Period, as_of: dt.date, settings: Settings) -> Comparison:
    a = _numbers(cur, plan, period, as_of, settings)
    b = _numbers(cur, baseline, period, as_of, settings)
    keep = ["territory_id", "territory_name", *DELTA_COLUMNS]
    terr = a[keep].merge(b[keep], on="territory_id", how="outer",
                         suffixes=("_plan", "_baseline"))
    terr["territory_name"] = terr["territory_name_plan"].fillna(terr["territory_name_baseline"])
    for m in DELTA_COLUMNS:
        a = pd.to_numeric(terr[f"{m}_plan"], errors="coerce").fillna(0).to_numpy(float)
        b = pd.to_numeric(terr[f"{m}_baseline"], errors="coerce").fillna(0).to_numpy(float)
        delta = a - b
        # DuckDB sums in parallel, so the same numbers recomputed can differ in the last
        # bits: a relative difference below 1e-9 is no change
        delta[np.abs(delta) <= 1e-9 * np.maximum(np.maximum(np.abs(a), np.abs(b)), 1.0)] = 0
        terr[f"{m}_delta"] = delta
    cols = ["territory_id", "territory_name"]
    for m in DELTA_COLUMNS:
        cols += [f"{m}_plan", f"{m}_baseline", f"{m}_delta"]
    terr = terr[cols].sort_values("territory_id").reset_index(drop=True)

    moves = metrics.disruption_frame(cur, plan, baseline)
    moved = moves[moves["territory_id"].fillna("\0") != moves["territory_id_baseline"]
                  .fillna("\0")]
    names = dict(cur.execute("SELECT account_id, name FROM accounts WHERE account_id IN "
                             "(SELECT unnest(?::VARCHAR[]))",
                             [moved["account_id"].tolist()]).fetchall())
    moved_accounts = pd.DataFrame({
        "account_id": moved["account_id"].to_numpy(),
        "name": [names.get(x) for x in moved["account_id"]],
        "potential": moved["potential"].to_numpy(),
        "from_territory": moved["territory_id_baseline"].to_numpy(),
        "to_territory": moved["territory_id"].to_numpy(),
    }).sort_values(["potential", "account_id"], ascending=[False, True]).reset_index(drop=True)

    same = str(plan.unit) == str(baseline.unit)
    if same:
        ua = assignment(cur, plan).rename(columns={"territory_id": "to_territory"})
        ub = assignment(cur, baseline).rename(columns={"territory_id": "from_territory"})
        units = ua.merge(ub, on="unit_id", how="outer")
        units = units[units["to_territory"].fillna("\0") != units["from_territory"]
                      .fillna("\0")]
        held = cur.execute(
            f"SELECT {plan.unit.unit_id_sql('a')} AS unit_id, count(*) AS accounts, "
            "sum(potential) AS potential FROM accounts a WHERE "
            f"{plan.unit.unit_id_sql('a')} IN (SELECT unnest(?::VARCHAR[])) GROUP BY 1",
            [units["unit_id"].tolist()]).df()
        units = units.merge(held, on="unit_id", how="left")
        units["accounts"] = units["accounts"].fillna(0).astype("int64")
        units["potential"] = units["potential"].fillna(0.0)
        moved_units = units[["unit_id", "from_territory", "to_territory", "accounts",
                             "potential"]].sort_values("unit_id").reset_index(drop=True)
    else:
        moved_units = pd.DataFrame(columns=["unit_id", "from_territory", "to_territory",
                                            "accounts", "potential"])
    return Comparison(plan, baseline, terr, moved_units, moved_accounts,
                      metrics.disruption(moves), same)
