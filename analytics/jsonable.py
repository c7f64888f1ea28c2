"""Numbers and tables as JSON: NaN and pandas' missing values become null, numpy scalars
plain numbers, dates ISO text. The one way the command line, the rep's week and the
territory review write JSON."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd


def plain(value):
    """`value` (a dict or list of them too) with only JSON's own types inside."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is pd.NaT or (not isinstance(value, str | list) and pd.api.types.is_scalar(value)
                           and pd.isna(value)):
        return None
    if isinstance(value, dt.date | pd.Timestamp):
        return value.isoformat()
    return value


def records(frame: pd.DataFrame) -> list[dict]:
    """A table's rows as JSON-ready dicts."""
    return [plain(r) for r in frame.to_dict(orient="records")]
