"""Meeting-pack exports of a plan: slides, PDF, workbook, GIS files, a map image, CRM load files.

`export_plan` writes one format to a file, `export_bytes` returns it for a download button.
Everything is drawn and written here, offline (no map tiles, no network): maps with
matplotlib's Agg renderer from the shipped unit geometry, slides with python-pptx, the PDF
with reportlab (DejaVu Sans, shipped with matplotlib, so any name prints), the workbook with
xlsxwriter, GeoPackage with pyogrio.

- pptx: a title slide (the whole-plan KPIs, an overview map with a legend), one slide per
  territory (its map, its rep, its metrics and deviations), and a comparison slide when a
  baseline plan is given;
- pdf: the same pages;
- xlsx: sheets `units` (unit -> territory; first, so that the workbook imports back as a
  plan as it is), `territories` (the `summary` rows and the `__plan__` row; the sheet shown
  on opening), `accounts` (every account and its territory), `settings` (the conditions and
  settings used), and `comparison` with a baseline;
- geojson, gpkg: one feature per territory, the dissolved (multi)polygon of its units
  (WGS84) with its metrics as properties;
- png: the overview map;
- salesforce: a zip of Data Loader CSV files that rebuild the plan as a territory model
  (`Territory2`, `ObjectTerritory2Association`, `UserTerritory2Association`) and a README
  on the order to load them and the ids to fill in.

Geometry: a territory's shape is the union of its units, the shipped polygons (states,
counties, French departements) or the exact H3 hexagons, as `metrics.territory_shape` has
it. ZIP codes and French communes ship no polygons, only a reference point: each such unit
is drawn as its Voronoi cell among all the points of its kind (the area nearer its point
than any other unit's), cut to a disc around the point (`POINT_RADIUS_DEG`), so territories
of point units tile the map without overlapping; their areas are indicative only.

Maps: the territory colours are the app's (`ui.palette`: touching territories differ, a
colour the manager chose wins), state (or departement) outlines give context, and there are
no tiles. The overview is clipped to the bulk of the units, so that Alaska, Hawaii or the
overseas departements do not shrink the lower 48 or metropolitan France to a corner: the box
of the 5th to 95th percentiles of the unit centres, widened by half its size on each side,
keeps the unit parts (islands, pieces across the antimeridian) whose centre lies in it, and
the view is their extent. Territories left outside are named under the map and have their
own slides; each territory's map applies the same rule to its own units.

Cost: a `PlanPack` computes the metrics (`metrics.summary`'s steps), the territory unions and
the maps once, lazily; pass one pack to several `export_plan` calls to share them.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re
import tempfile
import zipfile
from collections.abc import Iterator
from functools import cache, cached_property
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import shapely

from analytics import adjacency, geography, metrics, plans
from analytics.errors import InputError
from analytics.period import Period
from analytics.plans import Plan
from analytics.settings import Settings
from analytics.store import Store
from analytics.units import POLYGON_KINDS, UnitType, unit_shapes
from ui.palette import UNASSIGNED, territory_colors  # pure Python: no Streamlit import

FORMATS = ("pptx", "pdf", "xlsx", "geojson", "gpkg", "png", "salesforce")
EXTENSIONS = {"pptx": ".pptx", "pdf": ".pdf", "xlsx": ".xlsx", "geojson": ".geojson",
              "gpkg": ".gpkg", "png": ".png", "salesforce": "_salesforce.zip"}
MIME_TYPES = {
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
    "png": "image/png",
    "salesforce": "application/zip",
}
POINT_RADIUS_DEG = {"zip5": 0.25, "zip3": 1.5, "fr_commune": 0.08}
"""Radius (degrees) of the disc a point unit's Voronoi cell is cut to."""
TERRITORY_MAP_SIZE = (7.4, 5.8)
"""Inches of a territory's map on its slide (and, scaled, on its PDF page)."""
DRAW_TOLERANCE_DEG = 0.005
"""Simplification of territory outlines for drawing only (exports keep the exact union)."""
COMPARED = ("accounts", "potential", "won", "workload_hours")
"""The per-territory measures of the comparison with a baseline."""
ROWS_PER_COLUMN = 25
MAX_COMPARISON_ROWS = 50

# -- labels and number formats: one place for slides, PDF pages and their tests --------------
LABELS = {
    "accounts": "Accounts", "potential": "Potential (annual)", "won": "Won",
    "open_pipeline": "Open pipeline", "quota": "Quota (period)", "attainment": "Attainment",
    "pace": "Pace", "pipeline_coverage": "Pipeline coverage", "penetration": "Penetration",
    "whitespace": "Whitespace", "travel_km": "Mean travel (km)",
    "workload_hours": "Workload (hours)", "capacity_hours": "Capacity (hours)",
    "utilization": "Utilization", "status": "Status", "reach_pct": "Accounts within reach",
    "touched_pct": "Accounts touched", "units": "Units", "components": "Pieces",
    "contiguous": "Contiguous", "polsby_popper": "Compactness (Polsby-Popper)",
    "deviation_potential": "Potential vs mean", "deviation_workload_hours": "Workload vs mean",
    "deviation_accounts": "Accounts vs mean",
    "coverage_accounts_pct": "Accounts in a territory with a rep",
    "coverage_potential_pct": "Potential in a territory with a rep",
    "unassigned_accounts": "Unassigned accounts",
    "balance_cv_potential": "Balance CV, potential",
    "balance_cv_workload_hours": "Balance CV, workload",
    "balance_cv_accounts": "Balance CV, accounts",
    "balance_max_dev_potential": "Max deviation, potential",
    "balance_max_dev_workload_hours": "Max deviation, workload",
    "balance_max_dev_accounts": "Max deviation, accounts",
    "disruption_accounts_pct": "Accounts changing territory",
    "disruption_potential_pct": "Potential changing territory",
}
PLAN_KPIS = (
    "accounts", "potential", "won", "open_pipeline", "quota", "attainment", "pace",
    "pipeline_coverage", "penetration", "whitespace", "workload_hours", "capacity_hours",
    "utilization", "travel_km", "reach_pct", "touched_pct", "coverage_accounts_pct",
    "coverage_potential_pct", "unassigned_accounts", "balance_cv_potential",
    "balance_cv_workload_hours", "balance_cv_accounts",
)
"""The whole-plan KPIs of the title slide (the two disruption shares follow with a baseline)."""
TERRITORY_KPIS = (
    ("accounts", "deviation_accounts"), ("potential", "deviation_potential"), ("won", None),
    ("open_pipeline", None), ("quota", None), ("attainment", None), ("pace", None),
    ("pipeline_coverage", None), ("penetration", None), ("whitespace", None),
    ("workload_hours", "deviation_workload_hours"), ("capacity_hours", None),
    ("utilization", None), ("status", None), ("travel_km", None), ("reach_pct", None),
    ("touched_pct", None), ("units", None), ("components", None), ("polsby_popper", None),
)
"""A territory slide's rows: (metric, its deviation from the mean or None)."""
_COUNT = {"accounts", "units", "components", "unassigned_accounts"}
_WHOLE = {"potential", "won", "open_pipeline", "quota", "whitespace", "workload_hours",
          "capacity_hours"}
_RATIO = {"pipeline_coverage", "polsby_popper"}
EMPTY = "–"


def _missing(value) -> bool:
    return value is None or value is pd.NA or (
        isinstance(value, float | np.floating) and math.isnan(value))


def format_value(column: str, value) -> str:
    """A metric as the slides and PDF pages print it (shares as percentages, amounts whole,
    deviations and changes signed, empty values as an en dash)."""
    if _missing(value):
        return EMPTY
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    v = float(value)
    if column.endswith("_delta"):  # changes: compact, millions and billions rounded
        if abs(v) >= 1e9:
            return f"{v / 1e9:+,.2f}B"
        if abs(v) >= 1e6:
            return f"{v / 1e6:+,.1f}M"
        return f"{v:+,.0f}" if round(v) else "0"
    if column.startswith("deviation_"):
        return f"{v:+.1%}"
    if column in _COUNT:
        return f"{round(v):,}"
    if column in _WHOLE:
        return f"{v:,.0f}"
    if column == "travel_km":
        return f"{v:,.1f}"
    if column in _RATIO:
        return f"{v:,.2f}"
    return f"{v:.1%}"  # shares: attainment, pace, utilization, coverage, balance, disruption


