"""Plan lifecycle, snapshots, comparison, hierarchy roll-up, plan import from polygons and
account lists, and their command-line verbs.

The world is the tiny H3 world of tests/test_edits.py (built once for this module, each test
works on a copy): plan "Base" (active) on H3 resolution 5, period 2026 (365 days), as of
2026-06-30, default settings (an account without visits_per_year is visited 12 times a year).

    unit  territory in "Base"        accounts (potential; won in 2026)
    U1    T1 North (rep R1)          A1 (100; 10)        S2: 1,000 won 2025-12-31 (not 2026)
    U2    T1                         A2 (200; 0)         S3: 70 open
    U3    T2 South (rep R2)          A3 (400; 40)
    U4    T2                         A4 (200; 20)
    U5    T3 West (rep R3)           A5 (150; 5), A6 (50; 0)
    U6    none                       A7 (800; 80)        unassigned

    Edges: U1-U2, U2-U3, U4-U5. U1..U3 are children of the resolution-4 cell P,
    U4 and U5 of Q, U6 of neither. Reps R1..R3 each have an annual quota of 1,000 and
    1,200 capacity hours, homes at (40, -100), (40, -98), (40, -97).

    "Base"  units  accounts  potential  won  quota  attainment      components
    T1      2      2         300        10   1000   10/1000 = 0.01  1
    T2      2      2         600        60   1000   0.06            2 (U3 | U4)
    T3      1      2         200         5   1000   0.005           1
    whole plan: 7 accounts, potential 1,900, won 155, quota 3,000, attainment 155/3000,
    1 unassigned account (A7), coverage 6/7 of accounts and 1,100/1,900 of potential.

Workload of an account (no visits_per_year, default settings): 12 x (45 + 2 x d x 1.3 / 60
x 60) / 60 = 9 + 0.52 d hours, d the great-circle km from its rep's home. Raising
visit_minutes from 45 to 90 adds 12 x 45 / 60 = 9 hours per account.

Every expected number is worked out from these tables (docs/metrics.md), never copied from an
earlier output of the code.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import re
import shutil
from pathlib import Path

import geopandas as gpd
import h3
import pandas as pd
import pytest
import shapely
from conftest import is_empty, rows, scalar, snapshot, write_csv
from test_edits import AS_OF, PERIOD, U1, U2, U3, U4, U5, U6, P, Q, build_world, same_summary

from analytics import compare, edits, hierarchy, metrics, plan_import, plans, snapshots
from analytics.cli import main
from analytics.errors import InputError
from analytics.ingest import ImportRejected
from analytics.period import Period
from analytics.settings import Settings, load_settings, save_settings
from analytics.store import Store
from analytics.units import UnitType

H3_5 = UnitType.parse("h3:5")
H3_4 = UnitType.parse("h3:4")
CENTRE = {u: h3.cell_to_latlng(c) for u, c in
          {"U1": U1, "U2": U2, "U3": U3, "U4": U4, "U5": U5, "U6": U6}.items()}
REP_HOME = {"R1": (40.0, -100.0), "R2": (40.0, -98.0), "R3": (40.0, -97.0)}
CONTENT = ("territories", "plan_units", "account_overrides", "territory_types",
           "assignment_rules")


# --------------------------------------------------------------------------------------
# the world and helpers
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world_db(tmp_path_factory) -> Path:
    return build_world(tmp_path_factory.mktemp("lifecycle"))


@pytest.fixture
def db(world_db: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny world (closed: for the command line)."""
    dst = tmp_path / "world.duckdb"
    shutil.copyfile(world_db, dst)
    return dst


@pytest.fixture
def world(db: Path):
    """A private, open copy of the tiny world."""
    with Store(db) as s:
        yield s


def get(store: Store, name: str | None = "Base") -> plans.Plan:
    return plans.get_plan(store.cursor(), name)


def states(store: Store) -> dict[str, str]:
    return dict(rows(store, "SELECT name, state FROM plans"))


def n_active(store: Store) -> int:
    return scalar(store, "SELECT count(*) FROM plans WHERE state = 'active'")


def content(store: Store, plan: plans.Plan) -> dict[str, list[tuple]]:
    """The plan's rows in every content table, without the plan id, sorted."""
    cur = store.cursor()
    return {t: sorted(cur.execute(f"SELECT * EXCLUDE (plan_id) FROM {t} WHERE plan_id = ?",
                                  [plan.plan_id]).fetchall(), key=repr) for t in CONTENT}


def everything(store: Store) -> dict[str, list[tuple]]:
    """conftest's snapshot of every table, plus the edit log."""
    snap = snapshot(store)
    for t in ("plan_edits", "plan_edit_changes"):
        snap[t] = sorted(rows(store, f"SELECT * FROM {t}"), key=repr)
    return snap


def summary(store: Store, plan: plans.Plan, settings: Settings | None = None,
            period: Period = PERIOD):
    return metrics.summary(store.cursor(), plan, period, AS_OF, settings or Settings())


def by_territory(frame: pd.DataFrame, *cols: str) -> dict[str, tuple]:
    return {r["territory_id"]: tuple(r[c] for c in cols)
            for r in frame.to_dict(orient="records")}


def haversine(a: tuple[float, float], b: tuple[float, float]) -> float:
    (la1, lo1), (la2, lo2) = (tuple(map(math.radians, p)) for p in (a, b))
    h = (math.sin((la2 - la1) / 2) ** 2
         + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2)
    return 2 * 6371.0088 * math.asin(math.sqrt(h))


def workload(rep: str, *units: str, visit_minutes: float = 45.0) -> float:
    """Hand formula: per account 12 x (visit_minutes + 2 x d x 1.3 / 60 x 60) / 60."""
    return sum(12 * (visit_minutes + 2 * haversine(REP_HOME[rep], CENTRE[u]) * 1.3) / 60
               for u in units)


# T1: A1 in U1, A2 in U2; T3: A5 and A6 both in U5
T1_WORKLOAD = workload("R1", "U1", "U2")
T3_WORKLOAD = workload("R3", "U5", "U5")


# --------------------------------------------------------------------------------------
# create / clone / rename / state / delete / history
# --------------------------------------------------------------------------------------
def test_create_first_plan_active_then_planning(store):
    first = plans.create_plan(store, "  First  ", H3_5)
    assert (first.name, first.state, str(first.unit)) == ("First", "active", "h3:5")
    second = plans.create_plan(store, "Second", H3_4, note="a try")
    assert second.state == "planning"
    assert states(store) == {"First": "active", "Second": "planning"}
    third = plans.create_plan(store, "Third", H3_5, state="active")
    assert third.state == "active"
    assert states(store) == {"First": "planning", "Second": "planning", "Third": "active"}
    assert rows(store, "SELECT note FROM plans WHERE name = 'Second'") == [("a try",)]
    # an empty plan: no territory, no unit
    for t in CONTENT:
        assert scalar(store, f"SELECT count(*) FROM {t}") == 0


def test_create_refuses_bad_names_and_states_storing_nothing(world):
    before = everything(world)
    for name in ("Base", "  Base ", "", "   ", None):
        with pytest.raises(InputError, match=r"already exists|needs a name"):
            plans.create_plan(world, name, H3_5)
    for state in ("draft", "snapshot", "ACTIVE"):
        with pytest.raises(InputError, match="unknown plan state"):
            plans.create_plan(world, "New", H3_5, state=state)
    base = get(world)
    for name in ("Base", " ", None):
        with pytest.raises(InputError):
            plans.clone_plan(world, base, name)
    with pytest.raises(InputError, match="unknown plan state"):
        plans.clone_plan(world, base, "Copy", state="draft")
    assert everything(world) == before


