"""Names and link parameters are shown as typed, never as Markdown (ui/text.py).

A plan, territory and rep renamed to Markdown that would fetch an image or show a live link,
and a crafted `?as_of=` link: on every page, no text element, alert, title or widget label
may carry the link unescaped (`](http`) or a bare URL Streamlit would turn into a link.
"""

from __future__ import annotations

import re

import pytest

from analytics import edits, plans
from analytics.store import Store
from ui.text import literal, shown

PLAN = "![img](http://evil.example/plan.png)"
TERRITORY = "[click](http://evil.example/territory)"
REP = "**bold** :red[x] $x$ <b>http://evil.example/rep</b>"
LINK = "[x](http://evil.example/link)"
PAGES = ["pages/map.py", "pages/performance.py", "pages/coverage.py", "pages/plans.py",
         "pages/data.py", "pages/settings.py", "pages/review.py"]
LIVE = re.compile(r"\]\(http|(?<!\\)http://evil|<b>")


def texts(app) -> list[str]:
    out = []
    for kind in ("markdown", "caption", "warning", "info", "error", "success", "title",
                 "header", "subheader", "toast"):
        out += [str(e.value) for e in getattr(app, kind, [])]
    for kind in ("button", "checkbox", "selectbox", "multiselect", "text_input",
                 "number_input", "radio", "toggle", "expander", "tabs", "text_area",
                 "date_input", "slider"):
        out += [str(e.label) for e in getattr(app, kind, []) if getattr(e, "label", None)]
        out += [str(e.help) for e in getattr(app, kind, []) if getattr(e, "help", None)]
    return out


@pytest.fixture
def hostile(app):
    with Store(app.db_path) as s:
        cur = s.cursor()
        cur.execute("UPDATE plans SET name = ? WHERE name = 'Current alignment'", [PLAN])
        cur.execute("UPDATE territories SET name = ? WHERE territory_id = 'T01'", [TERRITORY])
        cur.execute("UPDATE reps SET name = ? WHERE rep_id = 'R001'", [REP])
        for column in ("lost_to", "loss_reason"):  # the review's competitor line
            cur.execute(f"UPDATE sales SET {column} = ? WHERE {column} IS NOT NULL", [LINK])
    return app


@pytest.mark.parametrize("page", PAGES)
def test_names_show_as_typed_on_every_page(hostile, page):
    hostile.run()
    hostile.query_params["as_of"] = LINK
    hostile.switch_page(page).run()
    assert not hostile.exception
    found = texts(hostile)
    assert found
    live = [t for t in found if LIVE.search(t)]
    assert live == [], live


def test_the_link_parameter_is_named_in_the_warning_as_typed(hostile):
    hostile.run()
    hostile.query_params["as_of"] = LINK
    hostile.switch_page("pages/performance.py").run()
    warnings = [shown(w.value) for w in hostile.warning]
    assert any(f"as_of={LINK!r} is not a date" in w for w in warnings), warnings


def test_the_plans_page_names_the_plan_as_typed(hostile):
    hostile.run()
    hostile.switch_page("pages/plans.py").run()
    assert any(PLAN in shown(m.value) for m in hostile.markdown)


def test_the_undo_tooltip_names_the_edit_as_typed(hostile):
    """The Undo and Redo tooltips (Markdown) name the edit, here a territory's name."""
    with Store(hostile.db_path) as store:
        edits.create_territory(store, plans.get_plan(store.cursor()), TERRITORY)
    hostile.run()
    assert not hostile.exception
    undo = next(b for b in hostile.button if b.label == "Undo")
    assert not LIVE.search(undo.help), undo.help
    assert shown(undo.help) == f"Create territory {TERRITORY}"
    undo.click().run()
    redo = next(b for b in hostile.button if b.label == "Redo")
    assert not LIVE.search(redo.help), redo.help
    assert [t for t in texts(hostile) if LIVE.search(t)] == []


@pytest.mark.parametrize("text", [PLAN, TERRITORY, REP, LINK, "a\\b", "# heading", "1. x",
                                  "- item", "line\nbreak", "`code`", "&amp;"])
def test_literal_round_trips(text):
    md = literal(text)
    assert shown(md) == " ".join(text.splitlines())
    assert not LIVE.search(md)
    assert "\n" not in md


def test_the_review_names_a_typed_competitor_as_typed(hostile):
    hostile.run()
    hostile.switch_page("pages/review.py").run()
    lines = [shown(m.value) for m in hostile.markdown if "[evidence](" in m.value]
    assert any(line.startswith(f"{LINK} took ") for line in lines), lines
