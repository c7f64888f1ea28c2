"""What the territory map receives each rerun, built from the plan and its metrics.

The expensive parts (the unit index, shapes and per-unit numbers as static files, the
territory colours) are cached; the per-rerun part is one territory code per unit plus the
territory list, a few tens of kilobytes at 20,000 units.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from analytics import adjacency, catalog, overlays, plans
from analytics.metrics import MetricCube
from analytics.palette import territory_colors
from analytics.unit_index import UnitIndex
from ui.context import Context
from ui.map import (
    MARKET_NUMBERS,
    SEQUENTIAL,
    basemap_url,
    geometry_url,
    numbers_payload,
    publish,
    quantile_breaks,
    unit_codes,
)
from ui.map_editor import brush_radius


# label -> (where the value lives, metric name, number format)
def map_format(metric: str) -> str:
    """How the map script prints a metric: percent, money or a plain number."""
    kind = catalog.kind(metric)
    return "percent" if catalog.is_share(metric) else "money" if kind == "money" else "number"


LAYERS = {"Territory": ("territory", None, None)} | {
    f"{catalog.label(metric, short=True)} ({'unit' if where == 'unit' else 'territory'})":
    (where, metric, map_format(metric))
    for where, metric in (
        ("unit", "potential"), ("unit", "won"), ("unit", "penetration"),
        ("unit", "whitespace"), ("unit", "accounts"), ("territory_metric", "attainment"),
        ("territory_metric", "utilization"), ("territory_metric", "potential"),
        ("territory_metric", "workload_hours"),
        # the market under the map (public tables, analytics/market.py)
        ("unit", "market_population"), ("unit", "market_establishments"),
        ("unit", "accounts_per_1k_establishments"), ("unit", "potential_per_capita"),
        ("unit", "market_unemployment_rate"))
}
"""Map layers: label -> (where the numbers come from, metric, format), labels from the
catalogue."""


@st.cache_resource(show_spinner="Indexing the plan's units...", max_entries=8)
def _unit_index(db: str, plan_id: int, unit: str, data_version: str,
                _ctx: Context, _plan: plans.Plan) -> UnitIndex:
    return UnitIndex.build(_ctx.cur, _plan)


def unit_index(ctx: Context, plan: plans.Plan) -> UnitIndex:
    """The paintable units of the plan, cached per plan, unit type and data version."""
    return _unit_index(ctx.db_key, plan.plan_id, str(plan.unit), ctx.data_version,
                       ctx, plan)


@st.cache_resource(show_spinner=False, max_entries=16)
def _palette(plan_id: int, ids: tuple[str, ...], fixed: tuple, _cur, _plan) -> dict:
    touching = adjacency.territory_neighbours(_plan.unit, plans.assignment(_cur, _plan))
    return territory_colors(list(ids), touching, dict(fixed))


def territory_palette(ctx: Context, plan: plans.Plan, terr: pd.DataFrame) -> dict[str, str]:
    """Territory colours: neighbours differ; chosen once per territory set, so a stroke does
    not shuffle the map's colours; a colour the manager picked always wins."""
    fixed = tuple((t, c) for t, c in zip(terr["territory_id"], terr["color"], strict=True)
                  if isinstance(c, str) and c)
    auto = _palette(plan.plan_id, tuple(terr["territory_id"]), fixed, ctx.cur, plan)
    return {**auto, **dict(fixed)}


@st.cache_resource(show_spinner=False, max_entries=16)
def _numbers_url(index_key: str, cube_key: str, database: str, version: str,
                 _index: UnitIndex, _cube: MetricCube) -> str:
    return publish("numbers", numbers_payload(_index, _cube.units, _cube.period.days),
                   database=database, version=version)


