"""Settings: defaults, `name=value` overrides, storage, and what each one changes.

The effects are measured on the small world of tests/test_metrics.py (see its docstring for
the hand-worked numbers): its workloads split into visit hours V and travel hours D,

    T1: V = (10 + 6 + 12) x 45/60 = 21   D = TRIP x (6 x 0.05 K + 12 x 2 K)
    T2: V = 8 x 45/60 = 6                D = TRIP x 8 x 40 K
    T3: V = 12 x 45/60 = 9 (no rep)      T4: V = 6 x 45/60 = 4.5 (0 km)     T5: nothing

with K = 6,371.0088 x pi / 180 and TRIP = 2 x 1.3 / 60 (hours per km of distance).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math

import pandas as pd
import pytest
from conftest import SMALL_AS_OF, SMALL_PERIOD, is_empty, rows, small_summary

from analytics.errors import InputError
from analytics.settings import Settings, load_settings, save_settings

K = 6371.0088 * math.pi / 180  # km in one degree of a meridian
TRIP = 2 * 1.3 / 60             # hours per km of distance: there and back, x1.3, 60 km/h
VISIT = 45 / 60                 # hours per visit (45 minutes)
V = {"T1": 21.0, "T2": 6.0, "T3": 9.0, "T4": 4.5, "T5": 0.0}
D = {"T1": TRIP * (6 * 0.05 * K + 12 * 2 * K), "T2": TRIP * 8 * 40 * K, "T3": 0.0,
     "T4": 0.0, "T5": 0.0}
CAP = {"T1": 150.0, "T2": 1200.0, "T3": 0.0, "T4": 0.0, "T5": 500.0}
PLAN_V = 60 * VISIT  # every account's visits, the unassigned A6 included
PLAN_D = D["T1"] + D["T2"]
SMALL = Settings(visits_by_segment={"Clinic": 6.0})  # the small world's saved settings


# --------------------------------------------------------------------------------------
# defaults and parsing
# --------------------------------------------------------------------------------------
def test_defaults_are_those_of_metrics_md():
    s = Settings()
    assert (s.visit_minutes, s.road_factor, s.speed_kmh) == (45, 1.3, 60)
    assert s.capacity_hours == 1200
    assert s.visits_per_year == 12
    assert s.visits_by_segment == {}
    assert (s.overload_tolerance, s.underload_threshold) == (0.10, 0.70)
    assert s.max_travel_km == 150
    assert s.touch_days == 90


def test_with_overrides_parses_numbers_and_segments():
    s = Settings().with_overrides(["speed_kmh=50", "visits_per_year.Clinic=6",
                                   " road_factor = 1.5 ", "touch_days=30",
                                   "visits_per_year.Surgery Center=0.5", "visits_per_year=4"])
    assert s.speed_kmh == 50.0
    assert s.road_factor == 1.5
    assert s.touch_days == 30
    assert isinstance(s.touch_days, int)
    assert s.visits_per_year == 4.0
    assert s.visits_by_segment == {"Clinic": 6.0, "Surgery Center": 0.5}
    # the rest untouched, and the original unchanged (settings are values)
    assert s.visit_minutes == 45
    assert Settings().speed_kmh == 60
    assert Settings().visits_by_segment == {}


def test_visit_minutes_by_segment_override_and_round_trip():
    s = Settings().with_overrides(["visit_minutes.Hospital=90", "visit_minutes=30",
                                   "day_hours=9.5", "day_start_hour=7.5"])
    assert s.visit_minutes_by_segment == {"Hospital": 90.0}
    assert (s.visit_minutes, s.day_hours, s.day_start_hour) == (30.0, 9.5, 7.5)
    assert Settings.from_json(s.to_json()) == s
    assert ("visit_minutes.Hospital", 90.0) in s.as_rows()


def test_with_overrides_keeps_other_segments_and_last_wins():
    base = Settings(visits_by_segment={"Clinic": 6.0, "Hospital": 2.0})
    s = base.with_overrides(["visits_per_year.Clinic=1", "visits_per_year.Clinic=3",
                             "visits_per_year.clinic=9"])  # segment names keep their case
    assert s.visits_by_segment == {"Clinic": 3.0, "Hospital": 2.0, "clinic": 9.0}
    assert base.visits_by_segment == {"Clinic": 6.0, "Hospital": 2.0}
    assert Settings().with_overrides([]) == Settings()
    assert Settings().with_overrides(None) == Settings()
    assert Settings().with_overrides(["touch_days=30.0"]).touch_days == 30


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("speed=50", "--setting 'speed=50': unknown setting 'speed'; settings are "
                     "capacity_hours, day_hours, day_start_hour, max_travel_km, "
                     "overload_tolerance, road_factor, speed_kmh, touch_days, "
                     "underload_threshold, visit_minutes, visits_per_year, "
                     "visits_per_year.<segment>, visit_minutes.<segment>"),
        ("visit_minutes_by_segment=3", "unknown setting 'visit_minutes_by_segment'"),
        ("visit_minutes.=3", "--setting 'visit_minutes.=3': name the segment after the dot"),
        ("visit_minutes.Clinic=-2", "setting visit_minutes.Clinic must not be negative"),
        ("day_hours=0", "setting day_hours must be more than 0 and at most 24"),
        ("day_hours=25", "setting day_hours must be more than 0 and at most 24"),
        ("day_start_hour=24", "setting day_start_hour must be from 0 to under 24"),
        ("visits_by_segment=3", "unknown setting 'visits_by_segment'"),
        ("speed_kmh=fast", "--setting 'speed_kmh=fast': 'fast' is not a number"),
        ("speed_kmh=", "--setting 'speed_kmh=': '' is not a number"),
        ("speed_kmh=1,5", "'1,5' is not a number"),
        ("speed_kmh=nan", "--setting 'speed_kmh=nan': not a finite number"),
        ("max_travel_km=inf", "not a finite number"),
        ("speed_kmh", "--setting 'speed_kmh': expected name=value, e.g. speed_kmh=50"),
        ("touch_days=1.5", "--setting 'touch_days=1.5': touch_days is a whole number"),
        ("visits_per_year.=3", "--setting 'visits_per_year.=3': name the segment after the dot"),
        ("speed_kmh=0", "setting speed_kmh must be greater than 0"),
        ("road_factor=-1", "setting road_factor must be greater than 0"),
        ("visit_minutes=-5", "setting visit_minutes must not be negative"),
        ("touch_days=-1", "setting touch_days must not be negative"),
        ("capacity_hours=-1", "setting capacity_hours must not be negative"),
        ("visits_per_year.Clinic=-2", "setting visits_per_year.Clinic must not be negative"),
    ],
)
def test_with_overrides_errors(item, message):
    with pytest.raises(InputError) as exc:
        Settings().with_overrides(["speed_kmh=55", item])
    assert message in str(exc.value)


def test_zero_is_allowed_where_it_means_something():
    s = Settings().with_overrides(["visit_minutes=0", "max_travel_km=0", "touch_days=0",
                                   "capacity_hours=0", "overload_tolerance=0",
                                   "underload_threshold=0", "visits_per_year.X=0"])
    assert (s.visit_minutes, s.max_travel_km, s.touch_days) == (0, 0, 0)
    assert s.visits_by_segment == {"X": 0.0}


# --------------------------------------------------------------------------------------
# storage
# --------------------------------------------------------------------------------------
def test_json_round_trip_and_unknown_keys():
    s = Settings(speed_kmh=50.0, touch_days=30, visits_by_segment={"Clinic": 6.0})
    assert Settings.from_json(s.to_json()) == s
    assert json.loads(s.to_json())["visits_by_segment"] == {"Clinic": 6.0}
    assert Settings.from_json(None) == Settings()
    assert Settings.from_json("") == Settings()
    # a setting from another version of the app is ignored, the known ones kept
    assert Settings.from_json('{"speed_kmh": 70, "retired_setting": 1}') == Settings(
        speed_kmh=70)


def test_as_rows():
    got = dict(Settings(visits_by_segment={"b": 1.0, "a": 2.0}).as_rows())
    assert got["speed_kmh"] == 60
    assert got["visits_per_year.a"] == 2.0
    assert "visits_by_segment" not in got
    names = [n for n, _ in Settings(visits_by_segment={"b": 1.0, "a": 2.0}).as_rows()]
    assert names[-2:] == ["visits_per_year.a", "visits_per_year.b"]
    assert len(names) == len(dataclasses.fields(Settings)) - 2 + 2  # two by-segment dicts


def test_save_and_load(store):
    assert load_settings(store) == Settings()  # nothing saved yet: the defaults
    s = Settings(visit_minutes=30.0, visits_by_segment={"Clinic": 6.0})
    save_settings(store, s)
    assert load_settings(store) == s
    assert json.loads(rows(store, "SELECT value FROM meta WHERE key = 'settings'")[0][0])[
        "visit_minutes"] == 30.0
    with pytest.raises(InputError, match="setting speed_kmh must be greater than 0"):
        save_settings(store, Settings(speed_kmh=0.0))
    assert load_settings(store) == s  # the bad settings were not stored


# --------------------------------------------------------------------------------------
# what changing a setting changes (and nothing else)
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def base(small_db):
    return small_summary(small_db, settings=SMALL)


def _same(a, b) -> bool:
    if is_empty(a) and is_empty(b):
        return True
    if isinstance(a, str) or isinstance(b, str) or is_empty(a) or is_empty(b):
        return a == b
    return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-12)


def _changed(base, new) -> tuple[dict[str, set[str]], set[str]]:
    """Columns that differ, per territory, and the plan keys that differ."""
    b_rows, b_plan = base
    n_rows, n_plan = new
    per = {}
    for tid in b_rows.index:
        cols = {c for c in b_rows.columns
                if not _same(b_rows.loc[tid, c], n_rows.loc[tid, c])}
        if cols:
            per[tid] = cols
    return per, {k for k in b_plan if not _same(b_plan[k], n_plan[k])}


WORKLOAD_COLS = {"workload_hours", "utilization", "deviation_workload_hours"}
WORKLOAD_PLAN = {"workload_hours", "utilization", "balance_cv_workload_hours",
                 "balance_max_dev_workload_hours"}


def _check_workloads(small_db, items, expected: dict[str, float], plan_w: float):
    new = small_summary(small_db, settings=SMALL.with_overrides(items))
    rows_, plan = new
    for tid, w in expected.items():
        assert rows_.loc[tid, "workload_hours"] == pytest.approx(w, rel=1e-12), tid
        if CAP[tid]:
            assert rows_.loc[tid, "utilization"] == pytest.approx(w / CAP[tid], rel=1e-12)
    assert plan["workload_hours"] == pytest.approx(plan_w, rel=1e-12)
    assert plan["utilization"] == pytest.approx(plan_w / 1850, rel=1e-12)
    return new


def test_double_speed_halves_the_travel_part(small_db, base):
    new = _check_workloads(small_db, ["speed_kmh=120"],
                           {t: V[t] + D[t] / 2 for t in V}, PLAN_V + PLAN_D / 2)
    per, plan = _changed(base, new)
    # T1: (21 + 58.5) / 150 = 0.53, now over-served; T2: 1.29 -> 0.66, over-served too
    assert new[0].loc["T1", "status"] == "over-served"
    assert new[0].loc["T2", "status"] == "over-served"
    assert per == {"T1": WORKLOAD_COLS | {"status"}, "T2": WORKLOAD_COLS | {"status"},
                   "T3": {"deviation_workload_hours"}, "T4": {"deviation_workload_hours"}}
    assert plan == WORKLOAD_PLAN


def test_speed_50(small_db):
    _check_workloads(small_db, ["speed_kmh=50"], {t: V[t] + D[t] * 60 / 50 for t in V},
                     PLAN_V + PLAN_D * 60 / 50)


def test_road_factor_doubles_the_travel_part(small_db, base):
    new = _check_workloads(small_db, ["road_factor=2.6"],
                           {t: V[t] + 2 * D[t] for t in V}, PLAN_V + 2 * PLAN_D)
    per, plan = _changed(base, new)
    assert set().union(*per.values()) == WORKLOAD_COLS | {"status"}
    assert plan == WORKLOAD_PLAN


def test_visit_minutes_doubles_the_visit_part(small_db, base):
    new = _check_workloads(small_db, ["visit_minutes=90"],
                           {t: 2 * V[t] + D[t] for t in V}, 2 * PLAN_V + PLAN_D)
    per, plan = _changed(base, new)
    assert per["T1"] == WORKLOAD_COLS
    assert per["T3"] == WORKLOAD_COLS - {"utilization"}  # no rep: no utilization
    assert plan == WORKLOAD_PLAN


def test_segment_visits(small_db, base):
    """Clinic 6 -> 3: A2 (T1, 0.05 K from R1), A6 (unassigned), A7 (T4, 0 km) lose 3
    visits; A4 is a Clinic with its own 0 visits a year and stays at 0."""
    a2_visit = VISIT + TRIP * 0.05 * K
    new = _check_workloads(
        small_db, ["visits_per_year.Clinic=3"],
        {"T1": V["T1"] + D["T1"] - 3 * a2_visit, "T2": V["T2"] + D["T2"],
         "T3": 9.0, "T4": 4.5 - 3 * VISIT, "T5": 0.0},
        PLAN_V + PLAN_D - 3 * a2_visit - 3 * VISIT - 3 * VISIT)
    per, _ = _changed(base, new)
    assert per["T2"] == {"deviation_workload_hours"}  # the mean moved, T2 did not
    assert per["T3"] == {"deviation_workload_hours"}


def test_default_visits(small_db, base):
    """visits_per_year 12 -> 24: A3 (segment Lab, no setting; T1, 2 K) and A8 (Hospital,
    no setting; T3) double; A1 and A5 (Hospital) keep their own visits."""
    new = _check_workloads(
        small_db, ["visits_per_year=24"],
        {"T1": V["T1"] + D["T1"] + 12 * (VISIT + TRIP * 2 * K), "T2": V["T2"] + D["T2"],
         "T3": 18.0, "T4": 4.5, "T5": 0.0},
        PLAN_V + PLAN_D + 12 * (VISIT + TRIP * 2 * K) + 12 * VISIT)
    per, _ = _changed(base, new)
    assert set(per) == {"T1", "T2", "T3", "T4"}  # T2, T4: their workload deviation only
    assert per["T2"] == {"deviation_workload_hours"}


def test_hospital_visits_only_where_no_own_visits(small_db, base):
    new = _check_workloads(small_db, ["visits_per_year.Hospital=1"],
                           {"T1": V["T1"] + D["T1"], "T2": V["T2"] + D["T2"], "T3": VISIT,
                            "T4": 4.5}, PLAN_V + PLAN_D - 11 * VISIT)
    per, _ = _changed(base, new)
    assert per["T3"] == {"workload_hours", "deviation_workload_hours"}


@pytest.mark.parametrize(
    ("item", "reach"),
    [("max_travel_km=0", {"T1": 1 / 3, "T2": 0.0, "T4": 1.0, "plan": 2 / 6}),  # 0 <= 0
     ("max_travel_km=5000", {"T1": 1.0, "T2": 1.0, "T4": 1.0, "plan": 1.0}),
     ("max_travel_km=200", {"T1": 2 / 3, "T2": 0.5, "T4": 1.0, "plan": 4 / 6}),
     ("max_travel_km=250", {"T1": 1.0, "T2": 0.5, "T4": 1.0, "plan": 5 / 6})],
)
def test_max_travel_km_changes_reach_only(small_db, base, item, reach):
    new = small_summary(small_db, settings=SMALL.with_overrides([item]))
    for tid in ("T1", "T2", "T4"):
        assert new[0].loc[tid, "reach_pct"] == pytest.approx(reach[tid], rel=1e-12)
    assert new[1]["reach_pct"] == pytest.approx(reach["plan"], rel=1e-12)
    per, plan = _changed(base, new)
    assert set().union(set(), *per.values()) <= {"reach_pct"}
    assert plan <= {"reach_pct"}


@pytest.mark.parametrize(
    ("days", "t1", "plan"),
    # as of 2026-03-31: A1 2026-03-31, A2 2025-12-31 (90 days before), A3 2025-12-30 (91),
    # A6 2026-01-15 (75, unassigned), A5 2026-04-01 (after the as-of date: never)
    [(0, 1 / 3, 1 / 8), (75, 1 / 3, 2 / 8), (89, 1 / 3, 2 / 8), (90, 2 / 3, 3 / 8),
     (91, 1.0, 4 / 8), (1_000_000, 1.0, 4 / 8)],
)
def test_touch_days_changes_touched_only(small_db, base, days, t1, plan):
    new = small_summary(small_db, settings=SMALL.with_overrides([f"touch_days={days}"]))
    assert new[0].loc["T1", "touched_pct"] == pytest.approx(t1, rel=1e-12)
    assert new[0].loc["T2", "touched_pct"] == 0.0
    assert new[1]["touched_pct"] == pytest.approx(plan, rel=1e-12)
    per, plan_keys = _changed(base, new)
    assert set().union(set(), *per.values()) <= {"touched_pct"}
    assert plan_keys <= {"touched_pct"}


def test_capacity_setting_is_for_reps_without_capacity(small_db, base):
    """Only R2 has no capacity of its own: T2 gets 2,400 h, utilization halves (1.29 ->
    0.645, over-served now); R1's 150, R4's 0 and R5's 500 stay."""
    new = small_summary(small_db, settings=SMALL.with_overrides(["capacity_hours=2400"]))
    per, plan = _changed(base, new)
    assert per == {"T2": {"capacity_hours", "utilization", "status"}}
    t2 = new[0].loc["T2"]
    assert t2["capacity_hours"] == 2400
    assert t2["utilization"] == pytest.approx((V["T2"] + D["T2"]) / 2400, rel=1e-12)
    assert t2["status"] == "over-served"
    assert plan == {"capacity_hours", "utilization"}
    assert new[1]["capacity_hours"] == 150 + 2400 + 500


