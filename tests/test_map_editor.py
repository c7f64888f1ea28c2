"""What the map sends and receives, without a browser: unit lookup for clicks and drawn
shapes, the event -> edit step, the per-rerun territory codes and the static payloads."""

from __future__ import annotations

import json

import h3
import numpy as np
import pandas as pd
import pytest
import shapely

from analytics import edits, geography, plans
from analytics.store import Store
from analytics.unit_index import UnitIndex
from analytics.units import UnitType
from ui import map as ui_map
from ui.map_editor import MapEvent, apply_map_event, new_event


@pytest.fixture
def demo(demo_copy):
    with Store(demo_copy) as store:
        plan = plans.get_plan(store.cursor())
        yield store, plan, UnitIndex.build(store.cursor(), plan)


def _rect(west, south, east, north) -> dict:
    return {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north],
                                                [west, north], [west, south]]]}


def test_county_index_covers_every_shipped_county(demo):
    index = demo[2]
    ids = geography.unit_polygons("county")[0]
    assert index.ids == sorted(ids)
    assert not index.is_points
    # a point inside Cook County, Illinois (Chicago Loop) is county 17031
    assert index.at(41.8781, -87.6298) == "17031"
    assert index.at(30.0, -40.0) is None  # the Atlantic


def test_drawn_rectangle_takes_counties_whose_centre_is_inside(demo):
    _, _, index = demo
    shape = _rect(-90.0, 40.0, -87.5, 42.0)
    got = index.inside(shape)
    ids, _, geoms = geography.unit_polygons("county")
    centres = shapely.point_on_surface(np.asarray(geoms, dtype=object))
    box = shapely.box(-90.0, 40.0, -87.5, 42.0)
    expected = sorted(u for u, c in zip(ids, centres, strict=True) if box.contains(c))
    assert got == expected
    assert len(expected) > 10
    assert index.inside({"type": "Point", "coordinates": [-88, 41]}) == []