def _layer(label: str, index_numbers: pd.DataFrame | None, rows: pd.DataFrame) -> dict:
    where, metric, fmt = LAYERS.get(label, LAYERS["Territory"])
    if where == "territory":
        return {"mode": "territory", "label": "Territory"}
    if where == "unit":
        # class breaks over the units that hold accounts, or for a market layer over
        # those the market reaches
        vals = [] if index_numbers is None else index_numbers.loc[
            (index_numbers[metric] > 0) if metric in MARKET_NUMBERS
            else (index_numbers["accounts"] > 0), metric]
    else:
        vals = rows[metric]
    breaks = quantile_breaks(vals)
    if catalog.kind(metric) == "count":  # people, accounts: whole numbers in the legend
        breaks = whole_breaks(breaks)
    return {"mode": where, "metric": metric, "label": label, "format": fmt,
            "breaks": breaks, "colors": list(SEQUENTIAL[: len(breaks) + 1])}


@st.cache_resource(show_spinner=False, max_entries=16)
def _unit_values(index_key: str, cube_key: str, _index: UnitIndex,
                 _cube: MetricCube) -> pd.DataFrame:
    """Per-unit numbers (for choropleth class breaks)."""
    return pd.DataFrame(numbers_payload(_index, _cube.units, _cube.period.days))


def _clean(v):
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return v
    return None if np.isnan(f) else round(f, 4)


def map_spec(ctx: Context, plan: plans.Plan, index: UnitIndex, terr: pd.DataFrame,
             rows: pd.DataFrame | None, colors: dict[str, str], cube: MetricCube | None,
             *, layer: str = "Territory", editing: bool = False,
             picker: bool = False) -> dict:
    """What the map draws this run. With `editing` (the Map page, for a person who may
    edit) it carries the edit tool, so the map answers a stroke before the server does.

    Without `rows` and `cube` (a first load, before the metrics are computed) the map
    gets the units in their territories' colours and no numbers; the numbers follow with
    the next run. Only the Territory layer can be drawn so.

    With `picker` (the Map page) the spec holds every layer "Colour units by" offers
    (`layers`: label -> the layer's classes and where its values are), and the map's own
    picker switches between them without a rerun.
    """
    index_key = f"{ctx.db_key}|{plan.plan_id}|{plan.unit}|{ctx.data_version}"
    cube_key = f"{index_key}|{ctx.period}|{ctx.as_of}|{ctx.settings.to_json()}"
    assign = plans.assignment(ctx.cur, plan)
    order = terr["territory_id"].tolist()
    if rows is None:
        layer = "Territory"
        rows = pd.DataFrame({"territory_id": pd.Series([], dtype=object)})
    metrics_by = rows.set_index("territory_id")
    territories = []
    for t in terr.itertuples(index=False):
        m = metrics_by.loc[t.territory_id] if t.territory_id in metrics_by.index else None
        territories.append({
            "id": t.territory_id, "name": t.territory_name or t.territory_id,
            "color": colors.get(t.territory_id, "#999999"),
            "rep": t.rep_name if isinstance(t.rep_name, str) else None,
            "locked": bool(t.locked) if t.locked is not None and not pd.isna(t.locked)
            else False,
            **{k: (_clean(m[k]) if m is not None else None)
               for k in ("attainment", "utilization", "potential", "workload_hours",
                         "accounts", "won", "quota")},
            "status": m["status"] if m is not None else "",
        })
    homes = [[round(float(r.home_lat), 4), round(float(r.home_lon), 4), r.rep_name,
              r.territory_name]
             for r in terr.dropna(subset=["home_lat", "home_lon"]).itertuples(index=False)]
    values = (_unit_values(index_key, cube_key, index, cube)
              if LAYERS.get(layer, ("territory",))[0] == "unit" else None)
    overlay = overlay_layers(ctx, plan).get(layer)
    spec = {
        "version": int(st.session_state.get("_map_version", 0)) + 1,
        "geometry": geometry_url(index_key, index),
        "numbers": _numbers_url(index_key, cube_key, str(ctx.store.path), ctx.data_version,
                                index, cube) if cube is not None else None,
        "basemap": basemap_url(),
        "codes": unit_codes(index, assign, order),
        "territories": territories,
        "homes": homes,
        # the edit tool: the map recolours a click or a drag at once
        "brush": st.session_state.get("brush") if editing else None,
        "mode": st.session_state.get("edit_mode") if editing else None,
        "drag": brush_radius(st.session_state.get("brush_size")) if editing else None,
        "answered": st.session_state.get("map_answered"),  # the last stroke the server saw
        "layer": (_overlay_layer(ctx, plan, index, index_key, layer, overlay) if overlay
                  else _layer(layer, values, rows)),
        "fit": _fit(index, assign, rows) if len(rows) else None,
        "layers": (all_layers(ctx, plan, index, index_key, cube_key, cube, rows)
                   if picker and cube is not None and len(rows) else None),
    }
    st.session_state["_map_version"] = spec["version"]
    return spec