def plan_kpis(plan_row: dict, *, baseline: bool = False) -> list[tuple[str, str]]:
    """(label, text) of the title slide's KPI table."""
    cols = [*PLAN_KPIS, *(("disruption_accounts_pct", "disruption_potential_pct")
                          if baseline else ())]
    return [(LABELS[c], format_value(c, plan_row.get(c))) for c in cols]


def territory_kpis(row) -> list[tuple[str, str, str]]:
    """(label, value, deviation) of a territory slide's metrics table."""
    return [(LABELS[c], format_value(c, row[c]), format_value(d, row[d]) if d else "")
            for c, d in TERRITORY_KPIS]


def territory_title(territory_id: str, name) -> str:
    name = "" if _missing(name) else str(name)
    return territory_id if not name or name == territory_id else f"{territory_id} – {name}"


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


# --------------------------------------------------------------------------------------
# everything an export draws from, computed once per export (lazily: a Salesforce bundle
# needs no metrics or geometry)
# --------------------------------------------------------------------------------------
class PlanPack:
    """A plan's metrics, territories, shapes, colours and maps for one set of conditions."""

    def __init__(self, cur: duckdb.DuckDBPyConnection, plan: Plan, *, period: Period,
                 as_of: dt.date, settings: Settings, baseline: Plan | None = None) -> None:
        self.cur = cur
        self.plan = plan
        self.period = period
        self.as_of = as_of
        self.settings = settings
        self.baseline = baseline
        self.created = dt.datetime.now().replace(microsecond=0)

    # -- plan content --------------------------------------------------------------------
    @cached_property
    def terr(self) -> pd.DataFrame:
        """`plans.territories` (+ territory_type when the schema has it)."""
        terr = plans.territories(self.cur, self.plan)
        has_type = self.cur.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'territories' "
            "AND column_name = 'territory_type'").fetchone()[0]
        if has_type:
            types = self.cur.execute(
                "SELECT territory_id, territory_type FROM territories WHERE plan_id = ?",
                [self.plan.plan_id]).df()
            terr = terr.merge(types, on="territory_id", how="left")
        else:
            terr["territory_type"] = None
        return terr

    @cached_property
    def assign(self) -> pd.DataFrame:
        return plans.assignment(self.cur, self.plan)

    @cached_property
    def _metrics(self) -> tuple:
        """`metrics.summary` of the plan (and of the baseline), sharing one cube and one
        shapes cache: the same calls `summary` makes, so the same numbers."""
        cur, cache = self.cur, {}
        reps = set(self.terr["rep_id"].dropna())
        cube = metrics.MetricCube.build(cur, self.plan.unit, self.period, self.as_of,
                                        self.settings, None, reps)
        plan_in = metrics.PlanInputs.load(cur, self.plan, cube)
        frame = (metrics.disruption_frame(cur, self.plan, self.baseline)
                 if self.baseline is not None else None)
        rows, plan_row = metrics.territory_metrics(cube, plan_in, shapes_cache=cache,
                                                   baseline=frame)
        if self.baseline is None:
            return rows, plan_row, None, None
        b_reps = set(plans.territories(cur, self.baseline)["rep_id"].dropna())
        if self.baseline.unit == self.plan.unit:
            cube.add_reps(cur, b_reps)
            b_cube = cube
        else:
            b_cube = metrics.MetricCube.build(cur, self.baseline.unit, self.period,
                                              self.as_of, self.settings, None, b_reps)
        b_in = metrics.PlanInputs.load(cur, self.baseline, b_cube)
        b_rows, b_plan = metrics.territory_metrics(b_cube, b_in, shapes_cache=cache)
        return rows, plan_row, b_rows, b_plan

    @property
    def rows(self) -> pd.DataFrame:
        return self._metrics[0]

    @property
    def plan_row(self) -> dict:
        return self._metrics[1]

    @property
    def base_rows(self) -> pd.DataFrame | None:
        return self._metrics[2]

    @cached_property
    def comparison(self) -> pd.DataFrame | None:
        return None if self.base_rows is None else comparison_frame(self.rows, self.base_rows)

    @cached_property
    def rep_names(self) -> dict[str, str]:
        return {t: (n if isinstance(n, str) and n else r)
                for t, r, n in zip(self.terr["territory_id"], self.terr["rep_id"],
                                   self.terr["rep_name"], strict=True) if isinstance(r, str)}

    # -- geometry --------------------------------------------------------------------------
    @cached_property
    def unit_geoms(self) -> dict[str, np.ndarray]:
        """territory -> shapely geometries of its units (polygons; point units: their
        Voronoi cells, see the module doc)."""
        unit = self.plan.unit
        ids = self.assign["unit_id"].to_numpy(dtype=object)
        if unit.kind in POLYGON_KINDS:
            all_ids, _, all_geoms = geography.unit_polygons(unit.kind)
            index = dict(zip(all_ids, all_geoms, strict=True))
            geoms = np.array([index.get(u) for u in ids], dtype=object)
        elif unit.kind == "h3":
            shapes = unit_shapes(unit, list(ids))
            index = dict(zip(shapes["unit_id"], shapes.geometry.to_numpy(), strict=True))
            geoms = np.array([index.get(u) for u in ids], dtype=object)
        else:
            geoms = _point_cells(unit.kind, list(ids))
        out: dict[str, np.ndarray] = {t: np.empty(0, dtype=object)
                                      for t in self.terr["territory_id"]}
        terr_ids = self.assign["territory_id"].to_numpy(dtype=object)
        for t in out:
            sel = geoms[terr_ids == t]
            out[t] = sel[[g is not None for g in sel]] if len(sel) else sel
        return out

    @cached_property
    def shapes(self) -> dict[str, object]:
        """territory -> the union of its units (None without units), exact."""
        out = {}
        for t, geoms in self.unit_geoms.items():
            if not len(geoms):
                out[t] = None
            elif self.plan.unit.kind == "h3":
                cells = self.assign.loc[self.assign["territory_id"] == t, "unit_id"].tolist()
                out[t] = metrics.territory_shape(self.plan.unit, cells)
            else:
                out[t] = shapely.union_all(geoms)
        return out

    @cached_property
    def draw_shapes(self) -> dict[str, object]:
        """Simplified, oriented outlines for drawing (never exported as data)."""
        return {t: (None if g is None or g.is_empty else shapely.orient_polygons(
            shapely.simplify(g, DRAW_TOLERANCE_DEG, preserve_topology=True)))
            for t, g in self.shapes.items()}

    @cached_property
    def colors(self) -> dict[str, str]:
        """The app's territory colours: neighbours differ, a colour the manager chose wins."""
        ids = self.terr["territory_id"].tolist()
        fixed = {t: c for t, c in zip(ids, self.terr["color"], strict=True)
                 if isinstance(c, str) and c}
        touching = adjacency.territory_neighbours(self.plan.unit, self.assign)
        return {**territory_colors(ids, touching, fixed), **fixed}

    @cached_property
    def maps(self) -> _Maps:
        return _Maps(self)


def _point_cells(kind: str, unit_ids: list[str]) -> np.ndarray:
    """Each point unit's Voronoi cell among all the points of its kind, cut to a disc."""
    pts = geography.postal_points(kind).dropna(subset=["lat", "lon"])
    pts = pts.drop_duplicates("unit_id")
    radius = POINT_RADIUS_DEG[kind]
    xy = np.round(pts[["lon", "lat"]].to_numpy(float), 6)
    uniq, inverse = np.unique(xy, axis=0, return_inverse=True)
    points = shapely.points(uniq)
    lo, hi = uniq.min(axis=0) - 2 * radius, uniq.max(axis=0) + 2 * radius
    cells = shapely.get_parts(shapely.voronoi_polygons(
        shapely.multipoints(points), extend_to=shapely.box(*lo, *hi), ordered=True))
    if len(cells) != len(uniq):  # never seen; fall back to discs alone
        cells = shapely.buffer(points, radius)
    where = dict(zip(pts["unit_id"], inverse.ravel(), strict=True))
    out = np.full(len(unit_ids), None, dtype=object)
    for k, u in enumerate(unit_ids):
        i = where.get(u)
        if i is not None:
            disc = shapely.buffer(points[i], radius, quad_segs=16)
            out[k] = shapely.intersection(cells[i], disc)
    return out


