"""The territory review in a real Chromium: open a territory's review from its link,
follow a SWOT line's evidence link to the Performance explorer and find the view it
promises (the territory and segment filters, the metric, the level); follow a funnel line
to the review's own drill-down. Read only: the server's database is not changed."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from analytics import catalog
from tests.e2e.conftest import wait_for_app

pytestmark = pytest.mark.e2e
WAIT = 60_000


def evidence_links(page, quadrant: str):
    box = page.locator(f".st-key-review_{quadrant}")
    expect(box).to_be_visible(timeout=WAIT)
    return box.get_by_role("link", name="evidence")


def follow(page, link):
    """Click a link; where it opens (this tab or a new one) is the browser's business."""
    if link.get_attribute("target") == "_blank":
        with page.context.expect_page() as opened:
            link.click()
        target = opened.value
    else:
        link.click()
        target = page
    target.wait_for_load_state()
    wait_for_app(target)
    return target


def test_an_evidence_link_opens_the_explorer_on_the_numbers(page, app_url):
    page.goto(f"{app_url}/review?territory=T07")
    wait_for_app(page)
    expect(page.get_by_role("heading", name="Territory review")).to_be_visible(timeout=WAIT)
    links = evidence_links(page, "weaknesses")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    first = next(i for i, h in enumerate(hrefs) if h.startswith("performance?")
                 and "segment=" in h)
    query = parse_qs(urlparse(hrefs[first]).query)
    segment = query["segment"][0]
    explorer = follow(page, links.nth(first))
    assert urlparse(explorer.url).path.endswith("/performance")
    expect(explorer.get_by_role("combobox", name="Metric", exact=True)).to_have_value(
        catalog.label("win_rate_count"), timeout=WAIT)
    expect(explorer.get_by_role("radiogroup", name="Level").get_by_role(
        "radio", name="Territory", exact=True)).to_have_attribute("aria-checked", "true")
    summary = explorer.get_by_test_id("stExpander").locator("summary").first
    expect(summary).to_contain_text("Filters (2 active)")
    summary.click()
    expect(explorer.get_by_test_id("stMultiSelect").filter(has_text="Segment")).to_contain_text(
        segment)
    expect(explorer.get_by_test_id("stMultiSelect").filter(
        has_text="Territory")).to_contain_text("T07")
    assert explorer.get_by_test_id("stAlert").count() == 0  # every link value was known


def test_the_downloaded_review_links_back_into_the_app(page, app_url, tmp_path):
    page.goto(f"{app_url}/review?territory=T07")
    wait_for_app(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Review (Markdown)").click()
    text = (download.value.path()).read_text(encoding="utf-8")
    links = [part.split(")")[0] for part in text.split("([evidence](")[1:]]
    assert links
    assert all(link.startswith(f"{app_url}/performance?") or
               link.startswith(f"{app_url}/review?") or
               link.startswith(f"{app_url}/coverage?") for link in links), links[:3]


def test_a_funnel_line_opens_the_reviews_funnel(page, app_url):
    page.goto(f"{app_url}/review?territory=T07")
    wait_for_app(page)
    links = evidence_links(page, "weaknesses")
    hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
    funnel = next(i for i, h in enumerate(hrefs) if "drill=funnel" in h)
    target = follow(page, links.nth(funnel))
    expect(target.get_by_role("radiogroup", name="Show").get_by_role(
        "radio", name="Funnel", exact=True)).to_have_attribute("aria-checked", "true",
                                                               timeout=WAIT)
    expect(target.locator(".js-plotly-plot")).to_be_visible(timeout=WAIT)
