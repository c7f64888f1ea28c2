"""Plans from other files: territory polygons (GeoJSON, GeoPackage) and account lists.

- Polygons: each feature is a territory's area (a territory may have several features);
  a unit goes to the territory whose polygon holds its centre (an H3 cell's centre, a point
  on the surface of a county or state, a postal point): the rule the map's drawn shapes
  follow. The report lists the features holding no unit centre, the units holding accounts
  that no polygon covers, and the units two polygons both cover (the first feature wins).
- Account lists (CSV, Excel, Parquet with `account_id, territory_id`): each row pins that
  account to that territory in an existing plan, as one undoable edit. All or nothing: an
  unknown account or territory, or an account given twice, stores nothing and the report
  names each row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from analytics import edits
from analytics.columns import ACCOUNT_LIST, TERRITORY_POLYGONS, match_columns
from analytics.errors import InputError
from analytics.ingest import ImportRejected, ImportReport, Rejection, TableReport
from analytics.plans import Plan, first_state, get_plan, log_event, new_plan
from analytics.store import Store
from analytics.unit_index import UnitIndex
from analytics.units import UnitType


def _text(value) -> str | None:
    """A property as trimmed text; None when missing or blank."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return str(value).strip() or None


def import_plan_polygons(store: Store, name: str, unit: UnitType, path: str | Path, *,
                         state: str | None = None,
                         label: str | None = None) -> tuple[Plan, ImportReport, dict]:
    """A new plan from territory polygons. Returns (plan, report, details) where details
    holds `unmatched_units` (units with accounts outside every polygon) and `overlaps`."""
    import geopandas as gpd

    path = Path(path)
    label = label or str(path)
    if not path.exists():
        raise InputError("file not found", file=label)
    try:
        frame = gpd.read_file(path)
    except Exception as exc:
        raise InputError(f"cannot read the file as GeoJSON or GeoPackage ({exc})",
                         file=label) from exc
    chosen = match_columns([c for c in frame.columns if c != "geometry"],
                           TERRITORY_POLYGONS, file=label)
    tid_col, name_col, rep_col = (chosen["territory_id"], chosen.get("territory_name"),
                                  chosen.get("rep_id"))
    if frame.crs is not None and frame.crs.to_epsg() != 4326:
        frame = frame.to_crs(4326)
    tr = TableReport("plan", label)
    tr.rows = len(frame)
    report = ImportReport([tr])
    good = []
    for i, row in frame.reset_index(drop=True).iterrows():
        geom, tid = row.geometry, row[tid_col]
        feature = i + 1
        if tid is None or (isinstance(tid, float) and np.isnan(tid)) or not str(tid).strip():
            tr.rejected.append(Rejection(label, feature, tid_col, None,
                                         "missing territory id"))
        elif geom is None or geom.is_empty or geom.geom_type not in ("Polygon",
                                                                      "MultiPolygon"):
            tr.rejected.append(Rejection(label, feature, "geometry",
                                         None if geom is None else geom.geom_type,
                                         "not a polygon"))
        else:
            good.append((feature, str(tid).strip(), shapely.make_valid(geom)))
    if tr.rejected:
        raise ImportRejected(f"{label}: {tr.rejected_rows} of {tr.rows} features are wrong; "
                             "the plan was not created", report)
    index = UnitIndex.for_unit(store.cursor(), unit)
    owner = np.full(len(index), -1)
    details = {"empty_features": [], "overlaps": 0}
    for k, (feature, _tid, geom) in enumerate(good):
        shapely.prepare(geom)
        hit = shapely.contains_xy(geom, index.lon, index.lat)
        details["overlaps"] += int((hit & (owner >= 0)).sum())
        new = hit & (owner < 0)
        owner[new] = k
        if not hit.any():
            details["empty_features"].append(feature)
    assign = pd.DataFrame({"unit_id": [index.ids[i] for i in np.flatnonzero(owner >= 0)],
                           "territory_id": [good[k][1] for k in owner[owner >= 0]]})
    held = {r[0] for r in store.cursor().execute(
        f"SELECT DISTINCT {unit.unit_id_sql('a')} FROM accounts a").fetchall()}
    details["unmatched_units"] = sorted(u for u in held if u is not None
                                        and u not in set(assign["unit_id"])
                                        and u in set(index.ids))
    terr = frame.assign(_tid=frame[tid_col].astype(str).str.strip())
    first = terr.drop_duplicates("_tid")
    reps = ([_text(r) for r in first[rep_col]] if rep_col else [None] * len(first))
    if rep_col:
        known = {r[0] for r in store.cursor().execute("SELECT rep_id FROM reps").fetchall()}
        for feature, rep in zip(first.index + 1, reps, strict=True):
            if rep is not None and rep not in known:
                tr.rejected.append(Rejection(label, int(feature), rep_col, rep,
                                             "no rep with this id: load the reps file first"))
        if tr.rejected:
            raise ImportRejected(f"{label}: {tr.rejected_rows} of {tr.rows} features are "
                                 "wrong; the plan was not created", report)
    with store.transaction() as cur:  # the plan, its territories and units: all or none
        state = "active" if first_state(cur, None) == "active" else (state or "planning")
        plan_id = new_plan(cur, name, unit, state=state, note=f"from polygons {path.name}",
                           detail=f"from polygons, {state}")
        rows = pd.DataFrame({
            "plan_id": plan_id, "territory_id": first["_tid"].to_numpy(),
            # a feature without a name is named by its id, as in a plan imported from a file
            "name": [_text(n) or t for n, t in zip(
                first[name_col] if name_col else first["_tid"], first["_tid"], strict=True)],
            "rep_id": reps,
        })
        cur.register("new_terr", rows)
        cur.execute("INSERT INTO territories (plan_id, territory_id, name, rep_id) "
                    "SELECT plan_id, territory_id, name, rep_id FROM new_terr")
        assign.insert(0, "plan_id", plan_id)
        cur.register("new_units", assign)
        cur.execute("INSERT INTO plan_units SELECT plan_id, unit_id, territory_id "
                    "FROM new_units")
        log_event(cur, plan_id, "imported polygons",
                  f"{path.name}: {len(good)} features, {len(assign)} units")
    tr.inserted = len(assign)
    report.committed = True
    return get_plan(store.cursor(), name.strip()), report, details


