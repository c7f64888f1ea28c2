"""Sign-in through an identity provider (Streamlit's native OIDC `st.login`), in Chromium.

The provider is a real OpenID Connect server running locally (oidc-provider-mock: Authlib's
authorization server with a form where the test types who signs in); the app is configured
for it in a secrets file as a deployment would configure Google, Microsoft or Okta in
`.streamlit/secrets.toml`. The whole flow runs: the app's button, the provider's page, the
code exchange at /oauth2callback, Streamlit's identity cookie, our user lookup by e-mail.
"""

from __future__ import annotations

import re
import secrets
import shutil

import pytest
from playwright.sync_api import expect

from analytics import users
from analytics.store import Store
from tests.e2e.conftest import free_port, serving, wait_for_app

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sso_url(demo_db, tmp_path_factory):
    from oidc_provider_mock import run_server_in_thread

    folder = tmp_path_factory.mktemp("e2e-oidc")
    db = folder / "atlas.duckdb"
    shutil.copy(demo_db, db)
    with Store(db) as s:
        users.add_user(s, "ada", "admin", "correct horse battery")
        with users.acting_as(users.get_user(s.cursor(), "ada")):
            users.add_user(s, "max@example.com", "manager", None)
            users.add_user(s, "rita@example.com", "rep", None, rep_id="R001")
    with run_server_in_thread() as provider:
        port = free_port()
        (folder / "secrets.toml").write_text(f"""
[auth]
redirect_uri = "http://127.0.0.1:{port}/oauth2callback"
cookie_secret = "{secrets.token_hex(32)}"
client_id = "territory-atlas"
client_secret = "{secrets.token_hex(16)}"
server_metadata_url = "http://127.0.0.1:{provider.server_port}/.well-known/openid-configuration"
""")
        with serving(db, port=port,
                     extra=("--secrets.files", str(folder / "secrets.toml"))) as url:
            yield url


def sso_sign_in(page, url, email):
    page.goto(url)
    wait_for_app(page)
    page.get_by_role("button", name="Sign in with your organisation").click()
    page.wait_for_url(re.compile(r"/oauth2/authorize"), timeout=30_000)  # the provider
    page.locator('input[name="sub"]').fill(email)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(re.compile(r"^http://127\.0\.0\.1:\d+/?(\?.*)?$"), timeout=30_000)


@pytest.mark.parametrize(("email", "role"), [("max@example.com", "manager"),
                                             ("RITA@example.com", "rep")])
def test_sign_in_through_the_identity_provider(page, sso_url, email, role):
    sso_sign_in(page, sso_url, email)
    sidebar = page.locator('[data-testid="stSidebar"]')
    expect(sidebar).to_contain_text(f"Signed in as {email.lower()} ({role})",
                                    timeout=90_000)
    expect(page.locator('[data-testid="stDataFrame"]').first).to_be_visible(timeout=60_000)
    if role == "rep":  # the rep's own view holds through this path too
        expect(page.get_by_text(re.compile("Read-only: rita@example.com is a rep"))
               ).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    # st.logout ends the session at the provider too (RP-initiated logout): this provider
    # may ask to confirm first, then sends the browser back to the app
    end = page.get_by_role("button", name="End session")
    again = page.get_by_role("button", name="Sign in with your organisation")
    expect(end.or_(again)).to_be_visible(timeout=30_000)
    if end.is_visible():
        end.click()
    expect(again).to_be_visible(timeout=60_000)
    assert page.locator('[data-testid="stDataFrame"]').count() == 0


def test_an_identity_without_an_account_is_turned_away(page, sso_url):
    sso_sign_in(page, sso_url, "stranger@example.com")
    expect(page.get_by_text(re.compile("stranger@example.com has no Territory Atlas "
                                       "account"))).to_be_visible(timeout=30_000)
    assert page.locator('[data-testid="stDataFrame"]').count() == 0


def test_the_password_form_stays_for_local_accounts(page, sso_url):
    page.goto(sso_url)
    wait_for_app(page)
    page.get_by_label("User name").fill("ada")
    page.get_by_role("textbox", name="Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in", exact=True).click()
    wait_for_app(page)
    expect(page.locator('[data-testid="stSidebar"]')).to_contain_text(
        "Signed in as ada (admin)", timeout=90_000)
