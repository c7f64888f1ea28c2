"""The metrics engine against docs/metrics.md: a small world worked out by hand, edge cases, and
an independent pandas computation over the demo dataset.

The small world (tests/conftest.py `build_small_world`): H3 resolution 5 plan "Base",
period 2025-07-01..2026-06-30 (days = 365, it cuts 2025 and 2026 in two), as of 2026-03-31:
elapsed = (31+31+30+31+30+31 + 31+28+31) / 365 = 274 / 365.
Settings: the defaults (visit 45 min, road factor 1.3, 60 km/h, capacity 1,200 h, 12 visits,
tolerance 0.10, threshold 0.70, reach 150 km, touch 90 days) and visits_per_year.Clinic = 6.

    reps   home               annual quota  capacity
    R1     40N 100W           365,000       150
    R2     21.3N 157.85W      730,000       (empty: the setting, 1,200)
    R3     35N 90W            100           1,200   in no territory
    R4     30N 95W            0             0
    R5     45N 120W           1,000,000     500     its territory T5 has its own 73,000

    territories  T1 Plains R1 (7 cells, one piece)   T2 Pacific R2 (Oahu cell + Alaska cell)
                 T3 Open, no rep (2 touching cells)  T4 Gulf R4 (1 cell)
                 T5 Empty R5 (2 touching cells, no account)

    account  territory            potential  visits/yr           km to rep  last activity
    A1       T1                   100,000    10 own              0 (home)   2026-03-31 in
    A2       T1                    50,000     6 Clinic setting   0.05 K     2025-12-31 in
    A3       T1 pinned (cell T3)   25,000    12 Lab: default     2 K        2025-12-30 out
    A4       T2 Oahu              200,000     0 own (Clinic)     0.1 K      -
    A5       T2 Alaska            300,000     8 own              40 K       2026-04-01 out
    A6       unassigned           400,000     6 Clinic setting   -          2026-01-15 in
    A7       T4                         0     6 Clinic setting   0 (home)   -
    A8       T3                    10,000    12 Hospital: default -         -

K = 6,371.0088 x pi / 180 km, one degree of a meridian: every rep-account pair above lies on
one meridian, so the haversine distance is exactly K x the difference in latitude.
Touched: within [as_of - 90, as_of] = [2025-12-31, 2026-03-31], both ends included.

    deals  S1 A1 won 10,000 2025-07-01 (first day)  S2 A1 won 5,000 2025-06-30 (out)
           S3 A1 open 20,000 2026-06-30 (last day)  S4 A2 won 7,000 2026-01-15
           S5 A2 open 3,000 2026-07-01 (out)        S6 A2 lost 99,999 (never counts)
           S7 A3 won 1,000 2025-12-31               S8 A4 won 800,000 2026-02-01
           S9 A5 open 50,000 2026-03-01             S10 A6 won 4,000 2025-10-01 (unassigned)
           S11 A7 won 2,500 2025-08-01              S12 A8 open 6,000 2026-05-01
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import shutil
import statistics
from pathlib import Path

import duckdb
import h3
import numpy as np
import pandas as pd
import pytest
import shapely
from conftest import (
    REPO,
    SMALL_AS_OF,
    SMALL_PERIOD,
    SMALL_RES,
    SMALL_TERRITORIES,
    is_empty,
    small_cells,
    small_summary,
    write_csv,
)
from pyproj import Geod

from analytics import ingest, metrics, plans
from analytics.cli import main
from analytics.metrics import PLAN_COLUMNS, TERRITORY_COLUMNS
from analytics.period import Period
from analytics.settings import Settings, load_settings
from analytics.store import Store
from analytics.units import UnitType, unit_shapes

K = 6371.0088 * math.pi / 180          # km in one degree of a meridian (111.195... km)
TRIP = 2 * 1.3 / 60                    # hours per km of distance: there and back, x1.3, 60 km/h
VISIT = 45 / 60                        # hours per visit
PERIOD = SMALL_PERIOD                  # 2025-07-01..2026-06-30
AS_OF = SMALL_AS_OF                    # 2026-03-31
ELAPSED = 274 / 365
MONEY_REL = 1e-9
EMPTY = None  # an expected empty value (NaN in frames, null in JSON, blank in CSV)

# workloads (hours): visits x 45 min + visits x 2 x km x 1.3 / 60 km/h
W1 = (10 + 6 + 12) * VISIT + TRIP * (10 * 0 + 6 * 0.05 * K + 12 * 2 * K)  # = 138.09
W2 = (0 + 8) * VISIT + TRIP * (0 * 0.1 * K + 8 * 40 * K)                  # = 1,547.9
W3 = 12 * VISIT                                   # = 9, no rep: no travel
W4 = 6 * VISIT                                    # = 4.5, A7 at R4's home
W5 = 0.0

# deviations: mean over the territories with a rep (T1, T2, T4, T5)
MEAN_POT = (175_000 + 500_000 + 0 + 0) / 4        # = 168,750
MEAN_ACC = (3 + 2 + 1 + 0) / 4                    # = 1.5
MEAN_W = (W1 + W2 + W4 + W5) / 4


HEX_GRID = 1e-10
"""Degrees: the union of hexagons snaps to this grid. h3 computes a vertex shared by two
cells separately for each cell, and the copies can differ by less than this; unsnapped, the
union keeps slivers that add perimeter (several percent) and even split territories."""


def polsby_popper(geom) -> float:
    """4 pi area / perimeter^2 on the WGS84 ellipsoid, every ring (holes too) in the
    perimeter: pyproj's geometry_area_perimeter gives the area, and the perimeter of the
    exteriors only, so the perimeter is summed here ring by ring."""
    geod = Geod(ellps="WGS84")
    area, _ = geod.geometry_area_perimeter(geom)
    polys = list(geom.geoms) if hasattr(geom, "geoms") else [geom]
    perim = 0.0
    for p in polys:
        for ring in (p.exterior, *p.interiors):
            lon, lat = ring.xy
            perim += geod.line_length(lon, lat)
    return 4 * math.pi * abs(area) / perim**2


def _hex_pp(cells: list[str]) -> float:
    """Polsby-Popper of the union of H3 hexagons, by shapely + pyproj (not analytics)."""
    polys = [shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in cells]
    return polsby_popper(shapely.union_all(polys, grid_size=HEX_GRID))


def expected_base() -> tuple[dict[str, dict], dict]:
    """Every column of the small world's plan "Base", worked out from docs/metrics.md."""
    cells = small_cells()
    t = {
        "T1": {
            "territory_name": "Plains", "rep_id": "R1",
            "accounts": 3,                            # A1, A2 by their cells, A3 pinned
            "potential": 175_000.0,                   # 100,000 + 50,000 + 25,000
            "won": 18_000.0,                          # S1 + S4 + S7
            "open_pipeline": 20_000.0,                # S3 (S5 is after the period)
            "quota": 365_000.0,                       # 365,000 x 365 / 365
            "attainment": 18_000 / 365_000,
            "pace": 18_000 / 365_000 / ELAPSED,
            "pipeline_coverage": 20_000 / (365_000 - 18_000),
            "penetration": 18_000 / 175_000,
            "whitespace": 175_000 - 18_000.0,
            "travel_km": (0 + 0.05 * K + 2 * K) / 3,  # = 75.98
            "workload_hours": W1,
            "capacity_hours": 150.0,
            "utilization": W1 / 150,                  # = 0.92: balanced
            "status": "balanced",
            "reach_pct": 2 / 3,                       # A3 at 222 km is out of reach
            "touched_pct": 2 / 3,                     # A1 (as-of day), A2 (as_of - 90)
            "units": 7, "components": 1, "contiguous": True,
            "polsby_popper": _hex_pp(cells["T1"]),
            "deviation_potential": (175_000 - MEAN_POT) / MEAN_POT,
            "deviation_workload_hours": (W1 - MEAN_W) / MEAN_W,
            "deviation_accounts": (3 - MEAN_ACC) / MEAN_ACC,   # = 1
        },
        "T2": {
            "territory_name": "Pacific", "rep_id": "R2",
            "accounts": 2, "potential": 500_000.0,
            "won": 800_000.0, "open_pipeline": 50_000.0,
            "quota": 730_000.0,
            "attainment": 800_000 / 730_000,
            "pace": 800_000 / 730_000 / ELAPSED,
            "pipeline_coverage": EMPTY,               # quota - won = -70,000 <= 0
            "penetration": 800_000 / 500_000,         # = 1.6
            "whitespace": 0.0,                        # max(500,000 - 800,000, 0)
            "travel_km": (0.1 * K + 40 * K) / 2,      # Oahu 11.1 km, Alaska 4,447.8 km
            "workload_hours": W2,
            "capacity_hours": 1200.0,                 # R2's capacity is empty: the setting
            "utilization": W2 / 1200,                 # = 1.29 > 1.10
            "status": "under-served",
            "reach_pct": 1 / 2,
            "touched_pct": 0.0,                       # A5 after the as-of date; A4 never
            "units": 2, "components": 2, "contiguous": False,
            "polsby_popper": _hex_pp(cells["T2"]),
            "deviation_potential": (500_000 - MEAN_POT) / MEAN_POT,
            "deviation_workload_hours": (W2 - MEAN_W) / MEAN_W,
            "deviation_accounts": (2 - MEAN_ACC) / MEAN_ACC,
        },
        "T3": {
            "territory_name": "Open", "rep_id": EMPTY,
            "accounts": 1,                            # A8 (A3 is pinned away)
            "potential": 10_000.0, "won": 0.0, "open_pipeline": 6_000.0,
            "quota": 0.0,                             # no rep, no quota of its own
            "attainment": EMPTY, "pace": EMPTY,
            "pipeline_coverage": EMPTY,               # quota - won = 0
            "penetration": 0.0,
            "whitespace": 10_000.0,
            "travel_km": EMPTY,
            "workload_hours": W3,
            "capacity_hours": 0.0,
            "utilization": EMPTY,
            "status": "no rep",
            "reach_pct": EMPTY,
            "touched_pct": EMPTY,                     # A8 has no last activity date
            "units": 2, "components": 1, "contiguous": True,
            "polsby_popper": _hex_pp(cells["T3"]),
            "deviation_potential": (10_000 - MEAN_POT) / MEAN_POT,
            "deviation_workload_hours": (W3 - MEAN_W) / MEAN_W,
            "deviation_accounts": (1 - MEAN_ACC) / MEAN_ACC,
        },
        "T4": {
            "territory_name": "Gulf", "rep_id": "R4",
            "accounts": 1, "potential": 0.0, "won": 2_500.0, "open_pipeline": 0.0,
            "quota": 0.0,                             # R4's quota is 0
            "attainment": EMPTY, "pace": EMPTY,
            "pipeline_coverage": EMPTY,               # quota - won = -2,500
            "penetration": EMPTY,                     # potential 0
            "whitespace": 0.0,                        # max(0 - 2,500, 0)
            "travel_km": 0.0,                         # A7 at the rep's home
            "workload_hours": W4,
            "capacity_hours": 0.0,                    # R4's capacity is 0
            "utilization": EMPTY,
            "status": "balanced",                     # has a rep, no utilization
            "reach_pct": 1.0,
            "touched_pct": EMPTY,
            "units": 1, "components": 1, "contiguous": True,
            "polsby_popper": _hex_pp(cells["T4"]),
            "deviation_potential": -1.0,
            "deviation_workload_hours": (W4 - MEAN_W) / MEAN_W,
            "deviation_accounts": (1 - MEAN_ACC) / MEAN_ACC,
        },
        "T5": {
            "territory_name": "Empty", "rep_id": "R5",
            "accounts": 0, "potential": 0.0, "won": 0.0, "open_pipeline": 0.0,
            "quota": 73_000.0,                        # the territory's own quota wins
            "attainment": 0.0, "pace": 0.0,
            "pipeline_coverage": 0.0,                 # 0 / 73,000
            "penetration": EMPTY,
            "whitespace": 0.0,
            "travel_km": EMPTY,                       # no account to travel to
            "workload_hours": 0.0,
            "capacity_hours": 500.0,
            "utilization": 0.0,
            "status": "over-served",
            "reach_pct": EMPTY,
            "touched_pct": EMPTY,
            "units": 2, "components": 1, "contiguous": True,
            "polsby_popper": _hex_pp(cells["T5"]),
            "deviation_potential": -1.0,
            "deviation_workload_hours": -1.0,
            "deviation_accounts": -1.0,
        },
    }
    pot = [175_000, 500_000, 0, 0]
    acc = [3, 2, 1, 0]
    wl = [W1, W2, W4, W5]
    total_w = 60 * VISIT + TRIP * (6 * 0.05 * K + 12 * 2 * K + 8 * 40 * K)
    plan = {
        "territory_name": EMPTY, "rep_id": EMPTY,
        "accounts": 8,                                # every account, A6 included
        "potential": 1_085_000.0,
        "won": 824_500.0,                             # 18,000 + 800,000 + 2,500 + 4,000
        "open_pipeline": 76_000.0,                    # 20,000 + 50,000 + 6,000
        "quota": 1_168_000.0,                         # 365,000 + 730,000 + 73,000
        "attainment": 824_500 / 1_168_000,
        "pace": 824_500 / 1_168_000 / ELAPSED,
        "pipeline_coverage": 76_000 / (1_168_000 - 824_500),
        "penetration": 824_500 / 1_085_000,
        "whitespace": 1_085_000 - 824_500.0,
        "travel_km": (2.05 * K + 40.1 * K + 0) / 6,   # the 6 accounts of T1, T2, T4
        "workload_hours": total_w,                    # 60 visits in all; travel of T1, T2
        "capacity_hours": 1850.0,                     # 150 + 1,200 + 0 + 0 + 500
        "utilization": total_w / 1850,
        "status": EMPTY,
        "reach_pct": 4 / 6,                           # A1, A2, A4, A7
        "touched_pct": 3 / 8,                         # A1, A2, A6
        "units": 14,
        "components": EMPTY, "contiguous": EMPTY, "polsby_popper": EMPTY,
        "deviation_potential": EMPTY, "deviation_workload_hours": EMPTY,
        "deviation_accounts": EMPTY,
        "coverage_accounts_pct": 6 / 8,               # T3's A8 and A6 are not covered
        "coverage_potential_pct": 675_000 / 1_085_000,
        "unassigned_accounts": 1,
        "balance_cv_potential": statistics.pstdev(pot) / statistics.mean(pot),
        "balance_cv_workload_hours": statistics.pstdev(wl) / statistics.mean(wl),
        "balance_cv_accounts": statistics.pstdev(acc) / statistics.mean(acc),
        "balance_max_dev_potential": (500_000 - MEAN_POT) / MEAN_POT,
        "balance_max_dev_workload_hours": (W2 - MEAN_W) / MEAN_W,
        "balance_max_dev_accounts": 1.0,              # |3 - 1.5| / 1.5 = |0 - 1.5| / 1.5
        "disruption_accounts_pct": EMPTY,             # no baseline asked for
        "disruption_potential_pct": EMPTY,
    }
    # the market under each territory: ZIP points and communes in its cells, each placed
    # with h3-py one by one (tests/test_market.py checks the figures against the sources)
    pop_of, est_of = _market_by_cell(SMALL_RES)
    for tid, e in t.items():
        pop = sum(pop_of.get(c, 0) for c in cells[tid])
        est = sum(est_of.get(c, 0) for c in cells[tid])
        e.update(_market_expected(e["accounts"], e["potential"], pop, est))
    plan.update(_market_expected(
        sum(e["accounts"] for e in t.values()), sum(e["potential"] for e in t.values()),
        sum(e["market_population"] for e in t.values()),
        sum(e["market_establishments"] for e in t.values())))
    return t, plan


