"""The territory map: folium + streamlit-folium with vendored Leaflet, so it works offline.

Leaflet is served from `static/vendor/` (Streamlit static serving, `/app/static/...`), never
from a CDN. State outlines are always drawn as a vector basemap; tiles are an option for
when the machine is online.
"""

from __future__ import annotations

import hashlib
import json

import folium
import geopandas as gpd
import pandas as pd
import shapely
import streamlit as st
from streamlit_folium import st_folium

from analytics import geography
from analytics.units import POLYGON_KINDS, UnitType, unit_shapes
from ui.palette import UNASSIGNED

STATIC = "/app/static/vendor"
LEAFLET_JS = [("leaflet", f"{STATIC}/leaflet/leaflet.js")]
LEAFLET_CSS = [("leaflet_css", f"{STATIC}/leaflet/leaflet.css")]
US_VIEW = ((39.5, -96.5), 4)
FR_VIEW = ((46.6, 2.4), 6)


def _round_coords(geojson: dict, digits: int = 3) -> dict:
    def rnd(c):
        if isinstance(c, (list, tuple)) and c and isinstance(c[0], (int, float)):
            return [round(c[0], digits), round(c[1], digits)]
        return [rnd(x) for x in c]

    for ft in geojson["features"]:
        geom = ft.get("geometry")
        if geom:
            geom["coordinates"] = rnd(geom["coordinates"])
    return geojson


def _key(items) -> str:
    """A short cache key for a long list (Streamlit would hash every element each rerun)."""
    digest = hashlib.blake2b(digest_size=16)
    for item in items:
        digest.update(repr(item).encode())
        digest.update(b"\0")
    return digest.hexdigest()


# cache_resource, not cache_data: these are read-only and big, so no copy per rerun
@st.cache_resource(show_spinner=False, max_entries=16)
def _unit_geometry(unit_text: str, key: str, _unit_ids: tuple[str, ...]) -> gpd.GeoDataFrame:
    shapes = unit_shapes(UnitType.parse(unit_text), list(_unit_ids))
    if len(shapes) and shapes.geom_type.iloc[0] != "Point":
        shapes["geometry"] = shapely.simplify(
            shapes.geometry.to_numpy(), 0.01, preserve_topology=True
        )
    return shapes


def unit_geometry(unit_text: str, unit_ids: tuple[str, ...]) -> gpd.GeoDataFrame:
    """Unit shapes, simplified for the screen (about 1 km) and cached per unit set."""
    return _unit_geometry(unit_text, _key(unit_ids), unit_ids)


@st.cache_resource(show_spinner=False, max_entries=16)
def _outlines(unit_text: str, key: str, _assignment) -> gpd.GeoDataFrame:
    frame = pd.DataFrame(_assignment, columns=["unit_id", "territory_id"])
    shapes = unit_geometry(unit_text, tuple(frame["unit_id"]))
    merged = shapes.merge(frame, on="unit_id")
    if not len(merged) or merged.geom_type.iloc[0] == "Point":
        return gpd.GeoDataFrame({"territory_id": []}, geometry=[], crs=4326)
    return merged.dissolve(by="territory_id").reset_index()[["territory_id", "geometry"]]


def territory_outlines(
    unit_text: str, assignment: tuple[tuple[str, str], ...]
) -> gpd.GeoDataFrame:
    """One (multi)polygon per territory: the union of its units."""
    return _outlines(unit_text, _key(assignment), assignment)


@st.cache_resource(show_spinner=False, max_entries=16)
def _unit_features(unit_text: str, key: str, _unit_ids) -> dict[str, dict]:
    shapes = unit_geometry(unit_text, _unit_ids)
    fc = _round_coords(json.loads(shapes[["unit_id", "geometry"]].to_json()))
    return {ft["properties"]["unit_id"]: ft["geometry"] for ft in fc["features"]}


def unit_features(unit_text: str, unit_ids: tuple[str, ...]) -> dict[str, dict]:
    """unit_id -> rounded GeoJSON geometry, built once per unit set (not every rerun)."""
    return _unit_features(unit_text, _key(unit_ids), unit_ids)


@st.cache_resource(show_spinner=False, max_entries=16)
def _outline_features(unit_text: str, key: str, _assignment) -> dict:
    return _round_coords(json.loads(territory_outlines(unit_text, _assignment).to_json()))


def outline_features(unit_text: str, assignment: tuple[tuple[str, str], ...]) -> dict:
    return _outline_features(unit_text, _key(assignment), assignment)


@st.cache_resource(show_spinner=False)
def state_outlines() -> dict:
    ids, names, geoms = geography.unit_polygons("state")
    shapes = gpd.GeoDataFrame({"unit_id": ids, "name": names}, geometry=geoms, crs=4326)
    shapes["geometry"] = shapely.simplify(shapes.geometry.to_numpy(), 0.02)
    shapes["geometry"] = shapes.boundary
    return _round_coords(json.loads(shapes.to_json()))


class BoundedGeoJson(folium.GeoJson):
    """GeoJson whose bounds are given, not recomputed over every coordinate each rerun."""

    def __init__(self, data, bounds=None, **kwargs):
        super().__init__(data, **kwargs)
        self._fixed_bounds = bounds

    def _get_self_bounds(self):
        if self._fixed_bounds is None:
            return super()._get_self_bounds()
        minx, miny, maxx, maxy = self._fixed_bounds
        return [[miny, minx], [maxy, maxx]]


