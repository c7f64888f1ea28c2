"""Edit the territory map as a manager would, in a real Chromium, and check the numbers.

Open the map, pick a brush territory, click a county (or draw a shape with the draw
toolbar, or erase a county); check the message, the map's colours and the downloaded
summary CSV moved by exactly what the demo database says those counties hold; Undo and
check everything came back. The expected numbers come from the demo database with plain
SQL and from the shipped county polygons with shapely, never from the app's own code.

The server's database is shared by every test of the session: each test undoes its edits,
and the `atlas` fixture undoes whatever a failed test left behind.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import shapely
from playwright.sync_api import expect

from tests.e2e.atlas_page import (
    WAIT,
    AtlasMap,
    Summary,
    assert_counties_in_classes,
    county_at,
    inside_unit,
    lower_48,
    pick_county,
    rgb,
    unit_pixels,
    won_by_county,
)
from tests.e2e.conftest import wait_for_app

pytestmark = pytest.mark.e2e

BRUSH = "T02"
HUMAN_PAUSE = 600  # ms between two clicks of a person drawing a polygon


def opened_map(page, app_url, tmp_path):
    """The map page, opened, with the plan's numbers before the test (`atlas.start`);
    after the test, whatever a test that failed half-way left in the shared database is
    undone."""
    atlas = AtlasMap(page, app_url, tmp_path)
    atlas.start = atlas.summary()
    yield atlas
    try:
        atlas.restore()
    except Exception as err:  # noqa: BLE001 - reported, the test's own error matters more
        warnings.warn(f"could not undo the test's edits: {err}", stacklevel=1)


@pytest.fixture
def atlas(page, app_url, tmp_path):
    yield from opened_map(page, app_url, tmp_path)


ADDED = ["accounts", "potential", "won", "units"]


def expected_after(before: Summary, moves: dict[str, tuple[str | None, str | None]],
                   counties: pd.DataFrame, won: pd.Series) -> pd.DataFrame:
    """The summary's additive columns once `moves` (unit -> (from, to)) are applied."""
    out = before.rows[ADDED].astype(float).copy()
    for unit, (src, dst) in moves.items():
        delta = pd.Series({"accounts": counties.at[unit, "accounts"],
                           "potential": counties.at[unit, "potential"],
                           "won": float(won.get(unit, 0.0)), "units": 1.0})
        if src is not None:
            out.loc[src] -= delta
        if dst is not None:
            out.loc[dst] += delta
    return out


def assert_numbers(actual: Summary, expected: pd.DataFrame) -> None:
    got = actual.rows[ADDED].astype(float)
    pd.testing.assert_index_equal(got.index, expected.index)
    for col in ADDED:
        np.testing.assert_allclose(got[col].to_numpy(), expected[col].to_numpy(),
                                   rtol=1e-9, atol=0.01, err_msg=col)


def hexagon(lat: float, lon: float, r: float) -> list[tuple[float, float]]:
    """An irregular hexagon about 2 r degrees (of latitude) across around a point."""
    angles = np.deg2rad([0, 70, 130, 180, 240, 300])
    return [(lat + r * np.sin(a), lon + 1.2 * r * np.cos(a) / np.cos(np.deg2rad(lat)))
            for a in angles]


def box(lat: float, lon: float, r: float) -> list[tuple[float, float]]:
    """A rectangle about 2 r degrees (of latitude) high around a point, as corners."""
    dx = 1.2 * r / np.cos(np.deg2rad(lat))
    return [(lat - r, lon - dx), (lat - r, lon + dx), (lat + r, lon + dx), (lat + r, lon - dx)]


