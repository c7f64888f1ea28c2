"""The rep's week (analytics/routes.py): which accounts are due, the day routes, the
nearest-neighbour baseline, the files. Checked on hand-worked cases and, on the demo data,
against distances and due dates recomputed here from the shipped files."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math

import gpxpy
import numpy as np
import pandas as pd
import pytest

from analytics import plans, routes
from analytics.cli import main
from analytics.errors import InputError
from analytics.settings import Settings, load_settings
from analytics.store import Store


def km(lat1, lon1, lat2, lon2) -> float:
    """Great-circle km, written out here (not the engine's function)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = (math.sin((p2 - p1) / 2) ** 2
         + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


# -- days and priorities ------------------------------------------------------------------
def test_working_days_skip_the_weekend_and_a_weekend_start_moves_to_monday():
    sat = dt.date(2026, 10, 3)
    assert routes.working_days(sat, 3) == [dt.date(2026, 10, 5), dt.date(2026, 10, 6),
                                           dt.date(2026, 10, 7)]
    thu = dt.date(2026, 10, 1)
    assert routes.working_days(thu, 5) == [dt.date(2026, 10, d) for d in (1, 2, 5, 6, 7)]
    assert routes.default_start(dt.date(2026, 10, 2)) == dt.date(2026, 10, 5)  # Fri -> Mon
    for bad in (0, routes.MAX_DAYS + 1):
        with pytest.raises(InputError, match="working days"):
            routes.working_days(thu, bad)


def test_priority_is_half_potential_rank_half_overdue_rank_never_touched_first():
    # potentials 1, 2, 3 -> percentile ranks 1/3, 2/3, 1; overdue never, 0.5, 2 -> 1, 1/3, 2/3
    got = routes.priority([1.0, 2.0, 3.0], [np.nan, 0.5, 2.0])
    assert got.tolist() == [round(100 * (1 / 3 + 1) / 2), round(100 * (2 / 3 + 1 / 3) / 2),
                            round(100 * (1 + 2 / 3) / 2)] == [67, 50, 83]


def test_due_accounts_of_the_small_world_worked_by_hand(small_db):
    # T1 holds A1 (10 visits, touched 2026-03-31), A2 (Clinic: 6 a year by the saved
    # setting, touched 2025-12-31) and A3 (pinned; the default 12 a year, 2025-12-30).
    # Week from Wed 2026-04-01: Apr 1, 2, 3, 6, 7.
    # A1: due 2026-03-31 + ceil(36.5) = 2026-05-07 -> not due.
    # A2: due 2025-12-31 + ceil(60.83) = 2026-03-02 -> due; overdue 97 / 60.83.
    # A3: due 2025-12-30 + ceil(30.42) = 2026-01-30 -> due; overdue 98 / 30.42.
    with Store(small_db, read_only=True) as s:
        cur = s.cursor()
        plan = plans.get_plan(cur, "Base")
        dates = routes.working_days(dt.date(2026, 4, 1), 5)
        due = routes.due_accounts(cur, plan, ["T1"], dates, load_settings(s))
    assert dates[-1] == dt.date(2026, 4, 7)
    got = due.set_index("account_id")
    assert sorted(got.index) == ["A2", "A3"]
    assert got.loc["A2", "due_date"] == dt.date(2026, 3, 2)
    assert got.loc["A3", "due_date"] == dt.date(2026, 1, 30)
    assert got.loc["A2", "overdue"] == pytest.approx(97 / (365 / 6))
    assert got.loc["A3", "overdue"] == pytest.approx(98 / (365 / 12))
    # potential ranks A2 1, A3 1/2; overdue ranks A2 1/2, A3 1: both 75
    assert got["priority"].tolist() == [75, 75]


def test_a_week_in_the_small_world_from_the_reps_home(small_db):
    with Store(small_db, read_only=True) as s:
        cur = s.cursor()
        plan = plans.get_plan(cur, "Base")
        week = routes.plan_week(cur, plan, territory="T1", start=dt.date(2026, 4, 1),
                                days=5, settings=load_settings(s))
    visits = week.stops[week.stops["kind"] == "visit"]
    # A2 is 0.05 degree (5.56 km) from home: routed. A3 is 2 degrees (222 km) away:
    # 2 x 222 km x 1.3 / 60 km/h = 9.6 h is over the 8-hour day, too far for one day.
    assert visits["account_id"].tolist() == ["A2"]
    assert week.unplanned["account_id"].tolist() == ["A3"]
    assert week.unplanned["reason"].iloc[0].startswith("too far for one day")
    d = km(40.0, -100.0, 40.05, -100.0) * 1.3
    assert week.km == pytest.approx(2 * d, rel=1e-6)
    assert week.days["visits"].tolist() == [1, 0, 0, 0, 0]
    assert week.days["hours"].iloc[0] == pytest.approx(
        (2 * round(d / 60 * 3600) + 45 * 60) / 3600)
    first = week.stops[week.stops["day"] == 1]
    assert first["kind"].tolist() == ["home", "visit", "home"]
    assert first["depart"].iloc[0] == "08:00"
    assert week.trip_km == pytest.approx(2 * d, rel=1e-6)


def test_a_segments_visit_minutes_set_the_visits_length(small_db):
    """A2 is a Clinic: with Clinic visits of 120 minutes its stop lasts 2 hours."""
    with Store(small_db, read_only=True) as s:
        cur = s.cursor()
        settings = load_settings(s).with_overrides(["visit_minutes.Clinic=120"])
        week = routes.plan_week(cur, plans.get_plan(cur, "Base"), territory="T1",
                                start=dt.date(2026, 4, 1), days=5, settings=settings)
    stop = week.stops[week.stops["kind"] == "visit"].iloc[0]
    assert stop["account_id"] == "A2"
    assert stop["visit_minutes"] == 120
    assert (stop["arrive"], stop["depart"]) == ("08:07", "10:07")  # 7.2 km at 60 km/h
    assert week.days["visit_hours"].iloc[0] == 2.0


@pytest.mark.parametrize(("territory", "message"), [
    ("T3", "has no rep"), ("NOPE", "is not in plan"),
])
def test_a_week_needs_a_territory_of_the_plan_with_a_rep(small_db, territory, message):
    with Store(small_db, read_only=True) as s:
        cur = s.cursor()
        with pytest.raises(InputError, match=message):
            routes.plan_week(cur, plans.get_plan(cur, "Base"), territory=territory,
                             start=dt.date(2026, 4, 1), settings=Settings())


def test_a_rep_without_a_home_is_told_what_to_add(small_copy):
    with Store(small_copy) as s:
        s.cursor().execute("UPDATE reps SET home_lat = NULL WHERE rep_id = 'R1'")
        cur = s.cursor()
        with pytest.raises(InputError, match="no home location: add home_lat and home_lon"):
            routes.plan_week(cur, plans.get_plan(cur, "Base"), rep="R1",
                             start=dt.date(2026, 4, 1), settings=Settings())


# -- the solver and the baseline on hand-made matrices -------------------------------------
def square_problem():
    """Home at the origin, four points at the corners of a square of side 10 km (drives of
    600 s per side at 60 km/h), a fifth far away (3,600 s)."""
    pts = np.array([(0, 0), (10, 0), (10, 10), (0, 10), (5, 5), (60, 0)], float)
    dist = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1))
    return np.rint(dist * 60).astype(np.int64)


