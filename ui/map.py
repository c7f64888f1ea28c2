"""The territory map: folium + streamlit-folium, offline, edited in place without remounts.

What the browser gets:
- a base map that is the same on every rerun (vendored Leaflet and leaflet.draw, the unit
  layer script `static/atlas/unit_layer.js`): the component never remounts, the view stays;
- unit shapes, per-unit numbers and the state outlines as static JSON files under
  `static/cache/`, named by a keyed hash of their content (`publish`): fetched once,
  cached by the browser; a database's numbers in its own folder, cleaned when its data
  changes;
- per rerun, through `feature_group_to_add`, a small spec: one two-character territory code
  per unit, the territory list with their numbers, the layer choice, rep homes.
Clicks come back as `last_clicked` (turned into a unit on the server) and drawn shapes as
`last_active_drawing`; nothing else reruns the script (pans and zooms do not).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import folium
import numpy as np
import pandas as pd
import shapely
import streamlit as st
from branca.element import MacroElement
from folium.elements import JSCSSMixin
from folium.plugins import Draw
from jinja2 import Template
from streamlit_folium import st_folium

from analytics import geography, market
from analytics.unit_index import UnitIndex

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
CACHE_DIR = STATIC_DIR / "cache"
STATIC_URL = "/app/static"
LEAFLET_JS = [("leaflet", f"{STATIC_URL}/vendor/leaflet/leaflet.js")]
LEAFLET_CSS = [("leaflet_css", f"{STATIC_URL}/vendor/leaflet/leaflet.css")]
DRAW_JS = [("leaflet_draw_js", f"{STATIC_URL}/vendor/leaflet-draw/leaflet.draw.js")]
DRAW_CSS = [("leaflet_draw_css", f"{STATIC_URL}/vendor/leaflet-draw/leaflet.draw.css")]
UNIT_LAYER_JS = f"{STATIC_URL}/atlas/unit_layer.js"
PREFETCH_JS = f"{STATIC_URL}/atlas/prefetch.js"
US_VIEW = ((38.0, -96.0), 3.5)
FR_VIEW = ((46.6, 2.4), 6)
CODE_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
MAX_TERRITORIES = len(CODE_ALPHABET) ** 2  # two base-36 characters a unit


# --------------------------------------------------------------------------------------
# static files: written once, named by content
# --------------------------------------------------------------------------------------
CACHE_SECRET = secrets.token_bytes(32)
"""Keys the cached files' names: a name says nothing about its content and cannot be
worked out from it; only a session that was shown a file's URL can ask for it."""
_SEEN_VERSIONS: set[tuple[Path, str]] = set()


def _digest(data: bytes, size: int = 12) -> str:
    return hashlib.blake2b(data, digest_size=size, key=CACHE_SECRET).hexdigest()


def data_folder(database: str) -> Path:
    """The folder of one database's files (per server process: its name is keyed)."""
    return CACHE_DIR / f"db-{_digest(database.encode(), 8)}"


def publish(prefix: str, payload: dict, *, database: str | None = None,
            version: str = "") -> str:
    """Write `payload` as JSON under static/cache/ and return its URL.

    Files of a database's data (`database`: its path; `version`: its data version) go to
    that database's folder; the first file of a new data version there removes the files of
    the older ones, so numbers from replaced data are not kept. Public files (unit shapes,
    state outlines) take no database. Names are keyed hashes of the content (the same
    content, the same URL: the browser fetches it once).
    """
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False)
    folder, tag = CACHE_DIR, ""
    if database is not None:
        folder = data_folder(database)
        tag = hashlib.blake2b(version.encode(), digest_size=4).hexdigest() + "-"
        if (folder, tag) not in _SEEN_VERSIONS:
            _SEEN_VERSIONS.add((folder, tag))
            for old in folder.glob("*.json"):
                if old.name.split("-", 1)[1][: len(tag)] != tag:
                    old.unlink(missing_ok=True)
    name = f"{prefix}-{tag}{_digest(text.encode())}.json"
    path = folder / name
    if path.exists():
        path.touch()  # in use: kept by prune_cache
    else:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)  # never a half-written file under the final name
    return f"{STATIC_URL}/cache/{path.relative_to(CACHE_DIR).as_posix()}"