def import_account_assignments(store: Store, plan: Plan, path: str | Path, *,
                               label: str | None = None) -> tuple[edits.EditResult,
                                                                  ImportReport]:
    """Pin accounts to territories from `account_id, territory_id` rows (one edit)."""
    from analytics.ingest import read_source

    path = Path(path)
    label = label or str(path)
    tr = TableReport("account assignments", label)
    report = ImportReport([tr])
    cur = store.cursor()
    headers = read_source(cur, path, "raw_account_plan", label)
    chosen = match_columns(headers, ACCOUNT_LIST, file=label)
    acc_col, terr_col = chosen["account_id"], chosen["territory_id"]
    raw = cur.execute(
        f'SELECT __row, NULLIF(trim(CAST("{acc_col.replace(chr(34), chr(34) * 2)}" AS '
        f'VARCHAR)), \'\') AS account_id, NULLIF(trim(CAST("'
        f'{terr_col.replace(chr(34), chr(34) * 2)}" AS VARCHAR)), \'\') AS territory_id '
        "FROM raw_account_plan ORDER BY __row").df()
    tr.rows = len(raw)
    known_acc = {r[0] for r in cur.execute(
        "SELECT account_id FROM accounts WHERE account_id IN (SELECT unnest(?::VARCHAR[]))",
        [raw["account_id"].dropna().tolist()]).fetchall()}
    known_terr = {r[0] for r in cur.execute(
        "SELECT territory_id FROM territories WHERE plan_id = ?", [plan.plan_id]).fetchall()}
    seen: dict[str, int] = {}
    for row, acc, tid in raw.itertuples(index=False):
        acc, tid = _text(acc), _text(tid)  # an empty cell may come back as NaN, not None
        if acc is None:
            tr.rejected.append(Rejection(label, int(row), acc_col, None, "missing account id"))
        elif acc not in known_acc:
            tr.rejected.append(Rejection(label, int(row), acc_col, acc, "no such account"))
        elif acc in seen:
            tr.rejected.append(Rejection(label, int(row), acc_col, acc,
                                         f"account given twice (also on row {seen[acc]})"))
        else:
            seen[acc] = int(row)
        if tid is None:
            tr.rejected.append(Rejection(label, int(row), terr_col, None,
                                         "missing territory id"))
        elif tid not in known_terr:
            tr.rejected.append(Rejection(label, int(row), terr_col, tid,
                                         f"plan {plan.name!r} has no such territory"))
    if tr.rejected:
        raise ImportRejected(f"{label}: {tr.rejected_rows} of {tr.rows} rows are wrong; "
                             "nothing was pinned", report)

    def build(c):
        now = dict(c.execute("SELECT account_id, territory_id FROM account_overrides "
                             "WHERE plan_id = ?", [plan.plan_id]).fetchall())
        changes = [(edits.PIN, a, now.get(a), t)
                   for a, t in zip(raw["account_id"], raw["territory_id"], strict=True)
                   if now.get(a) != t]
        return changes, 0

    result = edits.commit_edit(store, plan, f"Pin {len(raw)} accounts from {path.name}", build)
    tr.inserted = result.changed
    report.committed = True
    return result, report