def pick_area(counties: pd.DataFrame, owner: dict[str, str | None], shape_of):
    """Where a manager would draw: a spot on a territory border (a few counties around
    it, in at least two territories other than the brush), holding many accounts; the
    county under the first corner is not in the brush territory either."""
    lat, lon = counties["lat"].to_numpy(), counties["lon"].to_numpy()
    best = None
    for row in lower_48(counties[counties["accounts"] > 0]).itertuples(index=False):
        corners = shape_of(row.lat, row.lon)
        shape = shapely.Polygon([(x, y) for y, x in corners])
        inside = counties[shapely.contains_xy(shape, lon, lat)]
        owners = {owner[u] for u in inside["unit_id"]}
        if not 4 <= len(inside) <= 30 or None in owners or BRUSH in owners:
            continue
        key = (len(owners), int(inside["accounts"].sum()), row.unit_id)
        if best is None or key > best[0]:
            if owner.get(county_at(counties, *corners[0])) in (BRUSH, None):
                continue
            best = (key, row)
    assert best is not None, "no place to draw"
    return best[1]


def check_drawn_shape(atlas: AtlasMap, geometry: dict, corners: int, codes0: np.ndarray,
                      owner: dict, counties: pd.DataFrame, won: pd.Series) -> str:
    """The drawn shape moved exactly the units whose centre it holds (by shapely over the
    shipped polygons), the map and the CSV say so; return the edit's label."""
    shape = shapely.geometry.shape(geometry)
    assert shape.geom_type == "Polygon"
    assert len(shape.exterior.coords) == corners + 1
    inside = counties[shapely.contains_xy(shape, counties["lon"], counties["lat"])]
    units = sorted(inside["unit_id"])
    assert len(units) >= 4, units
    moved = [u for u in units if owner[u] != BRUSH]
    label = f"Assign {len(units)} units (drawn shape) to {BRUSH}"
    atlas.alert(f"{label}: {len(moved)} changed")
    # the map recoloured those units itself, under the spec from before the shape
    status = atlas.frame.locator("#atlas-status")
    assert sorted(status.get_attribute("data-answered-first").split(",")) == sorted(moved)
    assert int(status.get_attribute("data-answered-under")) == atlas.drawn_under
    codes1 = atlas.codes()
    assert atlas.changed_units(codes0, codes1) == sorted(moved)  # those, and only those
    brush_code = atlas.territory_ids().index(BRUSH)
    assert all(codes1[atlas.position[u]] == brush_code for u in units)
    after = atlas.summary()
    assert_numbers(after, expected_after(atlas.start, {u: (owner[u], BRUSH) for u in moved},
                                         counties, won))
    # the territories that lost units are exactly those the moved units came from
    lost = after.rows["units"] < atlas.start.rows["units"]
    assert set(after.rows.index[lost]) == {owner[u] for u in moved}
    assert after.plan["accounts"] == atlas.start.plan["accounts"]
    return label


# --------------------------------------------------------------------------------------
# the tests
# --------------------------------------------------------------------------------------
def test_paint_a_county_by_click_then_undo(atlas, counties, demo_db):
    before = atlas.start
    won = won_by_county(demo_db, before.period)
    atlas.choose("Brush (territory)", BRUSH)
    codes0 = atlas.codes()
    owner = atlas.territory_of(codes0)
    county = pick_county(counties, owner, avoid={BRUSH, None})
    unit, old = county["unit_id"], owner[county["unit_id"]]

    atlas.set_view(county["lat"], county["lon"], 8)
    atlas.click_unit(county["lat"], county["lon"])

    atlas.alert(f"Assign unit {unit} to {BRUSH}: 1 changed")
    codes1 = atlas.codes()
    assert codes1[atlas.position[unit]] == atlas.territory_ids().index(BRUSH)  # its colour
    assert atlas.changed_units(codes0, codes1) == [unit]  # and only its
    after = atlas.summary()
    assert_numbers(after, expected_after(before, {unit: (old, BRUSH)}, counties, won))
    assert after.rows.at[BRUSH, "accounts"] - before.rows.at[BRUSH, "accounts"] \
        == county["accounts"] > 0
    assert after.plan["accounts"] == before.plan["accounts"]  # moved, not lost

    atlas.undo()
    atlas.alert(f"Assign unit {unit} to {BRUSH}")
    assert (atlas.codes() == codes0).all()
    atlas.assert_restored()


