"""The Plans page with AppTest: manage, snapshot, compare, hierarchy, rules, history."""

from __future__ import annotations

import duckdb
import pytest

from analytics import exports
from ui.text import shown


def _q(db, sql, params=None):
    con = duckdb.connect(str(db))
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _button(app, label):
    return next(b for b in app.button if b.label == label)


def _open(app):
    app.run()
    app.switch_page("pages/plans.py").run()
    assert not app.exception


def test_clone_activate_and_refusals(app):
    _open(app)
    next(t for t in app.text_input if t.label == "Clone as").input("Draft B")
    _button(app, "Clone").click().run()
    assert not app.exception
    assert app.sidebar.selectbox(key="plan_name").value == "Draft B"  # the clone on screen
    assert _q(app.db_path, "SELECT state FROM plans WHERE name = 'Draft B'") == [("planning",)]
    # activate the clone: the demo plan goes back to planning
    app.selectbox(key="plan_state_choice").select("active")
    _button(app, "Set the state").click().run()
    assert _q(app.db_path, "SELECT name FROM plans WHERE state = 'active'") == [("Draft B",)]
    # archiving the active plan is refused with the reason
    app.selectbox(key="plan_state_choice").select("archived")
    _button(app, "Set the state").click().run()
    assert any("activate another plan first" in e.value for e in app.error)
    assert _q(app.db_path, "SELECT state FROM plans WHERE name = 'Draft B'") == [("active",)]


def test_snapshot_compare_and_history(app):
    _open(app)
    next(t for t in app.text_input if t.label == "Note").input("QBR Q3")
    next(b for b in app.button if b.label.startswith("Take a snapshot")).click().run()
    assert not app.exception
    snaps = _q(app.db_path, "SELECT s.note, p.state FROM snapshots s JOIN plans p "
               "ON p.plan_id = s.snapshot_plan_id")
    assert snaps == [("QBR Q3", "snapshot")]
    # compare the plan with its snapshot: nothing moved yet
    app.run()
    moved = next(m.value for m in app.metric if m.label == "Accounts moved")
    assert moved == "0"
    history = app.dataframe[-1].value
    assert "snapshot" in history["what"].tolist()


def test_rules_preview_and_apply_then_undo_on_the_map(app):
    _open(app)
    app.text_area(key="rule_criteria").input("segment equals Hospital\nstate in RI")
    app.selectbox(key="rule_territory").select("T02")
    _button(app, "Add the rule").click().run()
    assert not app.exception
    hospitals_ri = _q(app.db_path, "SELECT count(*) FROM accounts WHERE segment = 'Hospital' "
                      "AND state = 'RI'")[0][0]
    assert hospitals_ri > 0
    preview = next(d.value for d in app.dataframe if "to_territory" in d.value.columns)
    assert len(preview) == hospitals_ri  # no RI hospital is in T02 in the demo plan
    assert set(preview["to_territory"]) == {"T02"}
    _button(app, "Apply these rules").click().run()
    assert not app.exception
    assert _q(app.db_path, "SELECT count(*) FROM account_overrides o JOIN plans p USING "
              "(plan_id) WHERE p.state = 'active' AND o.territory_id = 'T02'")[0][0] \
        == hospitals_ri
    # one undo on the map page takes every pin back
    app.switch_page("pages/map.py").run()
    _button(app, "Undo").click().run()
    assert _q(app.db_path, "SELECT count(*) FROM account_overrides")[0][0] == 0


@pytest.mark.parametrize("fmt", exports.FORMATS)
def test_export_builds_a_download(app, fmt):
    """Every format of the meeting pack builds (PowerPoint and PDF draw their territory
    maps in forked processes from the app's own process)."""
    _open(app)
    app.selectbox(key="export_format").select(fmt).run()
    build = next(b for b in app.button if b.label.startswith("Build the "))
    build.click().run()
    assert not app.exception
    assert not app.error
    names = [b.label for b in app.get("download_button") if b.label.startswith("Download")]
    assert names
    assert shown(names[0]).endswith(exports.EXTENSIONS[fmt])  # the label is Markdown