def test_the_solver_respects_the_day_limit_and_visits_each_point_at_most_once():
    seconds = square_problem()
    service, limit = 1800, 4 * 3600
    routes_, missed = routes.solve(seconds, service, limit, 2, np.full(5, 50))
    visited = [j for r in routes_ for j in r]
    assert len(visited) == len(set(visited))
    assert set(visited) | missed == {1, 2, 3, 4, 5}
    for r in routes_:
        path = [0, *r, 0]
        total = sum(seconds[a, b] for a, b in itertools.pairwise(path)) + service * len(r)
        assert total <= limit
    # the far point (2 x 3,600 s + 1,800 s = 2.5 h) fits a day of its own
    assert 5 in visited


def test_the_solver_keeps_the_higher_priority_when_not_all_fit():
    seconds = square_problem()[:3, :3]  # home and two points 10 km and 14.1 km away
    service, limit = 3600, int(2.1 * 3600)  # one visit a day fits, not two
    got, missed = routes.solve(seconds, service, limit, 1, np.array([10, 90]))
    assert got == [[2]]
    assert missed == {1}


def test_nearest_neighbour_goes_to_the_nearest_point_that_still_fits_the_day():
    seconds = square_problem()
    # from home: (5,5) is nearest (424 s), then (10,0) or (0,10) at 424 s, ...
    days = routes.nearest_neighbour(seconds, 0, 10**6, [1, 2, 3, 4])
    assert days[0][0] == 4
    assert sorted(days[0]) == [1, 2, 3, 4]
    assert len(days) == 1
    # a day of 1,300 s: home -> (5,5) -> home is 848 s; one more point does not fit
    days = routes.nearest_neighbour(seconds, 0, 1300, [1, 4])
    assert days == [[4], [1]]
    # a point that fits no day alone is left out
    assert routes.nearest_neighbour(seconds, 0, 1000, [5]) == []