# --------------------------------------------------------------------------------------
# maps (matplotlib Agg, no pyplot state, no tiles)
# --------------------------------------------------------------------------------------
def view_extent(geoms) -> tuple[float, float, float, float] | None:
    """(x0, x1, y0, y1) around the bulk of these unit geometries (see the module doc): the
    box of the 5th to 95th percentiles of the unit centres, widened by half its size on
    each side, keeps the unit parts (an island, a piece across the antimeridian) whose
    centre lies in it; the view is their extent."""
    geoms = np.asarray([g for g in geoms if g is not None and not g.is_empty], dtype=object)
    if not len(geoms):
        return None
    centres = shapely.point_on_surface(geoms)
    parts = shapely.get_parts(geoms)
    part_centres = shapely.point_on_surface(parts)
    keep = np.ones(len(parts), dtype=bool)
    for unit_v, part_v in ((shapely.get_x(centres), shapely.get_x(part_centres)),
                           (shapely.get_y(centres), shapely.get_y(part_centres))):
        lo, hi = np.percentile(unit_v, [5, 95])
        half = max(hi - lo, 0.5) / 2
        keep &= (part_v >= lo - half) & (part_v <= hi + half)
    x0, y0, x1, y1 = shapely.total_bounds(parts[keep] if keep.any() else parts)
    pad_x, pad_y = max((x1 - x0) * 0.03, 0.05), max((y1 - y0) * 0.03, 0.05)
    return x0 - pad_x, x1 + pad_x, y0 - pad_y, y1 + pad_y


def _path(geom):
    """A shapely (multi)polygon as one matplotlib compound path (holes kept)."""
    from matplotlib.path import Path as MplPath

    verts, codes = [], []
    for poly in shapely.get_parts(geom):
        if shapely.get_type_id(poly) != 3:
            continue
        for ring in (poly.exterior, *poly.interiors):
            c = np.asarray(ring.coords)[:, :2]
            if len(c) < 4:
                continue
            k = np.full(len(c), MplPath.LINETO, dtype=np.uint8)
            k[0], k[-1] = MplPath.MOVETO, MplPath.CLOSEPOLY
            verts.append(c)
            codes.append(k)
    return MplPath(np.concatenate(verts), np.concatenate(codes)) if verts else None


def _rings(geoms) -> list[np.ndarray]:
    """The rings of these polygons, simplified for drawing, as coordinate arrays."""
    simple = shapely.simplify(np.asarray(geoms, dtype=object), DRAW_TOLERANCE_DEG / 2)
    rings = shapely.get_rings(shapely.get_parts(simple))
    coords, index = shapely.get_coordinates(rings, return_index=True)
    return np.split(coords, np.flatnonzero(np.diff(index)) + 1) if len(coords) else []


@cache
def _context_paths(kind: str) -> tuple:
    """Simplified outlines of the states (or departements) drawn under the territories."""
    _, _, geoms = geography.unit_polygons(kind)
    simple = shapely.simplify(np.asarray(geoms, dtype=object), 0.02, preserve_topology=True)
    return tuple(p for p in (_path(g) for g in simple) if p is not None)


_CONTEXT_BOXES = {"state": (-180.0, 17.0, -64.0, 72.0), "fr_dept": (-6.0, 41.0, 10.0, 52.0)}


