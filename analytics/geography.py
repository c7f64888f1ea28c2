"""Shipped reference geography: postal-code points, unit polygons, and point-in-polygon.

Everything here reads the files under `data/` (see `data/SOURCES.md`); nothing reaches the
network. Polygons are cached per process.
"""

from __future__ import annotations

import gzip
import json
import os
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

DATA_ENV = "TERRITORY_ATLAS_DATA"
DATA_DIR = Path(os.environ.get(DATA_ENV) or Path(__file__).resolve().parent.parent / "data")
"""The shipped data: the checkout's `data/`, or `$TERRITORY_ATLAS_DATA` where the package
runs without it beside (a Spark executor given the folder separately: docs/scale-out.md)."""
US_ZIP_FILE = DATA_DIR / "reference" / "us_zip.parquet"
FR_POSTAL_FILE = DATA_DIR / "reference" / "fr_postal.parquet"
COUNTY_CELLS_FILE = DATA_DIR / "reference" / "county_cells.parquet"
GEO_FILES = {
    "state": DATA_DIR / "geo" / "us_states.geojson.gz",
    "county": DATA_DIR / "geo" / "us_counties.geojson.gz",
    "fr_dept": DATA_DIR / "geo" / "fr_departements.geojson.gz",
}

STATE_FIPS = {
    "01": "AL", "02": "AK", "04": "AZ", "05": "AR", "06": "CA", "08": "CO", "09": "CT",
    "10": "DE", "11": "DC", "12": "FL", "13": "GA", "15": "HI", "16": "ID", "17": "IL",
    "18": "IN", "19": "IA", "20": "KS", "21": "KY", "22": "LA", "23": "ME", "24": "MD",
    "25": "MA", "26": "MI", "27": "MN", "28": "MS", "29": "MO", "30": "MT", "31": "NE",
    "32": "NV", "33": "NH", "34": "NJ", "35": "NM", "36": "NY", "37": "NC", "38": "ND",
    "39": "OH", "40": "OK", "41": "OR", "42": "PA", "44": "RI", "45": "SC", "46": "SD",
    "47": "TN", "48": "TX", "49": "UT", "50": "VT", "51": "VA", "53": "WA", "54": "WV",
    "55": "WI", "56": "WY", "60": "AS", "66": "GU", "69": "MP", "72": "PR", "78": "VI",
}
"""State FIPS code -> USPS abbreviation; state units are named by the abbreviation."""


@cache
def _features(kind: str) -> tuple[list[str], list[str], list[object]]:
    with gzip.open(GEO_FILES[kind], "rt", encoding="utf-8") as f:
        feats = json.load(f)["features"]
    ids, names, geoms = [], [], []
    for ft in feats:
        if ft.get("geometry") is None:
            continue
        props = ft.get("properties") or {}
        fid = str(ft.get("id") or props.get("code") or props.get("id"))
        if kind == "state":
            fid = STATE_FIPS.get(fid, fid)
        ids.append(fid)
        names.append(str(props.get("name") or props.get("nom") or fid))
        geoms.append(shapely.geometry.shape(ft["geometry"]))
    return ids, names, geoms


def unit_polygons(kind: str) -> tuple[list[str], list[str], list[object]]:
    """(ids, names, shapely geometries) of the shipped polygons for a postal unit kind."""
    if kind not in GEO_FILES:
        raise KeyError(kind)
    return _features(kind)


@cache
def polygon_positions(kind: str) -> dict[str, int]:
    """unit id -> its position in `unit_polygons(kind)` (looked up per stroke)."""
    return {u: i for i, u in enumerate(unit_polygons(kind)[0])}


@cache
def _tree(kind: str) -> tuple[shapely.STRtree, np.ndarray]:
    ids, _, geoms = _features(kind)
    shapely.prepare(geoms)
    return shapely.STRtree(geoms), np.asarray(ids, dtype=object)


