"""In Chromium: a manager and a rep sign in through the real form (ui/signin.py)."""

from __future__ import annotations

import shutil

import pytest
from playwright.sync_api import expect

from analytics import users
from analytics.store import Store
from tests.e2e.conftest import serving, wait_for_app

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def team_url(demo_db, tmp_path_factory):
    db = tmp_path_factory.mktemp("e2e-team") / "atlas.duckdb"
    shutil.copy(demo_db, db)
    with Store(db) as s:
        users.add_user(s, "ada", "admin", PASSWORD)
        users.add_user(s, "max", "manager", PASSWORD, territories=["T01", "T02"])
        users.add_user(s, "rita", "rep", PASSWORD, rep_id="R001")
    with serving(db) as url:
        yield url


def sign_in(page, url, name, password):
    page.goto(url)
    wait_for_app(page)
    page.get_by_label("User name").fill(name)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    wait_for_app(page)


@pytest.mark.parametrize(("name", "role"), [("max", "manager"), ("rita", "rep")])
def test_sign_in_then_the_map(page, team_url, name, role):
    page.goto(team_url)
    wait_for_app(page)
    # before signing in: the form, and none of the data
    expect(page.get_by_label("User name")).to_be_visible()
    assert page.locator('[data-testid="stDataFrame"]').count() == 0
    sign_in(page, team_url, name, "wrong password here")
    expect(page.get_by_text("wrong user name or password")).to_be_visible()
    sign_in(page, team_url, name, PASSWORD)
    sidebar = page.locator('[data-testid="stSidebar"]')
    expect(sidebar.get_by_text(f"Signed in as {name} ({role})")).to_be_visible(
        timeout=60_000)
    expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Sign out").click()
    wait_for_app(page)
    expect(page.get_by_label("User name")).to_be_visible()


def test_a_rep_in_the_browser_sees_only_their_territory(page, team_url, demo_db):
    """Rita (rep R001, territory T01): the map page's whole-plan accounts card counts her
    accounts only, the territory table holds her territory only, and no edit tool shows."""
    import re

    import duckdb

    con = duckdb.connect(str(demo_db), read_only=True)
    mine = con.execute("SELECT count(*) FROM accounts a JOIN plan_units u ON u.plan_id = 1 "
                       "AND u.unit_id = a.county AND u.territory_id = 'T01'").fetchone()[0]
    con.close()
    sign_in(page, team_url, "rita", PASSWORD)
    accounts = page.locator('[data-testid="stMetric"]').filter(
        has=page.locator('[data-testid="stMetricLabel"]', has_text=re.compile("^Accounts$")))
    expect(accounts.locator('[data-testid="stMetricValue"]')).to_have_text(f"{mine:,}",
                                                                           timeout=60_000)
    expect(page.get_by_text(re.compile("Read-only: rita is a rep"))).to_be_visible()
    assert page.get_by_role("button", name="Undo").count() == 0
    table = page.locator('[data-testid="stDataFrame"]').first
    expect(table).to_contain_text("T01")
    expect(table).not_to_contain_text("T02")
