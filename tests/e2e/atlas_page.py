"""Driving the territory map page in Chromium, and the oracle the e2e tests check it with.

`AtlasMap` does what a manager does (pick a brush or a tool, pan, click a county, draw a
shape, Undo, download the summary) and waits for what the page shows after each action:
the map's `#atlas-status` element gets a new `data-version` once the spec of a newer run is
applied, then the script run ends. The expected numbers come from the demo database with
plain SQL and from the shipped county polygons with shapely, never from the app's code.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import shapely
from playwright.sync_api import Frame, Page, expect

from analytics import geography
from tests.e2e.conftest import wait_for_app

MAP_IFRAME = 'iframe[title="streamlit_folium.st_folium"]'
DOWNLOAD = "Download the summary (CSV, with the whole-plan row)"
NOT_LOWER_48 = ("02", "15", "60", "66", "69", "72", "78")  # state FIPS prefixes
WAIT = 60_000  # ms: a rerun on a busy machine


# --------------------------------------------------------------------------------------
# the oracle: the demo database and the shipped county polygons
# --------------------------------------------------------------------------------------
def county_frame(demo_db: Path) -> pd.DataFrame:
    """Every shipped county with its centre (a point on its surface), area, and the demo
    accounts and potential it holds, indexed by FIPS code."""
    ids, names, geoms = geography.unit_polygons("county")
    geoms = np.asarray(geoms, dtype=object)
    centre = shapely.point_on_surface(geoms)
    frame = pd.DataFrame({"unit_id": ids, "name": names, "lat": shapely.get_y(centre),
                          "lon": shapely.get_x(centre), "area": shapely.area(geoms),
                          "geometry": geoms})
    with duckdb.connect(str(demo_db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM account_overrides").fetchone()[0] == 0, \
            "the expected numbers below assume no pinned account"
        held = con.execute("SELECT county AS unit_id, count(*) AS accounts, "
                           "sum(potential) AS potential FROM accounts "
                           "WHERE county IS NOT NULL GROUP BY 1").df()
    frame = frame.merge(held, on="unit_id", how="left")
    frame[["accounts", "potential"]] = frame[["accounts", "potential"]].fillna(0)
    frame["accounts"] = frame["accounts"].astype(int)
    frame.index = frame["unit_id"].tolist()
    return frame


def won_by_county(demo_db: Path, period: tuple[dt.date, dt.date]) -> pd.Series:
    """Won deals closing in the period, summed by the county of their account."""
    with duckdb.connect(str(demo_db), read_only=True) as con:
        won = con.execute(
            "SELECT a.county AS unit_id, sum(s.amount) AS won FROM sales s "
            "JOIN accounts a ON a.account_id = s.account_id WHERE s.stage = 'won' "
            "AND s.close_date BETWEEN ? AND ? AND a.county IS NOT NULL GROUP BY 1",
            list(period)).df()
    return won.set_index("unit_id")["won"]


def county_at(counties: pd.DataFrame, lat: float, lon: float) -> str | None:
    hit = counties[shapely.intersects_xy(np.asarray(counties["geometry"], dtype=object),
                                         lon, lat)]
    return hit["unit_id"].iloc[0] if len(hit) else None


def lower_48(counties: pd.DataFrame) -> pd.DataFrame:
    return counties[~counties["unit_id"].str[:2].isin(NOT_LOWER_48)]


def pick_county(counties: pd.DataFrame, owner: dict[str, str | None],
                avoid: set[str | None]) -> pd.Series:
    """A large lower-48 county holding accounts, in a territory not in `avoid`: the one a
    manager would click first (the most accounts; the FIPS code breaks ties)."""
    c = lower_48(counties)
    c = c[(c["accounts"] >= 2) & (c["area"] > 0.15)]
    c = c[c["unit_id"].map(lambda u: owner.get(u) not in avoid)]
    assert len(c), "no county fits"
    return c.sort_values(["accounts", "unit_id"], ascending=[False, True]).iloc[0]


# --------------------------------------------------------------------------------------
# driving the page
# --------------------------------------------------------------------------------------
@dataclass
class Summary:
    """The downloaded summary CSV: territory rows by id, the whole-plan row, the period."""

    rows: pd.DataFrame
    plan: pd.Series
    period: tuple[dt.date, dt.date]


def inside_unit(frame: Frame, i: int) -> tuple[float, float, float]:
    """(lat, lng, radius in degrees): the centre of the widest circle inside unit `i` as
    the map draws it (its largest part), worked out with shapely from the shapes the map
    was sent."""
    shape = frame.evaluate("i => window.atlasUnits.state.geom.shapes[i]", i)

    def ring(flat):  # [lat, lng, lat, lng, ...] -> [(lng, lat), ...]
        return [(flat[j + 1], flat[j]) for j in range(0, len(flat), 2)]

    polygons = [shapely.Polygon(ring(poly[0]), [ring(h) for h in poly[1:]])
                for poly in shape]
    part = max(polygons, key=lambda p: p.area)
    circle = shapely.maximum_inscribed_circle(part, 1e-4)
    centre = shapely.get_point(circle, 0)
    return centre.y, centre.x, float(circle.length)


def unit_pixels(frame: Frame, points: list[tuple[float, float]]) -> list[list[int]]:
    """[r, g, b, a] of the units' canvas at each (lat, lng), once the map has drawn its
    last change (two animation frames later)."""
    return frame.evaluate("""async (points) => {
        await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
        const map = window.map, renderer = window.atlasUnits.state.renderer;
        const canvas = renderer._container, ctx = canvas.getContext('2d');
        const k = canvas.width / renderer._bounds.getSize().x;  // device pixels a px
        return points.map(([lat, lng]) => {
            const p = map.latLngToLayerPoint([lat, lng]).subtract(renderer._bounds.min);
            return Array.from(ctx.getImageData(Math.round(p.x * k), Math.round(p.y * k),
                                               1, 1).data);
        });
    }""", [[float(a), float(b)] for a, b in points])


def rgb(hex_colour: str) -> list[int]:
    return [int(hex_colour[k:k + 2], 16) for k in (1, 3, 5)]


def assert_counties_in_classes(atlas: AtlasMap, counties: pd.DataFrame, values: pd.Series,
                               layer: dict) -> None:
    """Zoomed on a county of the lower 48, the canvas inside each county on screen (and in
    `values`, indexed by county) shows the class colour of its value, the class found from
    the layer's breaks: at least 20 counties, at least 3 classes."""
    county = pick_county(counties, atlas.territory_of(atlas.codes()), avoid=set())
    atlas.set_view(county["lat"], county["lon"], 6)
    bounds = atlas.frame.evaluate("() => { const b = window.map.getBounds(); "
                                  "return [b.getSouth(), b.getWest(), b.getNorth(), "
                                  "b.getEast()]; }")
    on_screen = counties[counties["lat"].between(bounds[0], bounds[2])
                         & counties["lon"].between(bounds[1], bounds[3])
                         & counties["unit_id"].isin(atlas.position)
                         & counties["unit_id"].isin(values.index)]
    points, expected = [], []
    for unit in on_screen["unit_id"]:
        lat, lng, radius = inside_unit(atlas.frame, atlas.position[unit])
        if radius < 0.06:
            continue
        k = int(np.searchsorted(layer["breaks"], values[unit], side="left"))
        points.append((lat, lng))
        expected.append(rgb(layer["colors"][k]))
    assert len(points) >= 20
    assert len({tuple(e) for e in expected}) >= 3  # several classes on screen
    got = np.asarray(unit_pixels(atlas.frame, points))[:, :3]
    np.testing.assert_allclose(got, np.asarray(expected), atol=3)