def _market_expected(accounts, potential, pop: int, est: int) -> dict:
    return {"market_population": int(pop), "market_establishments": int(est),
            "accounts_per_1k_establishments": 1000 * accounts / est if est else EMPTY,
            "potential_per_capita": potential / pop if pop else EMPTY}


def _market_by_cell(res: int) -> tuple[dict, dict]:
    from analytics import geography, market

    z = pd.read_parquet(geography.US_ZIP_FILE).merge(
        pd.read_parquet(market.ZIP_BUSINESS_FILE), on="zip", how="left")
    c = pd.read_parquet(geography.FR_POSTAL_FILE).drop_duplicates("commune")
    pop, est = {}, {}
    for frame, has_est in ((z, True), (c, False)):
        for lat, lon, p, e in zip(frame["lat"], frame["lon"], frame["population"],
                                  frame["establishments"] if has_est else [0] * len(frame),
                                  strict=True):
            cell = h3.latlng_to_cell(lat, lon, res)
            pop[cell] = pop.get(cell, 0) + int(p)
            est[cell] = est.get(cell, 0) + (0 if pd.isna(e) else int(e))
    return pop, est


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def assert_value(col: str, got, exp, *, rel: float = MONEY_REL, where: str = "") -> None:
    label = f"{where} {col}: got {got!r}, expected {exp!r}"
    if exp is EMPTY or (isinstance(exp, float) and math.isnan(exp)):
        assert is_empty(got), label
    elif isinstance(exp, bool | np.bool_):
        assert not is_empty(got), label
        assert bool(got) is bool(exp), label
    elif isinstance(exp, str):
        assert got == exp, label
    elif isinstance(exp, int | np.integer):
        assert not is_empty(got), label
        assert float(got) == float(exp), label
        assert float(got).is_integer(), label
    else:
        assert not is_empty(got), label
        assert float(got) == pytest.approx(float(exp), rel=rel, abs=1e-9), label


PP_REL = 1e-8  # h3's own outline of a set of cells vs shapely's snapped union of hexagons


def check_row(got, exp: dict, where: str) -> None:
    for col, value in exp.items():
        assert_value(col, got[col], value, where=where,
                     rel=PP_REL if col == "polsby_popper" else MONEY_REL)