def prune_cache(max_age_days: float = 2.0) -> int:
    """Delete cached map files not used for a while (names are keyed per server process,
    so files of a stopped server are never asked for again). Runs once when the server
    starts; returns how many files were removed."""
    import time

    if not CACHE_DIR.is_dir():
        return 0
    limit = time.time() - max_age_days * 86400
    removed = 0
    for path in CACHE_DIR.rglob("*.json"):
        if path.stat().st_mtime < limit:
            path.unlink(missing_ok=True)
            removed += 1
    for folder in CACHE_DIR.glob("db-*"):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return removed


prune_cache()


def _rings(geom, digits: int) -> list:
    """[[ring as flat lat, lng, ...], ...] per polygon of a (multi)polygon."""
    polys = geom.geoms if geom.geom_type == "MultiPolygon" else [geom]
    out = []
    for poly in polys:
        rings = [poly.exterior, *poly.interiors]
        out.append([np.round(np.asarray(r.coords)[:, ::-1], digits).ravel().tolist()
                    for r in rings])
    return out


def _shapes(geoms, digits: int) -> list:
    """`_rings` of every geometry, from one array of all coordinates (17k hexagons: 0.18 s
    -> 0.09 s); other geometry mixes one by one."""
    try:
        kind, coords, offsets = shapely.to_ragged_array(geoms)
    except (ValueError, TypeError):
        return [_rings(g, digits) for g in geoms]
    if kind == shapely.GeometryType.POLYGON:
        ring_off, poly_off = (o.tolist() for o in offsets)
        geom_off = list(range(len(poly_off)))
    elif kind == shapely.GeometryType.MULTIPOLYGON:
        ring_off, poly_off, geom_off = (o.tolist() for o in offsets)
    else:
        return [_rings(g, digits) for g in geoms]
    flat = np.round(coords[:, ::-1], digits).ravel().tolist()
    return [[[flat[2 * ring_off[r]: 2 * ring_off[r + 1]]
              for r in range(poly_off[p], poly_off[p + 1])]
             for p in range(geom_off[g], geom_off[g + 1])]
            for g in range(len(geom_off) - 1)]


def geometry_payload(index: UnitIndex) -> dict:
    """Unit shapes for the browser: simplified to about 1 km, shared borders kept shared."""
    payload = {"kind": "point" if index.is_points else "polygon", "ids": index.ids,
               "names": index.names}
    if index.is_points:
        payload["points"] = np.round(
            np.column_stack([index.lat, index.lon]), 4).ravel().tolist()
        return payload
    geoms = index.geoms
    if index.unit.kind != "h3":  # counties, states: one border simplified once for both
        geoms = shapely.coverage_simplify(geoms, 0.01)
    # hexagons: many small shapes, read from one array; counties and the like (fewer,
    # bigger shapes) are quicker one by one
    payload["shapes"] = (_shapes(geoms, 4) if index.unit.kind == "h3"
                         else [_rings(g, 4) for g in geoms])
    # a point inside each unit: the drag brush's size measures from it
    payload["centres"] = np.round(np.column_stack([index.lat, index.lon]), 4).ravel().tolist()
    return payload


@st.cache_resource(show_spinner=False, max_entries=16)
def geometry_url(index_key: str, _index: UnitIndex) -> str:
    return publish("units", geometry_payload(_index))


@st.cache_resource(show_spinner=False)
def basemap_url() -> str:
    """State outlines: the basemap that needs no internet."""
    _, names, geoms = geography.unit_polygons("state")
    lines = shapely.boundary(shapely.simplify(np.asarray(geoms, dtype=object), 0.02))
    feats = [{"type": "Feature", "properties": {"name": n},
              "geometry": json.loads(shapely.to_geojson(shapely.set_precision(g, 0.001)))}
             for n, g in zip(names, lines, strict=True)]
    return publish("states", {"type": "FeatureCollection", "features": feats})


