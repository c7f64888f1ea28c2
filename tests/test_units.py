"""Spatial units (H3 and postal), their ids, and the per-unit cube."""

from __future__ import annotations

import datetime as dt

import h3
import numpy as np
import pytest
from conftest import write_csv

from analytics import cube, geography, ingest, units
from analytics.cube import AccountFilter
from analytics.errors import InputError
from analytics.period import Period
from analytics.store import Store
from analytics.units import UnitType


# --------------------------------------------------------------------------------------
# unit types
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "kind", "res", "column", "shown"),
    [
        ("h3:6", "h3", 6, "h3_r6", "h3:6"),
        (" H3:3 ", "h3", 3, "h3_r3", "h3:3"),
        ("h3:8", "h3", 8, "h3_r8", "h3:8"),
        ("county", "county", None, "county", "county"),
        ("State", "state", None, "state", "state"),
        ("zip5", "zip5", None, "zip5", "zip5"),
        ("zip3", "zip3", None, "zip3", "zip3"),
        ("fr_dept", "fr_dept", None, "fr_dept", "fr_dept"),
        ("fr_commune", "fr_commune", None, "fr_commune", "fr_commune"),
    ],
)
def test_parse_unit(text, kind, res, column, shown):
    unit = UnitType.parse(text)
    assert (unit.kind, unit.resolution, unit.column, str(unit)) == (kind, res, column, shown)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("h3:9", "H3 units are h3:3, h3:4, h3:5, h3:6, h3:7, h3:8"),
        ("h3:2", "H3 units are"),
        ("h3", "H3 units are"),
        ("h3:x", "H3 units are"),
        ("zipcode", "expected one of h3:3..8, zip5, zip3, county, state, fr_dept, fr_commune"),
        ("", "unknown unit ''"),
    ],
)
def test_parse_unit_errors(text, needle):
    with pytest.raises(InputError) as exc:
        UnitType.parse(text)
    assert needle in str(exc.value)


def test_labels():
    assert UnitType.parse("h3:5").label == "H3 hexagons, resolution 5"
    assert UnitType.parse("county").label == "US county"


@pytest.mark.parametrize(
    ("unit", "raw", "expected"),
    [
        ("h3:5", ["0x852A3067FFFFFFF", " 852a3067fffffff "], ["852a3067fffffff"] * 2),
        ("county", ["1001", "25025", " 6037 "], ["01001", "25025", "06037"]),
        ("zip5", ["2108", "02108"], ["02108", "02108"]),
        ("zip3", ["21"], ["021"]),
        ("state", ["ma", " Ca "], ["MA", "CA"]),
        ("fr_dept", ["6", "75", "2a", "971"], ["06", "75", "2A", "971"]),
    ],
)
def test_normalize_ids(unit, raw, expected):
    assert UnitType.parse(unit).normalize_ids(raw) == expected


@pytest.mark.parametrize(
    ("unit", "unit_id", "ok"),
    [
        ("h3:5", "852a3067fffffff", True),
        ("h3:5", "862a30667ffffff", False),   # a real cell, but resolution 6
        ("h3:5", "not-a-cell", False),
        ("h3:5", "", False),
        ("county", "25025", True),
        ("county", "2502X", False),
        ("county", "2502", False),
        ("zip5", "02108", True),
        ("zip5", "0210", False),
        ("zip3", "021", True),
        ("state", "MA", True),
        ("state", "M1", False),
        ("fr_dept", "2A", True),
        ("fr_dept", "971", True),
        ("fr_dept", "7", False),
        ("fr_commune", "75056", True),
    ],
)
def test_validate_id(unit, unit_id, ok):
    why = UnitType.parse(unit).validate_id(unit_id)
    assert (why is None) == ok, why


# --------------------------------------------------------------------------------------
# H3 cells
# --------------------------------------------------------------------------------------
def test_h3_cells_match_h3_library():
    rng = np.random.default_rng(5)
    lat = rng.uniform(-60, 70, 300)
    lon = rng.uniform(-180, 180, 300)
    cells = units.h3_cells(lat, lon)
    assert set(cells) == {f"h3_r{r}" for r in range(3, 9)}
    for res in range(3, 9):
        arr = cells[f"h3_r{res}"]
        assert arr.dtype == np.int64
        expected = [h3.str_to_int(h3.latlng_to_cell(a, b, res)) for a, b in zip(lat, lon,
                                                                               strict=True)]
        assert arr.tolist() == expected