def same_summary(a: Summary, b: Summary) -> bool:
    try:
        assert_same_summary(a, b)
    except AssertionError:
        return False
    return True


def assert_same_summary(a: Summary, b: Summary) -> None:
    pd.testing.assert_frame_equal(a.rows, b.rows, check_exact=False, rtol=1e-9)
    pd.testing.assert_series_equal(a.plan, b.plan, check_exact=False, rtol=1e-9)


class AtlasMap:
    """The territory map page: the Streamlit page and the map's iframe."""

    def __init__(self, page: Page, url: str, downloads: Path):
        self.page = page
        self.downloads = downloads
        page.goto(url)
        wait_for_app(page)
        self.iframe = page.locator(MAP_IFRAME)
        self.iframe.wait_for(timeout=WAIT)
        self.frame: Frame = self.iframe.element_handle().content_frame()
        self.frame.wait_for_selector("#atlas-status[data-version]", state="attached",
                                     timeout=WAIT)
        self.ids: list[str] = self.frame.evaluate("() => window.atlasUnits.state.geom.ids")
        self.position = {u: i for i, u in enumerate(self.ids)}
        wait_for_app(page)
        self.start: Summary | None = None  # the plan's numbers before the test
        self.edited = False  # an edit was made and not yet checked undone

    # -- the map's state ---------------------------------------------------------------
    def version(self) -> int:
        return int(self.frame.get_attribute("#atlas-status", "data-version"))

    def codes(self) -> np.ndarray:
        """Territory index per unit (-1: unassigned), as the map coloured them."""
        return np.asarray(self.frame.evaluate(
            "() => Array.from(window.atlasUnits.state.codes)"), dtype=int)

    def territory_ids(self) -> list[str]:
        return self.frame.evaluate(
            "() => window.atlasUnits.state.spec.territories.map(t => t.id)")

    def territory_of(self, codes: np.ndarray) -> dict[str, str | None]:
        order = self.territory_ids()
        return {u: (order[c] if c >= 0 else None)
                for u, c in zip(self.ids, codes, strict=True)}

    def changed_units(self, codes0: np.ndarray, codes1: np.ndarray) -> list[str]:
        return sorted(self.ids[i] for i in np.flatnonzero(codes1 != codes0))

    def after_rerun(self, before: int) -> None:
        """Wait for the map to apply the spec of a newer run, then for the run to end."""
        self.frame.wait_for_function(
            "v => Number(document.getElementById('atlas-status').dataset.version) > v",
            arg=before, timeout=WAIT)
        wait_for_app(self.page)

    # -- the view ------------------------------------------------------------------------
    def set_view(self, lat: float, lng: float, zoom: int) -> None:
        """Pan and zoom as the manager would (no rerun: the server does not hear of it)."""
        self.frame.evaluate("([lat, lng, z]) => { window.map.setView([lat, lng], z, "
                            "{animate: false}); }", [float(lat), float(lng), zoom])

    def view(self) -> dict:
        return self.frame.evaluate(
            "() => ({center: window.map.getCenter(), zoom: window.map.getZoom()})")

    def pixel(self, lat: float, lng: float) -> tuple[float, float]:
        """Where (lat, lng) is on the page now, for the mouse."""
        self.iframe.scroll_into_view_if_needed()
        box = self.iframe.bounding_box()
        x, y = self.frame.evaluate(
            """([lat, lng]) => {
                 const p = window.map.latLngToContainerPoint([lat, lng]);
                 const r = window.map.getContainer().getBoundingClientRect();
                 return [r.left + p.x, r.top + p.y];
               }""", [float(lat), float(lng)])
        return box["x"] + x, box["y"] + y

    def point_at(self, lat: float, lng: float) -> None:
        """Bring the mouse to (lat, lng) so that Leaflet has seen it get there.

        The browser coalesces the moves of a quick pointer and leaflet.draw throttles its
        own: the last move can be missed. Wait for the moves to settle, then move once
        more (that one gets through)."""
        self._track_pointer()
        x, y = self.pixel(lat, lng)
        self.page.mouse.move(x, y, steps=4)
        self.frame.wait_for_function(
            "() => performance.now() - Math.max(window.__movedAt || 0, "
            "window.__vertexAt || 0) > 60")
        self.page.mouse.move(x, y)
        self.frame.wait_for_function(
            """([lat, lng]) => {
                 if (!window.__movedTo) { return false; }
                 const a = window.map.latLngToContainerPoint(window.__movedTo);
                 return a.distanceTo(window.map.latLngToContainerPoint([lat, lng])) < 1.5;
               }""", arg=[float(lat), float(lng)], timeout=10_000)

    def under_pointer(self, lat: float, lng: float, cls: str) -> None:
        """Wait until the element at (lat, lng) in the map has the class `cls`."""
        self.frame.wait_for_function(
            """([lat, lng, cls]) => {
                 const p = window.map.latLngToContainerPoint([lat, lng]);
                 const r = window.map.getContainer().getBoundingClientRect();
                 const el = document.elementFromPoint(r.left + p.x, r.top + p.y);
                 return el !== null && el.classList.contains(cls);
               }""", arg=[float(lat), float(lng), cls], timeout=10_000)

    def _track_pointer(self) -> None:
        self.frame.evaluate("""() => {
            if (window.__tracking) { return; }
            window.__tracking = true; window.__vertexAt = 0; window.__movedAt = 0;
            window.map.on('draw:drawvertex', () => { window.__vertexAt = performance.now(); });
            window.map.on('mousemove', (e) => {
                window.__movedAt = performance.now(); window.__movedTo = e.latlng;
            });
        }""")

    # -- the toolbar ---------------------------------------------------------------------
    def choose(self, label: str, option: str) -> None:
        """Pick `option` (an option's text starts with it) in the selectbox `label`."""
        before = self.version()
        box = self.page.get_by_role("combobox", name=label)
        box.click()
        box.fill(option)
        self.page.get_by_role("option").filter(
            has_text=re.compile("^" + re.escape(option))).first.click()
        self.after_rerun(before)
        expect(box).to_have_value(re.compile("^" + re.escape(option)))

    def pick_layer(self, label: str) -> None:
        """Colour units by `label` with the map's own picker: the canvas is restyled in
        the browser, with no page rerun (the spec's version stays)."""
        before = self.version()
        self.frame.locator("select.atlas-layer-picker").select_option(label=label)
        self.frame.wait_for_function(
            "l => document.getElementById('atlas-status').getAttribute('data-layer') === l",
            arg=label, timeout=WAIT)
        assert self.version() == before

    def tool(self, name: str) -> None:
        """Paint, Erase or Inspect (a segmented control: a radio group)."""
        before = self.version()
        tool = self.page.get_by_role("radiogroup", name="Tool").get_by_role(
            "radio", name=name, exact=True)
        tool.click()
        self.after_rerun(before)
        expect(tool).to_have_attribute("aria-checked", "true")

    def undo(self) -> None:
        before = self.version()
        # the button's name also holds its shortcut's key cap (Ctrl+Z)
        self.page.get_by_role("button", name=re.compile(r"^Undo\b")).click()
        self.after_rerun(before)

    def click_unit(self, lat: float, lng: float) -> None:
        self.edited = True
        before = self.version()
        self.page.mouse.click(*self.pixel(lat, lng))
        self.after_rerun(before)

    def draw_polygon(self, vertices: list[tuple[float, float]],
                     pause: int | None = None) -> dict:
        """Draw a polygon with the draw toolbar: a click per vertex, then a click on the
        first vertex to close it (`pause` ms after each click: a person's pace). Return
        the GeoJSON geometry the map sent to the server."""
        self._track_pointer()
        self.edited = True
        before = self.version()
        self.frame.locator(".leaflet-draw-draw-polygon").click()
        placed = self.frame.locator(".leaflet-editing-icon")  # a marker per vertex
        for n, (lat, lng) in enumerate([*vertices, vertices[0]], start=1):
            closing = n > len(vertices)
            # leaflet.draw drops a mousedown within 50 ms of the last vertex (point_at
            # waits for that) and takes one only on a small marker following the mouse;
            # the closing click is on the first vertex's marker
            self.point_at(lat, lng)
            self.under_pointer(lat, lng, "leaflet-editing-icon" if closing
                               else "leaflet-mouse-marker")
            # the page may have moved since (a message above the map): read it again
            self.page.mouse.click(*self.pixel(lat, lng))
            if not closing:
                expect(placed).to_have_count(n, timeout=10_000)
            if pause:
                self.page.wait_for_timeout(pause)
        self.drawn_under = before  # the spec the map answered the shape under
        self.after_rerun(before)
        return self.frame.evaluate(
            "() => window.__GLOBAL_DATA__.last_active_drawing.geometry")

    def draw_rectangle(self, corner: tuple[float, float],
                       opposite: tuple[float, float]) -> dict:
        """Draw a rectangle with the draw toolbar (press, drag, release); return the
        GeoJSON geometry the map sent to the server."""
        self._track_pointer()
        self.edited = True
        before = self.version()
        self.frame.locator(".leaflet-draw-draw-rectangle").click()
        self.point_at(*corner)
        self.page.mouse.down()
        self.point_at(*opposite)  # the rectangle follows the last move Leaflet saw
        self.page.mouse.up()
        self.drawn_under = before  # the spec the map answered the shape under
        self.after_rerun(before)
        return self.frame.evaluate(
            "() => window.__GLOBAL_DATA__.last_active_drawing.geometry")

    # -- what the manager reads ----------------------------------------------------------
    def alert(self, text: str) -> None:
        """The message above the map (an edit's result) reads `text`."""
        alerts = self.page.locator('[data-testid="stAlert"]')
        try:
            expect(alerts.filter(has_text=text)).to_be_visible(timeout=WAIT)
        except AssertionError as err:
            raise AssertionError(f"no alert {text!r}; alerts: {alerts.all_inner_texts()}"
                                 ) from err

    def metric(self, label: str) -> str:
        card = self.page.locator('[data-testid="stMetric"]').filter(
            has=self.page.locator('[data-testid="stMetricLabel"]',
                                  has_text=re.compile(f"^{re.escape(label)}$")))
        expect(card).to_have_count(1)
        return card.locator('[data-testid="stMetricValue"]').inner_text().strip()

    def summary(self) -> Summary:
        """Download the summary CSV as the manager would (the download does not rerun the
        page)."""
        wait_for_app(self.page)
        before = self.version()
        with self.page.expect_download(timeout=WAIT) as info:
            self.page.get_by_role("button", name=DOWNLOAD).click()
        download = info.value
        path = self.downloads / f"summary-{before}.csv"
        download.save_as(path)
        frame = pd.read_csv(path, dtype={"territory_id": str, "rep_id": str})
        start, end = re.findall(r"(\d{8})", download.suggested_filename)[-2:]
        period = (dt.datetime.strptime(start, "%Y%m%d").date(),
                  dt.datetime.strptime(end, "%Y%m%d").date())
        plan = frame.set_index("territory_id").loc["__plan__"]
        rows = frame[frame["territory_id"] != "__plan__"].set_index("territory_id")
        return Summary(rows, plan, period)

    def assert_restored(self) -> None:
        """The summary CSV is again the one the test started from."""
        assert self.start is not None
        assert_same_summary(self.summary(), self.start)
        self.edited = False

    def restore(self, max_undos: int = 8) -> None:
        """Undo until the plan's numbers are those the test started from (nothing to do
        when the test made no edit or checked it undone)."""
        if not self.edited:
            return
        assert self.start is not None
        for _ in range(max_undos + 1):
            if same_summary(self.summary(), self.start):
                self.edited = False
                return
            self.undo()
        raise AssertionError("the plan could not be brought back by Undo")