class _Maps:
    """The overview and per-territory maps of a pack, as PNG bytes."""

    def __init__(self, pack: PlanPack) -> None:
        self.pack = pack
        self.ids = [t for t in pack.terr["territory_id"] if pack.draw_shapes.get(t) is not None]
        self.paths = {t: _path(pack.draw_shapes[t]) for t in self.ids}
        self.ids = [t for t in self.ids if self.paths[t] is not None]
        all_units = [g for t in self.ids for g in pack.unit_geoms[t]]
        self.extent = view_extent(all_units) or (-125.0, -66.0, 24.0, 50.0)
        self.names = dict(zip(pack.terr["territory_id"], pack.terr["territory_name"],
                              strict=True))
        self._territory_pngs: dict[str, bytes] | None = None

    def _axes(self, fig, rect, extent):
        ax = fig.add_axes(rect)
        ax.set_axis_off()
        w, h = fig.get_size_inches()
        ax._atlas_box = (w * rect[2], h * rect[3])  # the axes' size in inches
        _fit_view(ax, extent)
        return ax

    def _context(self, ax, extent) -> None:
        from matplotlib.collections import PathCollection

        x0, x1, y0, y1 = extent
        for kind, (bx0, by0, bx1, by1) in _CONTEXT_BOXES.items():
            if x1 < bx0 or x0 > bx1 or y1 < by0 or y0 > by1:
                continue
            ax.add_collection(PathCollection(
                list(_context_paths(kind)), facecolors="none", edgecolors="#9A9A9A",
                linewidths=0.4, zorder=3))

    def _territories(self, ax, focus: str | None = None):
        from matplotlib.collections import PathCollection

        faces = [self.pack.colors.get(t, UNASSIGNED) if focus in (None, t) else "#E4E4E4"
                 for t in self.ids]
        coll = PathCollection([self.paths[t] for t in self.ids], facecolors=faces,
                              edgecolors="white", linewidths=0.3, zorder=2)
        ax.add_collection(coll)
        return coll

    def _outside(self, extent) -> list[str]:
        x0, x1, y0, y1 = extent
        view = shapely.box(x0, y0, x1, y1)
        return [t for t in self.ids if not self.pack.draw_shapes[t].intersects(view)]

    def overview(self, width: float = 11.0, max_height: float = 6.6, dpi: int = 150,
                 legend: bool = True) -> tuple[bytes, float, float]:
        """(PNG bytes, width, height in inches) of the plan's map with a legend of every
        territory, at most `width` x `max_height` inches, as tall as the view needs."""
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch

        terr = self.pack.terr
        n = len(terr)
        font = 6.5 if n > 24 else 8.0
        line = font / 72 * 1.75  # a legend row's height, inches
        col_w = font / 72 * 0.62 * 30 + 0.45  # a legend column's width, inches
        x0, x1, y0, y1 = self.extent
        ratio = (y1 - y0) / math.cos(math.radians((y0 + y1) / 2)) / (x1 - x0)

        def fit(map_w, map_h):  # the largest map of the view's shape within the room
            return (map_w, map_w * ratio) if map_w * ratio <= map_h else (map_h / ratio, map_h)

        options = []  # (map area, legend place, columns, map w, map h, legend w, legend h)
        if legend and n:
            for ncol in range(1, 5):  # legend on the right
                lw, lh = ncol * col_w, math.ceil(n / ncol) * line + 0.3
                if lh <= max_height and lw < width * 0.6:
                    mw, mh = fit(width - lw, max_height)
                    options.append((mw * mh, "right", ncol, mw, mh, lw, lh))
            ncol = max(1, int(width // col_w))  # legend below
            lh = math.ceil(n / ncol) * line + 0.3
            if lh < max_height * 0.6:
                mw, mh = fit(width, max_height - lh)
                options.append((mw * mh, "below", ncol, mw, mh, width, lh))
        if options:
            _, place, ncol, map_w, map_h, legend_w, legend_h = max(options, key=lambda o: o[0])
        else:
            place, ncol, legend_w, legend_h = None, 0, 0.0, 0.0
            map_w, map_h = fit(width, max_height)
        if place == "below":
            fig_w, fig_h = max(map_w, min(width, ncol * col_w)), map_h + legend_h
            rect = ((fig_w - map_w) / 2 / fig_w, legend_h / fig_h, map_w / fig_w, map_h / fig_h)
            anchor = {"loc": "upper center", "bbox_to_anchor": (0.5, legend_h / fig_h)}
        else:
            fig_w, fig_h = map_w + legend_w, max(map_h, legend_h)
            rect = (0.0, (fig_h - map_h) / 2 / fig_h, map_w / fig_w, map_h / fig_h)
            anchor = {"loc": "center left", "bbox_to_anchor": (map_w / fig_w, 0.5)}
        fig = Figure(figsize=(fig_w, fig_h), dpi=dpi)
        ax = self._axes(fig, rect, self.extent)
        self._territories(ax)
        self._context(ax, self.extent)
        outside = self._outside(self.extent)
        if outside:
            ax.text(0.0, 0.0, "Outside this view: " + ", ".join(outside[:8])
                    + (f" and {len(outside) - 8} more" if len(outside) > 8 else ""),
                    transform=ax.transAxes, fontsize=7, color="#444444")
        if ncol:
            handles = [Patch(facecolor=self.pack.colors.get(t, UNASSIGNED), edgecolor="#777777",
                             linewidth=0.3, label=_short(territory_title(t, self.names.get(t)),
                                                         30))
                       for t in terr["territory_id"]]
            fig.legend(handles=handles, **anchor, ncol=ncol, frameon=False, fontsize=font,
                       handlelength=1.0, handleheight=1.0, borderaxespad=0.2, labelspacing=0.3,
                       columnspacing=0.8)
        return _png(fig), fig_w, fig_h

    def territory_maps(self) -> Iterator[tuple[str, bytes]]:
        """(territory id, PNG) for every territory of the plan, in the plan's order; drawn
        once per pack (slides and PDF pages share them)."""
        if self._territory_pngs is None:
            self._territory_pngs = dict(self._draw_territory_maps())
        yield from self._territory_pngs.items()

    def _draw_territory_maps(self, size: tuple[float, float] = TERRITORY_MAP_SIZE,
                             dpi: int = 110) -> Iterator[tuple[str, bytes]]:
        """One figure reused: only the highlight, the view and the territory's own layer
        change from one territory to the next."""
        from matplotlib.collections import LineCollection, PathCollection
        from matplotlib.colors import to_rgba
        from matplotlib.figure import Figure

        fig = Figure(figsize=size, dpi=dpi)
        ax = self._axes(fig, (0.0, 0.0, 1.0, 1.0), self.extent)
        coll = self._territories(ax, focus="")
        self._context(ax, self.extent)
        grey = np.array(coll.get_facecolors())
        homes = self.pack.terr.set_index("territory_id")[["home_lat", "home_lon"]]
        index = {t: k for k, t in enumerate(self.ids)}
        for t in self.pack.terr["territory_id"]:
            faces = grey.copy()
            extras = []
            if t in index:
                faces[index[t]] = to_rgba(self.pack.colors.get(t, UNASSIGNED))
                if len(self.pack.unit_geoms[t]) > 1:  # the unit borders inside it
                    extras.append(ax.add_collection(LineCollection(
                        _rings(self.pack.unit_geoms[t]), colors="white", linewidths=0.35,
                        zorder=2.5)))
                extras.append(ax.add_collection(PathCollection(
                    [self.paths[t]], facecolors="none", edgecolors="#222222",
                    linewidths=1.0, zorder=4)))
                extent = view_extent(self.pack.unit_geoms[t]) or self.extent
            else:
                extent = self.extent
            coll.set_facecolors(faces)
            _fit_view(ax, _widen(extent))
            lat, lon = homes.loc[t, "home_lat"], homes.loc[t, "home_lon"]
            if not _missing(lat) and not _missing(lon):
                extras += ax.plot([lon], [lat], marker="*", markersize=13, color="black",
                                  markeredgecolor="white", linestyle="none", zorder=5)
                extras.append(ax.text(0.01, 0.01, "\u2605 rep's home", transform=ax.transAxes,
                                      fontsize=9, color="#222222", zorder=6))
            if t not in index:
                extras.append(ax.text(0.5, 0.5, "no units in this territory",
                                      transform=ax.transAxes, ha="center", fontsize=11))
            yield t, _png(fig)
            for artist in extras:
                artist.remove()


def _widen(extent) -> tuple[float, float, float, float]:
    """A territory's view, at least 1.5 degrees across (a single county is not a blur)."""
    x0, x1, y0, y1 = extent
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half_x, half_y = max((x1 - x0) / 2, 0.75), max((y1 - y0) / 2, 0.6)
    return cx - half_x, cx + half_x, cy - half_y, cy + half_y


def _fit_view(ax, extent) -> None:
    """Show `extent` in the axes, widened to the axes' shape, with 1 degree of latitude
    1 / cos(latitude) times as long as 1 degree of longitude (no projection needed)."""
    x0, x1, y0, y1 = extent
    aspect = 1 / max(math.cos(math.radians((y0 + y1) / 2)), 0.2)
    box_w, box_h = ax._atlas_box
    w, h = max(x1 - x0, 1e-6), max(y1 - y0, 1e-6) * aspect
    if h / w < box_h / box_w:
        grow = (box_h / box_w * w / aspect - (y1 - y0)) / 2
        y0, y1 = y0 - grow, y1 + grow
    else:
        grow = (h * box_w / box_h - (x1 - x0)) / 2
        x0, x1 = x0 - grow, x1 + grow
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect(aspect, adjustable="box")


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _png(fig) -> bytes:
    """The figure as a 256-colour palette PNG: about a quarter of the RGBA one's size and
    quicker to write (maps are a few flat colours)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    canvas = FigureCanvasAgg(fig)
    fig.set_facecolor("white")
    canvas.draw()
    img = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw",
                           "RGBA", 0, 1).convert("RGB")
    buf = io.BytesIO()
    img.quantize(256, method=Image.Quantize.FASTOCTREE).save(
        buf, format="PNG", dpi=(fig.dpi, fig.dpi))
    return buf.getvalue()


# --------------------------------------------------------------------------------------
# PowerPoint
# --------------------------------------------------------------------------------------
def _subtitle(pack: PlanPack) -> str:
    p = pack.plan
    text = (f"{p.unit.label} · {len(pack.terr)} territories · period "
            f"{pack.period.start.isoformat()} to {pack.period.end.isoformat()} · as of "
            f"{pack.as_of.isoformat()}")
    if pack.baseline is not None:
        text += f" · compared with {pack.baseline.name}"
    return text


def _rep_line(pack: PlanPack, row) -> str:
    t = row["territory_id"]
    rep = row["rep_id"]
    who = (f"Rep: {pack.rep_names.get(t, rep)} ({rep})" if isinstance(rep, str) and rep
           else "No rep")
    return f"{who} · status {row['status']} · {format_value('units', row['units'])} units"


def _comparison_chunks(frame: pd.DataFrame) -> tuple[list[pd.DataFrame], int]:
    """The comparison rows in columns of at most ROWS_PER_COLUMN; above MAX_COMPARISON_ROWS
    only the largest changes (ranked by accounts and potential) are kept, in plan order.
    Returns (columns, territories left out)."""
    left_out = 0
    if len(frame) > MAX_COMPARISON_ROWS:
        score = (frame["accounts_delta"].abs().rank(method="first")
                 + frame["potential_delta"].abs().rank(method="first"))
        keep = sorted(score.nlargest(MAX_COMPARISON_ROWS).index)
        left_out = len(frame) - len(keep)
        frame = frame.loc[keep]
    ncols = max(1, math.ceil(len(frame) / ROWS_PER_COLUMN))
    per = max(1, math.ceil(len(frame) / ncols))
    return [frame.iloc[k * per:(k + 1) * per] for k in range(ncols)], left_out


def _comparison_rows(frame: pd.DataFrame) -> list[list[str]]:
    return [[_short(territory_title(r["territory_id"], r["territory_name"]), 26)
             + (f" ({r['change']})" if r["change"] else ""),
             *[format_value(f"{m}_delta", r[f"{m}_delta"]) for m in COMPARED]]
            for r in frame.to_dict(orient="records")]


COMPARISON_HEADER = ["Territory", "Accounts\nchange", "Potential\nchange", "Won\nchange",
                     "Workload\nhours change"]


def write_pptx(pack: PlanPack, out: Path) -> Path:
    from pptx import Presentation
    from pptx.util import Inches, Pt

    prs = Presentation()
    prs.slide_width, prs.slide_height = Inches(13.333), Inches(7.5)
    prs.core_properties.title = f"{pack.plan.name}: territory plan"
    prs.core_properties.author = "Territory Atlas"
    layout = prs.slide_layouts[5]  # title only

    def slide_with(title: str, subtitle: str):
        slide = prs.slides.add_slide(layout)
        t = slide.shapes.title
        t.left, t.top, t.width, t.height = Inches(0.4), Inches(0.15), Inches(12.5), Inches(0.8)
        t.text = title
        for para in t.text_frame.paragraphs:
            para.font.size = Pt(28)
        box = slide.shapes.add_textbox(Inches(0.4), Inches(0.9), Inches(12.5), Inches(0.4))
        box.text_frame.text = subtitle
        box.text_frame.paragraphs[0].font.size = Pt(13)
        return slide

    # 1. title slide: KPIs and the overview map
    slide = slide_with(f"{pack.plan.name}: territory plan", _subtitle(pack))
    kpis = plan_kpis(pack.plan_row, baseline=pack.baseline is not None)
    _pptx_table(slide, [["Whole plan", ""], *kpis], Inches(0.4), Inches(1.45), [2.75, 1.55],
                row_h=0.235, size=9)
    png, w, _ = pack.maps.overview(width=8.4, max_height=5.9)
    slide.shapes.add_picture(io.BytesIO(png), Inches(4.75), Inches(1.45), width=Inches(w))
    # 2. one slide per territory
    rows = pack.rows.set_index("territory_id", drop=False)
    for t, png in pack.maps.territory_maps():
        row = rows.loc[t]
        slide = slide_with(territory_title(t, row["territory_name"]), _rep_line(pack, row))
        slide.shapes.add_picture(io.BytesIO(png), Inches(0.4), Inches(1.4),
                                 width=Inches(TERRITORY_MAP_SIZE[0]))
        table = [["Metric", "Value", "vs mean"],
                 *[list(r) for r in territory_kpis(row)]]
        _pptx_table(slide, table, Inches(8.05), Inches(1.4), [2.6, 1.3, 1.0], row_h=0.26,
                    size=9)
    # 3. comparison with the baseline
    if pack.comparison is not None:
        _pptx_comparison(pack, slide_with)
    prs.save(str(out))
    return out


def _pptx_comparison(pack: PlanPack, slide_with) -> None:
    from pptx.util import Inches

    pr = pack.plan_row
    slide = slide_with(
        f"Compared with {pack.baseline.name}",
        f"{format_value('disruption_accounts_pct', pr.get('disruption_accounts_pct'))} of "
        f"accounts and "
        f"{format_value('disruption_potential_pct', pr.get('disruption_potential_pct'))} of "
        "potential change territory (changes: this plan minus the baseline)")
    chunks, left_out = _comparison_chunks(pack.comparison)
    width = 12.5 / len(chunks)
    for k, chunk in enumerate(chunks):
        widths = [(width - 0.15) * 0.36, *[(width - 0.15) * 0.16] * 4]
        _pptx_table(slide, [COMPARISON_HEADER, *_comparison_rows(chunk)],
                    Inches(0.4 + k * width), Inches(1.45), widths, row_h=0.2, size=8)
    if left_out:
        box = slide.shapes.add_textbox(Inches(0.4), Inches(7.05), Inches(12.5), Inches(0.3))
        box.text_frame.text = (f"{left_out} territories with the smallest changes are not "
                               "shown: the Excel export lists every territory.")


_NO_STYLE = "{2D5ABB26-0587-4C30-8999-92F81FD0307C}"  # PowerPoint's "No Style, No Grid"


def _pptx_table(slide, cells: list[list[str]], left, top, widths_in: list[float], *,
                row_h: float, size: int) -> None:
    """A table with a bold grey header and banded rows, numbers right-aligned. Its XML is
    written whole (python-pptx's per-cell API costs about 0.1 s a table)."""
    from xml.sax.saxutils import escape

    from pptx.oxml import parse_xml
    from pptx.util import Inches

    emu = [int(Inches(w)) for w in widths_in]
    height = int(Inches(row_h))
    shape = slide.shapes.add_table(1, len(emu), left, top, sum(emu), height)
    margins = (f'marL="{int(Inches(0.06))}" marR="{int(Inches(0.06))}" '
               f'marT="{int(Inches(0.02))}" marB="{int(Inches(0.02))}" anchor="ctr"')
    xml = [f'<a:tbl xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main">'
           f'<a:tblPr firstRow="1" bandRow="1"><a:tableStyleId>{_NO_STYLE}</a:tableStyleId>'
           f'</a:tblPr><a:tblGrid>{"".join(f"<a:gridCol w={chr(34)}{w}{chr(34)}/>" for w in emu)}'
           f'</a:tblGrid>']
    for i, row in enumerate(cells):
        fill = "D9D9D9" if i == 0 else ("FFFFFF" if i % 2 else "F2F2F2")
        bold = ' b="1"' if i == 0 else ""
        xml.append(f'<a:tr h="{height}">')
        for j, text in enumerate(row):
            align = '<a:pPr algn="r"/>' if j > 0 else ""
            paras = "".join(  # an empty cell keeps the font size (its row stays as high)
                f'<a:p>{align}'
                + (f'<a:r><a:rPr lang="en-US" sz="{size * 100}"{bold} dirty="0">'
                   f'<a:solidFill><a:srgbClr val="222222"/></a:solidFill></a:rPr>'
                   f'<a:t>{escape(line)}</a:t></a:r>' if line else "")
                + f'<a:endParaRPr lang="en-US" sz="{size * 100}" dirty="0"/></a:p>'
                for line in str(text).split("\n"))
            xml.append(f'<a:tc><a:txBody><a:bodyPr/><a:lstStyle/>{paras}</a:txBody>'
                       f'<a:tcPr {margins}><a:solidFill><a:srgbClr val="{fill}"/></a:solidFill>'
                       f'</a:tcPr></a:tc>')
        xml.append("</a:tr>")
    xml.append("</a:tbl>")
    old = shape._element.graphic.graphicData.tbl
    old.getparent().replace(old, parse_xml("".join(xml)))
    shape.height = height * len(cells)


# --------------------------------------------------------------------------------------
# PDF
# --------------------------------------------------------------------------------------
@cache
def _pdf_fonts() -> tuple[str, str]:
    """DejaVu Sans (shipped with matplotlib) for any script; Helvetica if it cannot load."""
    import matplotlib
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFError, TTFont

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    try:
        pdfmetrics.registerFont(TTFont("AtlasSans", str(folder / "DejaVuSans.ttf")))
        pdfmetrics.registerFont(TTFont("AtlasSans-Bold", str(folder / "DejaVuSans-Bold.ttf")))
    except (OSError, TTFError):
        return "Helvetica", "Helvetica-Bold"
    return "AtlasSans", "AtlasSans-Bold"


def write_pdf(pack: PlanPack, out: Path) -> Path:
    from xml.sax.saxutils import escape

    from reportlab import rl_config
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.utils import ImageReader
    from reportlab.platypus import Flowable, PageBreak, Paragraph, SimpleDocTemplate, Table

    class Picture(Flowable):
        """A PNG drawn at a size (decoded here: reportlab's own PNG path is slow)."""

        def __init__(self, png: bytes, width: float, height: float) -> None:
            from PIL import Image as PilImage

            super().__init__()
            self.img = PilImage.open(io.BytesIO(png)).convert("RGB")
            self.width, self.height = width, height

        def wrap(self, *_):
            return self.width, self.height

        def draw(self) -> None:
            self.canv.drawImage(ImageReader(self.img), 0, 0, self.width, self.height)

    font, bold = _pdf_fonts()
    page_w, page_h = landscape(A4)
    margin = 28
    width = page_w - 2 * margin
    title = f"{pack.plan.name}: territory plan"
    doc = SimpleDocTemplate(str(out), pagesize=(page_w, page_h), leftMargin=margin,
                            rightMargin=margin, topMargin=margin, bottomMargin=margin,
                            title=title, author="Territory Atlas", subject=_subtitle(pack))
    h1 = ParagraphStyle("h1", fontName=bold, fontSize=19, leading=23)
    sub = ParagraphStyle("sub", fontName=font, fontSize=10, leading=13, spaceAfter=8,
                         textColor=colors.HexColor("#444444"))
    story: list = []

    def heading(text: str, subtitle: str) -> None:
        story.extend([Paragraph(escape(text), h1), Paragraph(escape(subtitle), sub)])

    def table(cells, widths, size=8.5):
        t = Table(cells, colWidths=widths)
        t.setStyle([
            ("FONT", (0, 0), (-1, -1), font, size), ("FONT", (0, 0), (-1, 0), bold, size),
            ("ALIGN", (1, 0), (-1, -1), "RIGHT"), ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.HexColor("#888888")),
            ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#F2F2F2")]),
            ("TOPPADDING", (0, 0), (-1, -1), 1.5), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ])
        return t

    def layout(left, right, widths):
        t = Table([[left, right]], colWidths=widths)
        t.setStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 4)])
        return t

    # 1. title page
    heading(title, _subtitle(pack))
    kpis = table([["Whole plan", ""], *plan_kpis(pack.plan_row,
                                                baseline=pack.baseline is not None)],
                 [150, 78])
    png, w, h = pack.maps.overview(width=(width - 236) / 72, max_height=6.6)
    story.append(layout(kpis, Picture(png, w * 72, h * 72),
                        [236, width - 236]))
    # 2. territory pages
    rows = pack.rows.set_index("territory_id", drop=False)
    for t, png in pack.maps.territory_maps():
        row = rows.loc[t]
        story.append(PageBreak())
        heading(territory_title(t, row["territory_name"]), _rep_line(pack, row))
        metrics_table = table([["Metric", "Value", "vs mean"],
                               *[list(r) for r in territory_kpis(row)]], [160, 85, 60], 9)
        img_w = width - 315
        img_h = img_w * TERRITORY_MAP_SIZE[1] / TERRITORY_MAP_SIZE[0]
        story.append(layout(Picture(png, img_w, img_h), metrics_table, [img_w + 10, 305]))
    # 3. comparison page
    if pack.comparison is not None:
        story.append(PageBreak())
        pr = pack.plan_row
        heading(f"Compared with {pack.baseline.name}",
                f"{format_value('disruption_accounts_pct', pr.get('disruption_accounts_pct'))}"
                f" of accounts and "
                f"{format_value('disruption_potential_pct', pr.get('disruption_potential_pct'))}"
                " of potential change territory (changes: this plan minus the baseline)")
        chunks, left_out = _comparison_chunks(pack.comparison)
        col_w = width / len(chunks)
        inner = [col_w * 0.34, *[col_w * 0.155] * 4]
        parts = [table([COMPARISON_HEADER, *_comparison_rows(c)], inner, 7.5) for c in chunks]
        grid = Table([parts], colWidths=[col_w] * len(parts))
        grid.setStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                       ("LEFTPADDING", (0, 0), (-1, -1), 0)])
        story.append(grid)
        if left_out:
            story.append(Paragraph(f"{left_out} territories with the smallest changes are not "
                                   "shown: the Excel export lists every territory.", sub))

    def footer(canvas, document) -> None:
        canvas.saveState()
        canvas.setFont(font, 7)
        canvas.setFillColor(colors.HexColor("#777777"))
        canvas.drawString(margin, 14, f"Territory Atlas · {pack.plan.name} · exported "
                          f"{pack.created.isoformat(sep=' ')}")
        canvas.drawRightString(page_w - margin, 14, f"page {document.page}")
        canvas.restoreState()

    use_a85 = rl_config.useA85
    rl_config.useA85 = 0  # binary image streams: reportlab's ASCII85 is pure Python and slow
    try:
        doc.build(story, onFirstPage=footer, onLaterPages=footer)
    finally:
        rl_config.useA85 = use_a85
    return out