def base_map(center, zoom: int, tiles: bool) -> folium.Map:
    """A Leaflet map with local assets only; the same HTML every rerun (no remount)."""
    fmap = folium.Map(
        location=list(center), zoom_start=zoom, tiles=None, control_scale=True,
        prefer_canvas=True, min_zoom=2,
    )
    fmap.default_js = LEAFLET_JS
    fmap.default_css = LEAFLET_CSS
    if tiles:
        folium.TileLayer("OpenStreetMap", name="OpenStreetMap", opacity=0.6).add_to(fmap)
    return fmap


def external_assets(fmap: folium.Map) -> list[str]:
    """Every script or stylesheet the map would load from another host (should be none)."""
    links = []

    def walk(el):
        links.extend(src for _, src in getattr(el, "default_js", []))
        links.extend(src for _, src in getattr(el, "default_css", []))
        for child in getattr(el, "_children", {}).values():
            walk(child)

    walk(fmap)
    return [u for u in links if u.startswith(("http://", "https://", "//"))]


def plan_map(
    unit: UnitType,
    units: pd.DataFrame,
    colors: dict[str, str],
    reps: pd.DataFrame,
    *,
    tiles: bool = False,
    key: str = "plan_map",
    height: int = 560,
) -> None:
    """Draw units coloured by territory, territory outlines, rep homes and state lines.

    `units`: unit_id, territory_id, territory_name, accounts, potential, won (one row per
    unit of the plan or holding accounts). `reps`: rep_name, territory_name, home_lat,
    home_lon.
    """
    ids = tuple(units["unit_id"])
    shapes = unit_geometry(str(unit), ids)
    data = shapes.drop(columns="geometry").merge(units, on="unit_id", how="inner")
    data["color"] = data["territory_id"].map(colors).fillna(UNASSIGNED)
    data["territory_name"] = data["territory_name"].fillna("Unassigned")
    for col in ("potential", "won"):
        data[col] = data[col].fillna(0).map(lambda v: f"{v:,.0f}")
    data["accounts"] = data["accounts"].fillna(0).astype(int)
    center, zoom = _view(shapes, unit)
    fmap = base_map(center, zoom, tiles)
    fields = ["name", "territory_name", "accounts", "potential", "won"]
    aliases = ["Unit", "Territory", "Accounts", "Potential", "Won"]
    bounds = tuple(shapes.total_bounds) if len(shapes) else None
    if unit.kind in POLYGON_KINDS or unit.kind == "h3":
        geoms = unit_features(str(unit), ids)
        props = data[["unit_id", *fields, "color"]].to_dict(orient="records")
        geojson = {"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": p, "geometry": geoms[p["unit_id"]]}
            for p in props if p["unit_id"] in geoms
        ]}
        BoundedGeoJson(
            geojson,
            bounds=bounds,
            name="Territories",
            style_function=lambda f: {
                "fillColor": f["properties"]["color"], "color": "#ffffff", "weight": 0.3,
                "fillOpacity": 0.75,
            },
            highlight_function=lambda f: {"weight": 2, "color": "#000000"},
            tooltip=folium.GeoJsonTooltip(fields=fields, aliases=aliases),
            smooth_factor=1.0,
        ).add_to(fmap)
        assigned = units.dropna(subset=["territory_id"])
        outlines = outline_features(
            str(unit), tuple(zip(assigned["unit_id"], assigned["territory_id"], strict=True))
        )
        if outlines["features"]:
            BoundedGeoJson(
                outlines,
                bounds=bounds,
                name="Territory outlines",
                style_function=lambda f: {"color": "#202020", "weight": 1.4, "fill": False},
                interactive=False,
            ).add_to(fmap)
    else:
        points = shapes[["unit_id", "geometry"]].merge(data, on="unit_id")
        for row in points.itertuples(index=False):
            folium.CircleMarker(
                [row.geometry.y, row.geometry.x], radius=4, color=row.color, fill=True,
                fill_opacity=0.8, weight=1,
                tooltip=f"{row.name}: {row.territory_name}, {row.accounts} accounts",
            ).add_to(fmap)
    BoundedGeoJson(
        state_outlines(), bounds=(-180.0, 17.0, -64.0, 72.0), name="States",
        style_function=lambda f: {"color": "#555555", "weight": 0.8, "fill": False},
        interactive=False,
    ).add_to(fmap)
    homes = reps.dropna(subset=["home_lat", "home_lon"])
    if len(homes):  # one layer for every home (one template, not one per marker)
        folium.GeoJson(
            {"type": "FeatureCollection", "features": [
                {"type": "Feature",
                 "properties": {"rep": f"{r.rep_name} (home base)",
                                "territory": str(r.territory_name)},
                 "geometry": {"type": "Point", "coordinates": [r.home_lon, r.home_lat]}}
                for r in homes.itertuples(index=False)
            ]},
            name="Rep homes",
            marker=folium.CircleMarker(radius=5, color="#000000", weight=2, fill=True,
                                       fill_color="#ffffff", fill_opacity=1),
            tooltip=folium.GeoJsonTooltip(fields=["rep", "territory"],
                                          aliases=["Rep", "Territory"]),
        ).add_to(fmap)
    assert not external_assets(fmap), external_assets(fmap)
    st_folium(
        fmap, key=key, height=height, use_container_width=True, returned_objects=[],
    )


def _view(data: gpd.GeoDataFrame, unit: UnitType):
    if unit.kind in ("fr_dept", "fr_commune"):
        return FR_VIEW
    if not len(data):
        return US_VIEW
    minx, miny, maxx, maxy = data.total_bounds
    if maxx - minx > 40:  # the lower 48 plus Alaska/Hawaii: centre on the lower 48
        return US_VIEW
    zoom = 4 if maxx - minx > 20 else 5 if maxx - minx > 8 else 7
    return ((miny + maxy) / 2, (minx + maxx) / 2), zoom