def gc_km(lat1, lon1, lat2, lon2):
    """Great-circle km on the 6,371.0088 km sphere (atan2 form; numpy arrays or floats)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = (np.sin((p2 - p1) / 2) ** 2
         + np.cos(p1) * np.cos(p2) * np.sin(np.radians(np.subtract(lon2, lon1)) / 2) ** 2)
    return 2 * 6371.0088 * np.arctan2(np.sqrt(a), np.sqrt(1 - a))


def exec_sql(db: Path, *statements: tuple[str, list]) -> None:
    with Store(db) as store:
        cur = store.cursor()
        for sql, params in statements:
            cur.execute(sql, params)


# --------------------------------------------------------------------------------------
# the small world by hand
# --------------------------------------------------------------------------------------
def test_settings_of_the_small_world(small_db):
    with Store(small_db, read_only=True) as store:
        assert load_settings(store) == Settings(visits_by_segment={"Clinic": 6.0})


def test_every_column_by_hand(small_db):
    rows, plan_row = small_summary(small_db)
    exp, exp_plan = expected_base()
    assert list(rows.columns) == TERRITORY_COLUMNS
    assert rows["territory_id"].tolist() == ["T1", "T2", "T3", "T4", "T5"]  # R3: no row
    for tid, e in exp.items():
        assert set(e) | {"territory_id"} == set(TERRITORY_COLUMNS)  # every column checked
        check_row(rows.loc[tid], e, tid)
    assert set(exp_plan) | {"territory_id"} == set(TERRITORY_COLUMNS) | set(PLAN_COLUMNS)
    assert set(plan_row) == set(TERRITORY_COLUMNS) | set(PLAN_COLUMNS)
    assert plan_row["territory_id"] == "__plan__"
    check_row(plan_row, exp_plan, "plan")


def test_hand_numbers_are_sane():
    """The hand formulas above, checked against rounded values worked out on paper."""
    assert pytest.approx(111.19508, rel=1e-6) == K
    assert pytest.approx(138.09, abs=0.01) == W1
    assert pytest.approx(1547.91, abs=0.01) == W2
    assert 0.70 < W1 / 150 < 1.10          # T1 balanced
    assert W2 / 1200 > 1.10                # T2 under-served
    # Polsby-Popper of one hexagon: close to the regular hexagon's pi / (2 sqrt 3)
    cells = small_cells()
    assert _hex_pp(cells["T4"]) == pytest.approx(math.pi / (2 * math.sqrt(3)), abs=2e-3)
    # two far apart hexagons: about half of one (4 pi 2A / (2P)^2)
    assert _hex_pp(cells["T2"]) == pytest.approx(math.pi / (4 * math.sqrt(3)), abs=2e-3)


def test_summary_frame_shape(small_db):
    rows, plan_row = small_summary(small_db)
    frame = metrics.summary_frame(rows.reset_index(drop=True), plan_row)
    assert list(frame.columns) == TERRITORY_COLUMNS + PLAN_COLUMNS
    assert frame["territory_id"].tolist() == ["T1", "T2", "T3", "T4", "T5", "__plan__"]
    assert frame.iloc[:5][PLAN_COLUMNS].isna().all().all()
    assert frame.iloc[5]["unassigned_accounts"] == 1
    assert frame.iloc[5]["accounts"] == 8


def test_pins_moved(small_copy):
    """A3's pin removed (back to T3 by its cell), A2 pinned from T1 to T2, and the
    unassigned A6 pinned to T5 (R5's home at 45N 120W)."""
    exec_sql(small_copy,
             ("DELETE FROM account_overrides", []),
             ("INSERT INTO account_overrides VALUES (1, 'A2', 'T2'), (1, 'A6', 'T5')", []))
    rows, plan_row = small_summary(small_copy)
    a2_r2 = float(gc_km(21.3, -157.85, 40.05, -100.0))  # about 5,800 km
    a6_r5 = float(gc_km(45.0, -120.0, 35.0, -90.0))     # about 2,800 km
    assert a2_r2 > 150
    assert a6_r5 > 150
    w1 = 10 * VISIT                                      # A1 alone, at the rep's home
    w2 = 14 * VISIT + TRIP * (8 * 40 * K + 6 * a2_r2)    # A4, A5 and A2 (6 visits)
    w3 = 24 * VISIT                                      # A8 and A3, no rep
    w5 = 6 * VISIT + TRIP * 6 * a6_r5                    # A6, Clinic: 6 visits
    exp = {
        "T1": {"accounts": 1, "potential": 100_000.0, "won": 10_000.0,
               "open_pipeline": 20_000.0, "travel_km": 0.0, "reach_pct": 1.0,
               "touched_pct": 1.0, "workload_hours": w1, "utilization": w1 / 150,
               "status": "over-served", "whitespace": 90_000.0,
               "pipeline_coverage": 20_000 / 355_000},
        "T2": {"accounts": 3, "potential": 550_000.0, "won": 807_000.0,
               "open_pipeline": 50_000.0, "travel_km": (0.1 * K + 40 * K + a2_r2) / 3,
               "reach_pct": 1 / 3, "touched_pct": 1 / 3, "workload_hours": w2,
               "utilization": w2 / 1200, "status": "under-served"},
        "T3": {"accounts": 2, "potential": 35_000.0, "won": 1_000.0,
               "open_pipeline": 6_000.0, "travel_km": EMPTY, "workload_hours": w3,
               "touched_pct": 0.0, "status": "no rep"},     # A3's 2025-12-30 is too old
        "T5": {"accounts": 1, "potential": 400_000.0, "won": 4_000.0, "travel_km": a6_r5,
               "reach_pct": 0.0, "touched_pct": 1.0, "workload_hours": w5,
               "utilization": w5 / 500, "attainment": 4_000 / 73_000,
               "penetration": 4_000 / 400_000, "whitespace": 396_000.0},
    }
    for tid, e in exp.items():
        check_row(rows.loc[tid], e, tid)
    check_row(plan_row, {
        "accounts": 8, "potential": 1_085_000.0, "won": 824_500.0, "open_pipeline": 76_000.0,
        "unassigned_accounts": 0, "coverage_accounts_pct": 6 / 8,  # A3, A8 in T3 (no rep)
        "coverage_potential_pct": (100_000 + 550_000 + 0 + 400_000) / 1_085_000,
        "travel_km": (40.1 * K + a2_r2 + a6_r5) / 6,  # T1 1, T2 3, T4 1, T5 1 accounts
        "reach_pct": 3 / 6,                            # A1, A4, A7
        "workload_hours": 60 * VISIT + TRIP * (8 * 40 * K + 6 * a2_r2 + 6 * a6_r5),
    }, "plan")


def test_pin_to_its_own_territory_changes_nothing(small_copy, small_db):
    exec_sql(small_copy, ("INSERT INTO account_overrides VALUES (1, 'A1', 'T1')", []))
    got, got_plan = small_summary(small_copy)
    base, base_plan = small_summary(small_db)
    pd.testing.assert_frame_equal(got, base)
    assert got_plan == base_plan


def test_pin_to_a_territory_not_in_the_plan_is_unassigned(small_copy):
    """An override naming a territory the plan does not have resolves to no territory."""
    exec_sql(small_copy, ("INSERT INTO account_overrides VALUES (1, 'A1', 'T9')", []))
    rows, plan_row = small_summary(small_copy)
    assert rows.loc["T1", "accounts"] == 2
    assert rows.loc["T1", "potential"] == 75_000
    assert plan_row["accounts"] == 8                      # every account still counts
    assert plan_row["potential"] == 1_085_000
    assert plan_row["won"] == 824_500
    assert plan_row["unassigned_accounts"] == 2           # A6 and A1
    assert plan_row["coverage_accounts_pct"] == pytest.approx(5 / 8)


def test_leap_year_without_sales(small_db):
    """2024: 366 days, no deal at all in it; as of 2026-03-31, after it: elapsed = 1."""
    period = Period.year(2024)
    assert period.days == 366
    rows, plan_row = small_summary(small_db, period)
    for tid in rows.index:
        assert rows.loc[tid, "won"] == 0
        assert rows.loc[tid, "open_pipeline"] == 0
    exp = {
        "T1": {"quota": 365_000 * 366 / 365, "attainment": 0.0, "pace": 0.0,
               "pipeline_coverage": 0.0, "penetration": 0.0,
               "whitespace": 175_000 * 366 / 365},
        "T2": {"quota": 730_000 * 366 / 365, "attainment": 0.0, "pace": 0.0,
               "pipeline_coverage": 0.0, "whitespace": 500_000 * 366 / 365},
        "T3": {"quota": 0.0, "attainment": EMPTY, "pace": EMPTY, "pipeline_coverage": EMPTY,
               "penetration": 0.0, "whitespace": 10_000 * 366 / 365},
        "T4": {"quota": 0.0, "pipeline_coverage": EMPTY, "penetration": EMPTY,
               "whitespace": 0.0},
        "T5": {"quota": 73_000 * 366 / 365, "pace": 0.0, "pipeline_coverage": 0.0},
    }
    for tid, e in exp.items():
        check_row(rows.loc[tid], e, tid)
    check_row(plan_row, {"won": 0.0, "open_pipeline": 0.0, "quota": 1_168_000 * 366 / 365,
                         "attainment": 0.0, "pace": 0.0, "pipeline_coverage": 0.0,
                         "penetration": 0.0, "whitespace": 1_085_000 * 366 / 365}, "plan")


def test_as_of_before_the_period(small_db):
    """Period 2026-04-01..2026-06-30 (91 days) seen on 2026-03-31: elapsed 0, pace empty."""
    period = Period(dt.date(2026, 4, 1), dt.date(2026, 6, 30))
    assert period.days == 91
    rows, plan_row = small_summary(small_db, period)
    # only S3 (A1 open 20,000 on 2026-06-30) and S12 (A8 open 6,000 on 2026-05-01) are in
    exp = {
        "T1": {"won": 0.0, "open_pipeline": 20_000.0, "quota": 365_000 * 91 / 365,
               "attainment": 0.0, "pace": EMPTY,
               "pipeline_coverage": 20_000 / (365_000 * 91 / 365),
               "penetration": 0.0, "whitespace": 175_000 * 91 / 365},
        "T2": {"won": 0.0, "quota": 730_000 * 91 / 365, "attainment": 0.0, "pace": EMPTY},
        "T3": {"open_pipeline": 6_000.0, "pace": EMPTY},
        "T5": {"quota": 73_000 * 91 / 365, "attainment": 0.0, "pace": EMPTY},
    }
    for tid, e in exp.items():
        check_row(rows.loc[tid], e, tid)
    check_row(plan_row, {"won": 0.0, "open_pipeline": 26_000.0,
                         "quota": 1_168_000 * 91 / 365, "attainment": 0.0, "pace": EMPTY},
              "plan")


def test_as_of_after_the_period(small_db):
    """As of 2026-12-31, after the period: elapsed = 1, pace = attainment; touched moves."""
    rows, plan_row = small_summary(small_db, PERIOD, dt.date(2026, 12, 31))
    check_row(rows.loc["T1"], {"attainment": 18_000 / 365_000, "pace": 18_000 / 365_000,
                               "touched_pct": 0.0}, "T1")  # nothing since 2026-10-02
    check_row(rows.loc["T2"], {"pace": 800_000 / 730_000, "touched_pct": 0.0}, "T2")
    check_row(plan_row, {"pace": 824_500 / 1_168_000, "touched_pct": 0.0}, "plan")


def test_as_of_on_the_first_day(small_db):
    """As of 2025-07-01, the first day: elapsed = 1 / 365 (the as-of day counts)."""
    rows, _ = small_summary(small_db, PERIOD, dt.date(2025, 7, 1))
    assert rows.loc["T1", "pace"] == pytest.approx(18_000 / 365_000 * 365, rel=MONEY_REL)


def test_default_calendar_year_period(small_db):
    """Period 2026 (the as-of date's year): S3, S4, S5, S8, S9, S12 are in."""
    rows, plan_row = small_summary(small_db, Period.year(2026))
    check_row(rows.loc["T1"], {"won": 7_000.0, "open_pipeline": 20_000.0 + 3_000.0}, "T1")
    check_row(plan_row, {"won": 807_000.0, "open_pipeline": 79_000.0,
                         "pace": 807_000 / 1_168_000 / (90 / 365)}, "plan")


def test_rep_without_home(small_copy):
    """R1 has no home: T1's travel and reach are empty and its workload is the visits only."""
    exec_sql(small_copy,
             ("UPDATE reps SET home_lat = NULL, home_lon = NULL WHERE rep_id = 'R1'", []))
    rows, plan_row = small_summary(small_copy)
    check_row(rows.loc["T1"], {
        "travel_km": EMPTY, "reach_pct": EMPTY, "workload_hours": 21.0,
        "utilization": 21 / 150, "status": "over-served", "capacity_hours": 150.0,
        "accounts": 3, "touched_pct": 2 / 3,
    }, "T1")
    check_row(rows.loc["T2"], {"travel_km": (0.1 * K + 40 * K) / 2, "workload_hours": W2},
              "T2")
    # the plan: travel and reach over the accounts whose distance is known (T2, T4)
    check_row(plan_row, {
        "travel_km": (40.1 * K + 0) / 3,
        "reach_pct": 2 / 3,
        "workload_hours": 60 * VISIT + TRIP * (8 * 40 * K),
        "coverage_accounts_pct": 6 / 8,
    }, "plan")


def test_status_exactly_at_the_boundaries(small_copy):
    """T4 (A7, a Clinic, at R4's home: 0 km) with visits of 1 hour and a capacity of 10:
    11 visits -> utilization 1.1 = 1 + 0.10, not beyond: balanced; 7 visits -> 0.7, not
    below the threshold: balanced; 11.5 -> under-served; 6.5 -> over-served."""
    assert 11.0 / 10.0 == 1 + 0.10
    assert 7.0 / 10.0 == 0.70
    exec_sql(small_copy, ("UPDATE reps SET capacity_hours = 10 WHERE rep_id = 'R4'", []))
    got = {}
    for v in (11.0, 7.0, 11.5, 6.5):
        s = Settings(visit_minutes=60.0, visits_by_segment={"Clinic": v})
        rows, _ = small_summary(small_copy, settings=s)
        t4 = rows.loc["T4"]
        got[v] = (t4["workload_hours"], t4["utilization"], t4["status"])
    assert got[11.0] == (11.0, 1.1, "balanced")
    assert got[7.0] == (7.0, 0.7, "balanced")
    assert got[11.5] == (11.5, 1.15, "under-served")
    assert got[6.5] == (6.5, 0.65, "over-served")


def test_visit_minutes_by_segment_change_only_that_segments_visit_hours(small_db):
    """Clinic visits of 90 minutes instead of 45, worked by hand: the Clinics with visits
    are A2 (T1, 6 a year by the saved setting), A7 (T4, 6) and A6 (no territory, 6); each
    adds 6 x (90 - 45) / 60 = 4.5 hours to its territory, the plan 3 x 4.5. The pinned
    Lab A3 and the Hospitals keep 45 minutes; travel is unchanged."""
    base = Settings(visits_by_segment={"Clinic": 6.0})
    longer = Settings(visits_by_segment={"Clinic": 6.0},
                      visit_minutes_by_segment={"Clinic": 90.0})
    rows0, plan0 = small_summary(small_db, settings=base)
    rows1, plan1 = small_summary(small_db, settings=longer)
    diff = rows1["workload_hours"] - rows0["workload_hours"]
    assert diff.to_dict() == pytest.approx({"T1": 4.5, "T2": 0.0, "T3": 0.0, "T4": 4.5,
                                            "T5": 0.0})
    assert plan1["workload_hours"] - plan0["workload_hours"] == pytest.approx(13.5)
    assert (rows1["travel_km"].fillna(-1) == rows0["travel_km"].fillna(-1)).all()
    # the same through the command line's form of the setting
    again = base.with_overrides(["visit_minutes.Clinic=90"])
    rows2, _ = small_summary(small_db, settings=again)
    assert (rows2["workload_hours"] == rows1["workload_hours"]).all()


def test_recompute_after_an_edit_matches_a_fresh_plan(small_db, tmp_path):
    """territory_metrics on an edited assignment (no rescan) = the plan imported whole."""
    cells = small_cells()
    moved = cells["cell"]["A2"]  # A2's cell from T1 to T5
    with Store(small_db, read_only=True) as store:
        cur = store.cursor()
        settings = load_settings(store)
        plan = plans.get_plan(cur)
        cube = metrics.MetricCube.build(cur, plan.unit, PERIOD, AS_OF, settings,
                                        reps={"R1", "R2", "R4", "R5"})
        plan_in = metrics.PlanInputs.load(cur, plan, cube)
        plan_in.assign.loc[plan_in.assign["unit_id"] == moved, "territory_id"] = "T5"
        edited, edited_plan = metrics.territory_metrics(cube, plan_in)
    copy = tmp_path / "fresh.duckdb"
    shutil.copyfile(small_db, copy)
    new_terr = {c: "T5" if c == moved else t for t in SMALL_TERRITORIES for c in cells[t]}
    plan_file = write_csv(tmp_path / "moved.csv", [
        ["unit_id", "territory_id", "territory_name", "rep_id"],
        *[[c, t, *SMALL_TERRITORIES[t]] for c, t in new_terr.items()],
    ])
    with Store(copy) as store:
        p, _ = plans.import_plan(store, "Moved", plan.unit, plan_file, state="active")
        store.cursor().execute("INSERT INTO account_overrides VALUES (?, 'A3', 'T1')",
                               [p.plan_id])
        store.cursor().execute(
            "UPDATE territories SET annual_quota = 73000 WHERE territory_id = 'T5' "
            "AND plan_id = ?", [p.plan_id])
    fresh, fresh_plan = small_summary(copy, plan="Moved")
    pd.testing.assert_frame_equal(edited.reset_index(drop=True),
                                  fresh.reset_index(drop=True), rtol=1e-12)
    assert edited_plan.keys() == fresh_plan.keys()
    for k, v in fresh_plan.items():
        assert_value(k, edited_plan[k], v if v is not None else EMPTY, where="plan")
    # and by hand: A2 (6 visits) now travels to R5's home
    a2_r5 = float(gc_km(45.0, -120.0, 40.05, -100.0))
    t5 = fresh.loc["T5"]
    assert t5["accounts"] == 1
    assert t5["travel_km"] == pytest.approx(a2_r5, rel=1e-12)
    assert t5["workload_hours"] == pytest.approx(6 * VISIT + TRIP * 6 * a2_r5, rel=1e-12)
    assert t5["units"] == 3
    assert t5["components"] == 2
    assert fresh.loc["T1", "units"] == 6


def test_distances_alaska_hawaii_antimeridian_and_no_sales(tmp_path):
    """A rep in Honolulu; accounts on Oahu, on Adak Island across the antimeridian and in
    Anchorage; a rep on Amchitka (179.3E). No deals file at all: nothing won anywhere."""
    acc = write_csv(tmp_path / "a.csv", [
        ["account_id", "lat", "lon", "potential", "visits_per_year"],
        ["H1", "21.3", "-157.85", "10", "1"],       # at the Honolulu rep's home: 0 km
        ["AK1", "51.5", "-179.5", "20", "1"],       # Aleutians, west of 180 in longitude
        ["AK2", "61.2", "-149.9", "30", "1"],       # Anchorage
    ])
    reps = write_csv(tmp_path / "r.csv", [
        ["rep_id", "home_lat", "home_lon", "annual_quota"],
        ["RH", "21.3", "-157.85", "1000"], ["RA", "51.5", "179.5", "1000"],
    ])
    cells = {k: h3.latlng_to_cell(lat, lon, SMALL_RES) for k, lat, lon in
             (("H1", 21.3, -157.85), ("AK1", 51.5, -179.5), ("AK2", 61.2, -149.9))}
    plan_file = write_csv(tmp_path / "p.csv", [
        ["unit_id", "territory_id", "rep_id"],
        [cells["H1"], "HI", "RH"], [cells["AK2"], "HI", "RH"], [cells["AK1"], "AL", "RA"],
    ])
    db = tmp_path / "far.duckdb"
    with Store(db) as store:
        assert ingest.load(store, accounts=acc, reps=reps).clean
        plans.import_plan(store, "Far", UnitType.parse(f"h3:{SMALL_RES}"), plan_file)
    rows, plan_row = small_summary(db, Period.year(2026), dt.date(2026, 6, 30), Settings())
    # Adak side: same latitude, 1 degree of longitude apart across 180:
    # haversine = 2 R asin(cos(51.5 deg) sin(0.5 deg))
    across = 2 * 6371.0088 * math.asin(math.cos(math.radians(51.5))
                                       * math.sin(math.radians(0.5)))
    assert across == pytest.approx(69.2, abs=0.1)   # not 359 degrees the long way round
    anchorage = float(gc_km(21.3, -157.85, 61.2, -149.9))
    assert anchorage == pytest.approx(4480, abs=20)  # Honolulu - Anchorage, about 4,480 km
    check_row(rows.loc["AL"], {"travel_km": across, "reach_pct": 1.0,
                               "workload_hours": VISIT + TRIP * across}, "AL")
    check_row(rows.loc["HI"], {"travel_km": anchorage / 2, "reach_pct": 0.5,
                               "workload_hours": 2 * VISIT + TRIP * anchorage,
                               "components": 2, "contiguous": False}, "HI")
    for tid in ("AL", "HI"):
        check_row(rows.loc[tid], {"won": 0.0, "open_pipeline": 0.0, "attainment": 0.0,
                                  "pace": 0.0, "pipeline_coverage": 0.0,
                                  "touched_pct": EMPTY}, tid)
    check_row(plan_row, {"won": 0.0, "open_pipeline": 0.0, "attainment": 0.0,
                         "whitespace": 60.0, "penetration": 0.0,
                         "travel_km": (across + anchorage) / 3, "touched_pct": EMPTY,
                         "unassigned_accounts": 0, "coverage_accounts_pct": 1.0}, "plan")


def _import_plan(db: Path, folder: Path, name: str, rows_: list[list], unit: str) -> None:
    plan_file = write_csv(folder / f"{name}.csv", [["unit_id", "territory_id", "rep_id"],
                                                   *rows_])
    with Store(db) as store:
        plans.import_plan(store, name, UnitType.parse(unit), plan_file)


def test_deviation_empty_when_the_mean_is_zero(small_copy, tmp_path):
    """Plan "Zero": only T4 (R4: A7, potential 0) and T5 (R5: no account) have a rep, so the
    mean potential over territories with a rep is 0: every deviation_potential is empty and
    so are the potential balance figures. N1 (no rep) = A1, A2, A4, A5; N2 (no rep) = A3,
    A8 (no pin in this plan). Accounts: mean over T4, T5 = (1 + 0) / 2 = 0.5."""
    cells = small_cells()
    _import_plan(small_copy, tmp_path, "Zero", [
        *[[c, "N1", ""] for c in cells["T1"] + cells["T2"]],
        *[[c, "N2", ""] for c in cells["T3"]],
        [cells["T4"][0], "T4", "R4"], *[[c, "T5", "R5"] for c in cells["T5"]],
    ], f"h3:{SMALL_RES}")
    rows, plan_row = small_summary(small_copy, plan="Zero")
    assert rows["deviation_potential"].isna().all()
    assert rows["accounts"].to_dict() == {"N1": 4, "N2": 2, "T4": 1, "T5": 0}
    check_row(rows.set_index("territory_id").loc["N1"], {"deviation_accounts": 7.0}, "N1")
    check_row(rows.loc["N2"], {"deviation_accounts": 3.0, "status": "no rep"}, "N2")
    check_row(rows.loc["T4"], {"deviation_accounts": 1.0, "travel_km": 0.0}, "T4")
    check_row(rows.loc["T5"], {"deviation_accounts": -1.0, "deviation_workload_hours": -1.0},
              "T5")
    check_row(plan_row, {
        "balance_cv_potential": EMPTY, "balance_max_dev_potential": EMPTY,
        "balance_cv_accounts": 1.0,          # population std of (1, 0) = 0.5, / 0.5
        "balance_max_dev_accounts": 1.0,
        "balance_cv_workload_hours": 1.0,    # (4.5, 0): std 2.25 / mean 2.25
        "coverage_accounts_pct": 1 / 8, "coverage_potential_pct": 0.0,
        "travel_km": 0.0, "reach_pct": 1.0,  # A7 alone, at its rep's home
        "unassigned_accounts": 1,
    }, "plan")


def test_a_plan_without_any_rep(small_copy, tmp_path):
    """Every cell of Base in one territory "N" without a rep."""
    cells = small_cells()
    every = [c for t in SMALL_TERRITORIES for c in cells[t]]
    _import_plan(small_copy, tmp_path, "NoReps", [[c, "N", ""] for c in every],
                 f"h3:{SMALL_RES}")
    rows, plan_row = small_summary(small_copy, plan="NoReps")
    check_row(rows.loc["N"], {
        "accounts": 7, "quota": 0.0, "travel_km": EMPTY, "reach_pct": EMPTY,
        "workload_hours": 54 * VISIT,        # every visit but A6's 6
        "capacity_hours": 0.0, "utilization": EMPTY, "status": "no rep",
        "deviation_potential": EMPTY, "deviation_workload_hours": EMPTY,
        "deviation_accounts": EMPTY, "units": 14, "contiguous": False,
        "components": 6,  # T1's 7 cells, Oahu, Alaska, T3's 2, Houston, T5's 2
    }, "N")
    check_row(plan_row, {
        "quota": 0.0, "attainment": EMPTY, "pace": EMPTY, "pipeline_coverage": EMPTY,
        "travel_km": EMPTY, "reach_pct": EMPTY, "workload_hours": 60 * VISIT,
        "capacity_hours": 0.0, "utilization": EMPTY, "coverage_accounts_pct": 0.0,
        "coverage_potential_pct": 0.0, "unassigned_accounts": 1,
        **{f"balance_{k}_{m}": EMPTY for k in ("cv", "max_dev")
           for m in ("potential", "workload_hours", "accounts")},
    }, "plan")


def test_components_of_polygons_touching_at_a_corner(small_copy, tmp_path):
    """US states: Utah and New Mexico (also Arizona and Colorado) meet only at the Four
    Corners point, which counts as touching; California and New York are two pieces."""
    _import_plan(small_copy, tmp_path, "States", [
        ["UT", "X", ""], ["NM", "X", ""], ["AZ", "Y", ""], ["CO", "Y", ""],
        ["CA", "Z", ""], ["NY", "Z", ""], ["HI", "H", ""],
    ], "state")
    rows, _ = small_summary(small_copy, plan="States")
    assert rows["components"].to_dict() == {"H": 1, "X": 1, "Y": 1, "Z": 2}
    assert rows["contiguous"].to_dict() == {"H": True, "X": True, "Y": True, "Z": False}
    assert rows["units"].to_dict() == {"H": 1, "X": 2, "Y": 2, "Z": 2}
    shapes = unit_shapes(UnitType("state"), ["UT", "NM", "AZ", "CO", "CA", "NY", "HI"])
    geom = dict(zip(shapes["unit_id"], shapes.geometry, strict=True))
    assert geom["UT"].intersection(geom["NM"]).geom_type == "Point"
    for tid, ids in {"X": ["UT", "NM"], "Y": ["AZ", "CO"], "Z": ["CA", "NY"],
                     "H": ["HI"]}.items():
        assert rows.loc[tid, "polsby_popper"] == pytest.approx(
            polsby_popper(shapely.union_all([geom[u] for u in ids])), rel=1e-9), tid


def test_polsby_popper_counts_the_perimeter_of_holes(small_copy, tmp_path):
    """A ring of 6 cells around A1's cell (given to T4): one piece with a hole; its
    perimeter is the outer and the inner boundary."""
    cells = small_cells()
    centre = cells["cell"]["A1"]
    ring = sorted(h3.grid_ring(centre, 1))
    _import_plan(small_copy, tmp_path, "Ring",
                 [*[[c, "R", "R1"] for c in ring], [centre, "C", "R4"]], f"h3:{SMALL_RES}")
    rows, _ = small_summary(small_copy, plan="Ring")
    union = shapely.union_all(
        [shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in ring],
        grid_size=HEX_GRID)
    assert union.geom_type == "Polygon"
    assert len(union.interiors) == 1
    geod = Geod(ellps="WGS84")
    area = abs(geod.geometry_area_perimeter(union)[0])
    assert area == pytest.approx(6 / 7 * abs(geod.geometry_area_perimeter(
        shapely.Polygon(union.exterior))[0]), rel=0.01)  # the hole: about one cell of 7
    outer = geod.line_length(*union.exterior.xy)
    inner = geod.line_length(*union.interiors[0].xy)
    assert inner == pytest.approx(outer / 3, rel=0.02)  # 6 edges inside, 18 outside
    r = rows.loc["R"]
    assert (r["units"], r["components"], r["contiguous"]) == (6, 1, True)
    assert r["polsby_popper"] == pytest.approx(4 * math.pi * area / (outer + inner) ** 2,
                                               rel=1e-8)
    # without the hole's boundary it would be (4/3)^2 = 1.78 times larger
    assert r["polsby_popper"] < 4 * math.pi * area / outer**2 / 1.7
    assert rows.loc["C", "polsby_popper"] == pytest.approx(_hex_pp([centre]), rel=1e-8)


# --------------------------------------------------------------------------------------
# disruption
# --------------------------------------------------------------------------------------
def test_disruption_against_a_baseline(small_copy, tmp_path):
    """Plan "Alt": A5's Alaska cell goes to T5, A6's cell (unassigned in Base) to T3, A7's
    cell is left out, A3 follows its cell (Alt has no pin) into T1 as Base's pin did.
    Moved: A5 (T2 -> T5), A6 (none -> T3), A7 (T4 -> none) = 3 of 8 accounts,
    potential 300,000 + 400,000 + 0 of 1,085,000."""
    cells = small_cells()
    c = cells["cell"]
    plan_file = write_csv(tmp_path / "alt.csv", [
        ["unit_id", "territory_id", "rep_id"],
        *[[x, "T1", "R1"] for x in cells["T1"]],
        [c["A3"], "T1", "R1"], [c["A4"], "T2", "R2"], [c["A5"], "T5", "R5"],
        [cells["a8_cell"], "T3", ""], [c["A6"], "T3", ""],
    ])
    with Store(small_copy) as store:
        plans.import_plan(store, "Alt", UnitType.parse(f"h3:{SMALL_RES}"), plan_file)
    _, alt = small_summary(small_copy, plan="Alt", baseline="Base")
    assert alt["disruption_accounts_pct"] == pytest.approx(3 / 8, rel=1e-12)
    assert alt["disruption_potential_pct"] == pytest.approx(700_000 / 1_085_000, rel=1e-12)
    _, back = small_summary(small_copy, plan="Base", baseline="Alt")
    assert back["disruption_accounts_pct"] == pytest.approx(3 / 8, rel=1e-12)
    _, same = small_summary(small_copy, plan="Alt", baseline="Alt")
    assert same["disruption_accounts_pct"] == 0
    assert same["disruption_potential_pct"] == 0
    assert alt["unassigned_accounts"] == 1  # A7


# --------------------------------------------------------------------------------------
# an independent computation over the demo dataset
# --------------------------------------------------------------------------------------
DEFAULTS = {"visit_minutes": 45.0, "road_factor": 1.3, "speed_kmh": 60.0,
            "capacity_hours": 1200.0, "visits_per_year": 12.0, "visits_by_segment": {},
            "overload_tolerance": 0.10, "underload_threshold": 0.70, "max_travel_km": 150.0,
            "touch_days": 90}
_SHAPE_CACHE: dict = {}


def _unit_geoms(kind: str, res: int | None, ids: list[str]) -> dict[str, object]:
    if kind == "h3":
        return {c: shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)])
                for c in ids}
    known = _SHAPE_CACHE.setdefault(kind, {})
    missing = [u for u in ids if u not in known]
    if missing:
        shapes = unit_shapes(UnitType(kind), missing)  # the shipped polygons (not a metric)
        known.update(dict.fromkeys(missing))
        known.update(zip(shapes["unit_id"], shapes.geometry, strict=True))
    return {u: known[u] for u in ids if known[u] is not None}