# --------------------------------------------------------------------------------------
# Excel
# --------------------------------------------------------------------------------------
XLSX_SHEETS = ("units", "territories", "accounts", "settings")
"""Sheet order (+ `comparison` with a baseline). `units` comes first: `plan import` reads a
workbook's first sheet, so the exported workbook imports back as a plan as it is."""
_PERCENT_COLUMNS = {c for c in LABELS if format_value(c, 0.5).endswith("%")}


def _unit_names(unit: UnitType, ids: list[str]) -> list:
    if unit.kind == "h3":
        return [None] * len(ids)
    if unit.kind in POLYGON_KINDS:
        all_ids, names, _ = geography.unit_polygons(unit.kind)
        index = dict(zip(all_ids, names, strict=True))
    else:
        pts = geography.postal_points(unit.kind)
        index = dict(zip(pts["unit_id"], pts["name"], strict=True))
    return [index.get(u) for u in ids]


def unit_sheet(pack: PlanPack) -> pd.DataFrame:
    """unit_id, unit_name, territory_id, territory_name, rep_id (plan-import columns)."""
    frame = pack.assign.merge(pack.terr[["territory_id", "territory_name", "rep_id"]],
                              on="territory_id", how="left")
    frame.insert(1, "unit_name", _unit_names(pack.plan.unit, frame["unit_id"].tolist()))
    return frame


