"""Shared fixtures for the engine tests: real DuckDB files in tmp_path, never mocks.

The demo database is built once per session (`demo_db`); tests that change a database work
on a copy of it (`demo_copy`) so the session one stays as built.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics import demo, metrics, plans
from analytics.period import Period
from analytics.settings import Settings, load_settings
from analytics.store import Store

REPO = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO / "data" / "demo"

ALL_TABLES = (
    "meta", "reps", "accounts", "sales", "plans", "territories", "plan_units",
    "account_overrides", "territory_types", "assignment_rules", "plan_events", "snapshots",
    "users", "stage_history", "deal_stages",
)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "atlas.duckdb"


@pytest.fixture
def store(db_path: Path):
    with Store(db_path) as s:
        yield s


def write_csv(
    path: Path,
    rows: list[list[object]],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
) -> Path:
    """Write `rows` (the first one is the header) as a delimited text file."""
    with open(path, "w", newline="", encoding=encoding) as f:
        writer = csv.writer(f, delimiter=delimiter, lineterminator="\n")
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])
    return path


@pytest.fixture
def make_csv(tmp_path: Path) -> Callable[..., Path]:
    """`make_csv("name.csv", rows, delimiter=";", encoding="cp1252")` -> path in tmp_path."""

    def make(name: str, rows: list[list[object]], **kwargs) -> Path:
        return write_csv(tmp_path / name, rows, **kwargs)

    return make


def snapshot(store: Store) -> dict[str, list[tuple]]:
    """Every row of every table, sorted: equal snapshots mean an unchanged database."""
    cur = store.cursor()
    out = {}
    for table in ALL_TABLES:
        rows = cur.execute(f"SELECT * FROM {table}").fetchall()
        out[table] = sorted(rows, key=repr)
    return out


def scalar(store: Store, sql: str, params: list | None = None):
    return store.cursor().execute(sql, params or []).fetchone()[0]


def rows(store: Store, sql: str, params: list | None = None) -> list[tuple]:
    return store.cursor().execute(sql, params or []).fetchall()


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> Path:
    """The demo dataset built once into a session database (closed; open it read-only)."""
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    with Store(path) as s:
        info = demo.build_demo(s)
    assert info["report"].clean
    return path


@pytest.fixture
def demo_copy(demo_db: Path, tmp_path: Path) -> Path:
    """A private copy of the demo database that a test may change."""
    dst = tmp_path / "demo-copy.duckdb"
    shutil.copyfile(demo_db, dst)
    return dst


@pytest.fixture(scope="session")
def demo_frames() -> dict[str, pd.DataFrame]:
    """The shipped demo files read with plain pandas (the independent oracle)."""
    return {
        name: pd.read_parquet(DEMO_DIR / f"{name}.parquet")
        for name in ("accounts", "sales", "reps", "stage_history")
    }


# --------------------------------------------------------------------------------------
# the small hand-worked world of the metrics tests (tests/test_metrics.py, test_cli.py)
# --------------------------------------------------------------------------------------
SMALL_RES = 5
"""The H3 resolution of the small world's plans."""

SMALL_POINTS = {
    "A1": (40.0, -100.0),      # Nebraska/Kansas line, exactly at rep R1's home
    "A2": (40.05, -100.0),     # 0.05 degree north of R1 on the same meridian
    "A3": (42.0, -100.0),      # 2 degrees north of R1; its cell is in T3, pinned to T1
    "A4": (21.4, -157.85),     # Oahu, Hawaii: 0.1 degree north of R2's home
    "A5": (61.3, -157.85),     # south-west Alaska: 40 degrees north of R2's home
    "A6": (35.0, -90.0),       # Memphis: a cell in no territory (unassigned)
    "A7": (30.0, -95.0),       # Houston, exactly at rep R4's home
    # A8: the centre of a cell next to A3's cell (see small_cells)
}
SMALL_ACCOUNTS = [
    # account_id, segment, potential, visits_per_year, last_activity_date
    ("A1", "Hospital", 100_000, 10, "2026-03-31"),
    ("A2", "Clinic", 50_000, None, "2025-12-31"),
    ("A3", "Lab", 25_000, None, "2025-12-30"),
    ("A4", "Clinic", 200_000, 0, None),
    ("A5", "Hospital", 300_000, 8, "2026-04-01"),
    ("A6", "Clinic", 400_000, None, "2026-01-15"),
    ("A7", "Clinic", 0, None, None),
    ("A8", "Hospital", 10_000, None, None),
]
SMALL_REPS = [
    # rep_id, home_lat, home_lon, annual_quota, capacity_hours
    ("R1", 40.0, -100.0, 365_000, 150),
    ("R2", 21.3, -157.85, 730_000, None),
    ("R3", 35.0, -90.0, 100, 1200),        # in no territory
    ("R4", 30.0, -95.0, 0, 0),
    ("R5", 45.0, -120.0, 1_000_000, 500),  # its territory T5 has a quota of its own
]
SMALL_SALES = [
    # opportunity_id, account_id, amount, close_date, stage
    ("S1", "A1", 10_000, "2025-07-01", "won"),    # first day of the period
    ("S2", "A1", 5_000, "2025-06-30", "won"),     # the day before
    ("S3", "A1", 20_000, "2026-06-30", "open"),   # last day
    ("S4", "A2", 7_000, "2026-01-15", "won"),     # after the new year, in
    ("S5", "A2", 3_000, "2026-07-01", "open"),    # the day after
    ("S6", "A2", 99_999, "2025-12-01", "lost"),   # lost counts nowhere
    ("S7", "A3", 1_000, "2025-12-31", "won"),
    ("S8", "A4", 800_000, "2026-02-01", "won"),
    ("S9", "A5", 50_000, "2026-03-01", "open"),
    ("S10", "A6", 4_000, "2025-10-01", "won"),    # unassigned account
    ("S11", "A7", 2_500, "2025-08-01", "won"),
    ("S12", "A8", 6_000, "2026-05-01", "open"),
]


