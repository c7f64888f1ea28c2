"""Plan edits (analytics/edits.py) at engine level, with the metrics checked by hand after each.

The tiny world (built once per module, each test works on a copy), plan "Base" on H3
resolution 5, period 2026 (365 days), as of 2026-06-30:

    P = the resolution-4 cell of 40N 100W, Q = the one of 40N 97W (3 degrees apart),
    R = the resolution-5 cell of 40N 94W.

    unit  cell                                           territory in "Base"
    U1    a non-centre child of P (resolution 5)         T1 North (rep R1)
    U2    the centre child of P                          T1
    U3    a child of P at grid distance 2 from U1        T2 South (rep R2)
    U4    the centre child of Q                          T2
    U5    a non-centre child of Q                        T3 West (rep R3)
    U6    R                                              none (unassigned)

    Units that share an edge: U1-U2 and U2-U3 (each non-centre child touches the centre
    child), U4-U5. U1 and U3 do not touch; nothing in P touches anything in Q or R.
    Reps R1..R4 (R4 in no territory).

    account (at its cell's centre)  unit  potential  won in 2026
    A1                               U1    100        10  (S1; S2 1,000 won 2025-12-31: out)
    A2                               U2    200         0  (S3 open 70)
    A3                               U3    400        40
    A4                               U4    200        20
    A5                               U5    150         5
    A6                               U5     50         0  (S7 lost 999: counts nowhere)
    A7                               U6    800        80  unassigned

    "Base"   units       accounts   potential         won           components
    T1       U1 U2   2   A1 A2  2   100+200 = 300     10            1
    T2       U3 U4   2   A3 A4  2   400+200 = 600     40+20 = 60    2 (U3 in P, U4 in Q)
    T3       U5      1   A5 A6  2   150+50  = 200     5             1
    unassigned accounts: 1 (A7, potential 800, won 80).
    Whole plan (never changes with an edit): 7 accounts, potential 1,900, won 155.

Every expected number below is worked out from this table (docs/metrics.md definitions), never
taken from an earlier output of the code.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
from pathlib import Path

import h3
import pandas as pd
import pytest
from conftest import snapshot, write_csv

from analytics import edits, ingest, metrics, plans
from analytics.errors import InputError
from analytics.period import Period
from analytics.settings import Settings
from analytics.store import Store
from analytics.units import UnitType

PERIOD = Period(dt.date(2026, 1, 1), dt.date(2026, 12, 31))
AS_OF = dt.date(2026, 6, 30)
RES = 5

P = h3.latlng_to_cell(40.0, -100.0, 4)
Q = h3.latlng_to_cell(40.0, -97.0, 4)
_P_RING = sorted(set(h3.cell_to_children(P, RES)) - {h3.cell_to_center_child(P, RES)})
_Q_RING = sorted(set(h3.cell_to_children(Q, RES)) - {h3.cell_to_center_child(Q, RES)})
U1 = _P_RING[0]
U2 = h3.cell_to_center_child(P, RES)
U3 = next(c for c in _P_RING if h3.grid_distance(U1, c) == 2)
U4 = h3.cell_to_center_child(Q, RES)
U5 = _Q_RING[0]
U6 = h3.latlng_to_cell(40.0, -94.0, RES)
R = U6
R_COARSE = h3.latlng_to_cell(*h3.cell_to_latlng(R), 4)  # the resolution-4 cell of R's accounts
UNITS = {"U1": U1, "U2": U2, "U3": U3, "U4": U4, "U5": U5, "U6": U6}

ACCOUNTS = [  # account_id, unit, potential
    ("A1", U1, 100), ("A2", U2, 200), ("A3", U3, 400), ("A4", U4, 200),
    ("A5", U5, 150), ("A6", U5, 50), ("A7", U6, 800),
]
SALES = [  # opportunity_id, account_id, amount, close_date, stage
    ("S1", "A1", 10, "2026-03-01", "won"),
    ("S2", "A1", 1_000, "2025-12-31", "won"),   # the day before the period
    ("S3", "A2", 70, "2026-05-01", "open"),
    ("S4", "A3", 40, "2026-02-01", "won"),
    ("S5", "A4", 20, "2026-12-31", "won"),      # last day of the period
    ("S6", "A5", 5, "2026-01-01", "won"),       # first day
    ("S7", "A6", 999, "2026-04-01", "lost"),
    ("S8", "A7", 80, "2026-06-30", "won"),
]
REPS = [  # rep_id, home_lat, home_lon, annual_quota, capacity_hours
    ("R1", 40.0, -100.0, 1_000, 1_200), ("R2", 40.0, -98.0, 1_000, 1_200),
    ("R3", 40.0, -97.0, 1_000, 1_200), ("R4", 40.0, -94.0, 1_000, 1_200),
]
BASE_PLAN = [("U1", "T1"), ("U2", "T1"), ("U3", "T2"), ("U4", "T2"), ("U5", "T3")]
NAMES = {"T1": ("North", "R1"), "T2": ("South", "R2"), "T3": ("West", "R3")}

# (units, accounts, potential, won, components) per territory; then unassigned accounts
BASE = {
    "T1": (2, 2, 300.0, 10.0, 1),
    "T2": (2, 2, 600.0, 60.0, 2),
    "T3": (1, 2, 200.0, 5.0, 1),
}
BASE_UNASSIGNED = 1  # A7
EMPTY_T = (0, 0, 0.0, 0.0, 0)  # a territory left without units or accounts


# --------------------------------------------------------------------------------------
# the world and helpers
# --------------------------------------------------------------------------------------
def build_world(folder: Path) -> Path:
    acc = write_csv(folder / "accounts.csv", [
        ["account_id", "name", "lat", "lon", "segment", "potential"],
        *[[a, f"Account {a}", *h3.cell_to_latlng(cell), "Clinic", pot]
          for a, cell, pot in ACCOUNTS],
    ])
    reps = write_csv(folder / "reps.csv", [
        ["rep_id", "name", "home_lat", "home_lon", "annual_quota", "capacity_hours"],
        *[[r, f"Rep {r}", lat, lon, quota, cap] for r, lat, lon, quota, cap in REPS],
    ])
    sales = write_csv(folder / "sales.csv", [
        ["opportunity_id", "account_id", "amount", "close_date", "stage"],
        *[list(s) for s in SALES],
    ])
    plan_file = write_csv(folder / "plan_base.csv", [
        ["unit_id", "territory_id", "territory_name", "rep_id"],
        *[[UNITS[u], t, *NAMES[t]] for u, t in BASE_PLAN],
    ])
    path = folder / "edits.duckdb"
    with Store(path) as s:
        assert ingest.load(s, accounts=acc, reps=reps, sales=sales).clean
        plans.import_plan(s, "Base", UnitType.parse(f"h3:{RES}"), plan_file)
    return path


@pytest.fixture(scope="module")
def world_db(tmp_path_factory) -> Path:
    return build_world(tmp_path_factory.mktemp("edits"))


@pytest.fixture
def world(world_db: Path, tmp_path: Path):
    """A private, open copy of the tiny world."""
    dst = tmp_path / "world.duckdb"
    shutil.copyfile(world_db, dst)
    with Store(dst) as s:
        yield s


def base(store: Store, name: str = "Base") -> plans.Plan:
    return plans.get_plan(store.cursor(), name)


def summary(store: Store, name: str = "Base") -> tuple[pd.DataFrame, dict]:
    cur = store.cursor()
    return metrics.summary(cur, base(store, name), PERIOD, AS_OF, Settings())


def numbers(store: Store, name: str = "Base") -> tuple[dict[str, tuple], int]:
    """({territory: (units, accounts, potential, won, components)}, unassigned accounts).

    Also checks what no edit may change: the whole plan's 7 accounts, 1,900 potential and
    155 won, and that `contiguous` means one component.
    """
    rows, plan_row = summary(store, name)
    out = {}
    for r in rows.itertuples(index=False):
        assert bool(r.contiguous) == (r.components == 1), r
        out[r.territory_id] = (int(r.units), int(r.accounts), float(r.potential),
                               float(r.won), int(r.components))
    assert (plan_row["accounts"], plan_row["potential"], plan_row["won"]) == (7, 1900.0, 155.0)
    return out, plan_row["unassigned_accounts"]


def same_summary(a: tuple[pd.DataFrame, dict], b: tuple[pd.DataFrame, dict]) -> None:
    """The whole summary (every territory column, every plan column) is equal."""
    pd.testing.assert_frame_equal(a[0].reset_index(drop=True), b[0].reset_index(drop=True))
    assert a[1].keys() == b[1].keys()
    for k, v in a[1].items():
        w = b[1][k]
        both_empty = (v is None or (isinstance(v, float) and math.isnan(v))) and (
            w is None or (isinstance(w, float) and math.isnan(w)))
        assert both_empty or v == w, (k, v, w)


def plan_tables(store: Store, name: str = "Base") -> dict[str, list[tuple]]:
    """Every row of the plan's own tables, sorted."""
    cur = store.cursor()
    pid = base(store, name).plan_id
    return {
        t: sorted(cur.execute(f"SELECT * FROM {t} WHERE plan_id = ?", [pid]).fetchall(),
                  key=repr)
        for t in ("plan_units", "territories", "account_overrides")
    }