def account_sheet(pack: PlanPack) -> pd.DataFrame:
    """Every account and the territory it resolves to (pins included), `metrics.
    resolved_accounts` with names, the territory's name and rep, and whether it is pinned."""
    acc = metrics.resolved_accounts(pack.cur, pack.plan)
    extra = pack.cur.execute(
        "SELECT a.account_id, a.name, o.account_id IS NOT NULL AS pinned FROM accounts a "
        "LEFT JOIN account_overrides o ON o.plan_id = ? AND o.account_id = a.account_id",
        [pack.plan.plan_id]).df()
    frame = acc.merge(extra, on="account_id", how="left").merge(
        pack.terr[["territory_id", "territory_name", "rep_id"]], on="territory_id", how="left")
    return frame[["account_id", "name", "territory_id", "territory_name", "rep_id",
                  "potential", "pinned"]].sort_values("account_id", ignore_index=True)


def settings_sheet(pack: PlanPack) -> pd.DataFrame:
    rows = [("plan", pack.plan.name), ("unit", str(pack.plan.unit)),
            ("period", str(pack.period)), ("as_of", pack.as_of.isoformat()),
            ("baseline", pack.baseline.name if pack.baseline is not None else ""),
            ("exported_at", pack.created.isoformat(sep=" ")), *pack.settings.as_rows()]
    return pd.DataFrame(rows, columns=["setting", "value"])


def territory_sheet(pack: PlanPack) -> pd.DataFrame:
    """`metrics.summary_frame` (the `summary` command's CSV) with the rep's name."""
    frame = metrics.summary_frame(pack.rows, pack.plan_row)
    frame.insert(3, "rep_name", frame["territory_id"].map(pack.rep_names))
    return frame