def small_cells() -> dict[str, object]:
    """The cells of the small world's plan "Base" (H3 resolution 5), from the h3 library."""
    import h3

    cell = {k: h3.latlng_to_cell(lat, lon, SMALL_RES) for k, (lat, lon) in SMALL_POINTS.items()}
    t1 = sorted(h3.grid_disk(cell["A1"], 1))          # 7 cells around A1, one piece
    assert cell["A2"] in t1
    a8_cell = sorted(h3.grid_ring(cell["A3"], 1))[0]  # a neighbour of A3's cell
    c5 = h3.latlng_to_cell(45.0, -120.0, SMALL_RES)
    t5 = [c5, sorted(h3.grid_ring(c5, 1))[0]]         # two touching cells, no account
    return {
        "cell": cell, "a8_cell": a8_cell, "a8_point": h3.cell_to_latlng(a8_cell),
        "T1": t1, "T2": [cell["A4"], cell["A5"]], "T3": [cell["A3"], a8_cell],
        "T4": [cell["A7"]], "T5": t5,
    }


SMALL_TERRITORIES = {"T1": ("Plains", "R1"), "T2": ("Pacific", "R2"), "T3": ("Open", None),
                     "T4": ("Gulf", "R4"), "T5": ("Empty", "R5")}


def build_small_world(folder: Path) -> Path:
    """Load the small world into `folder`/small.duckdb and import its plan "Base" (active):

    territories T1 Plains (R1), T2 Pacific (R2, Hawaii + Alaska), T3 Open (no rep),
    T4 Gulf (R4, quota 0, capacity 0), T5 Empty (R5, no account, territory quota 73,000);
    account A3 (in a T3 cell) is pinned to T1; A6 lies in no territory's cell. As-of date
    2026-03-31; saved settings: the defaults and visits_per_year.Clinic = 6.
    """
    from analytics import ingest
    from analytics.settings import save_settings
    from analytics.units import UnitType

    cells = small_cells()
    points = {**SMALL_POINTS, "A8": cells["a8_point"]}
    acc = write_csv(folder / "accounts.csv", [
        ["account_id", "name", "lat", "lon", "segment", "potential", "visits_per_year",
         "last_activity_date"],
        *[[a, f"Account {a}", *points[a], seg, pot, visits, last]
          for a, seg, pot, visits, last in SMALL_ACCOUNTS],
    ])
    reps = write_csv(folder / "reps.csv", [
        ["rep_id", "name", "home_lat", "home_lon", "annual_quota", "capacity_hours"],
        *[[r, f"Rep {r}", lat, lon, quota, cap] for r, lat, lon, quota, cap in SMALL_REPS],
    ])
    sales = write_csv(folder / "sales.csv", [
        ["opportunity_id", "account_id", "amount", "close_date", "stage"],
        *[list(s) for s in SMALL_SALES],
    ])
    plan_file = write_csv(folder / "plan_base.csv", [
        ["unit_id", "territory_id", "territory_name", "rep_id"],
        *[[c, t, name, rep] for t, (name, rep) in SMALL_TERRITORIES.items() for c in cells[t]],
    ])
    path = folder / "small.duckdb"
    with Store(path) as s:
        assert ingest.load(s, accounts=acc, reps=reps, sales=sales).clean
        plan, _ = plans.import_plan(s, "Base", UnitType.parse(f"h3:{SMALL_RES}"), plan_file)
        cur = s.cursor()
        cur.execute("INSERT INTO account_overrides VALUES (?, 'A3', 'T1')", [plan.plan_id])
        cur.execute("UPDATE territories SET annual_quota = 73000 WHERE territory_id = 'T5'")
        s.set_meta("as_of", "2026-03-31")
        save_settings(s, Settings(visits_by_segment={"Clinic": 6.0}))
    return path