@st.cache_resource(show_spinner=False, max_entries=16)
def _unit_layers(index_key: str, cube_key: str, _index: UnitIndex,
                 _cube: MetricCube) -> dict[str, dict]:
    """The per-unit layers' classes: they change with the numbers, not with a stroke."""
    values = _unit_values(index_key, cube_key, _index, _cube)
    return {label: _layer(label, values, None) for label, (where, _, _) in LAYERS.items()
            if where == "unit"}


def all_layers(ctx: Context, plan: plans.Plan, index: UnitIndex, index_key: str,
               cube_key: str, cube: MetricCube, rows: pd.DataFrame) -> dict[str, dict]:
    """Every layer "Colour units by" offers, in its order: label -> layer spec."""
    units = _unit_layers(index_key, cube_key, index, cube)
    out = {}
    for label, (where, _, _) in LAYERS.items():
        out[label] = units[label] if where == "unit" else _layer(label, None, rows)
    for label, overlay in overlay_layers(ctx, plan).items():
        out[label] = _overlay_layer(ctx, plan, index, index_key, label, overlay)
    return out


def overlay_layers(ctx: Context, plan: plans.Plan) -> dict[str, tuple[str, str]]:
    """The manager's own overlays that can be shown on the plan's units: label ->
    (overlay, column)."""
    return {f"{name} · {col} (your overlay)": (name, col)
            for name, col in overlays.layers(ctx.cur, plan.unit)}


def whole_breaks(breaks: list[float]) -> list[float]:
    """Class breaks of a count, rounded to whole numbers (one class per distinct break)."""
    return sorted({float(round(b)) for b in breaks})


@st.cache_resource(show_spinner=False, max_entries=16)
def _overlay_file(index_key: str, name: str, column: str, imported: str, database: str,
                  version: str, _ctx: Context, _plan: plans.Plan,
                  _index: UnitIndex) -> tuple[str, list[float]]:
    """(URL, class breaks) of an overlay column added up onto the plan's units: made once
    per import of the overlay, not every rerun (a stroke reruns the map)."""
    values = overlays.unit_values(_ctx.cur, name, column, _plan.unit).reindex(_index.ids)
    url = publish("overlay", {"values": [None if pd.isna(v) else round(float(v), 4)
                                         for v in values]},
                  database=database, version=version)
    reached = values[values > 0]
    breaks = quantile_breaks(reached)
    if len(reached) and (reached == reached.round()).all():  # counts (sites, stores)
        breaks = whole_breaks(breaks)
    return url, breaks


def _overlay_layer(ctx: Context, plan: plans.Plan, index: UnitIndex, index_key: str,
                   label: str, overlay: tuple[str, str]) -> dict:
    """A unit layer of an overlay: its values (added up onto the plan's units) in a file of
    the database's folder, classes over the units it reaches."""
    name, column = overlay
    imported = str(ctx.cur.execute("SELECT imported_at FROM overlays WHERE name = ?",
                                   [name]).fetchall()[0][0])
    url, breaks = _overlay_file(index_key, name, column, imported, str(ctx.store.path),
                                ctx.data_version, ctx, plan, index)
    return {"mode": "unit", "metric": f"overlay:{name}:{column}", "label": label,
            "format": "number", "breaks": breaks, "values": url,
            "colors": list(SEQUENTIAL[: len(breaks) + 1])}