def test_draw_a_rectangle_then_undo(atlas, counties, demo_db):
    won = won_by_county(demo_db, atlas.start.period)
    atlas.choose("Brush (territory)", BRUSH)
    codes0 = atlas.codes()
    owner = atlas.territory_of(codes0)
    spot = pick_area(counties, owner, lambda lat, lon: box(lat, lon, 0.5))
    atlas.set_view(spot.lat, spot.lon, 7)
    corners = box(spot.lat, spot.lon, 0.5)

    geometry = atlas.draw_rectangle(corners[0], corners[2])

    label = check_drawn_shape(atlas, geometry, 4, codes0, owner, counties, won)
    atlas.undo()
    atlas.alert(label)
    assert (atlas.codes() == codes0).all()
    atlas.assert_restored()


def test_draw_a_polygon_then_undo(atlas, counties, demo_db):
    won = won_by_county(demo_db, atlas.start.period)
    atlas.choose("Brush (territory)", BRUSH)
    codes0 = atlas.codes()
    owner = atlas.territory_of(codes0)
    spot = pick_area(counties, owner, lambda lat, lon: hexagon(lat, lon, 0.6))
    atlas.set_view(spot.lat, spot.lon, 7)
    vertices = hexagon(spot.lat, spot.lon, 0.6)

    # at a person's pace: longer between clicks than streamlit-folium's 250 ms debounce
    geometry = atlas.draw_polygon(vertices, pause=HUMAN_PAUSE)

    label = check_drawn_shape(atlas, geometry, len(vertices), codes0, owner, counties, won)
    atlas.undo()
    atlas.alert(label)
    assert (atlas.codes() == codes0).all()
    atlas.assert_restored()


def test_erase_a_county_then_undo(atlas, counties, demo_db):
    before = atlas.start
    won = won_by_county(demo_db, before.period)
    unassigned = int(atlas.metric("Unassigned").replace(",", ""))
    assert unassigned == int(before.plan["unassigned_accounts"])
    atlas.tool("Erase")
    codes0 = atlas.codes()
    owner = atlas.territory_of(codes0)
    county = pick_county(counties, owner, avoid={None})
    unit, old = county["unit_id"], owner[county["unit_id"]]

    atlas.set_view(county["lat"], county["lon"], 8)
    atlas.click_unit(county["lat"], county["lon"])

    atlas.alert(f"Erase unit {unit}: 1 changed")
    assert atlas.metric("Unassigned") == f"{unassigned + county['accounts']:,}"
    codes1 = atlas.codes()
    assert codes1[atlas.position[unit]] == -1  # grey on the map
    assert atlas.changed_units(codes0, codes1) == [unit]
    after = atlas.summary()
    assert_numbers(after, expected_after(before, {unit: (old, None)}, counties, won))
    assert int(after.plan["unassigned_accounts"]) == unassigned + county["accounts"]

    atlas.undo()
    atlas.alert(f"Erase unit {unit}")
    assert atlas.metric("Unassigned") == f"{unassigned:,}"
    assert (atlas.codes() == codes0).all()
    atlas.assert_restored()


def test_an_edit_keeps_the_view_and_the_map(atlas, counties):
    atlas.choose("Brush (territory)", BRUSH)
    owner = atlas.territory_of(atlas.codes())
    county = pick_county(counties, owner, avoid={BRUSH, None})
    unit = county["unit_id"]
    # a view the manager panned and zoomed to, a little off the county
    atlas.set_view(county["lat"] + 0.3, county["lon"] - 0.4, 7)
    view = atlas.view()
    atlas.frame.evaluate("() => { window.__mark = 1; window.map.__mark = 1; }")

    atlas.click_unit(county["lat"], county["lon"])
    atlas.alert(f"Assign unit {unit} to {BRUSH}: 1 changed")
    assert atlas.view() == view
    # the same document and the same Leaflet map: the iframe was not rebuilt
    assert atlas.frame.evaluate("() => [window.__mark, window.map.__mark]") == [1, 1]

    atlas.undo()
    atlas.alert(f"Assign unit {unit} to {BRUSH}")
    assert atlas.view() == view
    assert atlas.frame.evaluate("() => [window.__mark, window.map.__mark]") == [1, 1]
    assert atlas.codes()[atlas.position[unit]] == atlas.territory_ids().index(owner[unit])


