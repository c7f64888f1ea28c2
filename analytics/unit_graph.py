"""The unit graph the optimiser works on: which units there are, which touch, how long their
shared borders are, and each unit's area and perimeter.

Which units ("the land the plan covers"):

- H3: the cells holding accounts, the cells of the plan, and every cell whose centre lies in
  a county (US) or departement (France) where accounts lie, so a territory is a whole area
  and not a scatter of occupied cells. Cells are filled with `h3.geo_to_cells` on the shipped
  polygons.
- Counties, states, departements: the plan's units and the units holding accounts.
- ZIP5, ZIP3, communes (no polygons shipped): the units holding accounts or in the plan,
  with neighbours from a Delaunay triangulation of their reference points, keeping edges no
  longer than `POINT_CUT_KM` for the kind, and always each point's shortest edge.

Adjacency is the app's (`analytics.adjacency`: H3 cells sharing an edge, polygons touching,
corners included), so contiguity here is contiguity in the territory metrics. Shared border
lengths and areas are geodesic (WGS84, `pyproj.Geod`), so the optimiser's perimeter changes
are those of the Polsby-Popper metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import h3
import numpy as np
import shapely

from analytics import adjacency, geography
from analytics.metrics import haversine_km
from analytics.units import POLYGON_KINDS, UnitType, unit_shapes

POINT_CUT_KM = {"zip5": 40.0, "zip3": 250.0, "fr_commune": 25.0}
"""Longest Delaunay edge kept between point units, by kind (km)."""
FILL_KINDS = {"US": "county", "FR": "fr_dept"}


@dataclass
class UnitGraph:
    """Units 0..n-1 with CSR adjacency (`ptr`, `nbr`, `border_km` per entry)."""

    unit: UnitType
    ids: np.ndarray  # object array of unit ids, sorted
    lat: np.ndarray
    lon: np.ndarray
    area_km2: np.ndarray  # NaN for point units
    perim_km: np.ndarray  # NaN for point units
    ptr: np.ndarray  # int64, len n + 1
    nbr: np.ndarray  # int64 neighbour positions
    border_km: np.ndarray  # shared border length per adjacency entry (0: corner; NaN points)
    filled: np.ndarray  # bool: added to fill the land (holds no account, not in the plan)
    how: str  # how the units and their neighbours were chosen, in words

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def has_shapes(self) -> bool:
        return not np.isnan(self.area_km2).all() if len(self.ids) else False

    def index(self) -> dict[str, int]:
        return {u: i for i, u in enumerate(self.ids)}

    def neighbours(self, i: int) -> np.ndarray:
        return self.nbr[self.ptr[i]:self.ptr[i + 1]]

    def components(self) -> np.ndarray:
        """The connected piece of each unit (0, 1, ...: largest piece first)."""
        n = len(self.ids)
        comp = np.full(n, -1, dtype=np.int64)
        sizes = []
        for start in range(n):
            if comp[start] >= 0:
                continue
            k = len(sizes)
            comp[start] = k
            stack, size = [start], 0
            while stack:
                i = stack.pop()
                size += 1
                for j in self.nbr[self.ptr[i]:self.ptr[i + 1]]:
                    if comp[j] < 0:
                        comp[j] = k
                        stack.append(j)
            sizes.append(size)
        order = np.argsort(-np.asarray(sizes), kind="stable")
        rank = np.empty(len(sizes), dtype=np.int64)
        rank[order] = np.arange(len(sizes))
        return rank[comp] if n else comp

    @classmethod
    def build(cls, unit: UnitType, held: list[str], planned: list[str],
              countries: list[str] | None = None, fill_areas: list[str] | None = None
              ) -> UnitGraph:
        """The graph over the units holding accounts (`held`) and the plan's (`planned`);
        on H3 also the cells filling `fill_areas` (county FIPS / departement codes)."""
        base = sorted({str(u) for u in [*held, *planned] if u is not None})
        if unit.kind == "h3":
            return _h3_graph(unit, base, fill_areas or [])
        if unit.kind in POLYGON_KINDS:
            return _polygon_graph(unit, base)
        return _point_graph(unit, base)


def _csr(n: int, pairs: list[tuple[int, int]], lengths: list[float]):
    a = np.array([p[0] for p in pairs] + [p[1] for p in pairs], dtype=np.int64)
    b = np.array([p[1] for p in pairs] + [p[0] for p in pairs], dtype=np.int64)
    w = np.array(list(lengths) * 2, dtype=float)
    order = np.lexsort((b, a))
    a, b, w = a[order], b[order], w[order]
    ptr = np.zeros(n + 1, dtype=np.int64)
    np.add.at(ptr, a + 1, 1)
    return np.cumsum(ptr), b, w


def _h3_graph(unit: UnitType, base: list[str], fill_areas: list[str]) -> UnitGraph:
    res = unit.resolution
    filled: set[str] = set()
    for kind in ("county", "fr_dept"):
        ids, _, geoms = geography.unit_polygons(kind)
        where = dict(zip(ids, geoms, strict=True))
        for area in fill_areas:
            geom = where.get(area)
            if geom is not None:
                filled.update(h3.geo_to_cells(geom.__geo_interface__, res))
    cells = sorted(set(base) | filled)
    pos = {c: i for i, c in enumerate(cells)}
    pairs, lengths = [], []
    perim = np.zeros(len(cells))
    for i, c in enumerate(cells):
        for e in h3.origin_to_directed_edges(c):
            length = h3.edge_length(e, "km")
            perim[i] += length
            j = pos.get(h3.get_directed_edge_destination(e))
            if j is not None and i < j:
                pairs.append((i, j))
                lengths.append(length)
    ptr, nbr, border = _csr(len(cells), pairs, lengths)
    centres = np.array([h3.cell_to_latlng(c) for c in cells]).reshape(-1, 2)
    area = np.array([h3.cell_area(c, "km^2") for c in cells])
    held = set(base)
    how = (f"H3 res {res}: {len(held):,} cells holding accounts or in the plan, plus "
           f"{len(set(cells) - held):,} empty cells whose centre lies in the "
           f"{len(fill_areas):,} counties / departements where the accounts are; neighbours "
           "share an edge")
    return UnitGraph(unit, np.asarray(cells, dtype=object), centres[:, 0], centres[:, 1],
                     area, perim, ptr, nbr, border,
                     np.array([c not in held for c in cells]), how)


@cache
def _polygon_measures(kind: str):
    """Per shipped polygon: area and perimeter (km² / km, geodesic), and the touching pairs
    with their shared border length (km). Kept for the process: the polygons never change."""
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    ids, _, geoms = geography.unit_polygons(kind)
    order = np.argsort(ids)
    ids = [ids[i] for i in order]
    geoms = np.asarray(geoms, dtype=object)[order]
    area = np.empty(len(ids))
    perim = np.empty(len(ids))
    for i, g in enumerate(geoms):
        a, _ = geod.geometry_area_perimeter(g)
        area[i] = abs(a) / 1e6
        perim[i] = geod.geometry_length(g.boundary) / 1000
    kind_unit = UnitType.parse(kind)
    pos = {u: i for i, u in enumerate(ids)}
    pairs = [(pos[a], pos[b]) for a, b in adjacency.unit_neighbours(kind_unit, ids)]
    lengths = []
    for i, j in pairs:
        shared = shapely.intersection(geoms[i].boundary, geoms[j].boundary)
        lengths.append(geod.geometry_length(shared) / 1000 if not shared.is_empty else 0.0)
    pts = shapely.point_on_surface(geoms)
    return ids, area, perim, pairs, lengths, shapely.get_y(pts), shapely.get_x(pts)


def _polygon_graph(unit: UnitType, base: list[str]) -> UnitGraph:
    ids, area, perim, pairs, lengths, lat, lon = _polygon_measures(unit.kind)
    pos = {u: i for i, u in enumerate(ids)}
    keep = sorted(pos[u] for u in base if u in pos)
    new = {old: k for k, old in enumerate(keep)}
    sub = [(new[i], new[j], w) for (i, j), w in zip(pairs, lengths, strict=True)
           if i in new and j in new]
    ptr, nbr, border = _csr(len(keep), [(i, j) for i, j, _ in sub], [w for *_, w in sub])
    how = (f"{unit.label}: {len(keep):,} units holding accounts or in the plan; neighbours "
           "are polygons that touch (corners included)")
    return UnitGraph(unit, np.asarray([ids[i] for i in keep], dtype=object),
                     np.asarray(lat)[keep], np.asarray(lon)[keep], area[keep], perim[keep],
                     ptr, nbr, border, np.zeros(len(keep), dtype=bool), how)


def _point_graph(unit: UnitType, base: list[str]) -> UnitGraph:
    from scipy.spatial import Delaunay, QhullError

    shapes = unit_shapes(unit, base).sort_values("unit_id").reset_index(drop=True)
    ids = shapes["unit_id"].to_numpy(dtype=object)
    lat = shapely.get_y(shapes.geometry.to_numpy())
    lon = shapely.get_x(shapes.geometry.to_numpy())
    n = len(ids)
    cut = POINT_CUT_KM.get(unit.kind, 50.0)
    pairs: set[tuple[int, int]] = set()
    if n >= 3:
        xy = np.column_stack([lon * np.cos(np.radians(np.mean(lat))), lat])
        try:
            tri = Delaunay(xy)
            simplices = tri.simplices
        except QhullError:  # all points on a line: no triangulation
            simplices = np.zeros((0, 3), dtype=np.int64)
        edges = set()
        for s in simplices:
            for a, b in ((s[0], s[1]), (s[1], s[2]), (s[0], s[2])):
                edges.add((min(a, b), max(a, b)))
        if edges:
            e = np.array(sorted(edges))
            km = haversine_km(lat[e[:, 0]], lon[e[:, 0]], lat[e[:, 1]], lon[e[:, 1]])
            shortest = np.full(n, np.inf)
            best = np.full(n, -1)
            for k, (a, b) in enumerate(e):
                for x in (a, b):
                    if km[k] < shortest[x]:
                        shortest[x], best[x] = km[k], k
            keep = set(np.flatnonzero(km <= cut)) | {k for k in best if k >= 0}
            pairs = {(int(e[k, 0]), int(e[k, 1])) for k in keep}
    elif n == 2:
        pairs = {(0, 1)}
    ordered = sorted(pairs)
    ptr, nbr, border = _csr(n, ordered, [np.nan] * len(ordered))
    how = (f"{unit.label}: {n:,} units holding accounts or in the plan (points, no polygons "
           f"shipped); neighbours are Delaunay neighbours of their reference points no more "
           f"than {cut:g} km apart, plus each point's nearest Delaunay neighbour")
    nan = np.full(n, np.nan)
    return UnitGraph(unit, ids, np.asarray(lat, float), np.asarray(lon, float), nan, nan.copy(),
                     ptr, nbr, border, np.zeros(n, dtype=bool), how)
