"""A plan against a baseline plan, territory by territory: the data both the workbook's
`comparison` sheet and the comparison page (see `deck`) are made from."""

from __future__ import annotations

import numpy as np
import pandas as pd

COMPARED = ("accounts", "potential", "won", "workload_hours")
"""The per-territory measures of the comparison with a baseline."""


def comparison_frame(rows: pd.DataFrame, base_rows: pd.DataFrame) -> pd.DataFrame:
    """Per territory (matched by id): each COMPARED measure in the plan, in the baseline and
    their difference; a territory missing on one side counts 0 there (`change` says so)."""
    keep = ["territory_id", "territory_name", *COMPARED]
    a = rows[keep].set_index("territory_id")
    b = base_rows[keep].set_index("territory_id")
    ids = list(a.index) + [t for t in b.index if t not in a.index]
    out = pd.DataFrame({"territory_id": ids})
    out["territory_name"] = [a.loc[t, "territory_name"] if t in a.index
                             else b.loc[t, "territory_name"] for t in ids]
    out["change"] = ["new" if t not in b.index else "removed" if t not in a.index else ""
                     for t in ids]
    for m in COMPARED:
        now = a[m].reindex(ids).astype(float).to_numpy()
        base = b[m].reindex(ids).astype(float).to_numpy()
        out[m] = now
        out[f"{m}_baseline"] = base
        out[f"{m}_delta"] = np.nan_to_num(now) - np.nan_to_num(base)
    return out