def test_clone_copies_every_row_and_the_summary(world):
    base = get(world)
    # give Base something in every content table
    edits.pin_account(world, base, "A7", "T3")
    edits.update_territory(world, base, "T1", color="#112233", annual_quota=500.0,
                           territory_type="Key", locked=True)
    cur = world.cursor()
    cur.execute("INSERT INTO territory_types VALUES (?, 'Key', 1, 'named accounts'), "
                "(?, 'Geo', 2, NULL)", [base.plan_id, base.plan_id])
    cur.execute("INSERT INTO assignment_rules VALUES (?, 1, 'T2', 'Clinics', "
                "'{\"segment\": [\"Clinic\"]}', NULL), (?, 2, 'T3', NULL, '{}', '1')",
                [base.plan_id, base.plan_id])
    source = content(world, base)
    assert all(source[t] for t in CONTENT)
    before_base = summary(world, base)

    copy = plans.clone_plan(world, base, "Copy")
    assert (copy.state, str(copy.unit)) == ("planning", "h3:5")
    assert copy.plan_id != base.plan_id
    assert content(world, copy) == source
    assert content(world, base) == source
    assert rows(world, "SELECT note FROM plans WHERE name = 'Copy'") == [("copy of Base",)]
    same_summary(summary(world, copy), before_base)
    # the edit history is the source's own; the copy starts with none
    assert scalar(world, "SELECT count(*) FROM plan_edits WHERE plan_id = ?",
                  [copy.plan_id]) == 0
    # independent: an edit of the copy leaves Base as it was
    edits.assign(world, copy, [U5], "T2")
    assert content(world, base) == source
    same_summary(summary(world, base), before_base)


def test_rename(world):
    other = plans.create_plan(world, "Other", H3_5)
    renamed = plans.rename_plan(world, get(world), "  Baseline ")
    assert (renamed.name, renamed.state) == ("Baseline", "active")
    with pytest.raises(InputError, match="no plan named 'Base'"):
        get(world, "Base")
    before = everything(world)
    with pytest.raises(InputError, match="a plan named 'Other' already exists"):
        plans.rename_plan(world, renamed, "Other")
    with pytest.raises(InputError, match="needs a name"):
        plans.rename_plan(world, other, "  ")
    assert everything(world) == before
    assert plans.rename_plan(world, renamed, "Baseline").name == "Baseline"  # its own name


def test_set_state_keeps_exactly_one_active(world):
    base = get(world)
    b = plans.clone_plan(world, base, "B")
    c = plans.clone_plan(world, base, "C")
    assert states(world) == {"Base": "active", "B": "planning", "C": "planning"}

    b = plans.set_state(world, b, "active")
    assert states(world) == {"Base": "planning", "B": "active", "C": "planning"}
    before = everything(world)
    for state in ("archived", "planning"):
        with pytest.raises(InputError, match="'B' is the active plan"):
            plans.set_state(world, b, state)
    for state in ("live", "snapshot", ""):
        with pytest.raises(InputError, match="unknown plan state"):
            plans.set_state(world, get(world, "C"), state)
    assert everything(world) == before

    plans.set_state(world, get(world, "Base"), "archived")
    plans.set_state(world, c, "archived")
    assert states(world) == {"Base": "archived", "B": "active", "C": "archived"}
    plans.set_state(world, get(world, "Base"), "active")   # from archived straight to active
    assert states(world) == {"Base": "active", "B": "planning", "C": "archived"}
    plans.set_state(world, get(world, "Base"), "active")   # already active: no change
    assert states(world) == {"Base": "active", "B": "planning", "C": "archived"}
    assert n_active(world) == 1


def test_set_state_and_delete_read_the_stored_state(world):
    """A Plan object read before another plan was activated must not archive or delete
    the plan that is active now (the check reads the database, not the object)."""
    stale = plans.clone_plan(world, get(world), "B")      # says "planning"
    plans.set_state(world, get(world, "B"), "active")
    assert stale.state == "planning"
    before = everything(world)
    with pytest.raises(InputError, match="'B' is the active plan"):
        plans.set_state(world, stale, "archived")
    with pytest.raises(InputError, match="'B' is the active plan"):
        plans.delete_plan(world, stale)
    assert everything(world) == before
    assert n_active(world) == 1


def test_delete_removes_every_row_of_the_plan(world):
    base = get(world)
    gone = plans.clone_plan(world, base, "Gone")
    cur = world.cursor()
    cur.execute("INSERT INTO territory_types VALUES (?, 'Key', 1, NULL)", [gone.plan_id])
    cur.execute("INSERT INTO assignment_rules VALUES (?, 1, 'T2', NULL, '{}', NULL)",
                [gone.plan_id])
    edits.pin_account(world, gone, "A7", "T1")
    edits.assign(world, gone, [U5], "T2")
    edits.undo(world, gone)                               # an undone edit too
    snap = snapshots.take_snapshot(world, gone, name="Gone then", period=PERIOD,
                                   as_of=AS_OF, settings=Settings())
    tables = [r[0] for r in rows(
        world, "SELECT DISTINCT c.table_name FROM information_schema.columns c "
               "JOIN information_schema.tables t USING (table_schema, table_name) "
               "WHERE c.column_name = 'plan_id' AND t.table_type = 'BASE TABLE' ORDER BY 1")]
    assert {*CONTENT, "plan_edits", "plan_edit_changes", "plan_events"} <= set(tables)
    for t in (*CONTENT, "plan_edits", "plan_edit_changes"):
        assert scalar(world, f"SELECT count(*) FROM {t} WHERE plan_id = ?",
                      [gone.plan_id]) > 0, t
    others = {p.name: content(world, p) for p in (base, snap)}

    plans.delete_plan(world, gone)
    with pytest.raises(InputError, match="no plan named 'Gone'"):
        get(world, "Gone")
    for t in tables:
        left = rows(world, f"SELECT * FROM {t} WHERE plan_id = ?", [gone.plan_id])
        if t == "plan_events":
            # the audit trail is kept, ending with the deletion (see the report)
            assert left
            assert sorted(left, key=lambda r: r[1])[-1][3:] == ("deleted", "Gone")
        else:
            assert left == [], t
    assert scalar(world, "SELECT count(*) FROM snapshots WHERE snapshot_plan_id = ?",
                  [gone.plan_id]) == 0
    # the other plans, and the snapshot taken of the deleted plan, are untouched
    assert {p.name: content(world, p) for p in (base, get(world, "Gone then"))} == others
    assert snapshots.list_snapshots(world.cursor())["plan"].tolist() == ["Gone"]

    # the active plan cannot be deleted; a snapshot can
    before = everything(world)
    with pytest.raises(InputError, match="'Base' is the active plan"):
        plans.delete_plan(world, base)
    assert everything(world) == before
    plans.delete_plan(world, get(world, "Gone then"))
    assert scalar(world, "SELECT count(*) FROM snapshots") == 0
    assert states(world) == {"Base": "active"}


def test_plan_history_newest_first(world):
    base = get(world)
    h = plans.clone_plan(world, base, "H")
    edits.assign(world, h, [U5], "T2")
    edits.pin_account(world, h, "A7", "T1")
    edits.undo(world, h)
    h = plans.rename_plan(world, h, "H2")
    plans.set_state(world, h, "active")
    hist = plans.plan_history(world.cursor(), get(world, "H2"))
    assert list(zip(hist["what"], hist["detail"], strict=True)) == [
        ("state", "planning -> active"),
        ("renamed", "H -> H2"),
        ("edit (undone)", "Pin account A7 to T1"),
        ("edit", "Assign 1 unit to T2"),
        ("cloned", "from Base"),
    ]
    assert set(hist["author"]) == {plans.author()}
    times = hist["made_at"].tolist()
    assert times == sorted(times, reverse=True)
    assert len(set(times)) == len(times)
    assert times[0] <= dt.datetime.now()
    # the source records the clone and its demotion
    base_hist = plans.plan_history(world.cursor(), get(world, "Base"))
    assert list(zip(base_hist["what"], base_hist["detail"], strict=True)) == [
        ("cloned to", "H"), ("created", "imported from plan_base.csv: 5 units, active")]
    fresh = plans.create_plan(world, "Fresh", H3_4)
    got = plans.plan_history(world.cursor(), fresh)
    assert list(zip(got["what"], got["detail"], strict=True)) == [
        ("created", "empty plan on h3:4, planning")]
    assert plans.plan_history(world.cursor(), fresh, limit=0).empty


