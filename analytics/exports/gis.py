"""The GIS exports, GeoJSON and GeoPackage: one feature per territory, the dissolved
(multi)polygon of its units (WGS84, exact: not the simplified outline the maps draw) with
its metrics as properties. Both share `feature_table`; GeoPackage is written with pyogrio.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from analytics import metrics
from analytics.exports.labels import is_missing
from analytics.exports.pack import PlanPack

FEATURE_COLUMNS = ["territory_id", "territory_name", "rep_id", "rep_name", "color",
                   *metrics.TERRITORY_COLUMNS[3:]]


def _plain(value):
    if is_missing(value):
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
