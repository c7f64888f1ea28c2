"""The map page's Balance panel with AppTest: run, preview, apply, undo; save; bad input.

The engine's numbers are checked in tests/test_balance.py; here the page flow, on a copy of
the demo database, with a small time budget.
"""

from __future__ import annotations

import pytest

from analytics import balance, plans
from analytics.store import Store


def _assignment(db, name=None):
    with Store(db) as store:
        cur = store.cursor()
        plan = plans.get_plan(cur, name)
        return sorted(plans.assignment(cur, plan).itertuples(index=False, name=None))


def _run(app, **choices):
    app.run()
    for key, value in {"bal_budget": 2.0, **choices}.items():
        widget = {"bal_mode": app.segmented_control, "bal_primary": app.selectbox,
                  "bal_second": app.selectbox, "bal_keep_accounts": app.text_input,
                  }.get(key, app.number_input)(key=key)
        widget.set_value(value)
    app.button(key="FormSubmitter:balance_form-Run").click().run()
    assert not app.exception


def _buttons(app) -> set[str]:
    return {b.key for b in app.button if b.key}


@pytest.mark.parametrize("primary", [*balance.MEASURES, *balance.MARKET_MEASURES])
def test_every_primary_measure_previews(app, primary):
    before = _assignment(app.db_path)
    _run(app, bal_primary=primary)
    assert "bal_apply" in _buttons(app)  # a proposal is shown, with its tables
    texts = " ".join(str(m.value) for m in app.markdown)
    assert "Proposal" in texts
    assert _assignment(app.db_path) == before  # a preview writes nothing


@pytest.mark.parametrize("second", ["(none)", *balance.MEASURES, *balance.MARKET_MEASURES])
def test_every_secondary_measure_previews(app, second):
    _run(app, bal_second=second)
    assert "bal_apply" in _buttons(app)


def test_an_imported_overlay_is_a_measure(app, tmp_path):
    """A county overlay offered under "Balance on"; the proposal is measured on it."""
    from conftest import write_csv

    from analytics import overlays

    path = write_csv(tmp_path / "sites.csv", [["county", "sites"], ["06037", "40"],
                                              ["17031", "12"], ["48201", "9"]])
    with Store(app.db_path) as store:
        overlays.import_overlay(store, path, "Sites", "county")
    app.run()
    assert "Sites · sites (your overlay)" in app.selectbox(key="bal_primary").options
    _run(app, bal_primary="overlay:Sites:sites")
    assert "bal_apply" in _buttons(app)


@pytest.mark.parametrize("mode", balance.MODES)
def test_apply_then_undo(app, mode):
    before = _assignment(app.db_path)
    _run(app, bal_mode=mode)
    app.button(key="bal_apply").click().run()
    assert not app.exception
    after = _assignment(app.db_path)
    assert after != before
    assert "bal_apply" not in _buttons(app)  # the proposal is gone once applied
    undo = next(b for b in app.button if b.label == "Undo")
    undo.click().run()
    assert not app.exception
    assert _assignment(app.db_path) == before


def _territory_of(db, ids):
    from analytics.resolution import resolved_accounts

    with Store(db) as store:
        cur = store.cursor()
        got = resolved_accounts(cur, plans.get_plan(cur, None)).set_index("account_id")
        return got.loc[list(ids), "territory_id"].tolist()


def test_named_accounts_stay_with_their_rep(app):
    with Store(app.db_path) as store:
        ids = [r[0] for r in store.cursor().execute(
            "SELECT account_id FROM accounts ORDER BY potential DESC, account_id LIMIT 12"
        ).fetchall()]
    named, top = ids[10:], 10  # two typed by id, ten as "the top N"
    before = _territory_of(app.db_path, ids)
    _run(app, bal_keep_accounts=", ".join(named), bal_keep_top=top)
    assert any("named accounts kept" in str(c.value) for c in app.caption)
    app.button(key="bal_apply").click().run()
    assert not app.exception
    assert _territory_of(app.db_path, ids) == before


def test_save_as_a_new_plan(app):
    _run(app)
    app.text_input(key="bal_name").input("Balanced plan").run()
    app.button(key="bal_save").click().run()
    assert not app.exception
    with Store(app.db_path) as store:
        new = plans.get_plan(store.cursor(), "Balanced plan")
        assert new.state == "planning"


def test_too_many_territories_is_refused_and_nothing_changes(app):
    before = _assignment(app.db_path)
    _run(app, bal_mode="build", bal_k=300)
    assert any("one territory per rep" in e.value for e in app.error)
    assert "bal_apply" not in _buttons(app)
    assert _assignment(app.db_path) == before
