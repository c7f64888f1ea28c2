"""Open the app as a new user would, in a real Chromium, with no internet."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from tests.e2e.conftest import wait_for_app

pytestmark = pytest.mark.e2e


def test_map_and_table_show_the_default_plan(page, app_url):
    outside = []
    host = urlparse(app_url).netloc
    page.on("request", lambda r: outside.append(r.url)
            if urlparse(r.url).netloc not in (host, "") and not r.url.startswith("data:")
            else None)

    page.goto(app_url)
    wait_for_app(page)

    # the map: streamlit-folium's iframe with a Leaflet map drawn from vendored assets
    frame = page.frame_locator('iframe[title="streamlit_folium.st_folium"]')
    frame.locator(".leaflet-container").wait_for(timeout=60_000)
    # units are drawn on a canvas renderer; rep homes and outlines too
    frame.locator(".leaflet-container canvas").first.wait_for(timeout=60_000)
    assert frame.locator(".leaflet-control-zoom-in").count() == 1

    # the territory table, with a known territory of the demo plan
    table = page.locator('[data-testid="stDataFrame"]').first
    table.wait_for()
    assert "Territories" in page.locator("h3").all_inner_texts()
    metrics = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
    assert metrics[0] == "20,564"  # every demo account (data/demo/accounts.parquet rows)

    # nothing was fetched from another host: the app works offline
    assert outside == [], outside


def test_map_tooltip_names_unit_and_territory(page, app_url):
    page.goto(app_url)
    wait_for_app(page)
    frame = page.frame_locator('iframe[title="streamlit_folium.st_folium"]')
    container = frame.locator(".leaflet-container")
    container.wait_for(timeout=60_000)
    container.scroll_into_view_if_needed()
    box = container.bounding_box()
    # hover over the middle of the lower 48 (Kansas at the default view) to get a tooltip
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    tip = frame.locator(".leaflet-tooltip")
    tip.first.wait_for(timeout=20_000)
    text = tip.first.inner_text()
    assert "Territory" in text
    assert "Accounts" in text