@pytest.fixture(scope="session")
def small_db(tmp_path_factory) -> Path:
    """The small world, built once (closed; tests that change it use `small_copy`)."""
    return build_small_world(tmp_path_factory.mktemp("small"))


@pytest.fixture
def small_copy(small_db: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "small-copy.duckdb"
    shutil.copyfile(small_db, dst)
    return dst


SMALL_PERIOD = Period(dt.date(2025, 7, 1), dt.date(2026, 6, 30))
SMALL_AS_OF = dt.date(2026, 3, 31)


def small_summary(db: Path, period: Period = SMALL_PERIOD, as_of: dt.date = SMALL_AS_OF,
                  settings: Settings | None = None, plan: str | None = None,
                  baseline: str | None = None) -> tuple[pd.DataFrame, dict]:
    """metrics.summary on a database: (territory rows indexed by id, the plan row).

    Settings: the database's unless given; plan: the active one unless named; no baseline
    (disruption empty) unless named.
    """
    with Store(db, read_only=True) as store:
        cur = store.cursor()
        s = settings if settings is not None else load_settings(store)
        p = plans.get_plan(cur, plan)
        b = plans.get_plan(cur, baseline) if baseline else None
        rows, plan_row = metrics.summary(cur, p, period, as_of, s, baseline=b)
    return rows.set_index("territory_id", drop=False), plan_row


def territory_numbers(cur, plan, period: Period, flt=None) -> tuple[pd.DataFrame, dict]:
    """The `territories` command's table and the whole-plan totals, as the first wave's
    tests read them: `metrics.territory_brief` (a column subset of the summary), as of the
    period's end with default settings; the unassigned potential is the plan's potential
    outside every territory."""
    table, whole = metrics.territory_brief(cur, plan, period, period.end, Settings(), flt=flt)
    totals = {k: whole[k] for k in ("accounts", "potential", "won", "open_pipeline",
                                    "unassigned_accounts", "units")}
    totals["unassigned_potential"] = whole["potential"] - float(table["potential"].sum())
    totals["territories"] = len(table)
    return table, totals


def is_empty(v) -> bool:
    """An empty metric: None (dicts, JSON), NaN (frames, CSV) or pandas' NA."""
    return v is None or v is pd.NA or (isinstance(v, float | np.floating) and math.isnan(v))


# --------------------------------------------------------------------------------------
# the heavy path: one Spark job run per session (analytics/spark/job.py)
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def spark():
    """A real Spark in local mode (two cores), started once: Java and pyspark are
    installed by `make test`."""
    from analytics.spark import job

    session = job.session("local[2]")
    yield session
    session.stop()


def _same_world(path: Path, store_of: Callable[[Path], object]) -> None:
    """The demo's plan, settings and as-of date in a database (loaded or attached)."""
    import json

    from analytics.settings import save_settings
    from analytics.units import UnitType

    info = json.loads((DEMO_DIR / "dataset.json").read_text())
    with store_of(path) as s:
        plans.import_plan(s, info["plan"], UnitType.parse(info["plan_unit"]),
                          DEMO_DIR / "plan_current_alignment.csv", state="active")
        save_settings(s, Settings(**info["settings"]))
        s.set_meta("as_of", info["as_of"])


@pytest.fixture(scope="session")
def spark_world(spark, tmp_path_factory) -> dict[str, Path]:
    """The messy inputs (tests/spark_inputs.py) through `load` into `loaded`, and through
    the Spark job into `out`, attached as `attached`; both with the demo's plan."""
    from analytics import attach, ingest
    from analytics.spark import job
    from tests.spark_inputs import write_messy_inputs

    folder = tmp_path_factory.mktemp("spark")
    inputs = write_messy_inputs(folder / "in")
    loaded, attached, out = folder / "loaded.duckdb", folder / "attached.duckdb", folder / "out"
    with Store(loaded) as s:
        report = ingest.load(s, **{k: str(v) for k, v in inputs.items()})
    job.run(spark, out=str(out), **{k: str(v) for k, v in inputs.items()})
    with Store(attached) as s:
        attach.attach(s, out)
    for db in (loaded, attached):
        _same_world(db, Store)
    return {**inputs, "loaded": loaded, "attached": attached, "out": out,
            "report": report, "folder": folder}