def test_colour_by_a_unit_metric_shows_a_legend(atlas):
    legend = atlas.frame.locator(".atlas-legend")
    assert legend.count() == 0
    atlas.pick_layer("Potential (unit)")
    expect(legend).to_be_visible(timeout=WAIT)
    expect(legend).to_contain_text("Potential (unit)")
    expect(legend).to_contain_text("no value")
    assert int(atlas.frame.get_attribute("#atlas-status", "data-restyled")) > 0
    atlas.pick_layer("Territory")
    expect(legend).to_have_count(0, timeout=WAIT)


@pytest.mark.parametrize("tool", ["Paint", "Erase"])
def test_the_map_answers_a_click_before_the_server(atlas, counties, tool):
    """A click recolours its unit in the map at once, under the spec the server sent before
    the click (`data-answered-under`), then the server's answer (a newer spec) agrees."""
    if tool == "Paint":
        atlas.choose("Brush (territory)", BRUSH)
    else:
        atlas.tool("Erase")
    codes0 = atlas.codes()
    owner = atlas.territory_of(codes0)
    county = pick_county(counties, owner, avoid={BRUSH, None})
    unit = county["unit_id"]
    atlas.set_view(county["lat"], county["lon"], 8)
    before = atlas.version()
    target = atlas.territory_ids().index(BRUSH) if tool == "Paint" else -1
    terr0 = {t["id"]: t for t in atlas.frame.evaluate(
        "() => window.atlasUnits.state.spec.territories")}
    old = owner[unit]
    # the panel's first estimate, kept as drawn (the server's answer soon replaces it)
    atlas.frame.evaluate("""() => {
        window.__estimate = null;
        new MutationObserver(() => {
            const el = document.getElementById('atlas-stroke');
            if (!window.__estimate && el && el.dataset.status === 'estimate') {
                window.__estimate = {status: el.dataset.status, rows: el.dataset.rows,
                                     text: el.innerText};
            }
        }).observe(document.body, {attributes: true, subtree: true,
                                   attributeFilter: ['data-status']});
    }""")
    atlas.edited = True
    atlas.page.mouse.click(*atlas.pixel(county["lat"], county["lon"]))
    atlas.frame.wait_for_function(
        "([i, t]) => window.atlasUnits.state.codes[i] === t",
        arg=[atlas.position[unit], target], timeout=10_000)
    status = atlas.frame.locator("#atlas-status")
    assert status.get_attribute("data-answered-first") == unit
    assert int(status.get_attribute("data-answered-under")) == before  # before the server
    # the stroke panel: the touched territories' numbers moved by the county's own, at once
    shown = atlas.frame.evaluate("() => window.__estimate")
    assert shown is not None, "the map drew no estimate"
    rows = {r["id"]: r for r in json.loads(shown["rows"])}
    assert set(rows) == ({old, BRUSH} if tool == "Paint" else {old})
    n = int(county["accounts"])
    assert rows[old]["accounts"] == terr0[old]["accounts"] - n
    if county["potential"] >= 1000:  # what the territory lost, written as money is
        assert "(-$" in shown["text"]
    if tool == "Paint":
        assert rows[BRUSH]["accounts"] == terr0[BRUSH]["accounts"] + n
    atlas.after_rerun(before)  # the server's answer
    codes1 = atlas.codes()
    assert codes1[atlas.position[unit]] == target  # it agrees
    assert atlas.changed_units(codes0, codes1) == [unit]
    # the panel now shows the server's numbers, and they are what the estimate said
    atlas.frame.wait_for_function(
        "() => document.getElementById('atlas-stroke').dataset.status === 'saved'")
    saved = {r["id"]: r for r in json.loads(
        atlas.frame.get_attribute("#atlas-stroke", "data-rows"))}
    terr1 = {t["id"]: t for t in atlas.frame.evaluate(
        "() => window.atlasUnits.state.spec.territories")}
    for tid, r in saved.items():
        assert (r["accounts"], r["won"], r["quota"]) == (
            terr1[tid]["accounts"], terr1[tid]["won"], terr1[tid]["quota"])
        assert r["accounts"] == rows[tid]["accounts"]  # no pins in the demo: exact
    atlas.undo()
    assert (atlas.codes() == codes0).all()
    atlas.assert_restored()


