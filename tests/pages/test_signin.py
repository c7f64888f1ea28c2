"""Sign-in in the app (ui/signin.py) with AppTest: the form first, wrong passwords refused,
the signed-in person's role holding in the pages."""

from __future__ import annotations

import pytest

from analytics import plans, users
from analytics.store import Store
from ui.text import shown

PASSWORD = "correct horse battery"


@pytest.fixture
def team_app(app):
    with Store(app.db_path) as s:
        users.add_user(s, "ada", "admin", PASSWORD)
        users.add_user(s, "vic", "viewer", PASSWORD)
    return app


def _sign_in(app, name, password):
    app.text_input(key="sign_in_name").input(name)
    app.text_input(key="sign_in_password").input(password)
    app.button(key="FormSubmitter:sign_in-Sign in").click().run()


def test_without_users_the_app_opens_as_the_local_admin(app):
    app.run()
    assert not app.exception
    assert not [t for t in app.text_input if t.key == "sign_in_name"]


def test_with_users_everyone_signs_in_first(team_app):
    app = team_app
    app.run()
    assert not app.exception
    assert [t.key for t in app.text_input] == ["sign_in_name", "sign_in_password"]
    assert not app.dataframe  # nothing of the data before signing in
    _sign_in(app, "ada", "not the password")
    assert any("wrong user name or password" in shown(e.value) for e in app.error)
    _sign_in(app, "ada", PASSWORD)
    assert not app.exception
    assert any("Signed in as" in shown(c.value) and "ada" in shown(c.value)
               for c in app.sidebar.caption)
    assert app.dataframe  # the map page's territory table


def test_a_viewer_cannot_rename_a_plan_and_nothing_changes(team_app):
    app = team_app
    app.run()
    _sign_in(app, "vic", PASSWORD)
    app.switch_page("pages/plans.py").run()
    form = next(t for t in app.text_input if t.label == "Rename to")
    form.input("Renamed by a viewer")
    app.button(key="FormSubmitter:rename_form-Rename").click().run()
    assert not app.exception
    assert any("vic is a viewer" in shown(e.value) for e in app.error)
    with Store(app.db_path) as s:
        assert plans.get_plan(s.cursor(), None).name == "Current alignment"


def test_a_viewer_is_not_offered_imports_or_settings(team_app):
    app = team_app
    app.run()
    _sign_in(app, "vic", PASSWORD)
    app.switch_page("pages/data.py").run()
    assert not app.exception
    assert any("need an admin" in shown(i.value) for i in app.info)
    assert not [b for b in app.button if b.label.startswith("Reload the default dataset")]
    app.switch_page("pages/settings.py").run()
    assert not app.exception
    save = next(b for b in app.button if b.label == "Save settings")
    assert save.disabled


def test_the_first_page_on_an_empty_database_builds_the_default_data(tmp_path, monkeypatch):
    """The quick start: `make run` on a machine with no database. The first page opens
    before anyone is signed in (the session acts as nobody yet); the server fills its own
    empty file with the default dataset all the same, and the map page shows it."""
    from streamlit.testing.v1 import AppTest

    from tests.pages.conftest import ROOT

    db = tmp_path / "fresh" / "atlas.duckdb"
    monkeypatch.setenv("TERRITORY_ATLAS_DB", str(db))
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    app.run()
    assert not app.exception
    assert len(app.dataframe[0].value) == 40  # the demo plan's territories
    with Store(db) as s:
        assert s.counts()["accounts"] == 20_564