def test_list_plans_hides_snapshots_unless_asked(world):
    base = get(world)
    plans.create_plan(world, "A new one", H3_4)
    snapshots.take_snapshot(world, base, name="Frozen", period=PERIOD, as_of=AS_OF,
                            settings=Settings())
    listed = plans.list_plans(world.cursor())
    assert [tuple(r) for r in listed[["name", "state", "territories", "units",
                                      "account_overrides"]].to_numpy()] == [
        ("Base", "active", 3, 5, 0), ("A new one", "planning", 0, 0, 0)]
    with_snaps = plans.list_plans(world.cursor(), snapshots=True)
    assert with_snaps["name"].tolist() == ["Base", "A new one", "Frozen"]
    assert with_snaps["state"].tolist()[-1] == "snapshot"


# --------------------------------------------------------------------------------------
# snapshots
# --------------------------------------------------------------------------------------
def check_base_numbers(rows_: pd.DataFrame, whole: dict) -> None:
    """The snapshot of "Base" as taken (period 2026, default settings): worked by hand."""
    got = by_territory(rows_, "units", "accounts", "potential", "won", "quota", "attainment",
                       "components")
    assert got == {
        "T1": (2, 2, 300.0, 10.0, 1000.0, pytest.approx(0.01), 1),
        "T2": (2, 2, 600.0, 60.0, 1000.0, pytest.approx(0.06), 2),
        "T3": (1, 2, 200.0, 5.0, 1000.0, pytest.approx(0.005), 1),
    }
    assert by_territory(rows_, "workload_hours") == {
        "T1": (pytest.approx(T1_WORKLOAD, rel=1e-9),),
        "T2": (pytest.approx(workload("R2", "U3", "U4"), rel=1e-9),),
        "T3": (pytest.approx(T3_WORKLOAD, rel=1e-9),),
    }
    assert (whole["accounts"], whole["potential"], whole["won"], whole["quota"]) == (
        7, 1900.0, 155.0, 3000.0)
    assert whole["attainment"] == pytest.approx(155 / 3000)
    assert whole["unassigned_accounts"] == 1
    assert whole["coverage_accounts_pct"] == pytest.approx(6 / 7)
    assert whole["coverage_potential_pct"] == pytest.approx(1100 / 1900)


def test_snapshot_freezes_its_numbers(world):
    base = get(world)
    t0 = dt.datetime.now().replace(microsecond=0)
    snap = snapshots.take_snapshot(world, base, note="QBR", period=PERIOD, as_of=AS_OF,
                                   settings=Settings())
    t1 = dt.datetime.now()
    assert snap.state == "snapshot"
    m = re.fullmatch(r"Base @ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", snap.name)
    assert m, snap.name
    assert t0 <= dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S") <= t1
    frozen_rows, frozen = snapshots.snapshot_summary(world.cursor(), snap)
    check_base_numbers(frozen_rows, frozen)
    assert list(frozen_rows.columns) == metrics.TERRITORY_COLUMNS
    assert (frozen["period"], frozen["as_of"]) == ("2026-01-01:2026-12-31", "2026-06-30")
    assert json.loads(frozen["settings"])["visit_minutes"] == 45.0
    assert content(world, snap) == content(world, base)

    # change the source plan (U5 T3 -> T2) and a setting (visits take 90 minutes)
    edits.assign(world, base, [U5], "T2")
    save_settings(world, Settings(visit_minutes=90.0))
    now_rows, _now = summary(world, get(world), load_settings(world))
    assert by_territory(now_rows, "units", "accounts", "potential", "won") == {
        "T1": (2, 2, 300.0, 10.0),
        "T2": (3, 4, 800.0, 65.0),       # + A5 A6: 600 + 150 + 50, 60 + 5
        "T3": (0, 0, 0.0, 0.0),
    }
    # T1 kept its accounts: 9 more hours for each of its 2 accounts
    assert by_territory(now_rows, "workload_hours")["T1"][0] == pytest.approx(
        workload("R1", "U1", "U2", visit_minutes=90.0))
    assert workload("R1", "U1", "U2", visit_minutes=90.0) == pytest.approx(T1_WORKLOAD + 18)

    again_rows, again = snapshots.snapshot_summary(world.cursor(), get(world, snap.name))
    check_base_numbers(again_rows, again)
    pd.testing.assert_frame_equal(again_rows, frozen_rows)
    assert again.keys() == frozen.keys()
    assert all(again[k] == frozen[k] or (is_empty(again[k]) and is_empty(frozen[k]))
               for k in again)
    # the snapshot's own assignment is still Base's as it was
    assert dict(rows(world, "SELECT unit_id, territory_id FROM plan_units WHERE plan_id = ?",
                     [snap.plan_id])) == {U1: "T1", U2: "T1", U3: "T2", U4: "T2", U5: "T3"}
    with pytest.raises(InputError, match="'Base' is not a snapshot"):
        snapshots.snapshot_summary(world.cursor(), get(world))


def test_edits_on_a_snapshot_are_refused(world, tmp_path):
    base = get(world)
    edits.assign(world, base, [U6], "T1")
    snap = snapshots.take_snapshot(world, base, name="Frozen", period=PERIOD, as_of=AS_OF,
                                   settings=Settings())
    csv = write_csv(tmp_path / "pins.csv", [["account_id", "territory_id"], ["A1", "T2"]])
    before = everything(world)
    attempts = {
        "assign": lambda: edits.assign(world, snap, [U5], "T1"),
        "erase": lambda: edits.erase(world, snap, [U1]),
        "pin": lambda: edits.pin_account(world, snap, "A1", "T2"),
        "create": lambda: edits.create_territory(world, snap, "New"),
        "update": lambda: edits.update_territory(world, snap, "T1", name="X"),
        "merge": lambda: edits.merge_territories(world, snap, ["T2"], "T1"),
        "delete": lambda: edits.delete_territory(world, snap, "T3"),
        "undo": lambda: edits.undo(world, snap),
        "redo": lambda: edits.redo(world, snap),
        "import pins": lambda: plan_import.import_account_assignments(world, snap, csv),
        "state": lambda: plans.set_state(world, snap, "planning"),
        "snapshot of a snapshot": lambda: snapshots.take_snapshot(
            world, snap, period=PERIOD, as_of=AS_OF, settings=Settings()),
    }
    for what, attempt in attempts.items():
        with pytest.raises(InputError, match="snapshot"):
            attempt()
        assert everything(world) == before, what
    with pytest.raises(InputError, match="snapshot"):
        edits.writable(snap)