def _fit(index: UnitIndex, assign: pd.DataFrame, rows: pd.DataFrame) -> dict | None:
    """Zoom to the territory selected in the table (once per new selection)."""
    picked = (st.session_state.get("territory_table") or {}).get("selection", {}).get(
        "rows", [])
    if not picked or picked[0] >= len(rows):
        st.session_state.pop("_fit", None)
        return None
    tid = rows["territory_id"].iloc[picked[0]]
    prev = st.session_state.get("_fit")
    if prev is None or prev["territory"] != tid:
        nonce = (prev["nonce"] + 1) if prev else 1
        bounds = index.bounds(assign.loc[assign["territory_id"] == tid, "unit_id"])
        if bounds is None:
            return None
        prev = {"territory": tid, "nonce": nonce, "bounds": [list(bounds[0]),
                                                             list(bounds[1])]}
        st.session_state["_fit"] = prev
    return {"bounds": prev["bounds"], "nonce": prev["nonce"]}


# --------------------------------------------------------------------------------------
# the explorer's read-only map: highlighted areas, others dimmed
# --------------------------------------------------------------------------------------
@st.cache_resource(show_spinner="Indexing units...", max_entries=8)
def _units_of(db: str, unit: str, data_version: str, _cur) -> UnitIndex:
    from analytics.units import UnitType

    return UnitIndex.for_unit(_cur, UnitType.parse(unit))


def explorer_spec(ctx: Context, plan: plans.Plan, level, table: pd.DataFrame, metric: str,
                  highlight: set[str], colors: dict[str, str], rows: pd.DataFrame,
                  cube: MetricCube) -> tuple[dict, UnitIndex]:
    """A spec for the explorer map and the index its clicks resolve against.

    Territory and rep levels: the plan's units in territory colours, units of the
    highlighted territories (or of the highlighted reps' territories) bright, others
    dimmed. Unit level: units of that type coloured by the ranked metric (quantile classes),
    the highlighted ones bright.
    """
    terr = plans.territories(ctx.cur, plan)
    if level.kind == "unit" and str(level.unit) != str(plan.unit):
        index = _units_of(ctx.db_key, str(level.unit), ctx.data_version, ctx.cur)
        assign = pd.DataFrame({"unit_id": [], "territory_id": []})
        hide = True
    else:
        index = unit_index(ctx, plan)
        assign = plans.assignment(ctx.cur, plan)
        hide = False
    spec = map_spec(ctx, plan, index, terr, rows, colors, cube)
    spec["codes"] = unit_codes(index, assign, terr["territory_id"].tolist())
    spec["hideTerritory"] = hide
    if level.kind == "unit":
        frame = pd.DataFrame({"unit_id": index.ids}).merge(
            table.rename(columns={"area": "unit_id"}), on="unit_id", how="left")
        numbers = {}
        for col in ("accounts", "potential", "won", metric):
            vals = frame[col].astype(float)
            numbers[col] = [None if pd.isna(v) else round(float(v), 4) for v in vals]
        spec["numbers"] = publish("explorer", numbers, database=str(ctx.store.path),
                                  version=ctx.data_version)
        spec["layer"] = {**_layer("Territory", None, rows), "mode": "unit", "metric": metric,
                         "label": catalog.label(metric),
                         "format": map_format(metric),
                         "breaks": quantile_breaks(table[metric]),
                         "colors": list(SEQUENTIAL)}
        spec["layer"]["colors"] = spec["layer"]["colors"][: len(spec["layer"]["breaks"]) + 1]
        bright = highlight
    else:
        if level.kind == "territory":
            keep = set(highlight)
        else:
            keep = set(terr.loc[terr["rep_id"].isin(highlight), "territory_id"])
        bright = set(assign.loc[assign["territory_id"].isin(keep), "unit_id"])
    spec["dim"] = "".join("1" if u in bright else "0" for u in index.ids) if highlight \
        else None
    return spec, index

