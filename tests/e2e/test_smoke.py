"""Open the app as a new user would, in a real Chromium, with no internet."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import duckdb
import pandas as pd
import pytest
from playwright.sync_api import expect

from analytics import market
from analytics.units import UnitType
from tests.e2e.atlas_page import MAP_IFRAME, AtlasMap, pick_county
from tests.e2e.conftest import wait_for_app

pytestmark = pytest.mark.e2e


def test_map_and_table_show_the_default_plan(page, app_url, counties):
    outside = []
    host = urlparse(app_url).netloc
    page.on("request", lambda r: outside.append(r.url)
            if urlparse(r.url).netloc not in (host, "") and not r.url.startswith("data:")
            else None)

    page.goto(app_url)
    wait_for_app(page)

    # the map: streamlit-folium's iframe with a Leaflet map drawn from vendored assets
    frame = page.frame_locator(MAP_IFRAME)
    frame.locator(".leaflet-container").wait_for(timeout=60_000)
    # units are drawn on a canvas renderer; rep homes and outlines too
    frame.locator(".leaflet-container canvas").first.wait_for(timeout=60_000)
    assert frame.locator(".leaflet-control-zoom-in").count() == 1
    # the unit layer applied the plan: every county of the shipped polygons is on the map
    status = frame.locator("#atlas-status[data-version]")
    status.wait_for(state="attached", timeout=60_000)
    assert int(status.get_attribute("data-units")) == len(counties)

    # the territory table, with a known territory of the demo plan
    table = page.locator('[data-testid="stDataFrame"]').first
    table.wait_for()
    assert "Territories" in page.locator("h3").all_inner_texts()
    accounts = page.locator('[data-testid="stMetric"]').filter(
        has=page.locator('[data-testid="stMetricLabel"]', has_text=re.compile("^Accounts$")))
    # every demo account (data/demo/accounts.parquet rows)
    expect(accounts.locator('[data-testid="stMetricValue"]')).to_have_text("20,564")

    # nothing was fetched from another host: the app works offline
    assert outside == [], outside


def _money(text: str) -> float:
    """'$1.2M' -> 1.2e6 (the tooltip's rounding)."""
    value, unit = re.fullmatch(r"\$(-?[\d.]+)([kMB]?)", text).groups()
    return float(value) * {"": 1, "k": 1e3, "M": 1e6, "B": 1e9}[unit]


def test_map_tooltip_names_unit_and_territory(page, app_url, counties, demo_db, tmp_path):
    atlas = AtlasMap(page, app_url, tmp_path)
    county = pick_county(counties, {}, avoid=set())
    with duckdb.connect(str(demo_db), read_only=True) as con:
        territory, rep = con.execute(
            "SELECT t.name, r.name FROM plan_units u JOIN plans p USING (plan_id) "
            "JOIN territories t ON t.plan_id = u.plan_id AND t.territory_id = u.territory_id "
            "LEFT JOIN reps r ON r.rep_id = t.rep_id "
            "WHERE p.name = 'Current alignment' AND u.unit_id = ?", [county["unit_id"]]
        ).fetchone()

    # zoom to the county and rest the mouse on it: a Leaflet tooltip follows the pointer
    atlas.set_view(county["lat"], county["lon"], 8)
    atlas.point_at(county["lat"], county["lon"])
    tip = atlas.frame.locator(".leaflet-tooltip.atlas-tip")
    expect(tip).to_be_visible(timeout=10_000)
    expect(tip).to_contain_text(county["name"])
    lines = tip.inner_text().splitlines()

    assert lines[0] == county["name"]
    numbers = re.fullmatch(r"(\d+) accounts, potential (\S+), won (\S+)", lines[1])
    assert numbers, lines[1]
    assert int(numbers[1]) == county["accounts"]
    assert _money(numbers[2]) == pytest.approx(county["potential"], rel=0.05)
    assert _money(numbers[3]) >= 0
    # the market under the map: the county's 2020 Census population, read from the table
    census = pd.read_parquet(market.COUNTY_MARKET_FILE).set_index("county")
    est = market.unit_market(UnitType("county")).set_index("unit_id")
    assert lines[2] == (f"Market: {census.at[county['unit_id'], 'population']:,} people, "
                        f"{est.at[county['unit_id'], 'market_establishments']:,} "
                        "establishments")
    assert lines[3] == territory
    assert re.fullmatch(
        rf"Rep: {re.escape(rep)} · attainment \d+% · utilization \d+% · "
        r"(under-served|over-served|balanced|no rep)", lines[4]), lines[4]
