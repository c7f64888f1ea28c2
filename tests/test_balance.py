"""The optimiser on worlds small enough to check by hand.

The grid: 36 H3 cells (res 6) laid out as a 6 x 6 parallelogram in local i, j coordinates, in
the Atlantic (no county there, so no empty cells are added), one account of potential 100 in
each. Four reps live in the four corner cells. Four equal territories hold 9 cells and 900
potential each: a unit is 11% of a share, so within +/-2% means exactly 9 cells each.
Contiguity, loads and homes are checked here with the h3 library and plain sums, never with
the optimiser's own numbers.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import h3
import pandas as pd
import pytest
from conftest import rows, snapshot, write_csv

from analytics import balance, edits, ingest, plans
from analytics.cli import main
from analytics.errors import InputError
from analytics.period import Period
from analytics.settings import Settings
from analytics.store import Store
from analytics.unit_graph import UnitGraph
from analytics.units import UnitType

PERIOD = Period(dt.date(2026, 1, 1), dt.date(2026, 12, 31))
AS_OF = dt.date(2026, 6, 30)
ORIGIN = h3.latlng_to_cell(35.0, -45.0, 6)
GRID = {(i, j): h3.local_ij_to_cell(ORIGIN, i, j) for i in range(6) for j in range(6)}
CORNERS = {"R1": (0, 0), "R2": (0, 5), "R3": (5, 0), "R4": (5, 5)}
UNEVEN = {  # today's plan: T1 holds half the grid
    "T1": [(i, j) for i in range(6) for j in range(3)],
    "T2": [(i, j) for i in range(2) for j in range(3, 6)],
    "T3": [(i, j) for i in range(2, 4) for j in range(3, 6)],
    "T4": [(i, j) for i in range(4, 6) for j in range(3, 6)],
}
REP_OF = {"T1": "R1", "T2": "R2", "T3": "R3", "T4": "R4"}
FAST = {"max_seconds": 3.0, "seed": 1}


def build(folder: Path, heavy: float | None = None) -> Path:
    acc = write_csv(folder / "accounts.csv", [
        ["account_id", "name", "lat", "lon", "segment", "potential"],
        *[[f"A{i}{j}", f"Account {i}{j}", *h3.cell_to_latlng(c), "Clinic",
           heavy if heavy and (i, j) == (2, 2) else 100] for (i, j), c in GRID.items()],
    ])
    reps = write_csv(folder / "reps.csv", [
        ["rep_id", "name", "home_lat", "home_lon"],
        *[[r, f"Rep {r}", *h3.cell_to_latlng(GRID[ij])] for r, ij in CORNERS.items()],
    ])
    plan_file = write_csv(folder / "plan.csv", [
        ["unit_id", "territory_id", "territory_name", "rep_id"],
        *[[GRID[ij], t, f"Territory {t}", REP_OF[t]] for t, ijs in UNEVEN.items()
          for ij in ijs],
    ])
    path = folder / "grid.duckdb"
    with Store(path) as s:
        assert ingest.load(s, accounts=acc, reps=reps).clean
        plans.import_plan(s, "Uneven", UnitType.parse("h3:6"), plan_file)
    return path


@pytest.fixture(scope="module")
def grid_db(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("grid"))


@pytest.fixture
def grid(grid_db: Path, tmp_path: Path):
    dst = tmp_path / "grid.duckdb"
    shutil.copyfile(grid_db, dst)
    with Store(dst) as s:
        yield s


def run(store: Store, **kw) -> balance.BalanceResult:
    cur = store.cursor()
    opts = balance.BalanceOptions(**{"targets": balance.parse_targets("potential=1", None),
                                     **FAST, **kw})
    return balance.balance(cur, plans.get_plan(cur, "Uneven"), PERIOD, AS_OF, Settings(), opts)


def pieces(cells: list[str]) -> int:
    """Connected pieces of a set of H3 cells (cells sharing an edge), by the h3 library."""
    left, n = set(cells), 0
    while left:
        n += 1
        stack = [left.pop()]
        while stack:
            c = stack.pop()
            for d in h3.grid_ring(c, 1):
                if d in left:
                    left.remove(d)
                    stack.append(d)
    return n


def by_territory(assignment: pd.DataFrame) -> dict[str, list[str]]:
    return {t: sorted(g["unit_id"]) for t, g in assignment.groupby("territory_id")}


# --------------------------------------------------------------------------------------
def test_the_grid_graph_is_the_grid():
    g = UnitGraph.build(UnitType.parse("h3:6"), list(GRID.values()), [])
    assert len(g) == 36
    assert not g.filled.any()  # the ocean has no county: nothing added
    assert len(set(g.components())) == 1
    # a corner cell of a parallelogram touches 2 or 3 cells, an inner one 6
    degree = {g.ids[i]: len(g.neighbours(i)) for i in range(len(g))}
    assert degree[GRID[(2, 2)]] == 6
    assert degree[GRID[(0, 0)]] in (2, 3)
    # border lengths are the h3 edge lengths
    i = list(g.ids).index(GRID[(2, 2)])
    assert g.border_km[g.ptr[i]] == pytest.approx(
        h3.edge_length(h3.origin_to_directed_edges(GRID[(2, 2)])[0], "km"), rel=0.05)


@pytest.mark.parametrize("mode", balance.MODES)
def test_four_equal_territories(grid, mode):
    res = run(grid, mode=mode)
    terr = by_territory(res.assignment)
    assert sorted(terr) == ["T1", "T2", "T3", "T4"]
    assert [len(c) for c in terr.values()] == [9, 9, 9, 9]  # 900 potential each, exactly
    assert all(pieces(c) == 1 for c in terr.values())
    # each rep's home cell lies in the rep's own territory
    for t, cells in terr.items():
        assert GRID[CORNERS[REP_OF[t]]] in cells, t
    rows_after, whole = res.after
    assert rows_after["potential"].tolist() == [900.0] * 4
    assert whole["balance_max_dev_potential"] == pytest.approx(0.0)
    assert res.report["missed"] == []
    assert res.report["cannot_meet"] == []
    assert res.report["far_from_home"] == []  # every rep's territory is around the home
    if mode == "build":  # every rep has a home: the homes start is searched too
        assert any("two starts searched" in line for line in res.report["notes"])


def test_rebalance_moves_fewer_accounts_than_a_build(grid):
    today = {GRID[ij]: t for t, ijs in UNEVEN.items() for ij in ijs}

    def moved(res):
        terr = by_territory(res.assignment)
        return sum(today[u] != t for t, cells in terr.items() for u in cells)

    kept = run(grid, mode="rebalance", keep_current=2.0)
    fresh = run(grid, mode="build")
    # T1 holds 18 cells and must give 9 away, so at least 9 accounts move (the optimum: 3 to
    # each of T2..T4). The recursive tree cuts reach 15 here (known gap: docs/balance.md);
    # a build from scratch ignores today's plan and moves more.
    assert 9 <= moved(kept) <= 15
    assert moved(kept) < moved(fresh)
    assert kept.after[1]["disruption_accounts_pct"] == pytest.approx(moved(kept) / 36)
    assert kept.after[1]["balance_max_dev_potential"] == pytest.approx(0.0)


def stored_territories(store: Store, plan_name: str) -> dict[str, str]:
    """Each account's territory as stored (its pin, else its cell's), worked out here from
    the account's own coordinates with the h3 library, not through the engine's SQL."""
    cur = store.cursor()
    plan_id = cur.execute("SELECT plan_id FROM plans WHERE name = ?", [plan_name]).fetchone()[0]
    by_unit = dict(cur.execute("SELECT unit_id, territory_id FROM plan_units WHERE plan_id = ?",
                               [plan_id]).fetchall())
    pins = dict(cur.execute("SELECT account_id, territory_id FROM account_overrides "
                            "WHERE plan_id = ?", [plan_id]).fetchall())
    return {a: pins.get(a, by_unit.get(h3.latlng_to_cell(lat, lon, 6)))
            for a, lat, lon in cur.execute("SELECT account_id, lat, lon FROM accounts").fetchall()}


def test_named_accounts_stay_with_their_rep(grid):
    today = stored_territories(grid, "Uneven")
    plain = run(grid, mode="rebalance")
    cell_of = {f"A{i}{j}": c for (i, j), c in GRID.items()}
    goes = dict(zip(plain.assignment["unit_id"], plain.assignment["territory_id"], strict=True))
    leaving = sorted(a for a, c in cell_of.items() if goes[c] != today[a])
    assert leaving  # T1 must give cells away
    keep = tuple(leaving[:2])
    res = run(grid, mode="rebalance", keep_accounts=keep)
    plan = plans.get_plan(grid.cursor(), "Uneven")
    balance.apply_result(grid, plan, res)
    now = stored_territories(grid, "Uneven")
    assert all(now[a] == today[a] for a in keep)  # kept with their rep
    potential = {t: 100.0 * list(now.values()).count(t) for t in REP_OF}
    assert potential == dict.fromkeys(REP_OF, 900.0)  # and still even, pins counted
    pinned = set(res.new_pins["account_id"])
    for a in keep:  # a pin exactly where the account's cell went to another territory
        cell_goes = dict(zip(res.assignment["unit_id"], res.assignment["territory_id"],
                             strict=True))[cell_of[a]]
        assert (a in pinned) == (cell_goes != today[a])
    assert any("named accounts kept" in n for n in res.report["notes"])
    edits.undo(grid, plan)  # one edit: units and pins go back together
    assert stored_territories(grid, "Uneven") == today
    assert rows(grid, "SELECT count(*) FROM account_overrides") == [(0,)]


def test_keeping_every_account_moves_none(grid):
    today = stored_territories(grid, "Uneven")
    res = run(grid, mode="rebalance", keep_top=36)
    new = balance.save_result(grid, res, "Kept")
    assert stored_territories(grid, "Kept") == today
    assert res.after[1]["disruption_accounts_pct"] == 0.0
    assert new.name == "Kept"
    with pytest.raises(InputError, match="accounts to keep not found: NOPE"):
        run(grid, mode="rebalance", keep_accounts=("A00", "NOPE"))


def test_a_locked_territory_stays_as_it_is(grid):
    res = run(grid, mode="rebalance", locked=("T2",))
    terr = by_territory(res.assignment)
    assert terr["T2"] == sorted(GRID[ij] for ij in UNEVEN["T2"])
    assert any("locked" in line for line in res.report["cannot_meet"])  # 600 of 900: said


def test_a_unit_heavier_than_a_share_is_reported(tmp_path):
    path = build(tmp_path, heavy=2000.0)
    with Store(path) as store:
        res = run(store, mode="build")
    why = " ".join(res.report["cannot_meet"])
    assert GRID[(2, 2)] in why
    assert "alone holds" in why
    assert "at most" in why  # the way out: fewer territories (or finer units)
    assert res.report["missed"]  # and the result says it missed


@pytest.mark.parametrize("km", [6.0, 9.0, 50.0])
def test_the_travel_limit_is_kept_or_reported(grid, km):
    """Every cell lies within `km` of its rep's home, or the report names the ones that do
    not (distances by haversine here, not by the optimiser)."""
    from analytics.metrics import haversine_km

    res = run(grid, mode="build", max_travel_km=km)
    homes = {t: h3.cell_to_latlng(GRID[CORNERS[REP_OF[t]]]) for t in REP_OF}
    far = [u for u, t in zip(res.assignment["unit_id"], res.assignment["territory_id"],
                             strict=True)
           if haversine_km(*h3.cell_to_latlng(u), *homes[t]) > km]
    said = " ".join(res.report["beyond_travel_limit"])
    if far:
        assert f"{len(far)} units holding accounts lie more than {km:g} km" in said
    else:
        assert said == ""
    if km == 50.0:  # the whole grid is within 50 km of every corner
        assert far == []


def test_a_rep_living_far_from_the_territory_is_reported(grid):
    grid.cursor().execute("UPDATE reps SET home_lat = home_lat + 10 WHERE rep_id = 'R4'")
    res = run(grid, mode="rebalance")
    far = res.report["far_from_home"]
    assert len(far) == 1
    assert far[0].startswith("T4 (rep R4)")
    from analytics.metrics import haversine_km  # the distance, worked out here

    lat, lon = h3.cell_to_latlng(GRID[CORNERS["R4"]])
    cells = res.assignment.loc[res.assignment["territory_id"] == "T4", "unit_id"]
    d = sorted(haversine_km(*h3.cell_to_latlng(c), lat + 10, lon) for c in cells)
    assert f"{d[(len(d) - 1) // 2]:,.0f} km" in far[0]


def test_same_seed_same_plan(grid):
    a = run(grid, mode="build", seed=7)
    b = run(grid, mode="build", seed=7)
    assert a.assignment.equals(b.assignment)


def test_bad_requests_are_refused(grid):
    with pytest.raises(InputError, match="at most as many territories as reps"):
        run(grid, mode="build", territories=5)
    with pytest.raises(InputError, match="locked territories not in"):
        run(grid, mode="rebalance", locked=("T9",))
    for text, needle in (("nonsense=1", "unknown measure"), ("potential=-1", ">= 0"),
                         ("potential=0", "above 0"), ("potential=x", "not a number")):
        with pytest.raises(InputError, match=needle):
            balance.parse_targets(text, None)
    with pytest.raises(InputError, match="fraction"):
        balance.parse_targets("potential=1", "potential=2")


def test_apply_is_one_undoable_edit(grid):
    before = rows(grid, "SELECT unit_id, territory_id FROM plan_units ORDER BY 1")
    res = run(grid, mode="rebalance")
    plan = plans.get_plan(grid.cursor(), "Uneven")
    balance.apply_result(grid, plan, res)
    after = rows(grid, "SELECT unit_id, territory_id FROM plan_units ORDER BY 1")
    assert after == sorted(zip(res.assignment["unit_id"], res.assignment["territory_id"],
                               strict=True))
    assert after != before
    edits.undo(grid, plan)
    assert rows(grid, "SELECT unit_id, territory_id FROM plan_units ORDER BY 1") == before


def test_save_as_a_new_plan(grid):
    res = run(grid, mode="build")
    new = balance.save_result(grid, res, "Balanced")
    got = rows(grid, "SELECT unit_id, territory_id FROM plan_units WHERE plan_id = ? "
               "ORDER BY 1", [new.plan_id])
    assert got == sorted(zip(res.assignment["unit_id"], res.assignment["territory_id"],
                             strict=True))
    hist = plans.plan_history(grid.cursor(), new)
    assert list(hist["what"])[::-1][:2] == ["cloned", "balanced"]
    # the source plan is untouched
    assert len(rows(grid, "SELECT 1 FROM plan_units p JOIN plans USING (plan_id) "
                    "WHERE name = 'Uneven'")) == 36


def test_command_line(grid_db, tmp_path, capsys):
    db = tmp_path / "cli.duckdb"
    shutil.copyfile(grid_db, db)
    with Store(db) as s:
        before = snapshot(s)
    base = ["balance", "--db", str(db), "--plan", "Uneven", "--balance", "potential=1",
            "--max-seconds", "3"]
    for extra in (["--balance", "nonsense=1"], ["--balance", "potential=-1"],
                  ["--mode", "build", "--territories", "9"], ["--into", "Uneven"],
                  ["--keep-current", "-1"], ["--lock", "T9"], ["--keep-top", "-1"],
                  ["--keep-accounts", "A00,NOPE", "--apply"]):
        assert main([*base, *extra]) == 2, extra
        assert "error:" in capsys.readouterr().err
    with Store(db) as s:
        assert snapshot(s) == before  # refused: nothing stored changed
    assert main([*base, "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert '"balance_max_dev_potential": 0.0' in out
    with Store(db) as s:
        assert snapshot(s) == before  # a preview writes nothing
    assert main([*base, "--into", "Even", "--format", "csv"]) == 0
    assert "saved as 'Even'" in capsys.readouterr().err
    with Store(db) as s:
        assert plans.get_plan(s.cursor(), "Even").state == "planning"
    # named accounts: A00 sits in T1's corner and stays; a top-potential list is accepted
    assert main([*base, "--keep-accounts", "A00", "--keep-top", "3", "--apply",
                 "--format", "json"]) == 0
    out = capsys.readouterr().out
    assert "named accounts kept with their rep" in out
    with Store(db) as s:
        assert stored_territories(s, "Uneven")["A00"] == "T1"


def test_balancing_on_an_imported_overlay(grid, tmp_path):
    """An overlay the manager imported (3 competitor sites in each cell of the grid's left
    half, 1 in the right) as the measure: each of the four territories gets 18 of the 72
    sites (by potential, uniform here, they would get 9 cells each: 18 sites only by
    chance), counted from the proposed assignment and the file's values."""
    from analytics import overlays

    sites = {GRID[ij]: (3 if ij[1] < 3 else 1) for ij in GRID}
    path = write_csv(tmp_path / "sites.csv", [["h3", "sites"],
                                             *[[c, v] for c, v in sites.items()]])
    overlays.import_overlay(grid, path, "Rivals", "h3:6")
    cur = grid.cursor()
    opts = balance.BalanceOptions(targets=balance.parse_targets("overlay:Rivals:sites=1",
                                                                None), **FAST)
    res = balance.balance(cur, plans.get_plan(cur, "Uneven"), PERIOD, AS_OF, Settings(),
                          opts)
    got = {t: sum(sites[c] for c in cells)
           for t, cells in by_territory(res.assignment).items()}
    assert got == {"T1": 18, "T2": 18, "T3": 18, "T4": 18}
    assert res.report["missed"] == []
    assert sorted(len(c) for c in by_territory(res.assignment).values()) != [9, 9, 9, 9]
    with pytest.raises(InputError, match="unknown measure"):
        balance.parse_targets("market_people=1", None)
    with pytest.raises(InputError, match="no overlay named"):
        balance.balance(cur, plans.get_plan(cur, "Uneven"), PERIOD, AS_OF, Settings(),
                        balance.BalanceOptions(targets=balance.parse_targets(
                            "overlay:Nope:x=1", None), **FAST))