def test_list_snapshots(world):
    base = get(world)
    first = snapshots.take_snapshot(world, base, name="S1", note="before the move",
                                    period=PERIOD, as_of=AS_OF, settings=Settings())
    edits.assign(world, base, [U6], "T1")        # A7 (800, won 80) now in T1
    snapshots.take_snapshot(world, base, name="S2", period=Period.year(2025),
                            as_of=dt.date(2025, 12, 31), settings=Settings())
    other = plans.clone_plan(world, base, "Other")
    snapshots.take_snapshot(world, other, name="S3", period=PERIOD, as_of=AS_OF,
                            settings=Settings())
    cur = world.cursor()
    # taken in the same second: make S1 visibly older, S3 newer
    cur.execute("UPDATE snapshots SET taken_at = taken_at - INTERVAL 1 HOUR "
                "WHERE snapshot_plan_id = ?", [first.plan_id])
    cur.execute("UPDATE snapshots SET taken_at = taken_at + INTERVAL 1 HOUR "
                "WHERE source_name = 'Other'")

    listed = snapshots.list_snapshots(cur)
    assert listed["snapshot"].tolist() == ["S3", "S2", "S1"]
    of_base = snapshots.list_snapshots(cur, get(world)).set_index("snapshot")
    assert of_base.index.tolist() == ["S2", "S1"]
    s1, s2 = of_base.loc["S1"], of_base.loc["S2"]
    assert (s1["plan"], s1["note"], s1["author"], s1["period"], str(s1["as_of"])[:10],
            s1["unit_type"]) == ("Base", "before the move", plans.author(),
                                 "2026-01-01:2026-12-31", "2026-06-30", "h3:5")
    assert (s1["accounts"], s1["won"], s1["unassigned_accounts"]) == (7, 155.0, 1)
    assert s1["attainment"] == pytest.approx(155 / 3000)
    assert pd.isna(s2["note"])
    # 2025: won = S2 1,000 (2025-12-31) + S10..: only S2 falls in 2025; A7 now assigned
    assert (s2["period"], s2["accounts"], s2["won"], s2["unassigned_accounts"]) == (
        "2025-01-01:2025-12-31", 7, 1000.0, 0)
    assert s2["attainment"] == pytest.approx(1000 / 3000)
    # and the list of one plan holds only its snapshots
    assert snapshots.list_snapshots(cur, get(world, "Other"))["snapshot"].tolist() == ["S3"]


def test_snapshot_default_names_within_one_second(world):
    """Two snapshots of one plan without a name in the same second both succeed: the
    second default name gets a counter."""
    base = get(world)
    first = snapshots.take_snapshot(world, base, period=PERIOD, as_of=AS_OF,
                                    settings=Settings())
    second = snapshots.take_snapshot(world, base, period=PERIOD, as_of=AS_OF,
                                     settings=Settings())
    assert first.name != second.name
    assert {first.state, second.state} == {"snapshot"}
    if second.name.split(" @ ")[1][:19] == first.name.split(" @ ")[1][:19]:
        assert second.name == first.name + " (2)"


def test_polygon_feature_with_an_unknown_rep_rejects_the_file(world, tmp_path):
    path = tmp_path / "reps.geojson"
    frame([("X", "East side", "R1", box("U1", "U2")),
           ("Y", None, "NOBODY", box("U4"))]).to_file(path, driver="GeoJSON")
    before = everything(world)
    with pytest.raises(plan_import.ImportRejected) as err:
        plan_import.import_plan_polygons(world, "Reps", H3_5, path)
    rej = err.value.report.rejections
    assert [(r.row, r.column, r.value) for r in rej] == [(2, "rep_id", "NOBODY")]
    assert everything(world) == before


def test_restore_snapshot(world):
    base = get(world)
    edits.pin_account(world, base, "A7", "T3")            # a pin to carry over
    as_taken = content(world, base)
    snap = snapshots.take_snapshot(world, base, name="Frozen", period=PERIOD, as_of=AS_OF,
                                   settings=Settings())
    edits.assign(world, base, [U5], "T2")                 # Base moves on
    edits.pin_account(world, base, "A7", None)

    back = snapshots.restore_snapshot(world, get(world, "Frozen"), "  Back ")
    assert (back.name, back.state) == ("Back", "planning")
    assert content(world, back) == as_taken
    assert dict(rows(world, "SELECT account_id, territory_id FROM account_overrides "
                            "WHERE plan_id = ?", [back.plan_id])) == {"A7": "T3"}
    r, whole = summary(world, back)
    assert by_territory(r, "units", "accounts", "potential", "won") == {
        "T1": (2, 2, 300.0, 10.0),
        "T2": (2, 2, 600.0, 60.0),
        "T3": (1, 3, 1000.0, 85.0),      # A5 A6 + pinned A7: 150 + 50 + 800, 5 + 80
    }
    assert whole["unassigned_accounts"] == 0
    # a restored plan can be edited; the snapshot stays frozen
    edits.assign(world, back, [U1], "T2")
    assert content(world, get(world, "Frozen")) == as_taken
    hist = plans.plan_history(world.cursor(), back)
    assert hist["what"].tolist()[-1] == "restored from"

    before = everything(world)
    with pytest.raises(InputError, match="'Base' is not a snapshot"):
        snapshots.restore_snapshot(world, get(world), "X")
    with pytest.raises(InputError, match="already exists"):
        snapshots.restore_snapshot(world, snap, "Back")
    assert everything(world) == before


# --------------------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------------------
DELTAS = ("accounts", "potential", "won", "quota", "attainment", "units", "components")


def deltas(comp: compare.Comparison) -> dict[str, tuple]:
    return by_territory(comp.territories, *[f"{m}_delta" for m in DELTAS])


def test_compare_one_cell_moved(world):
    moved = plans.clone_plan(world, get(world), "Moved")
    edits.assign(world, moved, [U5], "T2")   # U5 (A5 150, A6 50; won 5) from T3 to T2
    comp = compare.compare_plans(world.cursor(), moved, get(world), PERIOD, AS_OF,
                                 Settings())
    assert comp.same_units
    assert comp.moved_units.to_dict(orient="records") == [
        {"unit_id": U5, "from_territory": "T3", "to_territory": "T2", "accounts": 2,
         "potential": 200.0}]
    assert comp.moved_accounts.to_dict(orient="records") == [
        {"account_id": "A5", "name": "Account A5", "potential": 150.0,
         "from_territory": "T3", "to_territory": "T2"},
        {"account_id": "A6", "name": "Account A6", "potential": 50.0,
         "from_territory": "T3", "to_territory": "T2"},
    ]
    assert comp.disruption == {"disruption_accounts_pct": pytest.approx(2 / 7),
                               "disruption_potential_pct": pytest.approx(200 / 1900)}
    assert deltas(comp) == {
        #     accounts potential won quota attainment         units components
        "T1": (0, 0.0, 0.0, 0.0, 0.0, 0, 0),
        # T2: 4 accounts, 800, won 65 (0.065 vs 0.06); U3 | U4-U5: still 2 components
        "T2": (2, 200.0, 5.0, 0.0, pytest.approx(0.005), 1, 0),
        # T3 left empty: 0 / 1000 = 0 vs 0.005; no unit, no component
        "T3": (-2, -200.0, -5.0, 0.0, pytest.approx(-0.005), -1, -1),
    }
    assert by_territory(comp.territories, "accounts_plan", "accounts_baseline",
                        "territory_name") == {
        "T1": (2, 2, "North"), "T2": (4, 2, "South"), "T3": (0, 2, "West")}
    # the summary's disruption against a baseline says the same
    _, whole = metrics.summary(world.cursor(), moved, PERIOD, AS_OF, Settings(),
                               baseline=get(world))
    assert whole["disruption_accounts_pct"] == pytest.approx(2 / 7)
    assert whole["disruption_potential_pct"] == pytest.approx(200 / 1900)


def test_compare_a_pin_moves_an_account_not_a_unit(world):
    moved = plans.clone_plan(world, get(world), "Pinned")
    edits.pin_account(world, moved, "A7", "T1")   # the unassigned account (800) into T1
    comp = compare.compare_plans(world.cursor(), moved, get(world), PERIOD, AS_OF,
                                 Settings())
    assert comp.moved_units.empty
    assert len(comp.moved_accounts) == 1
    a7 = comp.moved_accounts.iloc[0]
    assert (a7["account_id"], a7["potential"], a7["to_territory"]) == ("A7", 800.0, "T1")
    assert is_empty(a7["from_territory"])                 # it was unassigned
    assert comp.disruption == {"disruption_accounts_pct": pytest.approx(1 / 7),
                               "disruption_potential_pct": pytest.approx(800 / 1900)}
    assert deltas(comp)["T1"][:3] == (1, 800.0, 80.0)