def test_a_click_on_the_stroke_panel_is_not_a_click_on_the_map(atlas, counties):
    """The stroke panel sits over units: a click on it (to read or copy its numbers) must
    not paint the unit beneath it (the map's own click handler never hears of it)."""
    atlas.choose("Brush (territory)", BRUSH)
    codes0 = atlas.codes()
    county = pick_county(counties, atlas.territory_of(codes0), avoid={BRUSH, None})
    atlas.set_view(county["lat"], county["lon"], 8)
    atlas.click_unit(county["lat"], county["lon"])  # the panel appears
    panel = atlas.frame.locator("#atlas-stroke")
    panel.wait_for(timeout=WAIT)
    codes1 = atlas.codes()
    clicked = atlas.frame.evaluate("() => JSON.stringify(window.__GLOBAL_DATA__"
                                   ".lat_lng_clicked)")
    box = panel.bounding_box()
    atlas.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    # the map's click handler records a click as it happens: none was recorded
    assert atlas.frame.evaluate("() => JSON.stringify(window.__GLOBAL_DATA__"
                                ".lat_lng_clicked)") == clicked
    assert (atlas.codes() == codes1).all()
    atlas.undo()
    assert (atlas.codes() == codes0).all()
    atlas.assert_restored()


def test_a_click_on_a_rep_home_paints_the_unit_beneath_at_once(atlas, counties):
    """A rep's home marker lies above the units: a click on it is a click on the unit
    under it, answered by the map before the server like any other."""
    atlas.choose("Brush (territory)", BRUSH)
    codes0 = atlas.codes()
    owner = atlas.territory_of(codes0)
    homes = atlas.frame.evaluate("() => window.atlasUnits.state.spec.homes")
    home, unit = next((h, u) for h in homes
                      if (u := county_at(counties, h[0], h[1])) in atlas.position
                      and owner[u] not in {BRUSH, None})
    atlas.set_view(home[0], home[1], 8)
    assert atlas.frame.evaluate(  # what the mouse will hit there: the marker's SVG path
        """([lat, lng]) => {
             const p = window.map.latLngToContainerPoint([lat, lng]);
             const r = window.map.getContainer().getBoundingClientRect();
             return document.elementFromPoint(r.left + p.x, r.top + p.y).tagName;
           }""", [home[0], home[1]]) == "path"
    before = atlas.version()
    atlas.edited = True
    atlas.page.mouse.click(*atlas.pixel(home[0], home[1]))
    target = atlas.territory_ids().index(BRUSH)
    atlas.frame.wait_for_function("([i, t]) => window.atlasUnits.state.codes[i] === t",
                                  arg=[atlas.position[unit], target], timeout=10_000)
    status = atlas.frame.locator("#atlas-status")
    assert status.get_attribute("data-answered-first") == unit
    assert int(status.get_attribute("data-answered-under")) == before  # before the server
    atlas.after_rerun(before)
    assert atlas.changed_units(codes0, atlas.codes()) == [unit]  # the server agrees
    atlas.undo()
    assert (atlas.codes() == codes0).all()
    atlas.assert_restored()


