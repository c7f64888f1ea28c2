"""In Chromium: names holding Markdown are shown as typed, fetch nothing and link nowhere.

The plan and a territory are renamed to Markdown that would show an image and a link, and a
crafted `?as_of=` link is opened; the page must show the exact text, and the browser must
make no request to the planted host and hold no link to it (ui/text.py).
"""

from __future__ import annotations

import shutil
from urllib.parse import urlparse

import duckdb
import pytest

from tests.e2e.conftest import serving, wait_for_app

pytestmark = pytest.mark.e2e

PLAN = "![img](http://evil.example/plan.png)"
TERRITORY = "[click](http://evil.example/territory)"
LINK = "[x](http://evil.example/link)"


@pytest.fixture(scope="module")
def hostile_url(demo_db, tmp_path_factory):
    db = tmp_path_factory.mktemp("e2e-hostile") / "atlas.duckdb"
    shutil.copy(demo_db, db)
    con = duckdb.connect(str(db))
    con.execute("UPDATE plans SET name = ? WHERE name = 'Current alignment'", [PLAN])
    con.execute("UPDATE territories SET name = ? WHERE territory_id = 'T01'", [TERRITORY])
    con.close()
    with serving(db) as url:
        yield url


@pytest.mark.parametrize(("path", "typed"), [
    ("/map", PLAN), ("/plans", PLAN), ("/performance?as_of=" + LINK, LINK),
])
def test_typed_text_is_shown_as_typed(page, hostile_url, path, typed):
    asked = []
    page.on("request", lambda r: asked.append(r.url)
            if urlparse(r.url).netloc.endswith("evil.example") else None)
    page.goto(hostile_url + path)
    wait_for_app(page)
    page.wait_for_timeout(500)
    body = page.locator('[data-testid="stMain"]').inner_text()
    # the exact text (an invisible word joiner before "http" stops autolinks), no
    # backslash left, nothing rendered away
    assert typed in body.replace("\u2060", "")
    assert page.locator('a[href*="//evil.example"]').count() == 0  # (our own links carry
    # the plan name URL-encoded, which is fine)
    assert page.locator('img[src*="//evil.example"]').count() == 0
    assert asked == []
