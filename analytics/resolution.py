"""An account's territory in a plan: its pin, else its unit's territory, else none.

This is the one SQL text of the rule (docs/metrics.md, "Resolving an account's territory").
Everything that needs accounts with their territory (the explorer, coverage, disruption,
converting a plan, assignment rules, exports) selects from the common table expression built
here, so the rule cannot drift between them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from analytics.cube import AccountFilter

if TYPE_CHECKING:  # plans imports this module
    from analytics.plans import Plan


def resolved_cte(plan: Plan, name: str = "resolved") -> tuple[str, list]:
    """`name AS (...)`: every account (all its columns) with `territory_id` (pin, else its
    unit's territory, else NULL) and `pinned_to` (its pin or NULL) in `plan`.

    Select from it with the alias `a` to reuse unit SQL (`plan.unit.unit_id_sql('a')`) and
    account filters (`AccountFilter.account_sql('a')`).
    """
    uid = plan.unit.unit_id_sql("acc")
    sql = f"""{name} AS (
            SELECT acc.*, coalesce(o.territory_id, u.territory_id) AS territory_id,
                   o.territory_id AS pinned_to
            FROM accounts acc
            LEFT JOIN account_overrides o ON o.plan_id = ? AND o.account_id = acc.account_id
            LEFT JOIN plan_units u ON u.plan_id = ? AND u.unit_id = {uid}
        )"""
    return sql, [plan.plan_id, plan.plan_id]


def resolved_accounts(cur: duckdb.DuckDBPyConnection, plan: Plan,
                      flt: AccountFilter | None = None) -> pd.DataFrame:
    """account_id, potential, territory_id (None = unassigned) under one plan."""
    flt = flt or AccountFilter()
    acc_where, acc_params = flt.account_sql("a")
    cte, params = resolved_cte(plan)
    return cur.execute(
        f"WITH {cte} SELECT a.account_id, a.potential, a.territory_id FROM resolved a "
        f"WHERE {acc_where}", [*params, *acc_params]).df()