def full_snapshot(store: Store) -> dict[str, list[tuple]]:
    """conftest's snapshot of every data table, plus the edit log tables."""
    snap = snapshot(store)
    cur = store.cursor()
    for t in ("plan_edits", "plan_edit_changes"):
        snap[t] = sorted(cur.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
    return snap


def unit_territory(store: Store, name: str = "Base") -> dict[str, str]:
    """{"U1": "T1", ...} for the units the plan assigns."""
    by_cell = {c: u for u, c in UNITS.items()}
    rows = store.cursor().execute("SELECT unit_id, territory_id FROM plan_units WHERE "
                                  "plan_id = ?", [base(store, name).plan_id]).fetchall()
    return {by_cell.get(c, c): t for c, t in rows}


def pins(store: Store, name: str = "Base") -> dict[str, str]:
    return dict(store.cursor().execute(
        "SELECT account_id, territory_id FROM account_overrides WHERE plan_id = ?",
        [base(store, name).plan_id]).fetchall())


def labels(store: Store) -> tuple[str | None, str | None]:
    return edits.next_labels(store.cursor(), base(store))


def n_edits(store: Store) -> int:
    return store.cursor().execute("SELECT count(*) FROM plan_edits").fetchone()[0]


# --------------------------------------------------------------------------------------
# the world is as drawn
# --------------------------------------------------------------------------------------
def test_world_is_as_drawn(world):
    assert len(set(UNITS.values())) == 6
    assert h3.are_neighbor_cells(U1, U2)
    assert h3.are_neighbor_cells(U2, U3)
    assert h3.are_neighbor_cells(U4, U5)
    assert h3.grid_distance(U1, U3) == 2
    for a, b in [(a, b) for a in (U1, U2, U3) for b in (U4, U5, U6)] + [(U4, U6), (U5, U6)]:
        assert not h3.are_neighbor_cells(a, b)
    for _, cell, _ in ACCOUNTS:  # an account's cells at resolutions 5 and 4 (for convert)
        lat, lon = h3.cell_to_latlng(cell)
        assert h3.latlng_to_cell(lat, lon, RES) == cell
    assert {h3.latlng_to_cell(*h3.cell_to_latlng(c), 4) for c in (U1, U2, U3)} == {P}
    assert {h3.latlng_to_cell(*h3.cell_to_latlng(c), 4) for c in (U4, U5)} == {Q}
    assert h3.latlng_to_cell(*h3.cell_to_latlng(U6), 4) not in (P, Q)
    assert numbers(world) == (BASE, BASE_UNASSIGNED)
    assert edits.undo(world, base(world)) is None      # an empty history
    assert edits.redo(world, base(world)) is None
    assert labels(world) == (None, None)


# --------------------------------------------------------------------------------------
# assign (a paint stroke) and polygon assign (many units in one stroke)
# --------------------------------------------------------------------------------------
def test_assign_moves_units_and_metrics(world):
    plan = base(world)
    res = edits.assign(world, plan, [U3], "T1")
    assert (res.changed, res.skipped_locked, res.seq) == (1, 0, 1)
    assert unit_territory(world)["U3"] == "T1"
    assert numbers(world) == ({
        "T1": (3, 3, 700.0, 50.0, 1),   # U1 U2 U3 (a line): A1 A2 A3, 300 + 400, 10 + 40
        "T2": (1, 1, 200.0, 20.0, 1),   # U4: A4
        "T3": BASE["T3"],
    }, 1)
    res = edits.assign(world, plan, [U6], "T3")  # the unassigned unit
    assert res.changed == 1
    assert numbers(world) == ({
        "T1": (3, 3, 700.0, 50.0, 1),
        "T2": (1, 1, 200.0, 20.0, 1),
        "T3": (2, 3, 1000.0, 85.0, 2),  # U5 + U6 (R, far away): A5 A6 A7, 200 + 800, 5 + 80
    }, 0)


def test_assign_to_the_territory_it_has_changes_nothing(world):
    before = full_snapshot(world)
    res = edits.assign(world, base(world), [U1, U2], "T1")
    assert (res.changed, res.seq) == (0, None)
    res = edits.erase(world, base(world), [U6])  # already unassigned
    assert (res.changed, res.seq) == (0, None)
    assert full_snapshot(world) == before   # nothing logged, not even updated_at
    assert labels(world) == (None, None)


@pytest.mark.parametrize("bad", [
    "not-a-cell",
    P,                      # a valid cell, at resolution 4: not the plan's unit
    "",
])
def test_assign_invalid_unit_raises(world, bad):
    before = full_snapshot(world)
    with pytest.raises(InputError, match="H3 cell at resolution 5"):
        edits.assign(world, base(world), [U6, bad], "T1")  # one good id does not go in
    assert full_snapshot(world) == before


def test_assign_to_an_unknown_territory_stores_nothing(world):
    before = full_snapshot(world)
    with pytest.raises(InputError, match="no territory 'T9'"):
        edits.assign(world, base(world), [U1, U6], "T9")
    assert full_snapshot(world) == before
    assert numbers(world) == (BASE, BASE_UNASSIGNED)


def test_polygon_assign_is_one_edit_and_one_undo(world):
    plan = base(world)
    start, start_summary = plan_tables(world), summary(world)
    everything = list(UNITS.values())  # the units a drawn polygon covered
    res = edits.assign(world, plan, everything, "T2")
    # U3, U4 are T2 already: U1, U2 (T1), U5 (T3), U6 (unassigned) move
    assert (res.changed, res.skipped_locked, res.seq) == (4, 0, 1)
    assert res.label == "Assign 6 units to T2"
    assert set(unit_territory(world).values()) == {"T2"}
    assert len(unit_territory(world)) == 6
    assert numbers(world) == ({
        "T1": EMPTY_T,
        # all 6 units, all 7 accounts; pieces {U1 U2 U3} (P), {U4 U5} (Q), {U6} (R)
        "T2": (6, 7, 1900.0, 155.0, 3),
        "T3": EMPTY_T,
    }, 0)
    hist = edits.history(world.cursor(), plan)
    assert len(hist) == 1
    assert hist["items"].tolist() == [4]
    undone = edits.undo(world, plan)
    assert (undone.changed, undone.seq, undone.label) == (4, 1, "Undo: Assign 6 units to T2")
    assert plan_tables(world) == start
    same_summary(summary(world), start_summary)


def test_erase_unassigns_units(world):
    plan = base(world)
    res = edits.erase(world, plan, [U1, U2, U4])
    assert (res.changed, res.label) == (3, "Erase 3 units")
    assert unit_territory(world) == {"U3": "T2", "U5": "T3"}
    assert numbers(world) == ({
        "T1": EMPTY_T,                   # no units left
        "T2": (1, 1, 400.0, 40.0, 1),    # U3: A3
        "T3": BASE["T3"],
    }, 4)                                # A7 + A1, A2 (T1) + A4 (T2): 1 + 3


# --------------------------------------------------------------------------------------
# locks
# --------------------------------------------------------------------------------------
def test_locked_territory_is_skipped_and_refused(world):
    plan = base(world)
    res = edits.set_locked(world, plan, "T3", True)
    assert (res.changed, res.label) == (1, "Lock T3")
    assert plans.territories(world.cursor(), plan).set_index("territory_id")["locked"].to_dict() \
        == {"T1": False, "T2": False, "T3": True}

    # a stroke over U1..U6 with T1: U1 U2 are T1 already, U5 is locked T3's: U3 U4 U6 move
    res = edits.assign(world, plan, list(UNITS.values()), "T1")
    assert (res.changed, res.skipped_locked) == (3, 1)
    assert "1 skipped (locked territory)" in str(res)
    assert unit_territory(world)["U5"] == "T3"
    assert numbers(world) == ({
        # U1 U2 U3 (P) + U4 (Q) + U6 (R): A1 A2 A3 A4 A7, 100+200+400+200+800, 10+40+20+80
        "T1": (5, 5, 1700.0, 150.0, 3),
        "T2": EMPTY_T,
        "T3": BASE["T3"],                # untouched
    }, 0)

    before = full_snapshot(world)
    res = edits.erase(world, plan, [U5])  # erasing a locked unit: skipped, nothing logged
    assert (res.changed, res.skipped_locked, res.seq) == (0, 1, None)
    with pytest.raises(InputError, match="locked"):
        edits.assign(world, plan, [U1], "T3")   # painting with a locked territory
    with pytest.raises(InputError, match="locked"):
        edits.merge_territories(world, plan, ["T3"], "T1")
    with pytest.raises(InputError, match="locked"):
        edits.merge_territories(world, plan, ["T1"], "T3")
    with pytest.raises(InputError, match="locked"):
        edits.delete_territory(world, plan, "T3")
    assert full_snapshot(world) == before

    res = edits.set_locked(world, plan, "T3", False)
    assert res.label == "Unlock T3"
    res = edits.assign(world, plan, [U5], "T1")
    assert res.changed == 1
    # T1 now everything but nothing of T3: all 7 accounts; {U4 U5} join Q's piece
    assert numbers(world) == ({"T1": (6, 7, 1900.0, 155.0, 3), "T2": EMPTY_T,
                               "T3": EMPTY_T}, 0)


# --------------------------------------------------------------------------------------
# merge and delete
# --------------------------------------------------------------------------------------
def test_merge_moves_units_and_pins_and_sums_metrics(world):
    plan = base(world)
    edits.pin_account(world, plan, "A7", "T2")  # the unassigned account, pinned to a source
    parts, unassigned = numbers(world)
    assert parts == {
        "T1": BASE["T1"],
        "T2": (2, 3, 1400.0, 140.0, 2),  # + A7: 600 + 800, 60 + 80
        "T3": BASE["T3"],
    }
    assert unassigned == 0
    res = edits.merge_territories(world, plan, ["T2", "T3", "T1"], "T1")  # T1 itself ignored
    # units U3 U4 U5, pin A7, territories T2 T3
    assert (res.changed, res.label) == (6, "Merge T2, T3 into T1")
    assert unit_territory(world) == dict.fromkeys(("U1", "U2", "U3", "U4", "U5"), "T1")
    assert pins(world) == {"A7": "T1"}
    assert set(plans.territories(world.cursor(), plan)["territory_id"]) == {"T1"}
    merged, unassigned = numbers(world)
    # units 2 + 2 + 1, accounts 2 + 3 + 2, potential 300 + 1,400 + 200, won 10 + 140 + 5
    assert merged == {"T1": (5, 7, 1900.0, 155.0, 2)}
    assert unassigned == 0
    for i in range(4):  # the additive columns are the sums of the parts
        assert merged["T1"][i] == sum(v[i] for v in parts.values())
    # components: {U1 U2 U3} in P, {U4 U5} in Q
    rows_, _ = summary(world)
    assert rows_.set_index("territory_id").loc["T1", "territory_name"] == "North"


def test_merge_refusals_store_nothing(world):
    plan = base(world)
    before = full_snapshot(world)
    with pytest.raises(InputError, match="no territory 'T9'"):
        edits.merge_territories(world, plan, ["T2", "T3"], "T9")  # target does not exist
    with pytest.raises(InputError, match="no territory 'T8'"):
        edits.merge_territories(world, plan, ["T2", "T8"], "T1")  # one source does not
    with pytest.raises(InputError, match="at least one"):
        edits.merge_territories(world, plan, ["T1"], "T1")
    with pytest.raises(InputError, match="at least one"):
        edits.merge_territories(world, plan, [], "T1")
    assert full_snapshot(world) == before


def test_delete_unassigns_units_and_drops_pins(world):
    plan = base(world)
    edits.pin_account(world, plan, "A7", "T2")
    edits.pin_account(world, plan, "A1", "T3")  # a pin to a territory that stays
    res = edits.delete_territory(world, plan, "T2")
    assert (res.changed, res.label) == (4, "Delete territory T2")  # U3 U4, pin A7, T2
    assert unit_territory(world) == {"U1": "T1", "U2": "T1", "U5": "T3"}
    assert pins(world) == {"A1": "T3"}
    assert numbers(world) == ({
        "T1": (2, 1, 200.0, 0.0, 1),    # U1 U2 hold A1 A2; A1 is pinned to T3
        "T3": (1, 3, 300.0, 15.0, 1),   # A5 A6 + A1: 200 + 100, 5 + 10
    }, 3)                               # A3 A4 (U3 U4 now unassigned) + A7 (pin dropped)
    with pytest.raises(InputError, match="no territory 'T2'"):
        edits.delete_territory(world, plan, "T2")
    edits.undo(world, plan)
    assert pins(world) == {"A7": "T2", "A1": "T3"}
    assert unit_territory(world)["U3"] == unit_territory(world)["U4"] == "T2"


# --------------------------------------------------------------------------------------
# account overrides (pins)
# --------------------------------------------------------------------------------------
def test_pin_and_unpin_an_account(world):
    plan = base(world)
    res = edits.pin_account(world, plan, "A3", "T3")
    assert (res.changed, res.label) == (1, "Pin account A3 to T3")
    assert numbers(world) == ({
        "T1": BASE["T1"],
        "T2": (2, 1, 200.0, 20.0, 2),   # units kept, A3 gone: 600 - 400, 60 - 40
        "T3": (1, 3, 600.0, 45.0, 1),   # 200 + 400, 5 + 40
    }, 1)
    assert edits.pin_account(world, plan, "A3", "T3").seq is None  # pinned there already
    res = edits.pin_account(world, plan, "A3", None)
    assert (res.changed, res.label) == (1, "Unpin account A3")
    assert pins(world) == {}
    assert numbers(world) == (BASE, BASE_UNASSIGNED)
    assert edits.pin_account(world, plan, "A3", None).seq is None  # no pin to remove

    edits.pin_account(world, plan, "A7", "T1")  # an unassigned account
    assert numbers(world) == ({
        "T1": (2, 3, 1100.0, 90.0, 1),  # 300 + 800, 10 + 80; units unchanged
        "T2": BASE["T2"], "T3": BASE["T3"],
    }, 0)


def test_pin_to_unknown_account_or_territory_raises(world):
    plan = base(world)
    before = full_snapshot(world)
    with pytest.raises(InputError, match="no account with id 'A99'"):
        edits.pin_account(world, plan, "A99", "T1")
    with pytest.raises(InputError, match="no territory 'T9'"):
        edits.pin_account(world, plan, "A1", "T9")
    assert full_snapshot(world) == before


# --------------------------------------------------------------------------------------
# territories: create, rename, recolour, rep
# --------------------------------------------------------------------------------------
def test_update_territory_rename_recolour_rep(world):
    plan = base(world)

    def row(tid):
        return plans.territories(world.cursor(), plan).set_index("territory_id").loc[tid]

    res = edits.update_territory(world, plan, "T1", name="  Northern ")
    assert (res.changed, res.label) == (1, "Rename T1")
    assert row("T1")["territory_name"] == "Northern"
    res = edits.update_territory(world, plan, "T1", color="#4477aa")
    assert res.label == "Recolour T1"
    assert row("T1")["color"] == "#4477aa"
    res = edits.update_territory(world, plan, "T3", rep_id="R4")
    assert res.label == "Set rep of T3"
    assert row("T3")["rep_id"] == "R4"
    rows_, _ = summary(world)
    by_t = rows_.set_index("territory_id")
    assert by_t.loc["T1", "territory_name"] == "Northern"
    assert by_t.loc["T3", "rep_id"] == "R4"
    assert numbers(world) == (BASE, BASE_UNASSIGNED)  # no unit or account moved
    assert edits.update_territory(world, plan, "T1", name="Northern").seq is None

    before = full_snapshot(world)
    for kwargs, match in [
        ({"color": "red"}, "colour 'red'"),
        ({"color": "#12345"}, "colour '#12345'"),
        ({"color": "#12345g"}, "colour"),
        ({"color": "#4477aa\n"}, "colour"),   # a trailing newline is not #rrggbb either
        ({"rep_id": "R9"}, "no rep with id 'R9'"),
        ({"name": "   "}, "needs a name"),
        ({"annual_quota": -1}, "annual quota"),
        ({"parent_id": "T9"}, "parent"),
        ({"size": 3}, "unknown territory field"),
    ]:
        with pytest.raises(InputError, match=match):
            edits.update_territory(world, plan, "T1", **kwargs)
    with pytest.raises(InputError, match="no territory 'T9'"):
        edits.update_territory(world, plan, "T9", name="Nowhere")
    assert full_snapshot(world) == before

    edits.undo(world, plan)  # the rep
    edits.undo(world, plan)  # the colour
    edits.undo(world, plan)  # the name
    assert row("T1")["territory_name"] == "North"
    assert pd.isna(row("T1")["color"])
    assert row("T3")["rep_id"] == "R3"


def test_create_territory(world):
    plan = base(world)
    res = edits.create_territory(world, plan, "East", rep_id="R4", color="#aa3377")
    assert (res.changed, res.label) == (1, "Create territory East")
    t = plans.territories(world.cursor(), plan).set_index("territory_id")
    assert t.loc["T04", ["territory_name", "rep_id", "color"]].tolist() == \
        ["East", "R4", "#aa3377"]                     # 3 territories: the next id is T04
    assert not t.loc["T04", "locked"]
    edits.assign(world, plan, [U6], "T04")
    assert numbers(world) == ({**BASE, "T04": (1, 1, 800.0, 80.0, 1)}, 0)  # U6: A7
    before = full_snapshot(world)
    with pytest.raises(InputError, match="already has a territory 'T1'"):
        edits.create_territory(world, plan, "Again", territory_id="T1")
    with pytest.raises(InputError, match="needs a name"):
        edits.create_territory(world, plan, " ")
    with pytest.raises(InputError, match="colour"):
        edits.create_territory(world, plan, "Bad", color="blue")
    with pytest.raises(InputError, match="no rep"):
        edits.create_territory(world, plan, "Bad", rep_id="R9")
    assert full_snapshot(world) == before


# --------------------------------------------------------------------------------------
# undo, redo, history
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("edit", [
    lambda s, p: edits.assign(s, p, [U3, U6], "T1"),
    lambda s, p: edits.erase(s, p, [U1, U4, U5]),
    lambda s, p: edits.merge_territories(s, p, ["T1", "T3"], "T2"),
    lambda s, p: edits.delete_territory(s, p, "T2"),
    lambda s, p: edits.pin_account(s, p, "A2", "T3"),
    lambda s, p: edits.update_territory(s, p, "T2", rep_id=None, name="Vacant"),
], ids=["assign", "erase", "merge", "delete", "pin", "rename+rep"])
def test_undo_restores_and_redo_remakes_the_whole_summary(world, edit):
    plan = base(world)
    before_tables, before = plan_tables(world), summary(world)
    res = edit(world, plan)
    assert res.seq == 1
    assert res.changed > 0
    after_tables, after = plan_tables(world), summary(world)
    assert after_tables != before_tables
    assert labels(world) == (res.label, None)

    undone = edits.undo(world, plan)
    assert (undone.seq, undone.changed) == (1, res.changed)
    assert plan_tables(world) == before_tables
    same_summary(summary(world), before)
    assert labels(world) == (None, res.label)
    assert edits.undo(world, plan) is None  # nothing left to undo

    redone = edits.redo(world, plan)
    assert (redone.seq, redone.changed, redone.label) == (1, res.changed, f"Redo: {res.label}")
    assert plan_tables(world) == after_tables
    same_summary(summary(world), after)
    assert labels(world) == (res.label, None)
    assert edits.redo(world, plan) is None  # nothing left to redo


def test_undo_redo_metrics_by_hand(world):
    plan = base(world)
    edits.assign(world, plan, [U3], "T1")
    moved = ({"T1": (3, 3, 700.0, 50.0, 1), "T2": (1, 1, 200.0, 20.0, 1),
              "T3": BASE["T3"]}, 1)
    assert numbers(world) == moved
    edits.undo(world, plan)
    assert numbers(world) == (BASE, BASE_UNASSIGNED)
    edits.redo(world, plan)
    assert numbers(world) == moved


def test_a_new_edit_after_undo_drops_the_redo_history(world):
    plan = base(world)
    first = edits.assign(world, plan, [U6], "T1")
    second = edits.pin_account(world, plan, "A1", "T2")
    assert (first.seq, second.seq) == (1, 2)
    edits.undo(world, plan)
    assert labels(world) == (first.label, second.label)
    third = edits.assign(world, plan, [U5], "T2")
    assert third.seq == 2  # takes the place of the dropped edit
    assert labels(world) == (third.label, None)
    assert edits.redo(world, plan) is None
    hist = edits.history(world.cursor(), plan)
    assert hist["label"].tolist() == [third.label, first.label]
    assert not hist["undone"].any()
    changes = world.cursor().execute(
        "SELECT seq, kind, item_id, before, after FROM plan_edit_changes ORDER BY seq, step"
    ).fetchall()
    assert changes == [(1, "unit", U6, None, "T1"), (2, "unit", U5, "T3", "T2")]
    assert pins(world) == {}
    # U6 -> T1: A7 in T1; U5 -> T2: A5 A6 in T2
    assert numbers(world) == ({
        "T1": (3, 3, 1100.0, 90.0, 2),   # U1 U2 + U6 (far): 300 + 800, 10 + 80
        "T2": (3, 4, 800.0, 65.0, 2),    # U3 (P) + U4 U5 (Q): 600 + 200, 60 + 5
        "T3": EMPTY_T,
    }, 0)


def test_history_lists_edits_newest_first(world):
    plan = base(world)
    edits.assign(world, plan, [U1, U2, U3], "T3")
    edits.update_territory(world, plan, "T3", name="Everything", color="#000000")
    edits.undo(world, plan)
    hist = edits.history(world.cursor(), plan)
    assert hist["seq"].tolist() == [2, 1]
    assert hist["label"].tolist() == ["Rename / Recolour T3", "Assign 3 units to T3"]
    assert hist["items"].tolist() == [1, 3]
    assert hist["undone"].tolist() == [True, False]
    assert hist["author"].notna().all()
    assert len(edits.history(world.cursor(), plan, limit=1)) == 1


def test_mixed_edits_undone_one_by_one_return_the_starting_rows(world):
    plan = base(world)
    states = [plan_tables(world)]
    steps = [
        lambda: edits.create_territory(world, plan, "East", territory_id="T4", rep_id="R4",
                                       color="#4477aa"),
        lambda: edits.assign(world, plan, [U1, U6], "T4"),
        lambda: edits.pin_account(world, plan, "A3", "T4"),
        lambda: edits.update_territory(world, plan, "T2", name="Southern", color="#aa3377"),
        lambda: edits.merge_territories(world, plan, ["T3"], "T2"),
        lambda: edits.delete_territory(world, plan, "T1"),
    ]
    for step in steps:
        assert step().seq == len(states)
        states.append(plan_tables(world))
    assert numbers(world) == ({
        # T2 Southern: U3 (P) + U4 U5 (Q, merged from T3); A3 pinned away: A4 A5 A6
        "T2": (3, 3, 400.0, 25.0, 2),    # 200 + 150 + 50, 20 + 5
        # T4 East: U1 (P) + U6 (R) + pinned A3: A1 A7 A3
        "T4": (2, 3, 1300.0, 130.0, 2),  # 100 + 800 + 400, 10 + 80 + 40
    }, 1)                                # A2: U2 unassigned with T1 deleted
    end = summary(world)

    for i in range(len(steps), 0, -1):
        assert edits.undo(world, plan).seq == i
        assert plan_tables(world) == states[i - 1]
    assert edits.undo(world, plan) is None
    assert plan_tables(world) == states[0]
    assert numbers(world) == (BASE, BASE_UNASSIGNED)

    for i in range(1, len(steps) + 1):
        assert edits.redo(world, plan).seq == i
        assert plan_tables(world) == states[i]
    assert edits.redo(world, plan) is None
    same_summary(summary(world), end)


# --------------------------------------------------------------------------------------
# all or nothing
# --------------------------------------------------------------------------------------
def test_a_failure_in_the_middle_of_an_edit_leaves_nothing(world, monkeypatch):
    plan = base(world)
    edits.pin_account(world, plan, "A7", "T2")
    before = full_snapshot(world)

    def boom(cur, plan):
        raise RuntimeError("disk full")

    # touch_plan runs after the changes are applied and logged, last thing in the transaction
    monkeypatch.setattr(edits, "touch_plan", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        edits.merge_territories(world, plan, ["T2", "T3"], "T1")
    with pytest.raises(RuntimeError, match="disk full"):
        edits.assign(world, plan, list(UNITS.values()), "T3")
    with pytest.raises(RuntimeError, match="disk full"):
        edits.undo(world, plan)
    assert full_snapshot(world) == before
    monkeypatch.undo()
    assert numbers(world) == ({"T1": BASE["T1"], "T2": (2, 3, 1400.0, 140.0, 2),
                               "T3": BASE["T3"]}, 0)
    assert labels(world) == ("Pin account A7 to T2", None)


# --------------------------------------------------------------------------------------
# converting a plan to another unit type
# --------------------------------------------------------------------------------------
def test_convert_plan_by_potential_then_accounts(world):
    """Base -> H3 resolution 4 ("P", "Q", "R" are the resolution-4 cells of the accounts):

    P holds A1 A2 (T1, 300, 2 accounts) and A3 (T2, 400, 1 account): T2, more potential.
    Q holds A4 (T2, 200, 1 account) and A5 A6 (T3, 150 + 50 = 200, 2 accounts): a tie on
      potential that T3 wins on accounts, although T2 comes first by id.
    R holds only A7, unassigned: R stays unassigned.
    """
    plan = base(world)
    new, n = edits.convert_plan(world, plan, UnitType.parse("h3:4"), "Coarse")
    assert n == 2
    assert (new.name, str(new.unit), new.state) == ("Coarse", "h3:4", "planning")
    assert base(world).state == "active"
    assert dict(world.cursor().execute(
        "SELECT unit_id, territory_id FROM plan_units WHERE plan_id = ?",
        [new.plan_id]).fetchall()) == {P: "T2", Q: "T3"}
    old_t = plan_tables(world)["territories"]
    new_t = plan_tables(world, "Coarse")["territories"]
    assert [r[1:] for r in new_t] == [r[1:] for r in old_t]  # names, reps, colours, locks
    assert numbers(world, "Coarse") == ({
        "T1": EMPTY_T,
        "T2": (1, 3, 700.0, 50.0, 1),   # P: A1 A2 A3, 100 + 200 + 400, 10 + 40
        "T3": (1, 3, 400.0, 25.0, 1),   # Q: A4 A5 A6, 200 + 150 + 50, 20 + 5
    }, 1)                               # A7
    assert edits.history(world.cursor(), new).empty
    assert numbers(world) == (BASE, BASE_UNASSIGNED)  # the old plan is unchanged

    # each plan has its own history: an edit of the new plan is not undone from the old one
    assert edits.assign(world, new, [R_COARSE], "T1").seq == 1
    assert edits.undo(world, plan) is None
    assert labels(world) == (None, None)
    assert edits.undo(world, new).label == "Undo: Assign 1 unit to T1"
    assert numbers(world, "Coarse")[1] == 1


def test_convert_plan_follows_and_copies_pins(world):
    """With A3 and A7 pinned to T1 (and T3 locked) in Base:

    P: T1 holds A1 A2 A3 (pinned), 700; nobody else: T1.
    Q: as before, a tie of 200 won by T3 on accounts (2 against 1).
    R: T1 holds A7 (pinned), 800: T1.
    """
    plan = base(world)
    edits.pin_account(world, plan, "A3", "T1")
    edits.pin_account(world, plan, "A7", "T1")
    edits.set_locked(world, plan, "T3", True)
    new, n = edits.convert_plan(world, plan, UnitType.parse("h3:4"), "Coarse", state="active")
    assert n == 3
    assert new.state == "active"
    assert base(world).state == "planning"
    assert dict(world.cursor().execute(
        "SELECT unit_id, territory_id FROM plan_units WHERE plan_id = ?",
        [new.plan_id]).fetchall()) == {P: "T1", Q: "T3", R_COARSE: "T1"}
    assert pins(world, "Coarse") == {"A3": "T1", "A7": "T1"}
    locked = plans.territories(world.cursor(), new).set_index("territory_id")["locked"]
    assert locked.to_dict() == {"T1": False, "T2": False, "T3": True}
    assert numbers(world, "Coarse") == ({
        # P + R (not touching): A1 A2 A3 A7, 100 + 200 + 400 + 800, 10 + 40 + 80
        "T1": (2, 4, 1500.0, 130.0, 2),
        "T2": EMPTY_T,
        "T3": (1, 3, 400.0, 25.0, 1),
    }, 0)


def test_convert_plan_refusals_store_nothing(world):
    plan = base(world)
    before = full_snapshot(world)
    with pytest.raises(InputError, match="already exists"):
        edits.convert_plan(world, plan, UnitType.parse("h3:4"), "Base")
    with pytest.raises(InputError, match="needs a name"):
        edits.convert_plan(world, plan, UnitType.parse("h3:4"), "  ")
    with pytest.raises(InputError, match="unknown plan state"):
        edits.convert_plan(world, plan, UnitType.parse("h3:4"), "Other", state="draft")
    assert full_snapshot(world) == before
    edits.convert_plan(world, plan, UnitType.parse("h3:4"), "Coarse")
    with pytest.raises(InputError, match="already exists"):
        edits.convert_plan(world, plan, UnitType.parse("h3:6"), "Coarse")
