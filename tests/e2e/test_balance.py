"""The Balance panel in a real Chromium: run it, see the moved units on the proposal's map.

The panel's preview draws a second map whose highlighted units are the units the proposal
moves. The test reads the count the page states, then the map script's own state in each
iframe: the number of highlighted units (`#atlas-status[data-highlighted]`) and the number
of units whose territory code differs between the plan's map and the proposal's must both
be that count. Nothing is applied: Discard leaves the server's database as it was.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import wait_for_app

pytestmark = pytest.mark.e2e

MAP_IFRAME = 'iframe[title="streamlit_folium.st_folium"]'
WAIT = 120_000  # ms: the first run compiles the search and measures two plans


def test_balance_preview_highlights_the_moved_units(page, app_url):
    page.goto(app_url)
    wait_for_app(page)
    page.get_by_text("Balance territories automatically").click()
    budget = page.get_by_role("spinbutton", name="Time budget (s)")
    budget.fill("2")
    budget.press("Tab")
    page.get_by_role("button", name="Run").click()
    said = page.get_by_text(re.compile(r"units change territory, highlighted below"))
    expect(said).to_be_visible(timeout=WAIT)
    wait_for_app(page, timeout=WAIT)
    moved = int(re.search(r"([\d,]+) units change territory", said.inner_text())
                .group(1).replace(",", ""))
    assert moved > 0
    maps = page.locator(MAP_IFRAME)
    expect(maps).to_have_count(2, timeout=WAIT)
    frame = maps.nth(1).element_handle().content_frame()
    frame.wait_for_selector("#atlas-status[data-highlighted]", state="attached", timeout=WAIT)
    assert frame.get_attribute("#atlas-status", "data-highlighted") == str(moved)
    # the highlighted units are those whose colour differs from the plan's map
    codes = frame.evaluate("() => window.atlasUnits.state.codes")
    before = maps.nth(0).element_handle().content_frame().evaluate(
        "() => window.atlasUnits.state.codes")
    changed = sum(a != b for a, b in zip(codes, before, strict=True))
    assert changed == moved  # every county is on the map: each moved one changed colour
    page.get_by_role("button", name="Discard").click()
    wait_for_app(page, timeout=WAIT)
    expect(page.get_by_text(re.compile(r"units change territory"))).to_have_count(0)