def test_compare_plans_on_different_unit_types(world):
    coarse = plans.create_plan(world, "Coarse", H3_4)
    for tid, (name, rep) in {"T1": ("North", "R1"), "T2": ("South", "R2")}.items():
        edits.create_territory(world, coarse, name, territory_id=tid, rep_id=rep)
    edits.assign(world, coarse, [P], "T1")
    edits.assign(world, coarse, [Q], "T2")
    # at resolution 4: A1 A2 A3 in P -> T1; A4 A5 A6 in Q -> T2; A7 in neither
    comp = compare.compare_plans(world.cursor(), get(world, "Coarse"), get(world), PERIOD,
                                 AS_OF, Settings())
    assert not comp.same_units
    assert comp.moved_units.empty
    assert list(comp.moved_units.columns) == ["unit_id", "from_territory", "to_territory",
                                              "accounts", "potential"]
    assert comp.moved_accounts[["account_id", "potential", "from_territory",
                                "to_territory"]].values.tolist() == [
        ["A3", 400.0, "T2", "T1"], ["A5", 150.0, "T3", "T2"], ["A6", 50.0, "T3", "T2"]]
    assert comp.disruption == {"disruption_accounts_pct": pytest.approx(3 / 7),
                               "disruption_potential_pct": pytest.approx(600 / 1900)}
    d = deltas(comp)
    assert d["T1"][:3] == (1, 400.0, 40.0)              # 3 accounts, 700, 50
    assert d["T2"][:3] == (1, -200.0, -35.0)            # 3 accounts, 400 (200+150+50), 25
    assert d["T3"][:3] == (-2, -200.0, -5.0)            # only in the baseline


def test_compare_with_a_snapshot_uses_its_frozen_numbers(world):
    base = get(world)
    snap = snapshots.take_snapshot(world, base, name="Frozen", period=PERIOD, as_of=AS_OF,
                                   settings=Settings())
    edits.assign(world, base, [U5], "T2")
    # Base now, over 2025 with 90-minute visits; the snapshot as frozen (2026, 45 minutes)
    comp = compare.compare_plans(world.cursor(), get(world), get(world, "Frozen"),
                                 Period.year(2025), dt.date(2025, 12, 31),
                                 Settings(visit_minutes=90.0))
    t = comp.territories.set_index("territory_id")
    # won in 2025: only S2 (A1, 1,000) in T1; the snapshot keeps 2026's 10 / 60 / 5
    assert t.loc["T1", ["won_plan", "won_baseline", "won_delta"]].tolist() == [
        1000.0, 10.0, 990.0]
    assert t.loc["T2", ["won_plan", "won_baseline"]].tolist() == [0.0, 60.0]
    assert t.loc["T2", ["accounts_plan", "accounts_baseline"]].tolist() == [4, 2]
    assert t.loc["T1", "workload_hours_baseline"] == pytest.approx(T1_WORKLOAD)
    assert t.loc["T1", "workload_hours_plan"] == pytest.approx(T1_WORKLOAD + 18)
    assert t.loc["T3", "workload_hours_baseline"] == pytest.approx(T3_WORKLOAD)
    # what moved is read from the two assignments
    assert comp.moved_units["unit_id"].tolist() == [U5]
    assert comp.disruption["disruption_accounts_pct"] == pytest.approx(2 / 7)
    assert snap.state == "snapshot"


# --------------------------------------------------------------------------------------
# hierarchy
# --------------------------------------------------------------------------------------
def build_hierarchy(world: Store) -> plans.Plan:
    """RG (region, no rep) > D1 (district, no rep) > T1, T2; RG > T3; RG holds U6 (A7).
    T2's quota is 3,000 of its own."""
    base = get(world)
    edits.create_territory(world, base, "Region", territory_id="RG")
    edits.create_territory(world, base, "District", territory_id="D1")
    edits.update_territory(world, base, "D1", parent_id="RG")
    edits.update_territory(world, base, "T1", parent_id="D1")
    edits.update_territory(world, base, "T2", parent_id="D1", annual_quota=3000.0)
    edits.update_territory(world, base, "T3", parent_id="RG")
    edits.assign(world, base, [U6], "RG")
    return get(world)


def test_rollup_sums_children_and_recomputes_ratios(world):
    plan = build_hierarchy(world)
    cur = world.cursor()
    terr = plans.territories(cur, plan)
    assert hierarchy.depth_of(terr) == {"D1": 1, "RG": 0, "T1": 2, "T2": 2, "T3": 1}
    below = hierarchy.descendants(terr)
    assert sorted(below["RG"]) == ["D1", "RG", "T1", "T2", "T3"]
    assert sorted(below["D1"]) == ["D1", "T1", "T2"]
    assert below["T1"] == ["T1"]

    r, _ = summary(world, plan)
    own = r.set_index("territory_id")
    # RG's own row: A7 (800, won 80), no rep: no travel, 12 x 45 / 60 = 9 hours
    assert own.loc["RG", ["accounts", "potential", "won", "quota", "capacity_hours"]].tolist(
    ) == [1, 800.0, 80.0, 0.0, 0.0]
    assert own.loc["RG", "workload_hours"] == pytest.approx(9.0)
    assert own.loc["T2", "attainment"] == pytest.approx(60 / 3000)

    up = hierarchy.rollup(r, terr, PERIOD, AS_OF).set_index("territory_id")
    assert up.index.tolist() == ["RG", "D1"]                 # by depth, then id
    hand = {
        # territories, accounts, potential, won, open, quota, units, capacity
        "D1": (2, 4, 900.0, 70.0, 70.0, 4000.0, 4, 2400.0),
        "RG": (4, 7, 1900.0, 155.0, 70.0, 5000.0, 6, 3600.0),
    }
    cols = ["territories", "accounts", "potential", "won", "open_pipeline", "quota", "units",
            "capacity_hours"]
    assert {t: tuple(up.loc[t, cols]) for t in hand} == hand
    assert up.loc["D1", "depth"] == 1
    assert up.loc["RG", "depth"] == 0
    assert up.loc["D1", "workload_hours"] == pytest.approx(
        own.loc[["D1", "T1", "T2"], "workload_hours"].sum())
    assert up.loc["RG", "workload_hours"] == pytest.approx(
        own.loc[["RG", "D1", "T1", "T2", "T3"], "workload_hours"].sum())
    assert up.loc["RG", "workload_hours"] == pytest.approx(
        9.0 + T1_WORKLOAD + T3_WORKLOAD + own.loc["T2", "workload_hours"])
    # attainment is sum won / sum quota, not the mean of the children's attainments
    assert up.loc["D1", "attainment"] == pytest.approx(70 / 4000)      # not (0.01+0.02)/2
    assert up.loc["RG", "attainment"] == pytest.approx(155 / 5000)
    elapsed = 181 / 365                                                  # Jan 1 .. Jun 30
    assert up.loc["D1", "pace"] == pytest.approx(70 / 4000 / elapsed)
    assert up.loc["D1", "penetration"] == pytest.approx(70 / 900)
    assert up.loc["RG", "whitespace"] == pytest.approx(1900 - 155)
    assert up.loc["D1", "utilization"] == pytest.approx(up.loc["D1", "workload_hours"] / 2400)


def test_rollup_without_parents_is_empty(world):
    cur = world.cursor()
    plan = get(world)
    r, _ = summary(world, plan)
    assert hierarchy.rollup(r, plans.territories(cur, plan), PERIOD, AS_OF).empty