def write_xlsx(pack: PlanPack, out: Path) -> Path:
    import xlsxwriter

    sheets = {"units": unit_sheet(pack), "territories": territory_sheet(pack),
              "accounts": account_sheet(pack), "settings": settings_sheet(pack)}
    if pack.comparison is not None:
        sheets["comparison"] = pack.comparison
    book = xlsxwriter.Workbook(str(out), {"strings_to_numbers": False,
                                          "strings_to_formulas": False,
                                          "strings_to_urls": False})
    book.set_properties({"title": f"{pack.plan.name}: territory plan",
                         "author": "Territory Atlas", "comments": _subtitle(pack)})
    head = book.add_format({"bold": True, "bottom": 1})
    formats = {"pct": book.add_format({"num_format": "0.0%"}),
               "whole": book.add_format({"num_format": "#,##0"}),
               "two": book.add_format({"num_format": "0.00"})}
    for name, frame in sheets.items():
        ws = book.add_worksheet(name)
        ws.write_row(0, 0, [str(c) for c in frame.columns], head)
        for j, col in enumerate(frame.columns):
            kind = ("pct" if col in _PERCENT_COLUMNS
                    else "whole" if col in _WHOLE or col in COMPARED
                    or col.endswith(("_delta", "_baseline"))
                    else "two" if col in _RATIO or col == "travel_km" else None)
            ws.set_column(j, j, max(10, min(32, len(str(col)) + 2)), formats.get(kind))
            values = frame[col].astype(object)
            ws.write_column(1, j, values.where(values.notna(), None).tolist())
        ws.freeze_panes(1, 1 if name != "settings" else 0)
        ws.autofilter(0, 0, len(frame), max(len(frame.columns) - 1, 0))
    book.worksheets()[list(sheets).index("territories")].activate()
    book.close()
    return out


# --------------------------------------------------------------------------------------
# GeoJSON and GeoPackage
# --------------------------------------------------------------------------------------
FEATURE_COLUMNS = ["territory_id", "territory_name", "rep_id", "rep_name", "color",
                   *metrics.TERRITORY_COLUMNS[3:]]


def _plain(value):
    if _missing(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def feature_table(pack: PlanPack) -> tuple[pd.DataFrame, list]:
    """(one row per territory with FEATURE_COLUMNS, its exact geometry or None)."""
    frame = pack.rows.copy()
    frame.insert(3, "rep_name", frame["territory_id"].map(pack.rep_names))
    frame.insert(4, "color", frame["territory_id"].map(pack.colors))
    geoms = [pack.shapes.get(t) for t in frame["territory_id"]]
    return frame[FEATURE_COLUMNS], geoms


def _clean_geometry(geom):
    """Snapped to 1e-6 degree (about 0.1 m), valid, exterior rings counter-clockwise."""
    if geom is None or geom.is_empty:
        return None
    geom = shapely.set_precision(geom, 1e-6)
    geom = shapely.transform(geom, lambda c: np.round(c, 6))
    return None if geom.is_empty else shapely.orient_polygons(geom)


def write_geojson(pack: PlanPack, out: Path) -> Path:
    frame, geoms = feature_table(pack)
    features = []
    for rec, geom in zip(frame.to_dict(orient="records"), geoms, strict=True):
        g = _clean_geometry(geom)
        features.append({"type": "Feature", "id": rec["territory_id"],
                         "properties": {k: _plain(v) for k, v in rec.items()},
                         "geometry": None if g is None else shapely.geometry.mapping(g)})
    doc = {"type": "FeatureCollection", "name": pack.plan.name, "features": features}
    out.write_text(json.dumps(doc, separators=(",", ":"), allow_nan=False), encoding="utf-8")
    return out


def write_gpkg(pack: PlanPack, out: Path) -> Path:
    import geopandas as gpd

    frame, geoms = feature_table(pack)
    multi = [None if (g := _clean_geometry(geom)) is None
             else shapely.multipolygons(shapely.get_parts(g)) for geom in geoms]
    frame = frame.astype({c: float for c in frame.columns
                          if c not in ("territory_id", "territory_name", "rep_id", "rep_name",
                                       "color", "status", "contiguous")})
    gdf = gpd.GeoDataFrame(frame.reset_index(drop=True), geometry=multi, crs=4326)
    gdf.to_file(out, driver="GPKG", layer="territories", engine="pyogrio")
    return out


def write_png(pack: PlanPack, out: Path) -> Path:
    out.write_bytes(pack.maps.overview(width=12.0, max_height=8.0)[0])
    return out


# --------------------------------------------------------------------------------------
# Salesforce (Enterprise Territory Management) load files for Data Loader
# --------------------------------------------------------------------------------------
SALESFORCE_FILES = {
    "Territory2.csv": ["Name", "DeveloperName", "Territory2ModelId", "Territory2TypeId",
                       "Description"],
    "Territory2_parents.csv": ["Id", "ParentTerritory2Id"],
    "ObjectTerritory2Association.csv": ["ObjectId", "Territory2Id", "AssociationCause"],
    "UserTerritory2Association.csv": ["UserId", "Territory2Id", "RoleInTerritory2"],
}
"""The bundle's CSV files and their header rows (Salesforce field API names)."""
MODEL_PLACEHOLDER = "<Territory2ModelId>"
TYPE_PLACEHOLDER = "<Territory2TypeId>"
ROLE_IN_TERRITORY = "Owner"
_SF_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


def developer_names(territory_ids) -> dict[str, str]:
    """territory id -> a Salesforce DeveloperName: letters, digits and single underscores,
    starting with a letter, at most 80 characters, unique (case-insensitively)."""
    out, used = {}, set()
    for t in territory_ids:
        base = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9]+", "_", str(t))).strip("_")
        if not base or not base[0].isalpha():
            base = f"T_{base}" if base else "T"
        base = base[:80].rstrip("_")
        name, k = base, 2
        while name.lower() in used:
            suffix = f"_{k}"
            name = base[: 80 - len(suffix)].rstrip("_") + suffix
            k += 1
        used.add(name.lower())
        out[t] = name
    return out


def _csv(header: list[str], rows: list[list]) -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows([["" if _missing(v) else v for v in r] for r in rows])
    return buf.getvalue().encode("utf-8")


def salesforce_tables(pack: PlanPack) -> dict[str, list[list]]:
    """The rows of each SALESFORCE_FILES file (no header)."""
    terr = pack.terr
    names = developer_names(terr["territory_id"])
    parent = dict(zip(terr["territory_id"], terr["parent_id"], strict=True))

    def depth(t, seen=()):
        p = parent.get(t)
        return 0 if not isinstance(p, str) or p not in names or p in seen else 1 + depth(
            p, (*seen, t))

    order = sorted(terr.index, key=lambda i: (depth(terr.at[i, "territory_id"]),
                                              terr.at[i, "territory_id"]))
    territory_rows, parent_rows, user_rows = [], [], []
    for i in order:
        r = terr.loc[i]
        t, rep = r["territory_id"], r["rep_id"]
        label = r["territory_name"] if isinstance(r["territory_name"], str) else t
        desc = f"Territory Atlas plan {pack.plan.name!r}, territory {t}"
        if isinstance(rep, str) and rep:
            desc += f"; rep {pack.rep_names.get(t, rep)} ({rep})"
        kind = r["territory_type"]
        type_id = f"<Territory2TypeId:{kind}>" if isinstance(kind, str) and kind else (
            TYPE_PLACEHOLDER)
        territory_rows.append([label[:80], names[t], MODEL_PLACEHOLDER, type_id, desc[:1000]])
        if isinstance(parent.get(t), str) and parent[t] in names:
            parent_rows.append([names[t], names[parent[t]]])
        if isinstance(rep, str) and rep:
            user_rows.append([rep, names[t], ROLE_IN_TERRITORY])
    acc = metrics.resolved_accounts(pack.cur, pack.plan)
    acc = acc[acc["territory_id"].isin(names.keys())].sort_values("account_id")
    object_rows = [[a, names[t], "Territory2Manual"]
                   for a, t in zip(acc["account_id"], acc["territory_id"], strict=True)]
    return {"Territory2.csv": territory_rows, "Territory2_parents.csv": parent_rows,
            "ObjectTerritory2Association.csv": object_rows,
            "UserTerritory2Association.csv": user_rows}


def _looks_like(ids, prefix: str) -> bool:
    ids = [str(i) for i in ids]
    return bool(ids) and all(_SF_ID.fullmatch(i) and i.startswith(prefix) for i in ids)


def _wrap(text: str) -> str:
    import textwrap

    return textwrap.fill(text, width=90, initial_indent="  ", subsequent_indent="  ")


