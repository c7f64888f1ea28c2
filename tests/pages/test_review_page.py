"""The territory review page in AppTest: the SWOT equal to the engine's, a territory and a
drill-down from the link, every drill-down and every cut of the segment table, and the
meeting pack."""

from __future__ import annotations

import datetime as dt

import pytest

from analytics import plans, swot
from analytics.period import Period
from analytics.settings import load_settings
from analytics.store import Store
from ui.text import shown


def open_review(app, **params):
    app.run()
    for k, v in params.items():
        app.query_params[k] = v
    app.switch_page("pages/review.py").run()
    assert not app.exception, app.exception
    return app


def on_demo(db, build):
    """`build(cur, plan)` on the demo database's active plan: the engine's own answer."""
    with Store(db, read_only=True) as s:
        cur = s.cursor()
        return build(cur, plans.get_plan(cur, None))


def engine_review(db, territory):
    with Store(db, read_only=True) as s:
        cur = s.cursor()
        return swot.territory_review(cur, plans.get_plan(cur, None), Period.year(2026),
                                     dt.date(2026, 9, 30), load_settings(s), territory)


def page_lines(app) -> list[str]:
    texts = []
    for md in app.markdown:
        if "[evidence](" in md.value:
            texts.append(shown(md.value.split(" · [evidence](")[0]))
    return texts


def test_the_page_shows_the_engines_review_with_links(app, demo_db):
    open_review(app, territory="T07")
    assert app.title[0].value == "Territory review"
    assert app.selectbox(key="review_territory").value == "T07"
    want = engine_review(demo_db, "T07")
    assert page_lines(app) == [ln.text for q in swot.QUADRANTS for ln in want.quadrant(q)]
    links = [md.value.split("[evidence](")[1].rstrip(")") for md in app.markdown
             if "[evidence](" in md.value]
    assert links == [ln.link() for q in swot.QUADRANTS for ln in want.quadrant(q)]


def test_choosing_another_territory(app, demo_db):
    open_review(app)
    assert app.selectbox(key="review_territory").value == "T01"
    app.selectbox(key="review_territory").select("T20").run()
    assert not app.exception
    want = engine_review(demo_db, "T20")
    assert page_lines(app) == [ln.text for q in swot.QUADRANTS for ln in want.quadrant(q)]
    assert app.query_params["territory"] == ["T20"] or app.query_params["territory"] == "T20"


@pytest.mark.parametrize("drill", swot.DRILLS)
def test_every_drill_down_opens_from_the_link(app, drill):
    open_review(app, territory="T07", drill=drill)
    assert app.segmented_control(key="review_drill").value == drill
    assert app.dataframe, f"{drill}: no table"


@pytest.mark.parametrize("by", ["segment", "industry", "product", "lead_source"])
def test_every_cut_of_the_segment_table(app, demo_db, by):
    from analytics import review
    from analytics.performance import Scope

    open_review(app, territory="T07", drill="segments")
    app.segmented_control(key="review_by").set_value(by).run()
    assert not app.exception
    table = next(d.value for d in app.dataframe if "won_deals" in d.value.columns)
    want = on_demo(demo_db, lambda cur, plan: review.segment_analysis(
        cur, plan, Period.year(2026), by, Scope(territories=("T07",))))
    assert table["value"].tolist() == want["value"].tolist()
    assert table["won"].round(2).tolist() == want["won"].round(2).tolist()


def test_the_funnel_against_the_team(app):
    open_review(app, territory="T20", drill="funnel")
    table = next(d.value for d in app.dataframe if "reached" in d.value.columns)
    assert table["stage"].tolist()[0] == "Prospecting"
    assert table["team_conversion_next"].notna().sum() == 5
    worst = table.loc[table["lost_here"].idxmax(), "stage"]
    assert any(f"Most deals are lost at {worst}" in shown(c.value) for c in app.caption)


@pytest.mark.parametrize("segment", ["Hospital", "Clinic", "Surgery Center",
                                     "Physician Practice"])
def test_the_funnel_of_each_segment(app, demo_db, segment):
    from analytics import funnel
    from analytics.cube import AccountFilter
    from analytics.performance import Scope

    open_review(app, territory="T20", drill="funnel")
    app.selectbox(key="review_funnel_segment").select(segment).run()
    assert not app.exception
    table = next(d.value for d in app.dataframe if "reached" in d.value.columns)
    only = AccountFilter(segments=(segment,))
    want = on_demo(demo_db, lambda cur, plan: funnel.funnel(
        cur, plan, Period.year(2026), Scope(flt=only, territories=("T20",))))
    team = on_demo(demo_db, lambda cur, plan: funnel.funnel(
        cur, plan, Period.year(2026), Scope(flt=only)))
    assert table["reached"].tolist() == want["reached"].tolist()
    assert table["team_conversion_next"].round(9).tolist()[:5] == \
        team["conversion_next"].round(9).tolist()[:5]


def test_the_meeting_pack_for_the_territory(app):
    open_review(app, territory="T07")
    app.button(key="review_pack_build").click().run()
    assert not app.exception
    assert app.get("download_button")
    labels = [b.proto.label for b in app.get("download_button")]
    assert "Download the meeting pack" in labels


def territory_reps(db) -> dict[str, str]:
    with Store(db) as s:
        return dict(s.cursor().execute(
            "SELECT territory_id, rep_id FROM territories WHERE plan_id = 1").fetchall())


def test_rep_fit_is_shown_then_applied_as_one_edit(app, demo_db):
    from analytics import rep_fit

    want = on_demo(demo_db, lambda cur, plan: rep_fit.rep_fit(cur, plan, Period.year(2026)))
    open_review(app, territory="T07")
    table = next(d.value for d in app.dataframe if "suggested_rep" in d.value.columns)
    assert table["suggested_rep"].tolist() == want.table["suggested_rep"].tolist()
    before = territory_reps(app.db_path)
    app.button(key="fit_apply").click().run()
    assert not app.exception
    after = territory_reps(app.db_path)
    moved = dict(zip(want.changes["territory_id"], want.changes["suggested_rep"],
                     strict=True))
    assert after == {**before, **moved}
    assert any("Undo" in s.value for s in app.success)


def test_a_higher_handover_loss_suggests_fewer_changes(app):
    open_review(app, territory="T07")
    changes = {}
    for loss in (0.0, 0.1, 1.0):
        app.number_input(key="fit_loss").set_value(loss).run()
        table = next(d.value for d in app.dataframe if "suggested_rep" in d.value.columns)
        changes[loss] = int((table["suggested_rep"] != table["current_rep"]).sum())
    assert changes[0.0] >= changes[0.1] >= changes[1.0]
    assert changes[1.0] < changes[0.0]
