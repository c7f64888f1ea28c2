"""A rep signed in to the app sees only their own territory (analytics/access.py), on every
page and in what the pages hand to the browser (the map's cached numbers and shapes).

Everything outside rep R003's territory T03 is marked LEAK (accounts, segments, products,
territories, reps, another plan, a snapshot); every element of every page, at every level
of the explorer, and every cached map file a page points at, is searched for it.
"""

from __future__ import annotations

import re

import pytest

from analytics import users
from analytics.cli import main
from analytics.store import Store
from ui.map import CACHE_DIR
from ui.map_spec import LAYERS

PASSWORD = "correct horse battery"
PAGES = ["pages/map.py", "pages/performance.py", "pages/coverage.py", "pages/routes.py",
         "pages/review.py", "pages/plans.py", "pages/data.py", "pages/settings.py"]
CACHED = re.compile(r"/app/static/cache/([\w./-]+\.json)")


def _walk(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _walk(child)


def everything_shown(app) -> str:
    """Every element's message as sent to the browser, plus the cached files it names."""
    text = "\n".join(str(getattr(n, "proto", "")) for n in _walk(app._tree))
    for name in set(CACHED.findall(text)):
        text += (CACHE_DIR / name).read_text(encoding="utf-8")
    return text


@pytest.fixture
def rep_app(app):
    db = app.db_path
    with Store(db) as s:
        users.add_user(s, "ada", "admin", PASSWORD)
        with users.acting_as(users.get_user(s.cursor(), "ada")):
            users.add_user(s, "rita", "rep", PASSWORD, rep_id="R003")
        cur = s.cursor()
        cur.execute("""CREATE TEMP TABLE mine AS
            SELECT a.account_id FROM accounts a JOIN plan_units u
              ON u.plan_id = 1 AND u.unit_id = a.county AND u.territory_id = 'T03'""")
        cur.execute("UPDATE accounts SET name = 'LEAK ' || account_id, segment = 'LEAK seg',"
                    " industry = 'LEAK ind' WHERE account_id NOT IN (SELECT * FROM mine)")
        cur.execute("UPDATE sales SET product = 'LEAK prod', lost_to = 'LEAK comp', "
                    "lead_source = 'LEAK src' WHERE account_id NOT IN (SELECT * FROM mine)")
        cur.execute("UPDATE stage_history SET stage = 'LEAK stage' WHERE opportunity_id IN "
                    "(SELECT opportunity_id FROM sales WHERE account_id NOT IN "
                    "(SELECT * FROM mine))")
        cur.execute("UPDATE territories SET name = 'LEAK ' || territory_id "
                    "WHERE territory_id <> 'T03'")
        cur.execute("UPDATE reps SET name = 'LEAK ' || rep_id WHERE rep_id <> 'R003'")
    assert main(["--as", "ada", "plan", "clone", "--db", str(db), "--name", "LEAK plan"]) == 0
    app.run()
    app.text_input(key="sign_in_name").input("rita")
    app.text_input(key="sign_in_password").input(PASSWORD)
    app.button(key="FormSubmitter:sign_in-Sign in").click().run()
    assert not app.exception
    return app


@pytest.mark.parametrize("page", PAGES)
def test_a_rep_sees_only_their_territory_on_every_page(rep_app, page):
    rep_app.switch_page(page).run()
    assert not rep_app.exception
    shown = everything_shown(rep_app)
    assert "rita" in shown  # signed in: the page was drawn for the rep
    assert "LEAK" not in shown
    assert list(rep_app.sidebar.selectbox[0].options) == ["Current alignment (active)"]


@pytest.mark.parametrize("level", ["territory", "rep", "unit"])
def test_the_explorer_shows_a_rep_only_their_areas_at_every_level(rep_app, level):
    rep_app.switch_page("pages/performance.py").run()
    rep_app.segmented_control(key="p_level").set_value(level).run()
    assert not rep_app.exception
    if level == "unit":
        for unit in ("county", "zip5", "state"):
            rep_app.selectbox(key="p_unit").select(unit).run()
            assert not rep_app.exception
            assert "LEAK" not in everything_shown(rep_app), unit
    assert "LEAK" not in everything_shown(rep_app)


def test_a_rep_plans_only_their_own_week(rep_app):
    rep_app.switch_page("pages/routes.py").run()
    options = rep_app.selectbox(key="route_territory").options
    assert [o.split(" · ")[0] for o in options] == ["T03"]
    assert any(m.label == "Visits / due" for m in rep_app.metric)


def test_the_reps_map_numbers_hold_only_their_accounts(rep_app):
    """The map draws every county outline (public geography), but numbers only for the
    rep's accounts: the per-unit file the browser loads sums to theirs."""
    import json

    rep_app.switch_page("pages/map.py").run()
    table = rep_app.dataframe[0].value
    assert len(table) == 1
    assert "Springfield" in table.to_csv()
    with Store(rep_app.db_path) as s:
        mine = s.con.cursor().execute(
            "SELECT count(*) FROM accounts a JOIN plan_units u ON u.plan_id = 1 "
            "AND u.unit_id = a.county AND u.territory_id = 'T03'").fetchone()[0]
    text = "\n".join(str(getattr(n, "proto", "")) for n in _walk(rep_app._tree))
    numbers = [n for n in set(CACHED.findall(text)) if "/numbers-" in n]
    assert len(numbers) == 1
    payload = json.loads((CACHE_DIR / numbers[0]).read_text(encoding="utf-8"))
    assert sum(payload["accounts"]) == mine


def test_the_reps_read_only_map_offers_every_layer_and_leaks_none(rep_app, sent_specs):
    """The map's own picker switches between the layers the spec holds: every one is
    there for the rep, and nothing sent (the layers' classes, the files they name) shows
    another territory's data."""
    rep_app.switch_page("pages/map.py").run()
    assert not rep_app.exception
    layers = sent_specs[-1]["layers"]
    assert list(layers) == list(LAYERS)
    assert all(layers[k]["mode"] == LAYERS[k][0] for k in LAYERS)
    assert "LEAK" not in everything_shown(rep_app)


def test_a_viewer_gets_the_map_without_edit_tools(app):
    with Store(app.db_path) as s:
        users.add_user(s, "ada", "admin", PASSWORD)
        with users.acting_as(users.get_user(s.cursor(), "ada")):
            users.add_user(s, "vic", "viewer", PASSWORD)
    app.run()
    app.text_input(key="sign_in_name").input("vic")
    app.text_input(key="sign_in_password").input(PASSWORD)
    app.button(key="FormSubmitter:sign_in-Sign in").click().run()
    assert not app.exception
    assert any("Read-only: vic is a viewer." in str(c.value).replace("\\", "")
               for c in app.caption)
    assert not [b for b in app.button if b.label in ("Undo", "Redo")]
    assert len(app.dataframe[0].value) == 40  # a viewer reads every territory