def test_the_canvas_shows_each_unit_in_its_territory_colour_and_a_click_at_once(
        atlas, counties):
    """What the manager sees, read from the units' canvas: inside each county on screen,
    its territory's colour at the opacity the map gives it (the brush territory stronger);
    a click shows the brush colour at once, Undo puts the old colour back."""
    atlas.choose("Brush (territory)", BRUSH)
    codes0 = atlas.codes()
    owner = atlas.territory_of(codes0)
    county = pick_county(counties, owner, avoid={BRUSH, None})
    atlas.set_view(county["lat"], county["lon"], 6)
    spec = atlas.frame.evaluate("() => window.atlasUnits.state.spec")
    bounds = atlas.frame.evaluate("() => { const b = window.map.getBounds(); "
                                  "return [b.getSouth(), b.getWest(), b.getNorth(), "
                                  "b.getEast()]; }")
    on_screen = counties[counties["lat"].between(bounds[0], bounds[2])
                         & counties["lon"].between(bounds[1], bounds[3])
                         & counties["unit_id"].isin(atlas.position)]
    points, expected = [], []
    for unit in on_screen["unit_id"]:
        lat, lng, radius = inside_unit(atlas.frame, atlas.position[unit])
        if radius < 0.06:  # under 3 px at zoom 6: the white unit edge could be read
            continue
        code = int(codes0[atlas.position[unit]])
        territory = spec["territories"][code] if code >= 0 else None
        colour = territory["color"] if territory else "#E6E6E6"
        opacity = (0.4 if territory and territory["locked"] else
                   0.92 if territory and territory["id"] == BRUSH else 0.68)
        points.append((lat, lng))
        expected.append([*rgb(colour), round(255 * opacity)])
    assert len(points) >= 20, len(points)
    assert len({tuple(e) for e in expected}) >= 3  # several territories on screen
    got = np.asarray(unit_pixels(atlas.frame, points))
    np.testing.assert_allclose(got, np.asarray(expected), atol=3)

    # a click: the brush colour at once, the old colour back after Undo
    lat, lng, _ = inside_unit(atlas.frame, atlas.position[county["unit_id"]])
    before = unit_pixels(atlas.frame, [(lat, lng)])[0]
    brush = next(t for t in spec["territories"] if t["id"] == BRUSH)
    atlas.click_unit(lat, lng)
    np.testing.assert_allclose(unit_pixels(atlas.frame, [(lat, lng)])[0],
                               [*rgb(brush["color"]), round(255 * 0.92)], atol=3)
    atlas.undo()
    assert unit_pixels(atlas.frame, [(lat, lng)])[0] == before
    atlas.assert_restored()


def test_inspect_clicks_do_not_recolour(atlas, counties):
    atlas.tool("Inspect")
    codes0 = atlas.codes()
    county = pick_county(counties, atlas.territory_of(codes0), avoid={None})
    atlas.set_view(county["lat"], county["lon"], 8)
    atlas.click_unit(county["lat"], county["lon"])
    assert (atlas.codes() == codes0).all()
    atlas.tool("Paint")


def test_a_rerun_that_began_before_the_click_does_not_undo_the_maps_answer(atlas, counties):
    """A spec the server made before it saw the click (here: the last one, sent again as a
    newer version) keeps the map's answer and the estimate; the click's own answer then
    settles it."""
    atlas.choose("Brush (territory)", BRUSH)
    codes0 = atlas.codes()
    county = pick_county(counties, atlas.territory_of(codes0), avoid={BRUSH, None})
    unit = county["unit_id"]
    atlas.set_view(county["lat"], county["lon"], 8)
    before = atlas.version()
    target = atlas.territory_ids().index(BRUSH)
    atlas.edited = True
    # the stale spec lands in the click's own dispatch (the map's click listener runs after
    # the unit's, which answered it), before the stroke is even sent: the server's answer
    # cannot overtake it, as it did when the test sent it a moment after the click
    atlas.frame.evaluate("""i => {
        const s = window.atlasUnits.state;
        s.map.once("click", () => {
            window.atlasUnits.update(s.map, {...s.spec, version: s.spec.version + 1000});
            window.__atlasStale = {
                version: s.version, code: s.codes[i],
                status: document.getElementById("atlas-stroke").dataset.status};
        });
    }""", atlas.position[unit])
    atlas.page.mouse.click(*atlas.pixel(county["lat"], county["lon"]))
    stale = atlas.frame.wait_for_function(
        "() => window.__atlasStale", timeout=10_000).json_value()
    assert stale["version"] == before + 1000
    assert stale["code"] == target  # still the map's answer
    assert stale["status"] == "estimate"
    atlas.frame.wait_for_function(
        "() => document.getElementById('atlas-stroke').dataset.status === 'saved'",
        timeout=WAIT)
    wait_for_app(atlas.page)
    assert atlas.codes()[atlas.position[unit]] == target
    atlas.undo()
    assert (atlas.codes() == codes0).all()
    atlas.assert_restored()