def test_clock_times():
    assert routes.clock(8.0, 0) == "08:00"
    assert routes.clock(8.5, 45 * 60) == "09:15"
    assert routes.clock(20.0, 5 * 3600) == "01:00 (+1d)"


# -- the demo data, checked against the shipped files ---------------------------------------
@pytest.fixture(scope="module")
def demo_week(demo_db):
    with Store(demo_db, read_only=True) as s:
        cur = s.cursor()
        settings = load_settings(s)
        plan = plans.get_plan(cur, None)
        week = routes.plan_week(cur, plan, territory="T39", start=dt.date(2026, 10, 1),
                                days=5, settings=settings)
        due = routes.due_accounts(cur, plan, ["T39"], week.dates, settings)
        terr = plans.territories(cur, plan).set_index("territory_id")
    return week, due, terr.loc["T39"], settings


def test_the_demo_week_keeps_every_day_within_its_hours_from_home_to_home(demo_week):
    week, _, rep, s = demo_week
    assert len(week.dates) == 5
    assert week.visits > 20
    home = (rep["home_lat"], rep["home_lon"])
    for d in range(1, 6):
        day = week.stops[week.stops["day"] == d]
        if not (day["kind"] == "visit").any():
            continue
        assert day["kind"].iloc[0] == day["kind"].iloc[-1] == "home"
        assert (day["lat"].iloc[0], day["lon"].iloc[0]) == pytest.approx(home)
        assert (day["lat"].iloc[-1], day["lon"].iloc[-1]) == pytest.approx(home)
        pts = list(zip(day["lat"], day["lon"], strict=True))
        road = sum(km(*a, *b) for a, b in itertools.pairwise(pts)) * s.road_factor
        visits = int((day["kind"] == "visit").sum())
        hours = road / s.speed_kmh + visits * s.visit_minutes / 60
        assert hours <= s.day_hours + 1e-3
        row = week.days.iloc[d - 1]
        assert row["km"] == pytest.approx(road, rel=1e-6)
        assert row["hours"] == pytest.approx(hours, abs=0.01)  # whole seconds per leg


def test_the_demo_week_visits_due_accounts_of_the_territory_each_once(demo_week, demo_frames):
    week, due, _, s = demo_week
    visited = week.stops.loc[week.stops["kind"] == "visit", "account_id"]
    assert visited.is_unique
    assert set(visited) | set(week.unplanned["account_id"]) == set(due["account_id"])
    assert not set(visited) & set(week.unplanned["account_id"])
    # due, recomputed from the shipped accounts file
    acc = demo_frames["accounts"].set_index("account_id").loc[list(visited)]
    per_year = acc["visits_per_year"].fillna(acc["segment"].map(s.visits_by_segment)) \
        .fillna(s.visits_per_year)
    last = pd.to_datetime(acc["last_activity_date"])
    end = pd.Timestamp(week.dates[-1])
    assert ((per_year > 0) & (last.isna() | ((end - last).dt.days >= 365 / per_year))).all()


def test_routing_beats_the_nearest_neighbour_order_and_one_trip_per_visit(demo_week):
    week, *_ = demo_week
    assert week.km < week.nn_km
    assert week.km < week.trip_km
    assert week.saving_vs_nearest == pytest.approx(1 - week.km / week.nn_km)


def test_the_week_as_gpx_parses_with_a_route_per_day(demo_week):
    week, *_ = demo_week
    gpx = gpxpy.parse(routes.week_gpx(week))
    days = [d for d in range(1, 6) if week.days.iloc[d - 1]["visits"]]
    assert len(gpx.routes) == len(days)
    for r, d in zip(gpx.routes, days, strict=True):
        stops = week.stops[week.stops["day"] == d]
        assert len(r.points) == len(stops)
        assert (r.points[0].latitude, r.points[0].longitude) == pytest.approx(week.home)
        assert r.points[1].name.startswith("1. ")
    assert len(gpx.waypoints) == week.visits
    one = gpxpy.parse(routes.week_gpx(week, day=days[0]))
    assert len(one.routes) == 1


def test_the_week_as_csv_and_json(demo_week):
    week, *_ = demo_week
    frame = pd.read_csv(__import__("io").StringIO(routes.week_csv(week, day=1)))
    assert set(frame["day"]) == {1}
    assert frame["stop"].tolist() == list(range(len(frame)))
    data = json.loads(routes.week_json(week))
    assert data["week"]["visits"] == week.visits
    assert len(data["stops"]) == len(week.stops)
    assert len(data["days"]) == 5


