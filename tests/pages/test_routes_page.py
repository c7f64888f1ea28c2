"""The rep's week page in AppTest: every territory choice path, the day tabs, the files,
the meeting pack, and a setting reaching the routes."""

from __future__ import annotations

import datetime as dt
import io

import gpxpy
import pandas as pd
import pytest

from analytics import plans, routes
from analytics.settings import load_settings
from analytics.store import Store


def open_routes(app, territory: str | None = None):
    app.run()
    if territory:
        app.query_params["territory"] = territory
    app.switch_page("pages/routes.py").run()
    assert not app.exception, app.exception
    return app


def frames(app, column: str) -> list[pd.DataFrame]:
    """The page's tables holding `column`: "leave" the days, "arrive" a day's stops (in
    the order of the tabs), "reason" the due accounts left out."""
    return [d.value for d in app.dataframe if column in d.value.columns]


def engine_week(db, territory: str, start: dt.date, days: int = 5):
    with Store(db, read_only=True) as s:
        cur = s.cursor()
        return routes.plan_week(cur, plans.get_plan(cur, None), territory=territory,
                                start=start, days=days, settings=load_settings(s))


def test_the_page_opens_on_the_first_territory_with_the_engines_week(app, demo_db):
    open_routes(app)
    assert app.title[0].value == "The rep's week"
    assert app.selectbox(key="route_territory").value == "T01"
    week = engine_week(demo_db, "T01", dt.date(2026, 10, 1))
    days = frames(app, "leave")[0]
    assert days["visits"].tolist() == week.days["visits"].tolist()
    assert days["km"].round(3).tolist() == week.days["km"].round(3).tolist()
    labels = [m.label for m in app.metric]
    assert "Saved vs nearest neighbour" in labels
    assert len(app.tabs) == 5


def test_a_territory_from_the_link_and_a_shorter_week(app, demo_db):
    open_routes(app, "T39")
    assert app.selectbox(key="route_territory").value == "T39"
    app.number_input(key="route_days").set_value(3).run()
    assert not app.exception
    assert len(app.tabs) == 3
    week = engine_week(demo_db, "T39", dt.date(2026, 10, 1), days=3)
    first = frames(app, "arrive")[0]
    assert [a for a in first["account_id"] if a] == \
        week.day_stops(1)["account_id"].dropna().tolist()
    unplanned = frames(app, "reason")[0]
    assert len(unplanned) == len(week.unplanned)


@pytest.mark.parametrize("territory", ["T01", "T20", "T39"])
def test_every_territory_choice_draws_a_week(app, territory):
    open_routes(app)
    app.selectbox(key="route_territory").set_value(territory).run()
    assert not app.exception
    assert app.query_params["territory"] == territory or \
        app.query_params["territory"] == [territory]


def test_a_start_on_saturday_plans_from_monday(app):
    open_routes(app, "T39")
    app.date_input(key="route_start").set_value(dt.date(2026, 10, 3)).run()
    assert not app.exception
    assert app.tabs[0].label.startswith("Day 1 · Mon 05 Oct")


def test_the_meeting_pack_for_the_rep_is_built_on_request(app):
    open_routes(app, "T39")
    app.button(key="route_pack_build").click().run()
    assert not app.exception
    assert any(b.label == "Download the meeting pack" for b in app.get("download_button"))


def test_a_longer_day_in_settings_reaches_the_routes(app):
    open_routes(app, "T39")
    before = frames(app, "leave")[0]["hours"].max()
    app.switch_page("pages/settings.py").run()
    app.number_input(key="day_hours").set_value(10.0)
    app.button[0].click().run()
    assert any("saved" in s.value for s in app.success)
    app.switch_page("pages/routes.py").run()
    after = frames(app, "leave")[0]["hours"]
    assert before <= 8.0 < after.max() <= 10.0


def test_the_week_files_match_the_engine(demo_db):
    week = engine_week(demo_db, "T39", dt.date(2026, 10, 1))
    frame = pd.read_csv(io.StringIO(routes.week_csv(week, 2)))
    assert set(frame["day"]) == {2}
    assert len(gpxpy.parse(routes.week_gpx(week, 2)).routes) == 1


def test_minutes_by_segment_from_the_settings_reach_the_week(app):
    """Hospital visits of 120 minutes in the saved settings: every hospital stop of the
    week lasts 2 hours; the Settings page shows the minutes in its segment table."""
    from analytics.settings import save_settings
    from analytics.users import acting_as, local_admin

    with Store(app.db_path) as s, acting_as(local_admin()):
        now = load_settings(s)
        save_settings(s, now.with_overrides(["visit_minutes.Hospital=120"]))
    open_routes(app, "T39")
    day = frames(app, "arrive")[0]
    hospitals = day[day["segment"] == "Hospital"]
    assert len(hospitals)
    for r in hospitals.itertuples():
        h0, m0 = map(int, r.arrive.split(":"))
        h1, m1 = map(int, r.depart.split(":"))
        assert (h1 * 60 + m1) - (h0 * 60 + m0) == 120
    app.switch_page("pages/settings.py").run()
    assert not app.exception
    segs = frames(app, "visit_minutes")[0].set_index("segment")
    assert segs.loc["Hospital", "visit_minutes"] == 120
