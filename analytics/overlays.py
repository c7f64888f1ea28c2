"""Overlays a manager brings: a table keyed by ZIP5, ZIP3, county FIPS, state, departement or
H3 cell with numeric columns (competitor locations counted per ZIP, their own market
sizing...), stored in the database and shown on the map like the shipped market layers.

An import is all or nothing: every bad key, repeated key and non-numeric value is reported
by file, row and column, and then nothing is stored (an overlay of the same name already
stored stays as it was). Values are added up when a finer key is shown on coarser units
(a ZIP's value goes to its ZIP3, county, state and H3 cells by the ZIP's point; a county's
to its state; a cell's to its parent cells); a coarser key cannot be split, so such a layer
is not offered on finer units.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import h3
import numpy as np
import pandas as pd

from analytics import geography, users
from analytics.errors import InputError
from analytics.ingest import ImportRejected, ImportReport, Rejection, TableReport, read_source
from analytics.store import Store
from analytics.units import H3_RESOLUTIONS, UnitType, h3_cells_at, h3_names

KEY_KINDS = ("zip5", "zip3", "county", "state", "fr_dept",
             *[f"h3:{r}" for r in H3_RESOLUTIONS])
"""What an overlay can be keyed by."""
NAME = re.compile(r"^[\w][\w .()/-]{0,59}$")
MAX_COLUMNS = 20


def import_overlay(store: Store, path: str | Path, name: str, key: str, *,
                   key_column: str | None = None) -> TableReport:
    """Read `path`, check every row, and store it as overlay `name` keyed by `key` (one of
    KEY_KINDS), replacing an overlay of that name. Raises ImportRejected (nothing stored)
    when any row is bad; InputError for a bad name, key kind or file, or a person who may
    not import data (admins only, as for every import)."""
    author = users.require("import data").username
    name = (name or "").strip()
    if not NAME.match(name):
        raise InputError(f"overlay name {name!r}: 1-60 letters, digits, spaces or . ( ) / - _")
    if key not in KEY_KINDS:
        raise InputError(f"overlay key {key!r}: one of {', '.join(KEY_KINDS)}")
    unit = UnitType.parse(key)
    path = Path(path)
    label = path.name
    report = TableReport(table=f"overlay {name}", file=label)
    cur = store.cursor()
    headers = read_source(cur, path, "overlay_src", label)
    frame = cur.execute("SELECT * FROM overlay_src").df()
    cur.execute("DROP VIEW IF EXISTS overlay_src")
    key_col = key_column or _key_column(headers, key, label)
    if key_col not in headers:
        raise InputError(f"no column {key_col!r}; columns: {', '.join(headers)}", file=label)
    values = [h for h in headers if h != key_col]
    if not values:
        raise InputError("no value column: give the key and at least one numeric column",
                         file=label)
    if len(values) > MAX_COLUMNS:
        raise InputError(f"{len(values)} value columns: at most {MAX_COLUMNS}", file=label)
    for col in values:  # a column names a map layer and a measure (overlay:NAME:COLUMN=W)
        if not NAME.match(col):
            raise InputError("a value column's name is 1-60 letters, digits, spaces or "
                             ". ( ) / - _, starting with a letter or digit: rename it",
                             file=label, column=col)
    report.rows = len(frame)
    report.columns = {key_col: "key", **dict.fromkeys(values, "value")}
    rows = frame["__row"].to_numpy()
    keys = unit.normalize_ids([("" if pd.isna(k) else str(k)) for k in frame[key_col]])
    seen: dict[str, int] = {}
    for r, k, raw in zip(rows, keys, frame[key_col], strict=True):
        why = "empty key" if not k else unit.validate_id(k)
        if why is None and k in seen:
            why = f"repeated key (first on row {seen[k]})"
        if why is not None:
            report.rejected.append(Rejection(label, int(r), key_col,
                                             None if pd.isna(raw) else str(raw), why))
        seen.setdefault(k, int(r))
    long = []
    for col in values:
        text = frame[col].astype(object)
        present = text.notna() & (text.astype(str).str.strip() != "")
        nums = pd.Series(np.nan, index=text.index)
        nums[present] = pd.to_numeric(text[present].astype(str).str.strip().str.replace(
            ",", "", regex=False), errors="coerce")  # thousands separators: 1,500
        bad = present & (nums.isna() | ~np.isfinite(nums.fillna(0)))
        for r, v in zip(rows[bad.to_numpy()], text[bad], strict=True):
            report.rejected.append(Rejection(label, int(r), col, str(v),
                                             "not a number: give a plain number "
                                             "(1234.5), or leave the cell empty"))
        ok = (present & ~bad).to_numpy()
        long.append(pd.DataFrame({"name": name, "column_name": col,
                                  "key": np.asarray(keys, dtype=object)[ok],
                                  "value": nums.to_numpy(float)[ok]}))
    if report.rejected:
        raise ImportRejected(f"overlay {name!r}: {report.rejected_rows} of {report.rows} rows "
                             "are bad; nothing was stored (fix them and import again)",
                             ImportReport([report], committed=False))
    data = pd.concat(long, ignore_index=True)
    with store.transaction() as tx:
        tx.execute("DELETE FROM overlay_values WHERE name = ?", [name])
        tx.execute("DELETE FROM overlays WHERE name = ?", [name])
        tx.execute("INSERT INTO overlays VALUES (?, ?, ?, ?, ?)",
                   [name, key, label, dt.datetime.now(), author])
        tx.register("overlay_new", data)
        tx.execute("INSERT INTO overlay_values SELECT name, column_name, key, value "
                   "FROM overlay_new")
        tx.unregister("overlay_new")
    report.inserted = len(frame)
    return report


def _key_column(headers: list[str], key: str, label: str) -> str:
    """The key column: the one named like the key kind, else the first column."""
    wanted = {"zip5": ("zip", "zip5", "zipcode", "zip_code", "postal_code", "zcta"),
              "zip3": ("zip3",), "county": ("county", "fips", "county_fips"),
              "state": ("state",), "fr_dept": ("departement", "dept", "fr_dept")}
    names = wanted.get(key, ("h3", "cell", "h3_cell"))
    for h in headers:
        if h.strip().lower() in names:
            return h
    if not headers:
        raise InputError("no columns", file=label)
    return headers[0]


def list_overlays(cur) -> pd.DataFrame:
    """name, key kind, columns, keys, source file, when and by whom."""
    return cur.execute(
        """SELECT o.name, o.key_kind, string_agg(DISTINCT v.column_name, ', '
                  ORDER BY v.column_name) AS columns, count(DISTINCT v.key) AS keys,
                  o.source, o.imported_at, o.author
           FROM overlays o LEFT JOIN overlay_values v USING (name)
           GROUP BY ALL ORDER BY o.name""").df()


def delete_overlay(store: Store, name: str) -> None:
    users.require("import data")
    with store.transaction() as tx:
        if not tx.execute("SELECT count(*) FROM overlays WHERE name = ?",
                          [name]).fetchall()[0][0]:
            raise InputError(f"no overlay named {name!r}")
        tx.execute("DELETE FROM overlay_values WHERE name = ?", [name])
        tx.execute("DELETE FROM overlays WHERE name = ?", [name])


def layers(cur, unit: UnitType) -> list[tuple[str, str]]:
    """(overlay, column) pairs that can be shown on `unit` (the same or a finer key)."""
    out = []
    for name, key, col in cur.execute(
            "SELECT o.name, o.key_kind, v.column_name FROM overlays o JOIN overlay_values v "
            "USING (name) GROUP BY ALL ORDER BY 1, 3").fetchall():
        if rolls_up(UnitType.parse(key), unit):
            out.append((name, col))
    return out


def rolls_up(key: UnitType, unit: UnitType) -> bool:
    """Whether values keyed by `key` can be added up onto `unit`."""
    if key == unit:
        return True
    if key.kind == "zip5":
        return unit.kind in ("zip3", "county", "state", "h3")
    if key.kind == "county":
        return unit.kind == "state"
    if key.kind == "h3" and unit.kind == "h3":
        return unit.resolution < key.resolution
    return False


def unit_values(cur, name: str, column: str, unit: UnitType) -> pd.Series:
    """The overlay column added up onto `unit`: a Series by unit id."""
    row = cur.execute("SELECT key_kind FROM overlays WHERE name = ?", [name]).fetchall()
    if not row:
        raise InputError(f"no overlay named {name!r}")
    key = UnitType.parse(row[0][0])
    if not rolls_up(key, unit):
        raise InputError(f"overlay {name!r} is keyed by {key}: it cannot be shown on {unit}")
    data = cur.execute("SELECT key, value FROM overlay_values WHERE name = ? AND "
                       "column_name = ?", [name, column]).df()
    keys = data["key"].astype(str)
    if key == unit:
        target = keys
    elif key.kind == "zip5":
        target = _zip_targets(keys, unit)
    elif key.kind == "county":
        target = keys.str[:2].map(geography.STATE_FIPS)
    else:  # a finer H3 cell: its parent
        target = keys.map(lambda c: h3.cell_to_parent(c, unit.resolution))
    frame = pd.DataFrame({"unit_id": target.to_numpy(object), "value": data["value"]})
    return frame.dropna(subset=["unit_id"]).groupby("unit_id")["value"].sum()


def _zip_targets(zips: pd.Series, unit: UnitType) -> pd.Series:
    if unit.kind == "zip3":
        return zips.str[:3]
    from analytics import market

    points = market.zip_points().set_index("zip")
    if unit.kind == "county":
        return zips.map(points["county"])
    if unit.kind == "state":
        return zips.map(points["state_placed"])
    lat, lon = zips.map(points["lat"]), zips.map(points["lon"])
    out = pd.Series([None] * len(zips), index=zips.index, dtype=object)
    ok = lat.notna().to_numpy()
    out[ok] = h3_names(h3_cells_at(lat[ok].to_numpy(float), lon[ok].to_numpy(float),
                                   unit.resolution))
    return out
