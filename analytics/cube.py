"""The per-unit cube: accounts, potential, won and open pipeline per spatial unit.

Everything above it (territory numbers, the map, rankings) joins this small table with a
plan's assignment, so an edit to a plan never rescans the accounts or the deals.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pandas as pd

from analytics.period import Period
from analytics.units import UnitType

CUBE_COLUMNS = ["unit_id", "accounts", "potential", "won", "open_pipeline"]


@dataclass(frozen=True)
class AccountFilter:
    """Which accounts and deals count. Empty lists mean no restriction."""

    segments: tuple[str, ...] = field(default_factory=tuple)
    industries: tuple[str, ...] = field(default_factory=tuple)
    products: tuple[str, ...] = field(default_factory=tuple)

    def account_sql(self, alias: str = "a") -> tuple[str, list]:
        clauses, params = [], []
        if self.segments:
            clauses.append(f"{alias}.segment IN (SELECT unnest(?::VARCHAR[]))")
            params.append(list(self.segments))
        if self.industries:
            clauses.append(f"{alias}.industry IN (SELECT unnest(?::VARCHAR[]))")
            params.append(list(self.industries))
        return (" AND ".join(clauses) or "true"), params

    def sales_sql(self) -> tuple[str, list]:
        if not self.products:
            return "true", []
        return "product IN (SELECT unnest(?::VARCHAR[]))", [list(self.products)]


def unit_cube(
    cur: duckdb.DuckDBPyConnection,
    unit: UnitType,
    period: Period,
    flt: AccountFilter | None = None,
    *,
    include_unplaced: bool = False,
) -> pd.DataFrame:
    """One row per unit that holds at least one account, ordered by unit id.

    With `include_unplaced`, accounts that have no unit of this type (for example outside
    the US for a county unit) come last in one row whose unit_id is empty.
    """
    flt = flt or AccountFilter()
    acc_where, acc_params = flt.account_sql("a")
    sale_where, sale_params = flt.sales_sql()
    sql = f"""
        WITH s AS (
            SELECT account_id,
                   sum(amount) FILTER (WHERE stage = 'won') AS won,
                   sum(amount) FILTER (WHERE stage = 'open') AS open_pipeline
            FROM sales
            WHERE close_date BETWEEN ? AND ? AND {sale_where}
            GROUP BY account_id
        )
        SELECT {unit.unit_id_sql('a')} AS unit_id,
               count(*) AS accounts,
               sum(a.potential) AS potential,
               coalesce(sum(s.won), 0) AS won,
               coalesce(sum(s.open_pipeline), 0) AS open_pipeline
        FROM accounts a LEFT JOIN s ON s.account_id = a.account_id
        WHERE {"true" if include_unplaced else f"a.{unit.column} IS NOT NULL"}
          AND {acc_where}
        GROUP BY ALL
        ORDER BY unit_id NULLS LAST
    """
    params = [period.start, period.end, *sale_params, *acc_params]
    return cur.execute(sql, params).df()


def accounts_without_unit(cur: duckdb.DuckDBPyConnection, unit: UnitType) -> int:
    return cur.execute(
        f"SELECT count(*) FROM accounts WHERE {unit.column} IS NULL"
    ).fetchone()[0]