def test_parent_cycle_refused(world):
    plan = build_hierarchy(world)
    cur = world.cursor()
    cur.execute("UPDATE territories SET parent_id = 'T2' WHERE territory_id = 'T1'")
    cur.execute("UPDATE territories SET parent_id = 'T1' WHERE territory_id = 'T2'")
    terr = plans.territories(cur, plan)
    with pytest.raises(InputError, match="loop"):
        hierarchy.descendants(terr)
    r, _ = summary(world, plan)
    with pytest.raises(InputError, match="loop"):
        hierarchy.rollup(r, terr, PERIOD, AS_OF)
    cur.execute("UPDATE territories SET parent_id = territory_id WHERE territory_id = 'T3'")
    with pytest.raises(InputError, match="loop"):
        hierarchy.descendants(plans.territories(cur, plan).query("territory_id == 'T3'"))


def test_update_territory_refuses_a_parent_loop(world):
    base = get(world)
    edits.update_territory(world, base, "T1", parent_id="T2")
    with pytest.raises(InputError):
        edits.update_territory(world, base, "T2", parent_id="T1")


# --------------------------------------------------------------------------------------
# plan import: polygons
# --------------------------------------------------------------------------------------
def box(*units: str, pad: float = 0.01) -> shapely.Polygon:
    """The smallest lon/lat box holding these units' centres, padded."""
    lats = [CENTRE[u][0] for u in units]
    lons = [CENTRE[u][1] for u in units]
    return shapely.box(min(lons) - pad, min(lats) - pad, max(lons) + pad, max(lats) + pad)


def held(geom) -> set[str]:
    return {u for u, (lat, lon) in CENTRE.items() if geom.contains(shapely.Point(lon, lat))}


def frame(features: list[tuple], crs=4326) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"territory_id": [f[0] for f in features], "name": [f[1] for f in features],
         "rep_id": [f[2] for f in features]},
        geometry=[f[3] for f in features], crs=crs)


FEATURES = [  # territory, name, rep, polygon
    ("X", "East side", "R1", box("U1", "U2")),
    ("Y", None, None, box("U4")),
    ("Z", "Nowhere", None, shapely.box(10.0, 10.0, 11.0, 11.0)),
]


def test_boxes_hold_the_centres_meant():
    assert held(FEATURES[0][3]) == {"U1", "U2"}
    assert held(FEATURES[1][3]) == {"U4"}
    assert held(FEATURES[2][3]) == set()
    assert held(box("U2", pad=0.005)) == {"U2"}


def assignment(store: Store, plan: plans.Plan) -> dict[str, str]:
    return dict(rows(store, "SELECT unit_id, territory_id FROM plan_units WHERE plan_id = ?",
                     [plan.plan_id]))


def test_import_polygons(world, tmp_path):
    path = tmp_path / "areas.geojson"
    frame(FEATURES).to_file(path, driver="GeoJSON")
    plan, report, details = plan_import.import_plan_polygons(world, "Drawn", H3_5, path)
    assert (plan.name, plan.state, str(plan.unit)) == ("Drawn", "planning", "h3:5")
    assert assignment(world, plan) == {U1: "X", U2: "X", U4: "Y"}
    assert details == {"empty_features": [3], "overlaps": 0,
                       "unmatched_units": sorted([U3, U5, U6])}
    assert report.committed
    assert report.clean
    assert (report.tables[0].rows, report.tables[0].inserted) == (3, 3)
    # every feature is a territory (the empty one too); no name: its id; no rep: none
    assert rows(world, "SELECT territory_id, name, rep_id FROM territories "
                       "WHERE plan_id = ? ORDER BY 1", [plan.plan_id]) == [
        ("X", "East side", "R1"), ("Y", "Y", None), ("Z", "Nowhere", None)]
    r, whole = summary(world, plan)
    assert by_territory(r, "units", "accounts", "potential", "won") == {
        "X": (2, 2, 300.0, 10.0), "Y": (1, 1, 200.0, 20.0), "Z": (0, 0, 0.0, 0.0)}
    assert whole["unassigned_accounts"] == 4            # A3, A5, A6, A7
    assert plans.plan_history(world.cursor(), plan)["what"].tolist()[0] == "imported polygons"

    # a GeoPackage (here in web Mercator) gives the same plan
    gpkg = tmp_path / "areas.gpkg"
    frame(FEATURES).to_crs(3857).to_file(gpkg, driver="GPKG", engine="pyogrio")
    assert gpd.read_file(gpkg).crs.to_epsg() == 3857
    again, _, details2 = plan_import.import_plan_polygons(world, "Drawn 2", H3_5, gpkg)
    assert assignment(world, again) == assignment(world, plan)
    assert details2 == details
    assert content(world, again) == content(world, plan)


def test_import_polygons_overlap_first_feature_wins(world, tmp_path):
    path = tmp_path / "overlap.geojson"
    frame([("X", "x", None, box("U1", "U2")),
           ("Y", "y", None, box("U2", pad=0.005)),   # inside X's box: U2 is X's
           ("W", "w", None, box("U4", "U5"))]).to_file(path, driver="GeoJSON")
    plan, _, details = plan_import.import_plan_polygons(world, "Overlap", H3_5, path)
    assert assignment(world, plan) == {U1: "X", U2: "X", U4: "W", U5: "W"}
    assert details == {"empty_features": [], "overlaps": 1,
                       "unmatched_units": sorted([U3, U6])}