def brushed_counties(counties: pd.DataFrame, lat: float, lon0: float, lon1: float,
                     radius_km: float) -> tuple[set[str], set[str]]:
    """(must, may): the counties a drag along latitude `lat` from `lon0` to `lon1` must
    paint (the path crosses more than ~3 km of them, or their centre is well inside the
    brush), and those it may paint (near the path or the brush's edge: the map's shapes
    are simplified to ~1 km), from the shipped polygons with shapely."""
    line = shapely.LineString([(lon0, lat), (lon1, lat)])
    km_lon = 111.32 * np.cos(np.deg2rad(lat))  # km per degree of longitude here
    crossed = shapely.length(shapely.intersection(counties["geometry"].to_numpy(), line))
    near = shapely.intersects(counties["geometry"].to_numpy(), line.buffer(0.03))
    dx = np.clip(counties["lon"].to_numpy(), lon0, lon1) - counties["lon"].to_numpy()
    dist = np.hypot(dx * km_lon, (counties["lat"].to_numpy() - lat) * 111.32)
    must = (crossed * km_lon > 3) | (dist < radius_km - 2) if radius_km else crossed * km_lon > 3
    may = near | (dist < radius_km + 2) if radius_km else near
    ids = counties["unit_id"].to_numpy()
    return set(ids[must]), set(ids[may])


def mouse_drag(atlas: AtlasMap, lat: float, lon0: float, lon1: float) -> None:
    atlas.page.mouse.move(*atlas.pixel(lat, lon0))
    atlas.page.mouse.down()
    atlas.page.mouse.move(*atlas.pixel(lat, lon1), steps=30)
    atlas.page.mouse.up()