def salesforce_readme(pack: PlanPack, tables: dict[str, list[list]]) -> str:
    n = {k: len(v) for k, v in tables.items()}
    accounts_total = pack.cur.execute("SELECT count(*) FROM accounts").fetchone()[0]
    types = sorted({k for k in pack.terr["territory_type"] if isinstance(k, str) and k})
    acc_ids = [r[0] for r in tables["ObjectTerritory2Association.csv"]]
    user_ids = [r[0] for r in tables["UserTerritory2Association.csv"]]
    acc_note = ("These look like Salesforce Account Ids already (the accounts came from a "
                "Salesforce export): nothing to replace." if _looks_like(acc_ids, "001") else
                "They are this dataset's account ids: if they are not the org's Account Ids, "
                "replace each with the Account Id of the same account (for example by a "
                "lookup on an external id or account number in a spreadsheet).")
    user_note = ("These look like Salesforce User Ids already: nothing to replace."
                 if _looks_like(user_ids, "005") else
                 "They are this dataset's rep ids: if they are not the org's User Ids, replace "
                 "each with the User Id of that rep.")
    type_lines = ("\n".join(f"  <Territory2TypeId:{k}>  -> the Id of the territory type "
                            f"{k!r}" for k in types) + "\n") if types else ""
    return f"""Territory Atlas: Salesforce territory model load files
======================================================

Plan {pack.plan.name!r} ({pack.plan.unit.label}), exported {pack.created.isoformat(sep=' ')}.
{n['Territory2.csv']} territories, {n['Territory2_parents.csv']} parent links,
{n['ObjectTerritory2Association.csv']} account assignments (of {accounts_total} accounts;
the others resolve to no territory of the plan), {n['UserTerritory2Association.csv']} rep
assignments.

These files rebuild the plan in Salesforce Enterprise Territory Management (Sales
Territories) with Data Loader. They are UTF-8 CSV files whose header row holds the
Salesforce field API names, so Data Loader's "Auto-Match Fields to Columns" maps every
column (tick "Read all CSVs with UTF-8 encoding" in Data Loader's settings).

  Territory2.csv                   Name, DeveloperName, Territory2ModelId, Territory2TypeId,
                                   Description: one row per territory
  Territory2_parents.csv           Id, ParentTerritory2Id: the territory hierarchy
  ObjectTerritory2Association.csv  ObjectId, Territory2Id, AssociationCause: one row per
                                   account assigned to a territory (manual assignment)
  UserTerritory2Association.csv    UserId, Territory2Id, RoleInTerritory2: one row per
                                   territory with a rep

Placeholders to replace before loading
--------------------------------------
Lookup fields need the org's record Ids, which no export can know. They hold:
  {MODEL_PLACEHOLDER}   -> the Id of the territory model (Territory2Model) to load into
  {TYPE_PLACEHOLDER}    -> the Id of the territory type (Territory2Type) to use
{type_lines}  Territory2Id, Id and ParentTerritory2Id hold the territory's DeveloperName
                        -> the Id of the Territory2 record with that DeveloperName (step 3)
{_wrap("ObjectId holds the account id of this dataset. " + acc_note)}
{_wrap("UserId holds the rep id of this dataset. " + user_note)}
  RoleInTerritory2 is {ROLE_IN_TERRITORY!r}: it must be a value of the org's "Role in
  Territory" picklist; change it, or leave the column unmapped.

Load order
----------
1. In Setup, enable Sales Territories; create the territory type(s) and a territory model
   (a new model is in the Planning state), or choose existing ones. Note their Ids (from
   Setup, or a Data Loader export of Territory2Model and Territory2Type). Both must exist
   before any territory.
2. Territory2.csv: replace the model and type placeholders, then Data Loader > Insert >
   Territory2. Keep the success file: it lists each new record's Id with its DeveloperName.
3. Build the DeveloperName -> Id map from that success file (or a Data Loader export of
   SELECT Id, DeveloperName FROM Territory2 WHERE Territory2ModelId = '<the model Id>').
4. Territory2_parents.csv (skip it when it has no rows): replace the DeveloperNames in
   both columns by their Ids, then Data Loader > Update > Territory2. Parents are set once
   every territory exists, so parents always come before their children.
5. ObjectTerritory2Association.csv: replace the DeveloperNames in Territory2Id by their Ids
   (and ObjectId if needed, see above), then Data Loader > Insert >
   ObjectTerritory2Association. AssociationCause Territory2Manual is a manual assignment.
6. UserTerritory2Association.csv: the same for Territory2Id (and UserId if needed), then
   Data Loader > Insert > UserTerritory2Association.
7. Check the model in Setup > Territory Models, then activate it when it is ready.

Not in these files: assignment rules (the plan assigns accounts by geography, loaded here as
manual assignments), quotas and the plan's metrics (see the Excel export), and accounts that
resolve to no territory.
"""


def write_salesforce(pack: PlanPack, out: Path) -> Path:
    tables = salesforce_tables(pack)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, header in SALESFORCE_FILES.items():
            zf.writestr(name, _csv(header, tables[name]))
        zf.writestr("README.txt", salesforce_readme(pack, tables).encode("utf-8"))
    return out


# --------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------
WRITERS = {"pptx": write_pptx, "pdf": write_pdf, "xlsx": write_xlsx,
           "geojson": write_geojson, "gpkg": write_gpkg, "png": write_png,
           "salesforce": write_salesforce}


def check_format(fmt: str) -> str:
    f = str(fmt or "").strip().lower()
    if f not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return f


def default_filename(plan_name: str, fmt: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", plan_name).strip("._") or "plan"
    return slug + EXTENSIONS[check_format(fmt)]


def _plan_of(cur, plan: Plan | str | None) -> Plan:
    return plan if isinstance(plan, Plan) else plans.get_plan(cur, plan)


def export_plan(
    store_or_cur: Store | duckdb.DuckDBPyConnection,
    plan: Plan | str | None,
    fmt: str,
    out_path: str | Path,
    *,
    period: Period,
    as_of: dt.date,
    settings: Settings,
    baseline: Plan | str | None = None,
    pack: PlanPack | None = None,
) -> Path:
    """Write `plan` (a Plan, a name, or None for the active plan) as `fmt` to `out_path`
    (into it under the default file name when it is a folder) and return the path.

    The file appears whole or not at all (written beside it, then renamed). `pack` lets a
    caller writing several formats compute the metrics and shapes once.
    """
    fmt = check_format(fmt)
    cur = store_or_cur.cursor() if isinstance(store_or_cur, Store) else store_or_cur
    if pack is None:
        plan = _plan_of(cur, plan)
        base = _plan_of(cur, baseline) if baseline is not None else None
        pack = PlanPack(cur, plan, period=period, as_of=as_of, settings=settings,
                        baseline=base)
    out = Path(out_path)
    if out.is_dir():
        out = out / default_filename(pack.plan.name, fmt)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".export-") as tmp:
        part = Path(tmp) / ("part" + EXTENSIONS[fmt])  # the suffix GDAL's GPKG driver wants
        WRITERS[fmt](pack, part)
        part.replace(out)
    return out


def export_bytes(
    cur: duckdb.DuckDBPyConnection,
    plan: Plan | str | None,
    fmt: str,
    *,
    period: Period,
    as_of: dt.date,
    settings: Settings,
    baseline: Plan | str | None = None,
    pack: PlanPack | None = None,
) -> tuple[bytes, str, str]:
    """(file content, file name, MIME type), for a download button."""
    fmt = check_format(fmt)
    if pack is None:
        plan = _plan_of(cur, plan)
        base = _plan_of(cur, baseline) if baseline is not None else None
        pack = PlanPack(cur, plan, period=period, as_of=as_of, settings=settings,
                        baseline=base)
    name = default_filename(pack.plan.name, fmt)
    with tempfile.TemporaryDirectory(prefix="atlas-export-") as tmp:
        path = export_plan(cur, pack.plan, fmt, Path(tmp) / name, period=period, as_of=as_of,
                           settings=settings, pack=pack)
        return path.read_bytes(), name, MIME_TYPES[fmt]
