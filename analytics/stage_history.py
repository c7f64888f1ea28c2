"""Facts about the imported stage history kept with it: the order of the open stages and
each change's days in its stage, worked out at import so a funnel over 10M deals only
sums (docs/metrics.md, "The pipeline funnel").

- **Stage order**: the open stages ordered by the mean position at which deals first enter
  them (ties by name), over the whole history; stored in `meta` as JSON after every import
  that changes the history.
- **days_in_stage**: from a change to the deal's next change (NULL for its last), written
  on the rows as they are imported (a file holds a deal's whole history).
- **deal_stages**: one row per deal: the stages it entered (in the order it first entered
  them) and the days it spent in each (summed when it came back; NULL for the last), so a
  funnel joins one row per deal instead of grouping every change (`refresh_deal_stages`).
"""

from __future__ import annotations

import json

STAGE_ORDER_KEY = "stage_order"
NEXT_CHANGE = ("lead(changed_at) OVER (PARTITION BY opportunity_id "
               "ORDER BY changed_at, stage_class DESC, stage)")
"""A change's next change of the same deal (same-day changes: open stages before the
close, then by name)."""


def computed_stage_order(cur) -> list[str]:
    rows = cur.execute(
        """WITH firsts AS (
               SELECT opportunity_id, stage, min(changed_at) AS first_at FROM stage_history
               WHERE stage_class = 'open' GROUP BY ALL),
           ranked AS (
               SELECT stage, dense_rank() OVER (PARTITION BY opportunity_id
                                                ORDER BY first_at) AS pos FROM firsts)
           SELECT stage FROM ranked GROUP BY stage ORDER BY avg(pos), stage""").fetchall()
    return [r[0] for r in rows]


def deal_stages_sql(where: str = "") -> str:
    """The INSERT of `deal_stages` rows for the history rows `where` keeps."""
    return f"""INSERT INTO deal_stages
        SELECT opportunity_id, list(stage ORDER BY first_at, stage),
               list(d ORDER BY first_at, stage)
        FROM (SELECT opportunity_id, stage, min(changed_at) AS first_at,
                     sum(days_in_stage) AS d
              FROM stage_history {where} GROUP BY 1, 2)
        GROUP BY 1"""


DAYS_IN_STAGE_SQL = f"""UPDATE stage_history SET days_in_stage = n.d
    FROM (SELECT opportunity_id, stage, changed_at, {NEXT_CHANGE} - changed_at AS d
          FROM stage_history) n
    WHERE stage_history.opportunity_id = n.opportunity_id AND stage_history.stage = n.stage
      AND stage_history.changed_at = n.changed_at"""
"""Every stored change's days in stage (a database upgraded from before they were kept)."""


ROWS_PER_PASS = 4_000_000
"""Changes grouped into deal rows per pass: the list aggregate holds its groups in memory
(50M changes in one pass ran out of a 3 GB limit), so big histories go in slices of deals."""


def refresh_deal_stages(cur, deals: str | None = None) -> None:
    """Rebuild `deal_stages` for the deals `deals` selects (SQL of opportunity ids), or all;
    deals without a history left have no row."""
    keep = [f"opportunity_id IN ({deals})"] if deals else []
    where = f"WHERE {keep[0]}" if keep else ""
    cur.execute(f"DELETE FROM deal_stages {where}")
    rows = cur.execute(f"SELECT count(*) FROM stage_history {where}").fetchone()[0]
    parts = max(1, -(-rows // ROWS_PER_PASS))
    for k in range(parts):
        slice_ = [f"hash(opportunity_id) % {parts} = {k}"] if parts > 1 else []
        conds = keep + slice_
        cur.execute(deal_stages_sql(f"WHERE {' AND '.join(conds)}" if conds else ""))


def store_stage_order(cur) -> None:
    """Work the order out again (after an import changed the history) and keep it."""
    cur.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [STAGE_ORDER_KEY, json.dumps(computed_stage_order(cur))])


def stage_order(cur) -> list[str]:
    """The kept order; worked out when a database has none kept yet."""
    row = cur.execute("SELECT value FROM meta WHERE key = ?", [STAGE_ORDER_KEY]).fetchone()
    return json.loads(row[0]) if row else computed_stage_order(cur)