def locate(
    kind: str, lat: np.ndarray, lon: np.ndarray, near_degrees: float = 0.0
) -> np.ndarray:
    """The id of the polygon each point lies in (None outside all of them).

    A point on a shared border goes to the polygon listed first, so the answer is stable.
    With `near_degrees`, a point outside every polygon takes the nearest one within that
    distance (in degrees), for shore points that simplified outlines leave in the sea.
    """
    out = np.full(len(lat), None, dtype=object)
    if len(lat) == 0:
        return out
    tree, ids = _tree(kind)
    points = shapely.points(np.asarray(lon, float), np.asarray(lat, float))
    point_idx, geom_idx = tree.query(points, predicate="intersects")
    order = np.lexsort((geom_idx, point_idx))[::-1]  # smallest geom index written last
    out[point_idx[order]] = ids[geom_idx[order]]
    if near_degrees:
        # simplified coastlines leave shore points outside every polygon: take the nearest
        miss = np.flatnonzero(pd.isna(out))
        if len(miss):
            pi, gi = tree.query_nearest(points[miss], max_distance=near_degrees, all_matches=False)
            out[miss[pi]] = ids[gi]
    return out


@cache
def _county_cells() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    frame = pd.read_parquet(COUNTY_CELLS_FILE)
    codes, names = pd.factorize(frame["county"])
    return (frame["cell"].to_numpy(np.int64), codes.astype(np.int32),
            np.asarray(names, dtype=object))


def h3_parent(cells: np.ndarray, res: int) -> np.ndarray:
    """Parent cells by bit arithmetic (for cells themselves, never to place points)."""
    keep = ~np.int64(0xF << 52)
    return (cells & keep) | np.int64(res << 52) | np.int64((1 << ((15 - res) * 3)) - 1)


def county_from_cells(cell8: np.ndarray) -> np.ndarray:
    """The county whose polygon wholly contains each res-8 cell (None near borders).

    A point lies in its own res-8 cell; if that cell is wholly inside a county, so is the
    point. `county_cells.parquet` lists such cells compacted, so a cell is looked up
    together with its ancestors.
    """
    cells, codes, names = _county_cells()
    hit_code = np.full(len(cell8), -1, dtype=np.int32)
    if len(cells) == 0 or len(cell8) == 0:
        return np.full(len(cell8), None, dtype=object)
    for res in range(8, 2, -1):
        todo = np.flatnonzero(hit_code < 0)
        if not len(todo):
            break
        parent = h3_parent(cell8[todo], res)
        pos = np.minimum(np.searchsorted(cells, parent), len(cells) - 1)
        hit = cells[pos] == parent
        hit_code[todo[hit]] = codes[pos[hit]]
    out = np.full(len(cell8), None, dtype=object)
    found = hit_code >= 0
    out[found] = names[hit_code[found]]
    return out


def locate_county(
    lat: np.ndarray, lon: np.ndarray, candidate: np.ndarray, cell8: np.ndarray | None = None
) -> np.ndarray:
    """County FIPS for US points; `candidate` marks the rows to look up (others get None).

    With the points' res-8 H3 cells, most points are placed by the exact cell lookup and
    only those near a county border go through point-in-polygon.
    """
    out = np.full(len(lat), None, dtype=object)
    idx = np.flatnonzero(candidate)
    if cell8 is not None and len(idx):
        out[idx] = county_from_cells(cell8[idx])
        idx = idx[pd.isna(out[idx])]
    if len(idx):
        out[idx] = locate("county", lat[idx], lon[idx], near_degrees=0.25)
    return out


@cache
def postal_points(kind: str):
    """Reference points for postal units without polygons: zip5, zip3, fr_commune."""
    if kind in ("zip5", "zip3"):
        z = pd.read_parquet(US_ZIP_FILE)
        if kind == "zip5":
            return pd.DataFrame({"unit_id": z["zip"], "name": z["zip"] + " " +
                                 z["state"].fillna(""), "lat": z["lat"], "lon": z["lon"]})
        z["zip3"] = z["zip"].str[:3]
        z["w"] = z["population"].clip(lower=0) + 1e-9
        g = z.assign(wlat=z["lat"] * z["w"], wlon=z["lon"] * z["w"]).groupby("zip3")
        agg = g[["wlat", "wlon", "w"]].sum()
        return pd.DataFrame({
            "unit_id": agg.index, "name": agg.index,
            "lat": agg["wlat"] / agg["w"], "lon": agg["wlon"] / agg["w"],
        }).reset_index(drop=True)
    if kind == "fr_commune":
        f = pd.read_parquet(FR_POSTAL_FILE).drop_duplicates("commune")
        return pd.DataFrame({"unit_id": f["commune"], "name": f["commune_name"],
                             "lat": f["lat"], "lon": f["lon"]})
    raise KeyError(kind)
