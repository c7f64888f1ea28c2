"""The territory hierarchy (region > district > territory) and its roll-up.

A territory's `parent_id` names another territory of the same plan. A parent's numbers are
its own plus every descendant's: additive columns are summed (accounts, potential, won,
open pipeline, quota, workload and capacity hours, units) and the ratios recomputed from
the sums with the catalogue's formulas (docs/metrics.md), never averaged.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from analytics import catalog
from analytics.catalog import ADDITIVE
from analytics.errors import InputError
from analytics.period import Period

ROLLUP_RATIOS = ("attainment", "pace", "penetration", "whitespace", "utilization")


def descendants(terr: pd.DataFrame) -> dict[str, list[str]]:
    """territory -> itself and every territory below it. A cycle is refused."""
    children: dict[str, list[str]] = {}
    parent = dict(zip(terr["territory_id"], terr["parent_id"], strict=True))
    for t, p in parent.items():
        if isinstance(p, str) and p:
            children.setdefault(p, []).append(t)
    out = {}
    for t in parent:
        seen, stack = [], [t]
        while stack:
            x = stack.pop()
            if x in seen:
                raise InputError(f"territory {t!r}: its parents loop back to {x!r}")
            seen.append(x)
            stack.extend(children.get(x, []))
        out[t] = seen
    return out


def depth_of(terr: pd.DataFrame) -> dict[str, int]:
    parent = dict(zip(terr["territory_id"], terr["parent_id"], strict=True))
    out = {}
    for t in parent:
        d, x, hops = 0, parent.get(t), 0
        while isinstance(x, str) and x in parent and hops <= len(parent):
            d, x, hops = d + 1, parent.get(x), hops + 1
        out[t] = d
    return out


def rollup(rows: pd.DataFrame, terr: pd.DataFrame, period: Period,
           as_of: dt.date) -> pd.DataFrame:
    """One row per territory that has children: its subtree's numbers.

    `rows`: the territory metrics (metrics.summary); `terr`: plans.territories.
    """
    below = descendants(terr)
    depth = depth_of(terr)
    by_id = rows.set_index("territory_id")
    names = dict(zip(terr["territory_id"], terr["territory_name"], strict=True))
    out = []
    for t, members in below.items():
        if len(members) == 1:
            continue
        sub = by_id.reindex([m for m in members if m in by_id.index])
        rec = {"territory_id": t, "territory_name": names.get(t), "depth": depth[t],
               "territories": len(members) - 1}
        for col in ADDITIVE:
            rec[col] = float(pd.to_numeric(sub[col], errors="coerce").fillna(0).sum())
        out.append(rec)
    frame = pd.DataFrame(out, columns=["territory_id", "territory_name", "depth",
                                       "territories", *ADDITIVE])
    if frame.empty:
        return frame
    catalog.derive(frame, ROLLUP_RATIOS, days=period.days, elapsed=period.elapsed(as_of))
    frame["accounts"] = frame["accounts"].round().astype("int64")
    frame["units"] = frame["units"].round().astype("int64")
    return frame.sort_values(["depth", "territory_id"]).reset_index(drop=True)