def test_h3_index_is_cells_with_accounts_plus_plan_cells(demo_copy):
    with Store(demo_copy) as store:
        plan = plans.get_plan(store.cursor())
        hexplan, _ = edits.convert_plan(store, plan, UnitType.parse("h3:5"), "hex")
        cur = store.cursor()
        held = {r[0] for r in cur.execute(
            "SELECT DISTINCT format('{:x}', h3_r5) FROM accounts").fetchall()}
        index = UnitIndex.build(cur, hexplan)
        planned = set(plans.assignment(cur, hexplan)["unit_id"])
    assert set(index.ids) == held | planned
    cell = index.ids[len(index.ids) // 2]
    lat, lon = h3.cell_to_latlng(cell)
    assert index.at(lat, lon) == cell
    # a drawn shape takes the cells whose centre is inside, checked with h3 directly
    shape = _rect(-100.0, 35.0, -95.0, 40.0)
    inside = set(h3.geo_to_cells(h3.geo_to_h3shape(shape), 5))
    assert set(index.inside(shape)) == inside & set(index.ids)


def test_zip_points_click_takes_the_nearest_point_within_25_km(demo_copy):
    with Store(demo_copy) as store:
        plan = plans.get_plan(store.cursor())
        zplan, _ = edits.convert_plan(store, plan, UnitType.parse("zip3"), "z3")
        index = UnitIndex.build(store.cursor(), zplan)
    assert index.is_points
    i = index.ids.index("606") if "606" in index.ids else 0
    assert index.at(index.lat[i] + 0.01, index.lon[i]) == index.ids[i]
    assert index.at(0.0, 0.0) is None


def test_new_event_handles_each_value_once_and_drawings_win():
    seen: dict = {}
    click = {"lat": 41.0, "lng": -88.0}
    assert new_event({"last_clicked": click}, seen) == MapEvent(click, None)
    assert new_event({"last_clicked": click}, seen) == MapEvent(None, None)  # already done
    drawing = {"type": "Feature", "properties": {}, "geometry": _rect(-90, 40, -88, 42)}
    click2 = {"lat": 42.0, "lng": -88.0}  # the rectangle's last corner, same update
    ev = new_event({"last_clicked": click2, "last_active_drawing": drawing}, seen)
    assert ev == MapEvent(None, drawing["geometry"])
    # a clicked map feature (it has properties) is not a drawing
    feature = {"type": "Feature", "properties": {"name": "x"},
               "geometry": {"type": "Point", "coordinates": [0, 0]}}
    assert new_event({"last_clicked": click2, "last_active_drawing": feature}, seen) \
        == MapEvent(None, None)


def test_apply_map_event_paints_erases_and_inspects(demo):
    store, plan, index = demo
    before = plans.assignment(store.cursor(), plan).set_index("unit_id")["territory_id"]
    assert before["17031"] != "T02"
    click = MapEvent({"lat": 41.8781, "lng": -87.6298}, None)
    result, unit, message = apply_map_event(store, plan, index, click, "Paint", "T02")
    assert (unit, result.changed) == ("17031", 1)
    assert message == "Assign unit 17031 to T02: 1 changed"
    after = plans.assignment(store.cursor(), plan).set_index("unit_id")["territory_id"]
    assert after["17031"] == "T02"

    result, unit, _ = apply_map_event(store, plan, index, click, "Inspect", "T02")
    assert (result, unit) == (None, "17031")

    shape = _rect(-90.0, 40.0, -87.5, 42.0)
    result, _, message = apply_map_event(store, plan, index, MapEvent(None, shape), "Erase",
                                         None)
    erased = set(index.inside(shape))
    now = plans.assignment(store.cursor(), plan)
    assert erased.isdisjoint(set(now["unit_id"]))
    assert result.changed == len(erased & set(before.index))
    assert message.startswith(f"Erase {len(erased)} units (drawn shape)")

    assert edits.undo(store, plan) is not None  # one undo takes the whole shape back
    restored = plans.assignment(store.cursor(), plan).set_index("unit_id")["territory_id"]
    assert restored.loc[sorted(erased)].tolist() == after.loc[sorted(erased)].tolist()


def test_apply_map_event_needs_a_brush_and_reports_empty_places(demo):
    store, plan, index = demo
    from analytics.errors import InputError

    with pytest.raises(InputError):
        apply_map_event(store, plan, index, MapEvent({"lat": 41.88, "lng": -87.63}, None),
                        "Paint", None)
    result, unit, message = apply_map_event(
        store, plan, index, MapEvent({"lat": 30.0, "lng": -40.0}, None), "Paint", "T02")
    assert (result, unit) == (None, None)
    assert "No unit there" in message


def _stroke(nonce: str, units) -> dict:
    """The value the map sends for a drag of the brush: a drawn line naming its units."""
    return {"type": "Feature", "properties": {"atlas_stroke": nonce, "units": units},
            "geometry": {"type": "LineString", "coordinates": [[-88, 41], [-87, 41]]}}


def test_a_brush_stroke_is_one_event_once():
    seen: dict = {}
    value = {"last_active_drawing": _stroke("a1", ["17031", "17043"])}
    assert new_event(value, seen) == MapEvent(None, None, "a1", ["17031", "17043"])
    assert new_event(value, seen) == MapEvent(None, None)  # already done
    bad = {"last_active_drawing": _stroke("a2", "17031")}  # units not a list: none
    assert new_event(bad, seen) == MapEvent(None, None, "a2", [])


def test_a_brush_stroke_is_one_edit_of_the_known_units(demo):
    store, plan, index = demo
    before = plans.assignment(store.cursor(), plan).set_index("unit_id")["territory_id"]
    units = ["17031", "17043", "17197"]
    assert all(before[u] != "T02" for u in units)
    # an unknown id, a repeat and a non-string (a hand-made value) are left out
    event = MapEvent(None, None, "s1", [*units, "99999", "17031", 17])
    result, unit, message = apply_map_event(store, plan, index, event, "Paint", "T02")
    assert (unit, result.changed) == (None, 3)
    assert message == "Assign 3 units (brush) to T02: 3 changed"
    after = plans.assignment(store.cursor(), plan).set_index("unit_id")["territory_id"]
    assert after.loc[units].tolist() == ["T02"] * 3
    changed = after.index[after != before.reindex(after.index)]
    assert sorted(changed) == sorted(units)  # those, and only those

    result, _, message = apply_map_event(store, plan, index, event, "Erase", None)
    assert result.changed == 3
    assert message.startswith("Erase 3 units (brush)")
    assert edits.undo(store, plan) is not None  # one undo: the whole erase stroke
    assert edits.undo(store, plan) is not None  # one undo: the whole paint stroke
    restored = plans.assignment(store.cursor(), plan).set_index("unit_id")["territory_id"]
    assert restored.loc[units].tolist() == before.loc[units].tolist()

    empty = MapEvent(None, None, "s2", ["99999"])
    assert apply_map_event(store, plan, index, empty, "Paint", "T02")[0] is None
    result, _, message = apply_map_event(store, plan, index, event, "Inspect", "T02")
    assert result is None
    assert "Paint or Erase" in message


def test_unit_codes_decode_to_the_assignment(demo):
    store, plan, index = demo
    assign = plans.assignment(store.cursor(), plan)
    order = sorted(assign["territory_id"].unique())
    codes = ui_map.unit_codes(index, assign, order)
    assert len(codes) == 2 * len(index)
    terr = dict(zip(assign["unit_id"], assign["territory_id"], strict=True))
    for i in range(0, len(index), 97):
        c = codes[2 * i: 2 * i + 2]
        expected = terr.get(index.ids[i])
        assert (c == "..") if expected is None else (order[int(c, 36)] == expected)
    many = [f"X{i}" for i in range(ui_map.MAX_TERRITORIES + 1)]
    with pytest.raises(ValueError, match="at most 1296 territories"):
        ui_map.unit_codes(index, assign, many)


def test_publish_is_content_addressed(tmp_path, monkeypatch):
    monkeypatch.setattr(ui_map, "CACHE_DIR", tmp_path)
    a = ui_map.publish("x", {"a": [1, 2]})
    assert a == ui_map.publish("x", {"a": [1, 2]})
    assert a != ui_map.publish("x", {"a": [1, 3]})
    name = a.rsplit("/", 1)[1]
    assert json.loads((tmp_path / name).read_text()) == {"a": [1, 2]}
    assert not list(tmp_path.glob("*.tmp"))


def test_published_names_cannot_be_worked_out_from_the_content(tmp_path, monkeypatch):
    """The name is a hash keyed with the server's secret: knowing (or guessing) a file's
    content does not give its URL."""
    import hashlib

    monkeypatch.setattr(ui_map, "CACHE_DIR", tmp_path)
    payload = {"accounts": [1, 2, 3]}
    url = ui_map.publish("numbers", payload)
    text = json.dumps(payload, separators=(",", ":"))
    for size in (8, 12, 16, 32):
        assert hashlib.blake2b(text.encode(), digest_size=size).hexdigest() not in url
        assert hashlib.sha256(text.encode()).hexdigest()[: size * 2] not in url
    monkeypatch.setattr(ui_map, "CACHE_SECRET", b"another server" * 2)
    assert ui_map.publish("numbers", payload) != url  # another server, another name


def test_a_databases_numbers_live_in_its_folder_and_go_when_its_data_changes(
        tmp_path, monkeypatch):
    monkeypatch.setattr(ui_map, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(ui_map, "_SEEN_VERSIONS", set())
    shapes = ui_map.publish("units", {"ids": ["a"]})
    one = ui_map.publish("numbers", {"won": [1]}, database="/data/one.duckdb", version="1")
    one_b = ui_map.publish("explorer", {"won": [2]}, database="/data/one.duckdb",
                           version="1")
    two = ui_map.publish("numbers", {"won": [1]}, database="/data/two.duckdb", version="1")

    def exists(url):
        return (tmp_path / url.split("/cache/", 1)[1]).exists()

    assert one.rsplit("/", 2)[1] != two.rsplit("/", 2)[1]  # a folder per database
    assert all(map(exists, (shapes, one, one_b, two)))
    # new data in database one: its old numbers go, the other database's and shapes stay
    new = ui_map.publish("numbers", {"won": [9]}, database="/data/one.duckdb", version="2")
    assert exists(new)
    assert not exists(one)
    assert not exists(one_b)
    assert exists(two)
    assert exists(shapes)
    # republishing the current version keeps its files
    assert ui_map.publish("numbers", {"won": [9]}, database="/data/one.duckdb",
                          version="2") == new
    assert exists(new)


def test_prune_removes_old_files_and_empty_folders(tmp_path, monkeypatch):
    import os

    monkeypatch.setattr(ui_map, "CACHE_DIR", tmp_path)
    old = ui_map.publish("numbers", {"won": [1]}, database="/data/old.duckdb", version="1")
    path = tmp_path / old.split("/cache/", 1)[1]
    os.utime(path, (0, 0))
    fresh = ui_map.publish("units", {"ids": ["b"]})
    assert ui_map.prune_cache() == 1
    assert not path.parent.exists()
    assert (tmp_path / fresh.split("/cache/", 1)[1]).exists()


def test_county_shapes_keep_shared_borders_and_numbers_follow_the_cube(demo):
    index = demo[2]
    payload = ui_map.geometry_payload(index)
    assert payload["ids"] == index.ids
    assert len(payload["shapes"]) == len(index)
    # Cook (17031) and DuPage (17043) share a border: after simplification they still share
    # vertices, which is what the map's territory outlines are drawn from
    pos = {u: i for i, u in enumerate(index.ids)}

    def vertices(u):
        return {(ring[k], ring[k + 1]) for poly in payload["shapes"][pos[u]]
                for ring in poly for k in range(0, len(ring), 2)}

    assert len(vertices("17031") & vertices("17043")) >= 2

    cube_units = pd.DataFrame({"unit_id": ["17031", "17043", None],
                               "accounts": [3, 1, 2], "potential": [365.0, 0.0, 5.0],
                               "won": [50.0, 10.0, 0.0], "open_pipeline": [0.0, 0.0, 0.0]})
    nums = ui_map.numbers_payload(index, cube_units, days=365)
    i, j = pos["17031"], pos["17043"]
    assert (nums["accounts"][i], nums["potential"][i], nums["won"][i]) == (3, 365, 50)
    assert nums["whitespace"][i] == 315  # 365 x 365/365 - 50
    assert nums["penetration"][i] == pytest.approx(50 / 365, abs=1e-4)
    assert nums["penetration"][j] is None  # potential 0: no penetration
    assert nums["whitespace"][j] == 0  # max(0 - 10, 0)
    assert sum(nums["accounts"]) == 4  # the accounts without a unit are not on the map


def test_shapes_from_one_array_equal_the_shapes_one_by_one():
    """The hexagon path (every coordinate in one array) writes the same rings as reading
    each shape alone: polygons, a polygon with a hole, multipolygons, and H3 cells."""
    import h3
    import shapely
    from shapely.geometry import MultiPolygon, Polygon

    hexes = [Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)])
             for c in h3.grid_disk(h3.latlng_to_cell(41.88, -87.63, 5), 2)]
    holed = Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], [[(1, 1), (2, 1), (2, 2), (1, 2)]])
    multi = MultiPolygon([Polygon([(10, 10), (11, 10), (11, 11.123456)]),
                          Polygon([(12, 12), (13, 12), (13, 13)])])
    for geoms in (hexes, [*hexes, holed], [holed, multi, hexes[0]]):
        arr = np.asarray(geoms, dtype=object)
        assert ui_map._shapes(arr, 4) == [ui_map._rings(g, 4) for g in arr]
    # the third corner of the first polygon, lat first, rounded to 4 digits
    assert ui_map._shapes(np.asarray([multi], dtype=object), 4)[0][0][0][4:6] == \
        [11.1235, 11.0]
    assert shapely.to_ragged_array(np.asarray(hexes, dtype=object))[0] == \
        shapely.GeometryType.POLYGON