def _components(kind: str, res, assign: pd.DataFrame) -> dict[str, int]:
    """Union-find over units of the same territory that share an edge (H3) or touch."""
    geoms = _unit_geoms(kind, res, assign["unit_id"].tolist())
    terr = dict(zip(assign["unit_id"], assign["territory_id"], strict=True))
    parent = {u: u for u in terr}

    def find(u):
        while parent[u] != u:
            u = parent[u]
        return u

    def union(a, b):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb

    for _, group in assign.groupby("territory_id"):
        ids = group["unit_id"].tolist()
        if kind == "h3":
            present = set(ids)
            for u in ids:
                for v in h3.grid_disk(u, 1):
                    if v != u and v in present and h3.are_neighbor_cells(u, v):
                        union(u, v)
        else:
            with_geom = [u for u in ids if u in geoms]
            arr = [geoms[u] for u in with_geom]
            tree = shapely.STRtree(arr)
            left, right = tree.query(arr, predicate="intersects")
            for i, j in zip(left, right, strict=True):
                union(with_geom[i], with_geom[j])
    roots: dict[str, set] = {}
    for u, t in terr.items():
        roots.setdefault(t, set()).add(find(u))
    return {t: len(r) for t, r in roots.items()}


def _polsby(kind: str, res, ids: list[str]) -> float:
    if not ids:
        return math.nan
    geoms = _unit_geoms(kind, res, ids)
    union = shapely.union_all([geoms[u] for u in ids if u in geoms],
                              grid_size=HEX_GRID if kind == "h3" else None)
    return polsby_popper(union)