def test_import_polygons_bad_features_store_nothing(world, tmp_path):
    path = tmp_path / "bad.geojson"
    line = shapely.LineString([CENTRE["U1"][::-1], CENTRE["U4"][::-1]])
    features = [
        {"type": "Feature", "properties": {"territory_id": "X"},
         "geometry": shapely.geometry.mapping(box("U1", "U2"))},
        {"type": "Feature", "properties": {"territory_id": None},
         "geometry": shapely.geometry.mapping(box("U4"))},
        {"type": "Feature", "properties": {"territory_id": "L"},
         "geometry": shapely.geometry.mapping(line)},
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    before = everything(world)
    with pytest.raises(ImportRejected, match="2 of 3 features are wrong") as err:
        plan_import.import_plan_polygons(world, "Bad", H3_5, path, label="bad.geojson")
    got = [(r.file, r.row, r.column, r.value, r.reason)
           for r in err.value.report.rejections]
    assert got == [
        ("bad.geojson", 2, "territory_id", None, "missing territory id"),
        ("bad.geojson", 3, "geometry", "LineString", "not a polygon"),
    ]
    assert str(err.value.report.rejections[0]) == (
        "bad.geojson, row 2, column 'territory_id': (empty): missing territory id")
    assert not err.value.report.committed
    assert everything(world) == before
    # no territory column at all; an unreadable file; a taken name
    nocol = tmp_path / "nocol.geojson"
    gpd.GeoDataFrame({"colour": ["red"]}, geometry=[box("U1")], crs=4326).to_file(
        nocol, driver="GeoJSON")
    with pytest.raises(InputError, match="no territory id column"):
        plan_import.import_plan_polygons(world, "Bad", H3_5, nocol)
    junk = tmp_path / "junk.geojson"
    junk.write_text("not json")
    with pytest.raises(InputError, match="cannot read"):
        plan_import.import_plan_polygons(world, "Bad", H3_5, junk)
    good = tmp_path / "good.geojson"
    frame(FEATURES).to_file(good, driver="GeoJSON")
    with pytest.raises(InputError, match="already exists"):
        plan_import.import_plan_polygons(world, "Base", H3_5, good)
    assert everything(world) == before


# --------------------------------------------------------------------------------------
# plan import: account lists
# --------------------------------------------------------------------------------------
def pins_of(store: Store, plan: plans.Plan) -> dict[str, str]:
    return dict(rows(store, "SELECT account_id, territory_id FROM account_overrides "
                            "WHERE plan_id = ?", [plan.plan_id]))


def test_import_account_list_is_one_undoable_edit(world, tmp_path):
    base = get(world)
    path = write_csv(tmp_path / "owners.csv", [
        ["Account ID", "Territory"], ["A1", "T3"], [" A7 ", "T2"], ["A5", "T3"]])
    result, report = plan_import.import_account_assignments(world, base, path)
    # A5 is in T3 already, but it had no pin: all three become pins
    assert (result.changed, report.tables[0].rows, report.tables[0].inserted) == (3, 3, 3)
    assert pins_of(world, base) == {"A1": "T3", "A7": "T2", "A5": "T3"}
    assert edits.next_labels(world.cursor(), base) == ("Pin 3 accounts from owners.csv", None)
    r, whole = summary(world, base)
    assert by_territory(r, "accounts", "potential", "won") == {
        "T1": (1, 200.0, 0.0),            # A2
        "T2": (3, 1400.0, 140.0),         # A3 A4 + A7: 400 + 200 + 800, 40 + 20 + 80
        "T3": (3, 300.0, 15.0),           # A5 A6 + A1: 150 + 50 + 100, 5 + 10
    }
    assert whole["unassigned_accounts"] == 0
    assert scalar(world, "SELECT count(*) FROM plan_edits WHERE plan_id = ?",
                  [base.plan_id]) == 1
    edits.undo(world, base)
    assert pins_of(world, base) == {}
    r, _ = summary(world, base)
    assert by_territory(r, "accounts") == {"T1": (2,), "T2": (2,), "T3": (2,)}
    edits.redo(world, base)
    assert pins_of(world, base) == {"A1": "T3", "A7": "T2", "A5": "T3"}


def test_import_account_list_rejects_the_whole_file(world, tmp_path):
    base = get(world)
    edits.pin_account(world, base, "A2", "T3")
    path = write_csv(tmp_path / "bad.csv", [
        ["account_id", "territory_id"],
        ["A1", "T2"],          # row 2: fine
        ["A99", "T2"],         # row 3: no such account
        ["A3", "T9"],          # row 4: no such territory
        ["A1", "T3"],          # row 5: A1 again
        ["", ""],              # row 6: both missing
    ])
    before = everything(world)
    with pytest.raises(ImportRejected, match="4 of 5 rows are wrong; nothing was pinned") as e:
        plan_import.import_account_assignments(world, base, path, label="bad.csv")
    got = [(r.row, r.column, r.value, r.reason) for r in e.value.report.rejections]
    assert got == [
        (3, "account_id", "A99", "no such account"),
        (4, "territory_id", "T9", "plan 'Base' has no such territory"),
        (5, "account_id", "A1", "account given twice (also on row 2)"),
        (6, "account_id", None, "missing account id"),
        (6, "territory_id", None, "missing territory id"),
    ]
    assert str(e.value.report.rejections[3]) == (
        "bad.csv, row 6, column 'account_id': (empty): missing account id")
    assert all(r.file == "bad.csv" for r in e.value.report.rejections)
    assert everything(world) == before
    assert pins_of(world, base) == {"A2": "T3"}
    wrong = write_csv(tmp_path / "wrong.csv", [["customer", "zone"], ["A1", "T2"]])
    with pytest.raises(InputError, match="expected columns account_id and territory_id"):
        plan_import.import_account_assignments(world, base, wrong)
    assert everything(world) == before


# --------------------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------------------
WHEN = ("--period", "2026", "--as-of", "2026-06-30")


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def db_states(db: Path) -> dict[str, str]:
    with Store(db, read_only=True) as s:
        return states(s)


def test_cli_lifecycle(capsys, db):
    code, out, err = run(capsys, "plan", "create", "--db", db, "--name", "Fresh",
                         "--unit", "h3:4", "--note", "blank page")
    assert (code, out.strip()) == (0, "plan 'Fresh' created (h3:4, planning), empty"), err
    code, out, err = run(capsys, "plan", "clone", "--db", db, "--name", "Copy")
    assert (code, out.strip()) == (0, "plan 'Copy' created (h3:5, planning)"), err
    code, out, err = run(capsys, "plan", "rename", "--db", db, "--plan", "Copy",
                         "--name", "Proposal")
    assert (code, out.strip()) == (0, "plan 'Copy' renamed 'Proposal'"), err
    code, out, err = run(capsys, "plan", "state", "--db", db, "--plan", "Proposal", "active")
    assert (code, out.strip()) == (0, "plan 'Proposal' is now active"), err
    assert db_states(db) == {"Base": "planning", "Fresh": "planning", "Proposal": "active"}
    code, out, err = run(capsys, "plan", "delete", "--db", db, "--plan", "Fresh")
    assert (code, out.strip()) == (0, "plan 'Fresh' deleted"), err
    code, out, _ = run(capsys, "plan", "list", "--db", db, "--format", "json")
    assert [(p["name"], p["state"], p["units"]) for p in json.loads(out)] == [
        ("Proposal", "active", 5), ("Base", "planning", 5)]

    refusals = [
        (("plan", "state", "--plan", "Proposal", "archived"), "'Proposal' is the active plan"),
        (("plan", "state", "--plan", "Proposal", "planning"), "'Proposal' is the active plan"),
        (("plan", "delete", "--plan", "Proposal"), "'Proposal' is the active plan"),
        (("plan", "delete", "--plan", "Nope"), "no plan named 'Nope'"),
        (("plan", "clone", "--plan", "Nope", "--name", "X"), "no plan named 'Nope'"),
        (("plan", "clone", "--name", "Base"), "a plan named 'Base' already exists"),
        (("plan", "rename", "--plan", "Base", "--name", "Proposal"), "already exists"),
        (("plan", "state", "--plan", "Nope", "active"), "no plan named 'Nope'"),
    ]
    with Store(db, read_only=True) as s:
        before = everything(s)
    for argv, message in refusals:
        code, out, err = run(capsys, argv[0], argv[1], "--db", db, *argv[2:])
        assert code == 2, argv
        assert out == "", argv
        assert err.startswith("error: "), (argv, err)
        assert message in err, (argv, err)
    code, _, err = run(capsys, "plan", "state", "--db", db, "--plan", "Base", "live")
    assert code == 2
    assert "invalid choice" in err
    with Store(db, read_only=True) as s:
        assert everything(s) == before


def test_cli_snapshots_restore_and_compare(capsys, db):
    code, out, err = run(capsys, "plan", "snapshot", "--db", db, "--plan", "Base", "--note",
                         "QBR", "--name", "Q2", *WHEN)
    assert (code, out.strip()) == (0, "snapshot 'Q2' taken"), err
    code, out, err = run(capsys, "plan", "snapshot", "--db", db, *WHEN)
    assert code == 0, err
    assert re.fullmatch(r"snapshot 'Base @ \d{4}-\d\d-\d\d \d\d:\d\d:\d\d' taken", out.strip())
    code, out, err = run(capsys, "plan", "snapshots", "--db", db, "--plan", "Base",
                         "--format", "json")
    assert code == 0, err
    listed = {s["snapshot"]: s for s in json.loads(out)}
    assert len(listed) == 2
    q2 = listed["Q2"]
    assert (q2["plan"], q2["note"], q2["period"], q2["accounts"], q2["won"],
            q2["unassigned_accounts"]) == ("Base", "QBR", "2026-01-01:2026-12-31", 7, 155.0, 1)
    assert q2["attainment"] == pytest.approx(155 / 3000)
    code, out, _ = run(capsys, "plan", "snapshots", "--db", db)
    assert out.splitlines()[0].startswith("snapshot,plan,taken_at,author,note,period,as_of")

    # Base moves on: U5 (A5, A6) from T3 to T2
    code, out, err = run(capsys, "plan", "assign", "--db", db, "--plan", "Base",
                         "--territory", "T2", U5)
    assert code == 0, err
    code, out, err = run(capsys, "plan", "restore", "--db", db, "--snapshot", "Q2",
                         "--name", "Back")
    assert (code, out.strip()) == (0, "plan 'Back' restored from snapshot 'Q2' (planning)")
    with Store(db, read_only=True) as s:
        assert assignment(s, get(s, "Back"))[U5] == "T3"
        assert content(s, get(s, "Back")) == content(s, get(s, "Q2"))

    base_args = ("plan", "compare", "--db", db, "--plan", "Base", "--baseline", "Back", *WHEN)
    code, out, err = run(capsys, *base_args, "--what", "summary", "--format", "json")
    assert code == 0, err
    got = json.loads(out)
    assert (got["plan"], got["baseline"], got["accounts_moved"], got["units_moved"]) == (
        "Base", "Back", 2, 1)
    assert got["disruption_accounts_pct"] == pytest.approx(2 / 7)
    assert got["disruption_potential_pct"] == pytest.approx(200 / 1900)
    code, out, err = run(capsys, *base_args, "--what", "units", "--format", "json")
    assert json.loads(out) == [{"unit_id": U5, "from_territory": "T3", "to_territory": "T2",
                                "accounts": 2, "potential": 200.0}]
    code, out, err = run(capsys, *base_args, "--what", "accounts")
    assert code == 0, err
    acc = pd.read_csv(io.StringIO(out))
    assert acc[["account_id", "potential", "from_territory", "to_territory"]].values.tolist(
    ) == [["A5", 150.0, "T3", "T2"], ["A6", 50.0, "T3", "T2"]]
    code, out, err = run(capsys, *base_args, "--what", "territories", "--format", "json")
    terr = {t["territory_id"]: t for t in json.loads(out)}
    assert [(t, terr[t]["accounts_delta"], terr[t]["potential_delta"], terr[t]["won_delta"])
            for t in sorted(terr)] == [("T1", 0, 0.0, 0.0), ("T2", 2, 200.0, 5.0),
                                       ("T3", -2, -200.0, -5.0)]
    with Store(db, read_only=True) as s:
        before = everything(s)
    for argv, message in [
        (("plan", "restore", "--snapshot", "Base", "--name", "X"), "'Base' is not a snapshot"),
        (("plan", "restore", "--snapshot", "Nope", "--name", "X"), "no plan named 'Nope'"),
        (("plan", "restore", "--snapshot", "Q2", "--name", "Back"), "already exists"),
        (("plan", "state", "--plan", "Q2", "planning"), "'Q2' is a snapshot"),
        (("plan", "assign", "--plan", "Q2", "--territory", "T1", U5), "is a snapshot"),
        (("plan", "snapshot", "--plan", "Q2", *WHEN), "already a snapshot"),
        (("plan", "snapshot", "--name", "Q2", *WHEN), "already exists"),
        (("plan", "compare", "--baseline", "Nope", *WHEN), "no plan named 'Nope'"),
        (("plan", "compare", "--plan", "Nope", "--baseline", "Base", *WHEN), "no plan named"),
        (("plan", "snapshots", "--plan", "Nope"), "no plan named 'Nope'"),
    ]:
        code, out, err = run(capsys, argv[0], argv[1], "--db", db, *argv[2:])
        assert (code, out) == (2, ""), (argv, err)
        assert err.startswith("error: "), (argv, err)
        assert message in err, (argv, err)
    with Store(db, read_only=True) as s:
        assert everything(s) == before


def test_cli_rollup(capsys, db):
    with Store(db) as s:
        build_hierarchy(s)
    code, out, err = run(capsys, "plan", "rollup", "--db", db, *WHEN, "--format", "json")
    assert code == 0, err
    got = {r["territory_id"]: r for r in json.loads(out)}
    assert [(t, got[t]["depth"], got[t]["territories"], got[t]["accounts"], got[t]["won"],
             got[t]["quota"]) for t in ("RG", "D1")] == [
        ("RG", 0, 4, 7, 155.0, 5000.0), ("D1", 1, 2, 4, 70.0, 4000.0)]
    assert got["D1"]["attainment"] == pytest.approx(70 / 4000)
    code, out, _ = run(capsys, "plan", "rollup", "--db", db, *WHEN)
    assert out.splitlines()[0].startswith("territory_id,territory_name,depth,territories,")
    with Store(db) as s:
        s.cursor().execute("UPDATE territories SET parent_id = 'T1' "
                           "WHERE territory_id = 'RG'")                # RG > D1 > T1 > RG
    code, out, err = run(capsys, "plan", "rollup", "--db", db, *WHEN)
    assert (code, out) == (2, "")
    assert err.startswith("error: territory")
    assert "loop" in err
    code, _, err = run(capsys, "plan", "rollup", "--db", db, "--plan", "Nope", *WHEN)
    assert code == 2
    assert "no plan named 'Nope'" in err


def test_a_plan_against_its_own_snapshot_shows_no_change(demo_copy):
    """On real data the sums are parallel (last-bit noise): an unchanged plan still compares
    as exactly unchanged, and the snapshot keeps its floats exactly."""
    from analytics.period import Period
    from analytics.settings import load_settings

    with Store(demo_copy) as store:
        cur = store.cursor()
        plan = plans.get_plan(cur)
        period, as_of = Period.year(2026), dt.date(2026, 9, 30)
        settings = load_settings(store)
        snap = snapshots.take_snapshot(store, plan, period=period, as_of=as_of,
                                       settings=settings)
        result = compare.compare_plans(cur, plan, snap, period, as_of, settings)
        stored = json.loads(cur.execute("SELECT summary FROM snapshots").fetchone()[0])
        rows, _ = metrics.summary(cur, plan, period, as_of, settings)
    deltas = result.territories[[c for c in result.territories.columns
                                 if c.endswith("_delta")]]
    assert (deltas.to_numpy() == 0).all()
    assert result.moved_units.empty
    assert result.moved_accounts.empty
    assert result.disruption == {"disruption_accounts_pct": 0.0,
                                 "disruption_potential_pct": 0.0}
    # floats kept to the last digit (not pandas' 10 significant digits)
    first = next(r for r in stored if r["territory_id"] == rows["territory_id"].iloc[0])
    assert first["potential"] == float(rows["potential"].iloc[0])


def test_every_way_of_making_a_plan_starts_its_history(world):
    """Import, convert, clone, snapshot, restore and create all log how the plan began."""
    base = get(world)
    conv, _ = edits.convert_plan(world, base, UnitType.parse("state"), "On states")
    snap = snapshots.take_snapshot(world, base, name="Snap", period=Period.year(2026),
                                   as_of=dt.date(2026, 6, 30), settings=Settings())
    back = snapshots.restore_snapshot(world, snap, "Back")
    first = {}
    for plan in (base, conv, snap, back):
        hist = plans.plan_history(world.cursor(), get(world, plan.name))
        first[plan.name] = tuple(hist.iloc[-1][["what", "detail"]])
    assert first == {
        "Base": ("created", "imported from plan_base.csv: 5 units, active"),
        "On states": ("created", f"converted from Base ({base.unit}), planning"),
        "Snap": ("snapshot of", "from Base"),
        "Back": ("restored from", "from Snap"),
    }


def test_upgrade_records_the_missing_creation_entries(db):
    """A version-4 database whose imported plan has no history gets a "created" entry on
    opening; plans that have one are left alone."""
    with Store(db) as world:
        base = get(world)
        plans.clone_plan(world, base, "Kept")
        world.cursor().execute(
            "DELETE FROM plan_events WHERE plan_id = ? AND event = 'created'", [base.plan_id])
        world.cursor().execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    with Store(db) as store:
        got = store.cursor().execute(
            "SELECT p.name, e.event, e.author, e.detail FROM plan_events e "
            "JOIN plans p USING (plan_id) WHERE e.event IN ('created', 'cloned') "
            "ORDER BY p.name").fetchall()
    assert got == [("Base", "created", None, "recorded on upgrade"),
                   ("Kept", "cloned", plans.author(), "from Base")]
