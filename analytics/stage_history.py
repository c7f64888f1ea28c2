"""Facts about the imported stage history kept with it: the order of the open stages and
each change's days in its stage, worked out at import so a funnel over 10M deals only
sums (docs/metrics.md, "The pipeline funnel").

- **Stage order**: the open stages ordered by the mean position at which deals first enter
  them (ties by name), over the whole history; stored in `meta` as JSON after every import
  that changes the history.
- **days_in_stage**: from a change to the deal's next change (NULL for its last), written
  on the rows as they are imported (a file holds a deal's whole history).
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


def store_stage_order(cur) -> None:
    """Work the order out again (after an import changed the history) and keep it."""
    cur.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [STAGE_ORDER_KEY, json.dumps(computed_stage_order(cur))])


def stage_order(cur) -> list[str]:
    """The kept order; worked out when a database has none kept yet."""
    row = cur.execute("SELECT value FROM meta WHERE key = ?", [STAGE_ORDER_KEY]).fetchone()
    return json.loads(row[0]) if row else computed_stage_order(cur)