def test_h3_cells_empty():
    cells = units.h3_cells(np.zeros(0), np.zeros(0))
    assert all(len(a) == 0 for a in cells.values())


# --------------------------------------------------------------------------------------
# point in polygon
# --------------------------------------------------------------------------------------
def test_locate_state_and_county():
    lat = np.array([42.3601, 41.8781, 0.0])
    lon = np.array([-71.0589, -87.6298, 0.0])
    assert geography.locate("state", lat, lon).tolist() == ["MA", "IL", None]
    assert geography.locate("county", lat, lon).tolist() == ["25025", "17031", None]
    assert geography.locate("fr_dept", np.array([48.8566]), np.array([2.3522])).tolist() == [
        "75"]


def test_locate_county_only_for_candidates():
    lat = np.array([42.3601, 42.3601])
    lon = np.array([-71.0589, -71.0589])
    out = geography.locate_county(lat, lon, np.array([True, False]))
    assert out.tolist() == ["25025", None]


def test_locate_near_shore():
    # a point in Boston Harbor, off the simplified coastline: taken by the nearest county
    lat, lon = np.array([42.33]), np.array([-70.95])
    assert geography.locate("county", lat, lon, near_degrees=0.25).tolist()[0] in {
        "25025", "25021", "25023"}  # Suffolk, Norfolk or Plymouth


# --------------------------------------------------------------------------------------
# the per-unit cube
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """5 accounts: 2 in Boston (same res-5 cell), 1 in Cambridge, 1 in Chicago, 1 in Paris.

    Built once for the module and opened read-only: these tests only read.
    """
    folder = tmp_path_factory.mktemp("cube")
    acc = write_csv(folder / "a.csv", [
        ["account_id", "lat", "lon", "segment", "industry", "potential"],
        ["B1", "42.3601", "-71.0589", "Hospital", "Acute", "100"],
        ["B2", "42.3550", "-71.0600", "Clinic", "Acute", "10"],
        ["C1", "42.3736", "-71.1097", "Clinic", "Lab", "20"],
        ["K1", "41.8781", "-87.6298", "Hospital", "Lab", "300"],
        ["P1", "48.8566", "2.3522", "Clinic", "Lab", "7"],
    ])
    sales = write_csv(folder / "s.csv", [
        ["opportunity_id", "account_id", "amount", "close_date", "stage", "product"],
        ["S1", "B1", "50", "2026-03-01", "won", "pumps"],
        ["S2", "B1", "60", "2025-12-31", "won", "pumps"],      # before the period
        ["S3", "B2", "5", "2026-06-30", "open", "monitors"],
        ["S4", "C1", "7", "2026-01-01", "won", "monitors"],
        ["S5", "K1", "900", "2026-02-02", "lost", "pumps"],
        ["S6", "K1", "40", "2026-07-01", "open", "pumps"],     # after the period
        ["S7", "K1", "30", "2026-04-04", "open", "pumps"],
    ])
    with Store(folder / "cube.duckdb") as s:
        assert ingest.load(s, accounts=acc, sales=sales).clean
    with Store(folder / "cube.duckdb", read_only=True) as s:
        yield s


H1 = Period(dt.date(2026, 1, 1), dt.date(2026, 6, 30))


def _records(frame):
    return {r.unit_id: (r.accounts, r.potential, r.won, r.open_pipeline)
            for r in frame.itertuples(index=False)}


def test_cube_by_county(small):
    frame = cube.unit_cube(small.cursor(), UnitType.parse("county"), H1)
    assert list(frame.columns) == cube.CUBE_COLUMNS
    # Suffolk: B1 (won 50) + B2 (open 5); Middlesex: C1 (won 7); Cook: K1 (open 30)
    assert _records(frame) == {
        "25025": (2, 110.0, 50.0, 5.0),
        "25017": (1, 20.0, 7.0, 0.0),
        "17031": (1, 300.0, 0.0, 30.0),
    }
    assert frame["unit_id"].tolist() == ["17031", "25017", "25025"]  # ordered by id
    assert cube.accounts_without_unit(small.cursor(), UnitType.parse("county")) == 1  # Paris