def numbers_payload(index: UnitIndex, cube_units: pd.DataFrame, days: int) -> dict:
    """Per-unit numbers in the order of `index.ids` (the tooltip and choropleth values)."""
    frame = pd.DataFrame({"unit_id": index.ids}).merge(
        cube_units.dropna(subset=["unit_id"]), on="unit_id", how="left")
    for col in ("accounts", "potential", "won", "open_pipeline"):
        frame[col] = frame[col].fillna(0)
    period_pot = frame["potential"] * days / 365
    frame["whitespace"] = (period_pot - frame["won"]).clip(lower=0)
    frame["penetration"] = (frame["won"] / period_pot).where(period_pot > 0)

    def col(name, digits=0):
        vals = frame[name].round(digits)
        return [None if pd.isna(v) else (int(v) if digits == 0 else float(v)) for v in vals]

    # the market under the map: the overlay layers and the tooltip's market line
    frame = pd.concat([frame, market.for_units(index.unit, index.ids).drop(
        columns="unit_id")], axis=1)
    frame = market.share_columns(frame)
    return {"accounts": col("accounts"), "potential": col("potential"), "won": col("won"),
            "open_pipeline": col("open_pipeline"), "whitespace": col("whitespace"),
            "penetration": col("penetration", 4),
            **{name: col(name, digits) for name, digits in MARKET_NUMBERS.items()}}


MARKET_NUMBERS = {"market_population": 0, "market_establishments": 0,
                  "market_unemployment_rate": 4, "accounts_per_1k_establishments": 2,
                  "potential_per_capita": 2}
"""Market columns the map's numbers file carries (name -> decimals)."""


# --------------------------------------------------------------------------------------
# the per-rerun spec
# --------------------------------------------------------------------------------------
def unit_codes(index: UnitIndex, assignment: pd.DataFrame, order: list[str]) -> str:
    """Two base-36 characters a unit: its territory's position in `order`, '..' if none."""
    if len(order) > MAX_TERRITORIES:
        raise ValueError(f"the map shows at most {MAX_TERRITORIES} territories")
    codes = np.array([*[a + b for a in CODE_ALPHABET for b in CODE_ALPHABET][:len(order)],
                      ".."], dtype="S2")
    # positions by hash lookups in C (pandas indexes), not a Python loop per unit
    if getattr(index, "_id_index", None) is None:
        index._id_index = pd.Index(np.asarray(index.ids, dtype=object))
    units = index._id_index.get_indexer(assignment["unit_id"].to_numpy(dtype=object))
    terr = pd.Index(np.asarray(order, dtype=object)).get_indexer(
        assignment["territory_id"].to_numpy(dtype=object))
    which = np.full(len(index.ids), len(order), dtype=np.int64)
    ok = (units >= 0) & (terr >= 0)
    which[units[ok]] = terr[ok]
    return codes[which].tobytes().decode("ascii")


def quantile_breaks(values, classes: int = 5) -> list[float]:
    vals = pd.Series(values, dtype=float).dropna()
    if vals.empty:
        return []
    qs = np.unique(np.quantile(vals, np.linspace(0, 1, classes + 1)[1:-1]))
    return [float(q) for q in qs]


SEQUENTIAL = ("#ffffcc", "#a1dab4", "#41b6c4", "#2c7fb8", "#253494")
"""ColorBrewer YlGnBu, 5 classes: colour-blind safe and printable."""


class _Assets(JSCSSMixin, MacroElement):
    """Loads the unit layer script (after Leaflet and leaflet.draw)."""

    default_js = (("atlas_unit_layer", UNIT_LAYER_JS),)
    _template = Template("")


