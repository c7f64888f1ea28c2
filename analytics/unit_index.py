"""The units a manager can paint on a plan's map, and which of them a click or a shape hits.

The paintable units are every polygon of the plan's kind (state, county, departement), or
for H3 and postal points the units that hold accounts plus the units already in the plan:
painting never creates units nobody can see. A drawn polygon or rectangle takes the units
whose centre falls inside it (H3 cell centre, a point on the surface of a polygon, the
postal point), the same rule a plan imported from polygons follows.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import h3
import numpy as np
import shapely

from analytics import geography
from analytics.plans import Plan
from analytics.units import POLYGON_KINDS, UnitType, unit_shapes

POINT_CLICK_KM = 25.0
"""A click picks the nearest postal point within this distance."""


@dataclass
class UnitIndex:
    unit: UnitType
    ids: list[str]
    names: list[str]
    geoms: np.ndarray  # shapely geometry per unit (polygon, or point for postal units)
    lat: np.ndarray  # the unit's centre
    lon: np.ndarray

    @classmethod
    def build(cls, cur: duckdb.DuckDBPyConnection, plan: Plan) -> UnitIndex:
        """The paintable units of a plan."""
        return cls.for_unit(cur, plan.unit, plan.plan_id)

    @classmethod
    def for_unit(cls, cur: duckdb.DuckDBPyConnection, unit: UnitType,
                 plan_id: int | None = None) -> UnitIndex:
        """Units of a type: every polygon, or the units holding accounts (plus the units of
        plan `plan_id`, when given)."""
        if unit.kind in POLYGON_KINDS:
            ids, names, geoms = geography.unit_polygons(unit.kind)
            order = np.argsort(ids)
            ids = [ids[i] for i in order]
            names = [names[i] for i in order]
            geoms = np.asarray(geoms, dtype=object)[order]
        else:
            held = cur.execute(  # distinct stored values first: one format per unit
                f"SELECT {unit.unit_id_sql('a')} FROM (SELECT DISTINCT {unit.column} "
                f"FROM accounts WHERE {unit.column} IS NOT NULL) a"
            ).fetchall()
            planned = cur.execute("SELECT unit_id FROM plan_units WHERE plan_id = ?",
                                  [plan_id]).fetchall() if plan_id is not None else []
            wanted = sorted({r[0] for r in held} | {r[0] for r in planned})
            shapes = unit_shapes(unit, wanted)  # ids without a shape are left out
            shapes = shapes.sort_values("unit_id").reset_index(drop=True)
            ids, names = shapes["unit_id"].tolist(), shapes["name"].tolist()
            geoms = shapes.geometry.to_numpy()
        if unit.kind == "h3":
            centres = np.array([h3.cell_to_latlng(c) for c in ids]).reshape(-1, 2)
            lat, lon = centres[:, 0], centres[:, 1]
        elif len(geoms) and shapely.get_type_id(geoms[0]) == 0:
            lat, lon = shapely.get_y(geoms), shapely.get_x(geoms)
        else:
            pts = shapely.point_on_surface(geoms)
            lat, lon = shapely.get_y(pts), shapely.get_x(pts)
        return cls(unit, list(ids), list(names), np.asarray(geoms, dtype=object),
                   np.asarray(lat, float), np.asarray(lon, float))

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def is_points(self) -> bool:
        return bool(len(self.geoms)) and shapely.get_type_id(self.geoms[0]) == 0

    def position(self) -> dict[str, int]:
        """unit id -> its position in `ids` (the order the map receives units in)."""
        if not hasattr(self, "_position"):
            self._position = {u: i for i, u in enumerate(self.ids)}
        return self._position

    def at(self, lat: float, lon: float) -> str | None:
        """The paintable unit under a clicked point, or None."""
        pos = self.position()
        if self.unit.kind == "h3":
            cell = h3.latlng_to_cell(lat, lon, self.unit.resolution)
            return cell if cell in pos else None
        if not len(self.ids):
            return None
        if self.is_points:
            from analytics.metrics import haversine_km

            km = haversine_km(np.full(len(self.lat), lat), np.full(len(self.lat), lon),
                              self.lat, self.lon)
            i = int(np.argmin(km))
            return self.ids[i] if km[i] <= POINT_CLICK_KM else None
        hits = self._tree().query(shapely.Point(lon, lat), predicate="intersects")
        return self.ids[int(min(hits))] if len(hits) else None

    def _tree(self) -> shapely.STRtree:
        if not hasattr(self, "_strtree"):
            self._strtree = shapely.STRtree(self.geoms)
        return self._strtree

    def inside(self, geometry: dict) -> list[str]:
        """Units whose centre lies in a drawn GeoJSON (multi)polygon, in `ids` order."""
        shape = shapely.geometry.shape(geometry)
        if shape.is_empty or shape.geom_type not in ("Polygon", "MultiPolygon"):
            return []
        if not shape.is_valid:  # a self-crossing polygon drawn by hand
            shape = shapely.make_valid(shape)
        shapely.prepare(shape)
        minx, miny, maxx, maxy = shape.bounds
        near = np.flatnonzero((self.lon >= minx) & (self.lon <= maxx)
                              & (self.lat >= miny) & (self.lat <= maxy))
        hit = shapely.contains_xy(shape, self.lon[near], self.lat[near])
        return [self.ids[i] for i in near[hit]]

    def bounds(self, unit_ids) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """((south, west), (north, east)) around these units, for zooming to a territory."""
        pos = self.position()
        rows = [pos[u] for u in unit_ids if u in pos]
        if not rows:
            return None
        minx, miny, maxx, maxy = shapely.total_bounds(self.geoms[rows])
        return (float(miny), float(minx)), (float(maxy), float(maxx))