def oracle(db: Path, plan_name: str | None, start: dt.date, end: dt.date, as_of: dt.date,
           overrides: dict | None = None, baseline: str | None = None):
    """Every column from the raw tables with plain pandas/numpy/h3/shapely/pyproj."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        q = lambda sql, p=(): con.execute(sql, list(p)).df()  # noqa: E731
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        s = {**DEFAULTS, **json.loads(meta.get("settings") or "{}")}
        for k, v in (overrides or {}).items():
            if k.startswith("visits_per_year."):
                s["visits_by_segment"] = {**s["visits_by_segment"], k.split(".", 1)[1]: v}
            else:
                s[k] = v

        def plan_of(name):
            where = "name = ?" if name else "state = 'active'"
            return con.execute(f"SELECT plan_id, unit_type FROM plans WHERE {where}",
                               [name] if name else []).fetchone()

        pid, unit_type = plan_of(plan_name)
        acc = q("SELECT account_id, lat, lon, segment, potential, visits_per_year, "
                "last_activity_date, county, state, zip5, zip3 FROM accounts")
        sales = q("SELECT account_id, amount, close_date, stage FROM sales")
        reps = q("SELECT * FROM reps").set_index("rep_id")
        terr = q("SELECT territory_id, name, rep_id, annual_quota FROM territories "
                 "WHERE plan_id = ? ORDER BY territory_id", [pid])

        def resolve(plan_id, unit):
            pu = q("SELECT unit_id, territory_id FROM plan_units WHERE plan_id = ?", [plan_id])
            ov = q("SELECT account_id, territory_id FROM account_overrides WHERE plan_id = ?",
                   [plan_id])
            if unit.startswith("h3"):
                r = int(unit.split(":")[1])
                uid = pd.Series([h3.latlng_to_cell(a, b, r) for a, b in
                                 zip(acc["lat"], acc["lon"], strict=True)])
            else:
                uid = acc[unit]
            t = uid.map(dict(zip(pu["unit_id"], pu["territory_id"], strict=True)))
            pinned = acc["account_id"].map(dict(zip(ov["account_id"], ov["territory_id"],
                                                    strict=True)))
            return pinned.where(pinned.notna(), t), pu

        acc["territory_id"], pu = resolve(pid, unit_type)
        acc.loc[~acc["territory_id"].isin(terr["territory_id"]), "territory_id"] = None
    finally:
        con.close()

    days = (end - start).days + 1
    elapsed = min(max(((as_of - start).days + 1) / days, 0.0), 1.0)
    close = pd.to_datetime(sales["close_date"]).dt.date
    inside = sales[(close >= start) & (close <= end)]
    won = inside[inside["stage"] == "won"].groupby("account_id")["amount"].sum()
    opn = inside[inside["stage"] == "open"].groupby("account_id")["amount"].sum()
    acc["won"] = acc["account_id"].map(won).fillna(0.0)
    acc["open"] = acc["account_id"].map(opn).fillna(0.0)
    seg = acc["segment"].map(s["visits_by_segment"])
    acc["visits"] = acc["visits_per_year"].fillna(seg).fillna(s["visits_per_year"])
    last = pd.to_datetime(acc["last_activity_date"]).dt.date
    lo = as_of - dt.timedelta(days=int(s["touch_days"]))
    acc["has_act"] = last.notna()
    acc["touched"] = last.notna() & last.map(lambda d: d is not None and not pd.isna(d)
                                             and lo <= d <= as_of)

    terr["has_rep"] = terr["rep_id"].isin(reps.index)
    rep_of = terr.set_index("territory_id")["rep_id"].where(terr.set_index(
        "territory_id")["has_rep"])
    acc["rep"] = acc["territory_id"].map(rep_of)
    home_lat = acc["rep"].map(reps["home_lat"])
    home_lon = acc["rep"].map(reps["home_lon"])
    acc["km"] = gc_km(home_lat.to_numpy(float), home_lon.to_numpy(float),
                      acc["lat"].to_numpy(float), acc["lon"].to_numpy(float))
    km0 = acc["km"].fillna(0.0)
    acc["work"] = acc["visits"] * (s["visit_minutes"] + 2 * km0 * s["road_factor"]
                                   / s["speed_kmh"] * 60) / 60
    acc["reach"] = acc["km"] <= s["max_travel_km"]

    kind, _, res = unit_type.partition(":")
    comps = _components(kind, res, pu)
    out = []
    for _, t in terr.iterrows():
        tid = t["territory_id"]
        a = acc[acc["territory_id"] == tid]
        rep = t["rep_id"] if t["has_rep"] else None
        annual = (t["annual_quota"] if not pd.isna(t["annual_quota"]) else
                  reps.loc[rep, "annual_quota"] if rep else 0.0)
        quota = annual * days / 365
        w, o, pot = a["won"].sum(), a["open"].sum(), a["potential"].sum()
        cap = 0.0
        if rep:
            cap = reps.loc[rep, "capacity_hours"]
            cap = s["capacity_hours"] if pd.isna(cap) else cap
        work = a["work"].sum()
        util = work / cap if cap else math.nan
        known = a["km"].notna()
        units = pu.loc[pu["territory_id"] == tid, "unit_id"].tolist()
        row = {
            "territory_id": tid, "territory_name": t["name"], "rep_id": t["rep_id"],
            "accounts": len(a), "potential": pot, "won": w, "open_pipeline": o,
            "quota": quota, **_ratios(w, o, quota, pot, days, elapsed),
            "travel_km": a["km"].mean() if known.any() else math.nan,
            "workload_hours": work, "capacity_hours": cap, "utilization": util,
            "status": ("under-served" if util > 1 + s["overload_tolerance"] else
                       "over-served" if util < s["underload_threshold"] else
                       "no rep" if rep is None else "balanced"),
            "reach_pct": a.loc[known, "reach"].mean() if known.any() else math.nan,
            "touched_pct": a["touched"].sum() / len(a) if a["has_act"].any() else math.nan,
            "units": len(units), "components": comps.get(tid, 0),
            "contiguous": comps.get(tid, 0) == 1,
            "polsby_popper": _polsby(kind, res, units),
            **_market_row(unit_type, units, len(a), pot),
        }
        out.append(row)
    rows = pd.DataFrame(out)
    with_rep = terr["has_rep"].to_numpy()
    plan = {}
    for m in ("potential", "workload_hours", "accounts"):
        vals = rows[m].to_numpy(float)
        mean = vals[with_rep].mean()
        rows[f"deviation_{m}"] = (vals - mean) / mean
        plan[f"balance_cv_{m}"] = vals[with_rep].std() / mean
        plan[f"balance_max_dev_{m}"] = np.abs((vals[with_rep] - mean) / mean).max()
    covered = acc["rep"].notna()
    known = covered & acc["km"].notna()
    w, o, pot = acc["won"].sum(), acc["open"].sum(), acc["potential"].sum()
    quota = rows["quota"].sum()
    cap = rows["capacity_hours"].sum()
    plan.update({
        "territory_id": "__plan__", "accounts": len(acc), "potential": pot, "won": w,
        "open_pipeline": o, "quota": quota, **_ratios(w, o, quota, pot, days, elapsed),
        "travel_km": acc.loc[known, "km"].mean(),
        "workload_hours": acc["work"].sum(), "capacity_hours": cap,
        "utilization": acc["work"].sum() / cap,
        "reach_pct": acc.loc[known, "reach"].mean(),
        "touched_pct": acc["touched"].sum() / len(acc),
        "units": len(pu),
        "coverage_accounts_pct": covered.mean(),
        "coverage_potential_pct": acc.loc[covered, "potential"].sum() / pot,
        "unassigned_accounts": int(acc["territory_id"].isna().sum()),
    })
    # the market of the plan's territories, against their accounts and potential
    mp, me = rows["market_population"].sum(), rows["market_establishments"].sum()
    plan.update({"market_population": mp, "market_establishments": me,
                 "accounts_per_1k_establishments": 1000 * rows["accounts"].sum() / me
                 if me else math.nan,
                 "potential_per_capita": rows["potential"].sum() / mp if mp else math.nan})
    if baseline is not False:
        con = duckdb.connect(str(db), read_only=True)
        try:
            bid, bunit = (lambda r: r)(con.execute(
                "SELECT plan_id, unit_type FROM plans WHERE "
                + ("name = ?" if baseline else "state = 'active'"),
                [baseline] if baseline else []).fetchone())
            q = lambda sql, p=(): con.execute(sql, list(p)).df()  # noqa: E731
            bterr = set(q("SELECT territory_id FROM territories WHERE plan_id = ?",
                          [bid])["territory_id"])
            before, _ = resolve(bid, bunit)
        finally:
            con.close()
        before = before.where(before.isin(bterr))
        moved = acc["territory_id"].fillna("-") != before.fillna("-")
        plan["disruption_accounts_pct"] = moved.mean()
        plan["disruption_potential_pct"] = acc.loc[moved, "potential"].sum() / pot
    return rows, plan


def _market_row(unit_type: str, units: list[str], accounts: int, potential: float) -> dict:
    """A territory's market: the shipped per-unit roll-ups (checked against the source
    tables in tests/test_market.py) read with pandas and summed over its units."""
    shipped = pd.read_parquet(REPO / "data" / "reference" / "market_units.parquet")
    shipped = shipped[shipped["unit"] == unit_type].set_index("unit_id")
    pop = int(shipped["market_population"].reindex(units).fillna(0).sum())
    est = int(shipped["market_establishments"].reindex(units).fillna(0).sum())
    return {"market_population": pop, "market_establishments": est,
            "accounts_per_1k_establishments": 1000 * accounts / est if est else math.nan,
            "potential_per_capita": potential / pop if pop else math.nan}


def _ratios(w, o, quota, pot, days, elapsed) -> dict:
    att = w / quota if quota else math.nan
    return {
        "attainment": att,
        "pace": att / elapsed if quota and elapsed else math.nan,
        "pipeline_coverage": o / (quota - w) if quota - w > 0 else math.nan,
        "penetration": w / (pot * days / 365) if pot else math.nan,
        "whitespace": max(pot * days / 365 - w, 0.0),
    }


def _compare(got_rows: list[dict], got_plan: dict, exp_rows: pd.DataFrame, exp_plan: dict,
             pp_rel: float) -> None:
    assert [r["territory_id"] for r in got_rows] == exp_rows["territory_id"].tolist()
    for got, (_, exp) in zip(got_rows, exp_rows.iterrows(), strict=True):
        for col in TERRITORY_COLUMNS:
            e = exp[col]
            if col in ("accounts", "units", "components"):
                e = int(e)
            elif col == "contiguous":
                e = bool(e)
            elif col in ("territory_id", "territory_name", "rep_id", "status"):
                e = EMPTY if is_empty(e) else str(e)
            else:
                e = float(e)
            assert_value(col, got[col], e, rel=pp_rel if col == "polsby_popper" else MONEY_REL,
                         where=got["territory_id"])
    for col, e in exp_plan.items():
        e = int(e) if col in ("accounts", "units", "unassigned_accounts") else e
        assert_value(col, got_plan[col], e if isinstance(e, str | int) else float(e),
                     where="plan")
    always_empty = ("status", "components", "contiguous", "polsby_popper",
                    "deviation_potential", "deviation_workload_hours", "deviation_accounts",
                    "territory_name", "rep_id")
    for col in always_empty:
        assert is_empty(got_plan[col]), col
    assert set(got_plan) == set(TERRITORY_COLUMNS) | set(PLAN_COLUMNS)
    assert set(exp_plan) | set(always_empty) == set(got_plan)  # every plan column checked


def _csv_records(text: str) -> tuple[list[dict], dict]:
    frame = pd.read_csv(io.StringIO(text), dtype={"territory_id": str, "rep_id": str,
                                                   "territory_name": str, "status": str})
    assert list(frame.columns) == TERRITORY_COLUMNS + PLAN_COLUMNS
    assert frame["territory_id"].iloc[-1] == "__plan__"
    frame["contiguous"] = frame["contiguous"].map(
        {"True": True, "False": False, True: True, False: False})
    recs = frame.to_dict(orient="records")
    return recs[:-1], recs[-1]


def _cli(capsys, *argv) -> str:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def test_demo_csv_equals_pandas(capsys, demo_db):
    """The active county plan, default period (2026) and as-of date (2026-09-30)."""
    exp_rows, exp_plan = oracle(demo_db, None, dt.date(2026, 1, 1), dt.date(2026, 12, 31),
                                dt.date(2026, 9, 30))
    assert len(exp_rows) == 40
    assert exp_plan["disruption_accounts_pct"] == 0
    got_rows, got_plan = _csv_records(_cli(capsys, "summary", "--db", demo_db))
    _compare(got_rows, got_plan, exp_rows, exp_plan, pp_rel=1e-9)
    for r in got_rows:  # territory rows leave the plan columns empty
        assert all(is_empty(r[c]) for c in PLAN_COLUMNS)
    # a sanity check of the demo: statuses and shares as fractions
    assert {r["status"] for r in got_rows} <= {"under-served", "over-served", "balanced"}
    assert 0.99 < got_plan["coverage_accounts_pct"] <= 1


def test_demo_json_what_if_equals_pandas(capsys, demo_copy):
    """A changed demo: pins (unassigned accounts included), a territory without a rep, a rep
    without home or capacity, a period across two years, other settings."""
    with Store(demo_copy) as store:
        cur = store.cursor()
        pid = cur.execute("SELECT plan_id FROM plans").fetchone()[0]
        ids = [r[0] for r in cur.execute(
            "SELECT account_id FROM accounts ORDER BY hash(account_id) LIMIT 60").fetchall()]
        unplaced = [r[0] for r in cur.execute(
            "SELECT account_id FROM accounts WHERE county IS NULL").fetchall()]
        targets = ["T03", "T07", "T12", "T20", "T33", "T40"]
        pins = [(pid, a, targets[i % len(targets)]) for i, a in enumerate(ids + unplaced)]
        cur.executemany("INSERT INTO account_overrides VALUES (?, ?, ?)", pins)
        cur.execute("UPDATE territories SET rep_id = NULL WHERE territory_id = 'T07'")
        rep12 = cur.execute("SELECT rep_id FROM territories WHERE territory_id = 'T12'"
                            ).fetchone()[0]
        cur.execute("UPDATE reps SET home_lat = NULL, home_lon = NULL, capacity_hours = NULL "
                    "WHERE rep_id = ?", [rep12])
        cur.execute("UPDATE territories SET annual_quota = 0 WHERE territory_id = 'T20'")
        cur.execute("UPDATE territories SET annual_quota = 5e6 WHERE territory_id = 'T07'")
    assert len(unplaced) == 3
    overrides = {"speed_kmh": 50.0, "visits_per_year.Clinic": 1.0, "max_travel_km": 100.0,
                 "touch_days": 30, "capacity_hours": 900.0}
    settings = [f"--setting={k}={v}" for k, v in overrides.items()]
    exp_rows, exp_plan = oracle(demo_copy, None, dt.date(2025, 10, 1), dt.date(2026, 3, 31),
                                dt.date(2026, 2, 14), overrides)
    got = json.loads(_cli(capsys, "summary", "--db", demo_copy, "--format", "json",
                          "--period", "2025-10-01:2026-03-31", "--as-of", "2026-02-14",
                          *settings))
    assert set(got) == {"territories", "plan"}
    assert all(list(r) == TERRITORY_COLUMNS for r in got["territories"])
    assert list(got["plan"]) == TERRITORY_COLUMNS + PLAN_COLUMNS or set(got["plan"]) == set(
        TERRITORY_COLUMNS) | set(PLAN_COLUMNS)
    _compare(got["territories"], got["plan"], exp_rows, exp_plan, pp_rel=1e-9)
    by_id = {r["territory_id"]: r for r in got["territories"]}
    assert by_id["T07"]["status"] == "no rep"
    assert by_id["T07"]["travel_km"] is None
    assert by_id["T12"]["travel_km"] is None
    assert by_id["T12"]["capacity_hours"] == 900
    assert by_id["T20"]["attainment"] is None
    assert got["plan"]["unassigned_accounts"] == 0  # the 3 accounts without county pinned


def test_demo_h3_plan_and_disruption_equal_pandas(capsys, demo_copy, tmp_path):
    """An H3 resolution 4 plan made from the demo: each cell to the territory most of its
    accounts have in the county plan; compared with --baseline the county plan."""
    con = duckdb.connect(str(demo_copy), read_only=True)
    acc = con.execute("SELECT account_id, lat, lon, county FROM accounts").df()
    pu = con.execute("SELECT unit_id, u.territory_id, t.rep_id FROM plan_units u JOIN "
                     "territories t USING (plan_id, territory_id)").df()
    con.close()
    acc["cell"] = [h3.latlng_to_cell(a, b, 4) for a, b in zip(acc["lat"], acc["lon"],
                                                               strict=True)]
    acc["territory_id"] = acc["county"].map(dict(zip(pu["unit_id"], pu["territory_id"],
                                                     strict=True)))
    counts = (acc.dropna(subset=["territory_id"]).groupby(["cell", "territory_id"]).size()
              .rename("n").reset_index()
              .sort_values(["cell", "n", "territory_id"], ascending=[True, False, True]))
    major = counts.drop_duplicates("cell").set_index("cell")["territory_id"]
    rep = dict(zip(pu["territory_id"], pu["rep_id"], strict=False))
    keep = major[major != "T05"]  # T05's cells left out: their accounts are unassigned
    plan_file = write_csv(tmp_path / "hex.csv", [
        ["unit_id", "territory_id", "rep_id"],
        *[[c, t, rep[t] if t != "T09" else ""] for c, t in keep.items()],  # T09: no rep
    ])
    code = main(["plan", "import", "--db", str(demo_copy), "--name", "Hex", "--unit", "h3:4",
                 str(plan_file)])
    capsys.readouterr()
    assert code == 0
    exp_rows, exp_plan = oracle(demo_copy, "Hex", dt.date(2026, 1, 1), dt.date(2026, 12, 31),
                                dt.date(2026, 9, 30), baseline="Current alignment")
    assert 0 < exp_plan["disruption_accounts_pct"] < 0.2
    got_rows, got_plan = _csv_records(_cli(capsys, "summary", "--db", demo_copy, "--plan",
                                           "Hex", "--baseline", "Current alignment"))
    _compare(got_rows, got_plan, exp_rows, exp_plan, pp_rel=PP_REL)
    assert any(not r["contiguous"] for r in got_rows)
    assert got_plan["unassigned_accounts"] > 0


def test_the_apps_lazy_travel_after_strokes_equals_pandas(demo_copy):
    """The app's cube starts with no travel sums and adds each unit's travel to its own
    territory's rep as plans need it (`PlanInputs.load`), also for units a stroke moved to
    another rep: the numbers equal the independent pandas computation of the edited plan."""
    from analytics import edits
    from analytics.exports.cells import csv_text

    with Store(demo_copy) as store:
        cur = store.cursor()
        plan = plans.get_plan(cur)
        period, as_of = Period(dt.date(2026, 1, 1), dt.date(2026, 12, 31)), dt.date(2026, 9, 30)
        settings = load_settings(store)
        cube = metrics.MetricCube.build(cur, plan.unit, period, as_of, settings, None, set())
        metrics.territory_metrics(cube, metrics.PlanInputs.load(cur, plan, cube))
        assign = plans.assignment(cur, plan)
        t01 = assign.loc[assign["territory_id"] == "T01", "unit_id"].head(5).tolist()
        t03 = assign.loc[assign["territory_id"] == "T03", "unit_id"].head(3).tolist()
        edits.assign(store, plan, t01 + t03, "T02", label="to T02")  # T01, T03 -> T02's rep
        edits.assign(store, plan, t01[:2], None, label="unassign two")
        base = metrics.disruption_frame(cur, plan, plan)  # as the CLI: against the active
        rows, whole = metrics.territory_metrics(cube, metrics.PlanInputs.load(cur, plan, cube),
                                                baseline=base)
        assert cube.reps == set()  # never every unit to every rep
    exp_rows, exp_plan = oracle(demo_copy, None, period.start, period.end, as_of)
    got_rows, got_plan = _csv_records(csv_text(metrics.summary_frame(rows, whole)))
    _compare(got_rows, got_plan, exp_rows, exp_plan, pp_rel=1e-9)
