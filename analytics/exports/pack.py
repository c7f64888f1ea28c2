"""`PlanPack`: everything an export draws from, gathered once per plan and conditions.

Cost: a `PlanPack` computes the metrics (`metrics.summary`'s steps), the territory unions,
the maps and the pages once, lazily (a Salesforce bundle needs no metrics or geometry);
pass one pack to several `export_plan` calls to share them.

Geometry: a territory's shape is the union of its units, the shipped polygons (states,
counties, French departements) or the exact H3 hexagons, as `metrics.territory_shape` has
it. ZIP codes and French communes ship no polygons, only a reference point: each such unit
is drawn as its Voronoi cell among all the points of its kind (the area nearer its point
than any other unit's), cut to a disc around the point (`POINT_RADIUS_DEG`), so territories
of point units tile the map without overlapping; their areas are indicative only.
"""

from __future__ import annotations

import datetime as dt
from functools import cached_property

import duckdb
import numpy as np
import pandas as pd
import shapely

from analytics import adjacency, geography, metrics, plans
from analytics.exports.comparison import comparison_frame
from analytics.exports.deck import Deck, build_deck
from analytics.exports.maps import DRAW_TOLERANCE_DEG, Maps
from analytics.palette import territory_colors
from analytics.period import Period
from analytics.plans import Plan
from analytics.settings import Settings
from analytics.units import POLYGON_KINDS, unit_shapes

POINT_RADIUS_DEG = {"zip5": 0.25, "zip3": 1.5, "fr_commune": 0.08}
"""Radius (degrees) of the disc a point unit's Voronoi cell is cut to."""


class PlanPack:
    """A plan's metrics, territories, shapes, colours, maps and pages for one set of
    conditions."""

    def __init__(self, cur: duckdb.DuckDBPyConnection, plan: Plan, *, period: Period,
                 as_of: dt.date, settings: Settings, baseline: Plan | None = None,
                 weeks: tuple = (), focus: tuple[str, ...] = (),
                 reviews: tuple = ()) -> None:
        self.cur = cur
        self.reviews = tuple(reviews)
        """Territory reviews (analytics/swot.Review): the SWOT and funnel pages after their
        territory's page."""
        self.weeks = tuple(weeks)
        """Reps' weeks (analytics/routes.Week): a page of routes and the stops after their
        territory's page (the meeting pack for that rep)."""
        self.focus = tuple(focus)
        """Territories that get pages (empty: all): a pack for one rep."""
        self.plan = plan
        self.period = period
        self.as_of = as_of
        self.settings = settings
        self.baseline = baseline
        self.created = dt.datetime.now().replace(microsecond=0)
        self._unions: dict = {}  # territory unions (units as a sorted tuple) from compactness

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
                                                   baseline=frame, unions=self._unions)
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
        """territory -> the union of its units (None without units), exact: the one
        compactness computed (`metrics.territory_shape`) when the metrics ran first."""
        by_territory = self.assign.groupby("territory_id")["unit_id"].agg(
            lambda u: tuple(sorted(u)))
        out = {}
        for t, geoms in self.unit_geoms.items():
            cells = by_territory.get(t, ())
            if not len(geoms):
                out[t] = None
            elif cells in self._unions:
                out[t] = self._unions[cells]
            elif self.plan.unit.kind == "h3":
                out[t] = metrics.territory_shape(self.plan.unit, list(cells))
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

    # -- drawn -----------------------------------------------------------------------------
    @cached_property
    def maps(self) -> Maps:
        return Maps(self)

    @cached_property
    def deck(self) -> Deck:
        """The slides' and PDF pages' content (`deck`), built once for both."""
        return build_deck(self)


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