def test_cube_by_state_and_fr_dept(small):
    assert _records(cube.unit_cube(small.cursor(), UnitType.parse("state"), H1)) == {
        "MA": (3, 130.0, 57.0, 5.0), "IL": (1, 300.0, 0.0, 30.0),
    }
    # Paris has coordinates but no postal code: its departement comes from the polygons
    frame = cube.unit_cube(small.cursor(), UnitType.parse("fr_dept"), H1)
    assert _records(frame) == {"75": (1, 7.0, 0.0, 0.0)}
    assert cube.accounts_without_unit(small.cursor(), UnitType.parse("fr_dept")) == 4


def test_cube_by_h3(small):
    unit = UnitType.parse("h3:5")
    points = {"B1": (42.3601, -71.0589), "B2": (42.3550, -71.0600),
              "C1": (42.3736, -71.1097), "K1": (41.8781, -87.6298), "P1": (48.8566, 2.3522)}
    cell = {k: h3.latlng_to_cell(a, b, 5) for k, (a, b) in points.items()}
    potential = {"B1": 100, "B2": 10, "C1": 20, "K1": 300, "P1": 7}
    won = {"B1": 50, "C1": 7}
    opn = {"B2": 5, "K1": 30}
    expected: dict[str, list[float]] = {}
    for k, c in cell.items():
        e = expected.setdefault(c, [0, 0.0, 0.0, 0.0])
        e[0] += 1
        e[1] += potential[k]
        e[2] += won.get(k, 0)
        e[3] += opn.get(k, 0)
    frame = cube.unit_cube(small.cursor(), unit, H1)
    assert _records(frame) == {c: tuple(v) for c, v in expected.items()}
    assert cube.accounts_without_unit(small.cursor(), unit) == 0


def test_cube_filters(small):
    unit = UnitType.parse("state")
    hosp = cube.unit_cube(small.cursor(), unit, H1, AccountFilter(segments=("Hospital",)))
    assert _records(hosp) == {"MA": (1, 100.0, 50.0, 0.0), "IL": (1, 300.0, 0.0, 30.0)}
    mon = cube.unit_cube(small.cursor(), unit, H1, AccountFilter(products=("monitors",)))
    # the product filter applies to deals only: every account still counts
    assert _records(mon) == {"MA": (3, 130.0, 7.0, 5.0), "IL": (1, 300.0, 0.0, 0.0)}
    lab = cube.unit_cube(small.cursor(), unit, H1, AccountFilter(industries=("Lab",)))
    assert _records(lab) == {"MA": (1, 20.0, 7.0, 0.0), "IL": (1, 300.0, 0.0, 30.0)}


def test_cube_period_boundaries(small):
    unit = UnitType.parse("state")
    year = cube.unit_cube(small.cursor(), unit, Period.year(2026))
    assert _records(year)["IL"] == (1, 300.0, 0.0, 70.0)  # S6 on July 1st now counts
    last_year = cube.unit_cube(small.cursor(), unit, Period.year(2025))
    assert _records(last_year)["MA"] == (3, 130.0, 60.0, 0.0)


def test_h3_neighbours_are_the_cells_sharing_an_edge():
    """A hand-checkable case: a cell, its ring of six and one cell two steps away, with
    one ring cell missing; pairs are checked by shared boundary vertices (two shared
    vertices = a shared edge), not with the grid functions the code uses."""
    from analytics import adjacency

    centre = h3.latlng_to_cell(40.0, -100.0, 5)
    ring = sorted(h3.grid_ring(centre, 1))
    far = sorted(h3.grid_ring(centre, 2))[0]
    ids = [centre, *ring[1:], far]  # ring[0] left out

    def vertices(cell):
        return {(round(a, 9), round(b, 9)) for a, b in h3.cell_to_boundary(cell)}

    expected = sorted((min(a, b), max(a, b)) for i, a in enumerate(ids) for b in ids[i + 1:]
                      if len(vertices(a) & vertices(b)) >= 2)
    got = adjacency.unit_neighbours(UnitType("h3", 5), ids)
    assert got == expected
    # the centre touches the five ring cells present; each ring cell its two ring neighbours
    assert sum(centre in p for p in got) == 5
    assert all(a < b for a, b in got)