def finger_drag(atlas: AtlasMap, lat: float, lon0: float, lon1: float) -> None:
    """A finger on a touch screen (Chromium's own touch events, through DevTools)."""
    cdp = atlas.page.context.new_cdp_session(atlas.page)
    (x0, y), (x1, _) = atlas.pixel(lat, lon0), atlas.pixel(lat, lon1)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart",
                                          "touchPoints": [{"x": x0, "y": y}]})
    for k in range(1, 31):
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [
            {"x": x0 + (x1 - x0) * k / 30, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def paint_by_dragging(atlas: AtlasMap, counties, demo_db, size: str, radius_km: float,
                      drag) -> tuple[np.ndarray, list[str]]:
    """Drag across a few counties with the brush `size`: every county the pointer passes
    over (or within the brush size) is painted at once, the server saves them as one edit
    whose numbers are the counties' own. Returns (codes before, units painted)."""
    won = won_by_county(demo_db, atlas.start.period)
    atlas.choose("Brush (territory)", BRUSH)
    atlas.choose("Drag", size)
    codes0 = atlas.codes()
    owner = atlas.territory_of(codes0)
    row = pick_area(counties, owner, lambda la, lo: box(la, lo, 0.6))
    lat, lon0, lon1 = float(row.lat), float(row.lon) - 0.6, float(row.lon) + 0.6
    atlas.set_view(lat, (lon0 + lon1) / 2, 8)
    must, may = brushed_counties(counties, lat, lon0, lon1, radius_km)
    assert len(must) >= 3, must

    before = atlas.version()
    atlas.edited = True
    drag(atlas, lat, lon0, lon1)
    # the map's answer, before the server's
    atlas.frame.wait_for_function(
        "() => (document.getElementById('atlas-stroke') || {dataset: {}})"
        ".dataset.status === 'estimate' || window.atlasUnits.state.version > "
        + str(before), timeout=10_000)
    painted = atlas.changed_units(codes0, atlas.codes())
    assert int(atlas.frame.get_attribute("#atlas-status", "data-answered-under")) == before
    expected = {u for u in must if owner[u] != BRUSH}
    assert expected <= set(painted) <= may, (sorted(expected - set(painted)),
                                             sorted(set(painted) - may))
    assert atlas.view()["zoom"] == 8  # the drag painted, it did not move the map

    atlas.after_rerun(before)
    atlas.alert(f"Assign {len(painted)} units (brush) to {BRUSH}: {len(painted)} changed")
    atlas.frame.wait_for_function(
        "() => document.getElementById('atlas-stroke').dataset.status === 'saved'")
    assert atlas.changed_units(codes0, atlas.codes()) == painted  # the server agrees
    after = atlas.summary()
    assert_numbers(after, expected_after(atlas.start, {u: (owner[u], BRUSH) for u in painted},
                                         counties, won))
    return codes0, painted


@pytest.mark.parametrize(("size", "radius_km"), [("Drag paints, 1 unit", 0.0),
                                                 ("Drag paints, 25 km", 25.0)])
def test_a_drag_of_the_brush_paints_one_stroke_and_ctrl_z_takes_it_back(
        atlas, counties, demo_db, size, radius_km):
    """One mouse drag, one stroke; one Ctrl+Z (the map focused) takes the whole stroke
    back, Ctrl+Shift+Z (from the page) redoes it."""
    codes0, painted = paint_by_dragging(atlas, counties, demo_db, size, radius_km,
                                        mouse_drag)
    atlas.frame.locator(".leaflet-container").focus()
    before = atlas.version()
    atlas.page.keyboard.press("Control+z")
    atlas.after_rerun(before)
    atlas.alert(f"Assign {len(painted)} units (brush) to {BRUSH}")
    assert (atlas.codes() == codes0).all()
    atlas.page.get_by_role("heading", name="Territory map").click()
    before = atlas.version()
    atlas.page.keyboard.press("Control+Shift+z")
    atlas.after_rerun(before)
    assert atlas.changed_units(codes0, atlas.codes()) == painted
    atlas.undo()
    atlas.choose("Drag", "Drag moves the map")
    atlas.assert_restored()


@pytest.fixture
def touch_atlas(browser, app_url, tmp_path):
    """The map page on a touch screen (a tablet in a meeting)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                  accept_downloads=True, has_touch=True)
    yield from opened_map(context.new_page(), app_url, tmp_path)
    context.close()


def test_a_finger_drag_paints_too(touch_atlas, counties, demo_db):
    codes0, _ = paint_by_dragging(touch_atlas, counties, demo_db, "Drag paints, 1 unit", 0.0,
                                  finger_drag)
    touch_atlas.undo()
    assert (touch_atlas.codes() == codes0).all()
    touch_atlas.assert_restored()


def test_a_market_layer_colours_each_county_by_its_census_class(atlas, counties):
    """Colour units by Population: the legend names the layer; inside each county on
    screen the canvas shows the class colour of its 2020 Census population (the county
    table read with pandas, the class found from the legend's breaks); back to Territory."""
    from analytics import market

    atlas.pick_layer("Population (unit)")
    legend = atlas.frame.locator(".atlas-legend")
    expect(legend).to_contain_text("Population")
    layer = atlas.frame.evaluate("() => window.atlasUnits.activeLayer()")
    assert layer["metric"] == "market_population"
    census = pd.read_parquet(market.COUNTY_MARKET_FILE).set_index("county")["population"]
    assert_counties_in_classes(atlas, counties, census, layer)
    atlas.pick_layer("Territory")
    expect(legend).to_have_count(0)