def test_a_name_that_looks_like_a_formula_is_text_in_the_csv(small_copy):
    with Store(small_copy) as s:
        s.cursor().execute("UPDATE accounts SET name = '=HYPERLINK(\"x\")' WHERE "
                           "account_id = 'A2'")
        cur = s.cursor()
        week = routes.plan_week(cur, plans.get_plan(cur, "Base"), territory="T1",
                                start=dt.date(2026, 4, 1), settings=load_settings(s))
    assert "'=HYPERLINK" in routes.week_csv(week)
    assert gpxpy.parse(routes.week_gpx(week)).routes[0].points[1].name == \
        '1. =HYPERLINK("x")'


# -- the command line -----------------------------------------------------------------------
@pytest.mark.parametrize("fmt", routes.FORMATS)
def test_cli_routes_writes_each_format(demo_db, tmp_path, capsys, fmt):
    out = tmp_path / f"week.{fmt}"
    code = main(["routes", "--db", str(demo_db), "--territory", "T39", "--start",
                 "2026-10-01", "--format", fmt, "--out", str(out)])
    assert code == 0
    text = out.read_text(encoding="utf-8")
    if fmt == "gpx":
        assert gpxpy.parse(text).routes
    elif fmt == "json":
        assert json.loads(text)["week"]["first_day"] == "2026-10-01"
    else:
        assert text.startswith("day,date,stop,kind,account_id")
    assert "nearest-neighbour order" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "message"), [
    (["--territory", "NOPE"], "is not in plan"),
    (["--territory", "T39", "--days", "0"], "working days"),
    (["--territory", "T39", "--start", "tomorrow"], "expected YYYY-MM-DD"),
    (["--territory", "T39", "--day", "6"], "days 1 to 5"),
    (["--rep", "R039", "--setting", "day_hours=30"], "day_hours"),
])
def test_cli_routes_bad_input_exits_2_with_a_message(demo_db, capsys, args, message):
    assert main(["routes", "--db", str(demo_db), *args]) == 2
    assert message in capsys.readouterr().err


# -- the meeting pack for that rep ----------------------------------------------------------
@pytest.mark.parametrize("fmt", ["pdf", "pptx"])
def test_the_meeting_pack_for_a_rep_carries_the_week(demo_db, demo_week, tmp_path, fmt):
    from analytics.exports.formats import export_plan
    from analytics.exports.pack import PlanPack
    from analytics.period import resolve

    week, *_ = demo_week
    with Store(demo_db, read_only=True) as s:
        cur = s.cursor()
        plan = plans.get_plan(cur, None)
        period, as_of = resolve(s.get_meta("as_of"), None, None)
        pack = PlanPack(cur, plan, period=period, as_of=as_of, settings=load_settings(s),
                        weeks=(week,), focus=("T39",))
        out = export_plan(cur, plan, fmt, tmp_path / f"pack.{fmt}", period=period,
                          as_of=as_of, settings=load_settings(s), pack=pack)
    if fmt == "pdf":
        import pypdf

        texts = [p.extract_text() for p in pypdf.PdfReader(out).pages]
    else:
        from pptx import Presentation

        texts = ["\n".join(sh.text_frame.text if sh.has_text_frame else
                           "\n".join(c.text for r in sh.table.rows for c in r.cells)
                           if sh.has_table else "" for sh in slide.shapes)
                 for slide in Presentation(out).slides]
    # the plan page, T39's page, the week's routes, the stops (47 visits: one page)
    assert len(texts) == 4
    assert "T39" in texts[1]
    saving = round(100 * week.saving_vs_nearest)
    assert f"{saving}% shorter than the nearest-neighbour order" in texts[2]
    assert f"{week.km:,.0f}" in texts[2]
    first = week.stops[(week.stops["kind"] == "visit")].iloc[0]
    assert str(first["name"])[:20] in texts[3]


def test_cli_export_week_writes_the_pack_for_that_rep(demo_db, tmp_path):
    import pypdf

    out = tmp_path / "rep.pdf"
    assert main(["export", "--db", str(demo_db), "--format", "pdf", "--out", str(out),
                 "--week", "T05"]) == 0
    texts = [p.extract_text() for p in pypdf.PdfReader(out).pages]
    assert len(texts) >= 4
    assert "T05" in texts[1]
    assert "shorter than the nearest-neighbour order" in texts[2]
    assert not any("T06" in t for t in texts[1:])
    assert main(["export", "--db", str(demo_db), "--format", "xlsx", "--out",
                 str(tmp_path / "x.xlsx"), "--week", "T05"]) == 2