class _LayerUpdate(MacroElement):
    """The per-rerun spec, handed to the unit layer living in the iframe."""

    _template = Template(
        "{% macro script(this, kwargs) %}"
        "window.atlasUnits.update(window.map || map_div, {{ this.spec }});"
        "{% endmacro %}"
    )

    def __init__(self, spec: dict):
        super().__init__()
        self._name = "AtlasLayerUpdate"
        self.spec = json.dumps(spec, separators=(",", ":"), allow_nan=False).replace(
            "</", "<\\/")


def prefetch_script(urls: list[str]) -> str:
    """The URL of prefetch.js asking for `urls` (files of static/cache) at once."""
    return f"{PREFETCH_JS}?{urlencode([('u', u) for u in urls])}"


def base_map(center, zoom: int, tiles: bool, draw: bool,
             prefetch: list[str] | None = None) -> folium.Map:
    """Local assets only, and the same HTML every rerun (no remount). `prefetch`: cached
    files the map's first script starts fetching, before Leaflet has loaded (the scripts
    load one by one; a new list on a later rerun is not loaded again: the map is up)."""
    fmap = folium.Map(location=list(center), zoom_start=zoom, tiles=None, control_scale=True,
                      prefer_canvas=True, min_zoom=2, zoom_snap=0.5, zoom_delta=0.5)
    fmap.default_js = ([("atlas_prefetch", prefetch_script(prefetch))] if prefetch else []
                       ) + LEAFLET_JS
    fmap.default_css = LEAFLET_CSS
    if tiles:
        folium.TileLayer("OpenStreetMap", name="OpenStreetMap", opacity=0.6).add_to(fmap)
    if draw:
        tool = Draw(
            export=False, position="topleft",
            draw_options={"polyline": False, "circle": False, "marker": False,
                          "circlemarker": False,
                          "polygon": {"allowIntersection": False, "showArea": False},
                          "rectangle": {"showArea": False}},
            edit_options={"edit": False, "remove": False},
        )
        tool.default_js = DRAW_JS
        tool.default_css = DRAW_CSS
        tool.add_to(fmap)
    _Assets().add_to(fmap)
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


def view_of(index: UnitIndex):
    """(centre, zoom, bounds): the map opens fitted to the bulk of the units (their 2nd to
    98th percentile, so Alaska and Hawaii do not shrink the lower 48 to a stamp)."""
    if not len(index):
        center, zoom = FR_VIEW if index.unit.kind in ("fr_dept", "fr_commune") else US_VIEW
        return center, zoom, None
    lo_x, hi_x = (float(v) for v in np.percentile(index.lon, [2, 98]))
    lo_y, hi_y = (float(v) for v in np.percentile(index.lat, [2, 98]))
    center = ((lo_y + hi_y) / 2, (lo_x + hi_x) / 2)
    span = max(hi_x - lo_x, 0.5)
    zoom = 3.5 if span > 30 else 4 if span > 20 else 5 if span > 8 else 7
    return center, zoom, ((lo_y, lo_x), (hi_y, hi_x))


def territory_map(
    spec: dict,
    view,
    *,
    tiles: bool,
    draw: bool = True,
    key: str = "territory_map",
    height: int = 600,
    on_change: Callable[[], None] | None = None,
) -> None:
    """Draw the map; the spec is the only thing that changes from one rerun to the next."""
    fmap = base_map(view[0], view[1], tiles, draw,
                    prefetch=[u for u in (spec.get("geometry"), spec.get("basemap")) if u])
    if len(view) > 2 and view[2] is not None:  # part of the base map: set once per plan
        fmap.fit_bounds([list(view[2][0]), list(view[2][1])])
    assert not external_assets(fmap), external_assets(fmap)
    layer = folium.FeatureGroup(name="atlas", control=False)
    _LayerUpdate(spec).add_to(layer)
    st_folium(
        fmap, key=key, height=height, use_container_width=True,
        returned_objects=["last_clicked", "last_active_drawing"],
        feature_group_to_add=layer, on_change=on_change,
    )
