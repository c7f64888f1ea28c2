"""The market under the map and the rep's week, in Chromium: a manager's own overlay as a
map layer (each county in the colour of its value's class), and a rep's week on the map
(every stop a numbered marker where the engine put it, the day's line in the day's colour,
a day's GPX downloaded from the page)."""

from __future__ import annotations

import datetime as dt
import io
import itertools
import re
import shutil

import gpxpy
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from analytics import overlays, plans, routes, users
from analytics.settings import load_settings
from analytics.store import Store
from tests.e2e.atlas_page import WAIT, AtlasMap, assert_counties_in_classes, rgb
from tests.e2e.conftest import serving, wait_for_app

pytestmark = pytest.mark.e2e

ROUTE_MAP = "iframe[title='streamlit_folium.st_folium']"


@pytest.fixture(scope="module")
def overlay_counties(counties):
    """Competitor sites per county: 0 to 49 by the FIPS code, so neighbours differ."""
    frame = counties[["unit_id"]].copy()
    frame["sites"] = frame["unit_id"].astype(int) % 50
    return frame.rename(columns={"unit_id": "county"})


@pytest.fixture(scope="module")
def route_app(demo_db, tmp_path_factory, overlay_counties):
    """The app on its own copy of the demo data, with the overlay imported."""
    folder = tmp_path_factory.mktemp("routes-e2e")
    db = folder / "atlas.duckdb"
    shutil.copy(demo_db, db)
    src = folder / "competitors.csv"
    overlay_counties.to_csv(src, index=False)
    with Store(db) as s, users.acting_as(users.local_admin()):
        overlays.import_overlay(s, src, "Competitors", "county")
    with serving(db) as url:
        yield url


def test_switching_to_an_overlay_layer_colours_each_county_by_its_class(
        page, route_app, tmp_path, counties, overlay_counties):
    atlas = AtlasMap(page, route_app, tmp_path)
    atlas.pick_layer("Competitors · sites (your overlay)")
    legend = atlas.frame.locator(".atlas-legend")
    expect(legend).to_contain_text("Competitors")
    layer = atlas.frame.evaluate("() => window.atlasUnits.activeLayer()")
    assert layer["metric"] == "overlay:Competitors:sites"
    sites = overlay_counties.set_index("county")["sites"]
    assert_counties_in_classes(atlas, counties, sites, layer)
    atlas.pick_layer("Territory")
    expect(legend).to_have_count(0)


def test_the_reps_week_shows_each_stop_and_each_days_route(page, route_app, demo_db,
                                                           tmp_path):
    with Store(demo_db, read_only=True) as s:
        cur = s.cursor()
        week = routes.plan_week(cur, plans.get_plan(cur, None), territory="T05",
                                start=dt.date(2026, 10, 1), days=5,
                                settings=load_settings(s))
    page.goto(f"{route_app}/routes?territory=T05")
    wait_for_app(page)
    expect(page.get_by_role("heading", name="The rep's week")).to_be_visible()
    frame_el = page.locator(ROUTE_MAP)
    frame_el.wait_for(timeout=WAIT)
    frame = frame_el.element_handle().content_frame()
    frame.wait_for_selector(".atlas-stop", timeout=WAIT)
    markers = frame.locator(".atlas-stop")
    expect(markers).to_have_count(week.visits)
    expect(frame.locator(".atlas-home")).to_have_count(1)
    visits = week.stops[week.stops["kind"] == "visit"]
    # each marker sits where the engine put its stop, in its day's colour
    got = frame.evaluate("""() => [...document.querySelectorAll('.atlas-stop')].map(el => {
        const r = el.getBoundingClientRect();
        return [+el.dataset.day, +el.dataset.stop, r.left + r.width / 2,
                r.top + r.height / 2, getComputedStyle(el).backgroundColor]; })""")
    by_stop = {(d, s): (x, y, c) for d, s, x, y, c in got}
    assert set(by_stop) == set(zip(visits["day"], visits["stop"], strict=True))
    for v in visits.itertuples(index=False):
        x, y = frame.evaluate("([lat, lng]) => { const p = window.map.latLngToContainerPoint("
                              "[lat, lng]); const r = window.map.getContainer()"
                              ".getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }",
                              [float(v.lat), float(v.lon)])
        mx, my, colour = by_stop[(v.day, v.stop)]
        assert abs(mx - x) <= 1.5
        assert abs(my - y) <= 1.5
        assert colour == "rgb({}, {}, {})".format(*rgb(routes.DAY_COLORS[v.day - 1]))
    # the day's line: the middle of its longest leg on screen is in the day's colour
    shot = Image.open(io.BytesIO(frame_el.screenshot())).convert("RGB")
    checked = 0
    for d in range(1, 6):
        day = week.day_stops(d)
        pts = [frame.evaluate("([lat, lng]) => { const p = window.map"
                              ".latLngToContainerPoint([lat, lng]); return [p.x, p.y]; }",
                              [float(a), float(b)]) for a, b in zip(day["lat"], day["lon"],
                                                                  strict=True)]
        legs = sorted(itertools.pairwise(pts),
                      key=lambda ab: -np.hypot(ab[1][0] - ab[0][0], ab[1][1] - ab[0][1]))
        (x0, y0), (x1, y1) = legs[0]
        if np.hypot(x1 - x0, y1 - y0) < 80:
            continue
        mx, my = (x0 + x1) / 2, (y0 + y1) / 2
        inner = frame.evaluate("() => { const r = window.map.getContainer()"
                               ".getBoundingClientRect(); return [r.left, r.top]; }")
        px = shot.getpixel((round(mx + inner[0]), round(my + inner[1])))
        want = np.asarray(rgb(routes.DAY_COLORS[d - 1]))
        # 85% opaque over the light background: within 45 of the pure colour per channel
        assert np.abs(np.asarray(px) - want).max() <= 45, (d, px, want)
        checked += 1
    assert checked >= 2
    # a day's GPX from the page: the engine's stops in order
    page.get_by_role("tab", name=re.compile("^Day 2")).click()
    with page.expect_download() as info:
        page.get_by_role("button", name="Day 2 GPX").click()
    path = tmp_path / "day2.gpx"
    info.value.save_as(path)
    gpx = gpxpy.parse(path.read_text(encoding="utf-8"))
    assert len(gpx.routes) == 1
    names = [p.name for p in gpx.routes[0].points[1:-1]]
    assert names == [f"{s.stop}. {s.name}" for s in week.day_stops(2).itertuples()
                     if s.kind == "visit"]