@pytest.mark.parametrize(
    ("items", "statuses"),
    [(["overload_tolerance=0.5"], {"T2": "balanced"}),          # 1.29 <= 1.5
     (["underload_threshold=0.95"], {"T1": "over-served"}),     # 0.92 < 0.95
     (["overload_tolerance=0", "underload_threshold=0"],
      {"T5": "balanced"}),                                      # 0 is not below 0
     (["underload_threshold=0.5", "overload_tolerance=0.2"], {})],
)
def test_thresholds_change_status_only(small_db, base, items, statuses):
    new = small_summary(small_db, settings=SMALL.with_overrides(items))
    per, plan = _changed(base, new)
    assert per == {t: {"status"} for t in statuses}
    for t, s in statuses.items():
        assert new[0].loc[t, "status"] == s
    assert plan == set()


def test_settings_do_not_touch_money(small_db, base):
    """Every setting at once: accounts, money, quota, units and shape stay as they were."""
    new = small_summary(small_db, settings=Settings(
        visit_minutes=10, road_factor=2, speed_kmh=10, capacity_hours=1, visits_per_year=1,
        visits_by_segment={"Clinic": 1}, overload_tolerance=1, underload_threshold=0.1,
        max_travel_km=1, touch_days=1))
    money = ["accounts", "potential", "won", "open_pipeline", "quota", "attainment", "pace",
             "pipeline_coverage", "penetration", "whitespace", "travel_km", "units",
             "components", "contiguous", "polsby_popper", "deviation_potential",
             "deviation_accounts"]
    pd.testing.assert_frame_equal(new[0][money], base[0][money])
    assert new[1]["coverage_accounts_pct"] == base[1]["coverage_accounts_pct"]


def test_as_of_moves_the_touch_window(small_db):
    """touch_days counts back from the as-of date: as of 2026-04-01, A5 is touched."""
    rows_, _ = small_summary(small_db, SMALL_PERIOD, SMALL_AS_OF + dt.timedelta(days=1), SMALL)
    assert rows_.loc["T2", "touched_pct"] == 0.5
    assert rows_.loc["T1", "touched_pct"] == pytest.approx(1 / 3)  # A2 is now 91 days old
