"""Map page flows with AppTest: the territory panels, undo/redo buttons, unit conversion.

Clicks and drawings on the map itself need a browser (tests/e2e); everything around the map
is driven here, and every change is checked in the database the app writes to.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import unquote
from xml.etree import ElementTree

import duckdb
import pandas as pd
import pytest

from analytics import edits, market, plans
from analytics.store import Store
from ui.map import MARKET_NUMBERS
from ui.map_editor import BRUSH_SIZES, MODES, brush_radius
from ui.map_spec import LAYERS
from ui.territory_tools import rep_labels
from ui.text import shown
from ui.widgets import balance_svg, color_swatch

SVG = "{http://www.w3.org/2000/svg}"


def _query(db, sql, params=None):
    con = duckdb.connect(str(db))
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _button(app, label):
    return next(b for b in app.button if b.label == label)


def _metric(app, label):
    return next(m.value for m in app.metric if m.label == label)


def _table(app) -> pd.DataFrame:
    return next(d.value for d in app.dataframe if "territory_id" in d.value.columns)


def test_rename_recolour_lock_then_undo_and_redo(app):
    app.run()
    assert not app.exception
    app.selectbox(key="manage_territory").select("T02").run()
    next(t for t in app.text_input if t.label == "Name").input("Chicago North")
    app.color_picker[0].pick("#112233")
    next(c for c in app.checkbox if c.label == "Locked").check()
    _button(app, "Save territory").click().run()
    assert not app.exception
    assert _query(app.db_path, "SELECT name, color, locked FROM territories "
                  "WHERE territory_id = 'T02'") == [("Chicago North", "#112233", True)]
    assert any("Rename / Recolour / Lock T02" in shown(m.value) for m in app.info)
    table = _table(app).set_index("territory_id")
    assert table.loc["T02", "territory_name"] == "Chicago North"
    # the swatch beside it is the picked colour (an SVG square as an image URL)
    assert table.loc["T02", "color"].startswith("data:image/svg+xml,")
    assert 'fill="#112233"' in unquote(table.loc["T02", "color"])

    _button(app, "Undo").click().run()
    assert not app.exception
    name, color, locked = _query(app.db_path, "SELECT name, color, locked FROM territories "
                                 "WHERE territory_id = 'T02'")[0]
    assert (color, locked) == (None, False)
    assert name != "Chicago North"
    assert _table(app).set_index("territory_id").loc["T02", "territory_name"] == name
    _button(app, "Redo").click().run()
    assert _query(app.db_path, "SELECT name FROM territories WHERE territory_id = 'T02'") \
        == [("Chicago North",)]


def test_create_merge_delete_territories_move_the_numbers(app):
    app.run()
    before = _table(app).set_index("territory_id")
    n_terr = len(before)
    next(t for t in app.text_input if t.label == "Name of the new territory").input("Pilot")
    _button(app, "Create territory").click().run()
    assert not app.exception
    new_id = f"T{n_terr + 1:02d}"
    assert app.session_state["brush"] == new_id  # a new territory becomes the brush
    assert _query(app.db_path, "SELECT name FROM territories WHERE territory_id = ?",
                  [new_id]) == [("Pilot",)]

    # merge T03 and T04 into the new territory: it gets exactly their accounts and units
    app.selectbox(key="manage_territory").select(new_id).run()
    next(m for m in app.multiselect if m.label.startswith("Merge into")).select("T03") \
        .select("T04")
    _button(app, "Merge").click().run()
    assert not app.exception
    after = _table(app).set_index("territory_id")
    assert "T03" not in after.index
    assert "T04" not in after.index
    for col in ("accounts", "units"):
        assert after.loc[new_id, col] == before.loc["T03", col] + before.loc["T04", col]
    assert after["accounts"].sum() == before["accounts"].sum()

    # delete it: those accounts become unassigned
    unassigned = int(_metric(app, "Unassigned").replace(",", ""))
    next(c for c in app.checkbox if c.label.startswith(f"Delete {new_id}")).check()
    _button(app, "Delete territory").click().run()
    assert not app.exception
    assert int(_metric(app, "Unassigned").replace(",", "")) == \
        unassigned + after.loc[new_id, "accounts"]
    assert _query(app.db_path, "SELECT count(*) FROM plan_units pu JOIN plans p USING "
                  "(plan_id) WHERE p.state = 'active' AND territory_id = ?", [new_id]) == [(0,)]


def test_locked_territory_is_refused_as_brush_target_with_a_message(app):
    app.run()
    with Store(app.db_path) as store:
        plan = plans.get_plan(store.cursor())
        edits.set_locked(store, plan, "T05", True)
    app.run()
    app.selectbox(key="manage_territory").select("T05").run()
    next(c for c in app.checkbox if c.label.startswith("Delete T05")).check()
    _button(app, "Delete territory").click().run()
    assert not app.exception
    assert any("locked" in e.value for e in app.error)
    assert _query(app.db_path, "SELECT count(*) FROM territories t JOIN plans p USING "
                  "(plan_id) WHERE p.state = 'active' AND territory_id = 'T05'") == [(1,)]


def test_a_stroke_made_elsewhere_shows_and_undoes_from_the_toolbar(app):
    app.run()
    before = _table(app).set_index("territory_id")
    with Store(app.db_path) as store:
        plan = plans.get_plan(store.cursor())
        county = plans.assignment(store.cursor(), plan).query("territory_id == 'T07'")[
            "unit_id"].iloc[0]
        n = store.cursor().execute("SELECT count(*) FROM accounts WHERE county = ?",
                                   [county]).fetchone()[0]
        edits.assign(store, plan, [county], "T08")
    app.run()
    after = _table(app).set_index("territory_id")
    assert after.loc["T08", "accounts"] == before.loc["T08", "accounts"] + n
    assert after.loc["T07", "accounts"] == before.loc["T07", "accounts"] - n
    undo = _button(app, "Undo")
    assert undo.help == "Assign 1 unit to T08"
    undo.click().run()
    assert _table(app)["accounts"].tolist() == before["accounts"].tolist()
    assert _button(app, "Undo").disabled  # the demo plan had no other edit
    assert _button(app, "Redo").help == "Assign 1 unit to T08"


def test_convert_the_plan_to_states_opens_the_new_plan(app):
    app.run()
    app.selectbox(key="convert_to").select("state")
    next(t for t in app.text_input if t.label == "New plan name").input("By state")
    _button(app, "Convert into a new plan").click().run()
    assert not app.exception
    assert app.sidebar.selectbox(key="plan_name").value == "By state"
    table = _table(app)
    # each state went whole to one territory: units are states, all accounts are counted
    assert table["units"].sum() == _query(
        app.db_path, "SELECT count(DISTINCT state) FROM accounts WHERE state IS NOT NULL")[0][0]
    assert table["accounts"].sum() + int(_metric(app, "Unassigned").replace(",", "")) \
        == 20564


def test_map_page_on_zip3_points_and_h3_cells(app, sent_specs):
    from analytics.units import UnitType

    with Store(app.db_path) as store:
        plan = plans.get_plan(store.cursor())
        for unit in ("zip3", "h3:5"):
            edits.convert_plan(store, plan, UnitType.parse(unit), f"On {unit}")
    app.run()
    for unit in ("zip3", "h3:5"):
        app.sidebar.selectbox(key="plan_name").select(f"On {unit}").run()
        assert not app.exception
        table = _table(app)
        assert table["accounts"].sum() + int(_metric(app, "Unassigned").replace(",", "")) \
            == 20564
        layers = sent_specs[-1]["layers"]
        assert list(layers) == list(LAYERS)
        assert len(layers["Whitespace (unit)"]["breaks"]) >= 3, unit


@pytest.mark.parametrize("tool", MODES)
@pytest.mark.parametrize("size", list(BRUSH_SIZES))
def test_every_tool_and_drag_size_opens_the_map(app, tool, size):
    """Every Tool x Drag choice reruns the page cleanly; the drag brush's radius in km
    is what the label says (the map reads it from the spec)."""
    app.run()
    next(s for s in app.selectbox if s.label == "Drag").select(size).run()
    app.session_state["edit_mode"] = tool
    app.run()
    assert not app.exception
    assert app.session_state["brush_size"] == size
    km = brush_radius(size)
    assert km == (None if size.endswith("moves the map") else
                  0.0 if size.endswith("1 unit") else float(size.split()[-2]))


def test_a_swatch_draws_only_a_colour():
    """A colour that is not #rrggbb (say, from a hand-edited plan file) draws grey."""
    assert 'fill="#AABBCC"' in unquote(color_swatch("#AABBCC"))
    hostile = unquote(color_swatch('red"/><script>alert(1)</script>'))
    assert "script" not in hostile
    assert 'fill="#E6E6E6"' in hostile


def test_rep_picker_labels_name_each_rep_once():
    reps = pd.DataFrame({"rep_id": ["R1", "R2"], "name": ["Ann Lee", None]})
    assert rep_labels(reps) == {"": "(no rep)", "R1": "Ann Lee (R1)", "R2": "R2"}


def _bars(svg: str) -> list[dict]:
    root = ElementTree.fromstring(svg)  # well-formed XML, whatever the names hold
    return [{**r.attrib, "title": r.find(f"{SVG}title").text}
            for r in root.iter(f"{SVG}rect") if "data-series" in r.attrib]


def test_balance_chart_bars_by_hand():
    """Three territories, tolerance 10%: T1 +10% / -20% / 0%, T2 -50% / +40% / +5%, and
    a territory with no rep (no workload deviation) left out. Bars hang from the zero line,
    up for a gain, their heights in the ratio of the deviations."""
    rows = pd.DataFrame({
        "territory_id": ["T1", "T2", "<b>&T3"],
        "deviation_potential": [0.10, -0.50, 0.30],
        "deviation_workload_hours": [-0.20, 0.40, None],
        "deviation_accounts": [0.0, 0.05, 0.1],
    })
    bars = _bars(balance_svg(rows, 0.10))
    got = {(b["data-territory"], b["data-series"]): b for b in bars}
    assert {t for t, _ in got} == {"T1", "T2"}
    assert len(bars) == 6
    expect = {("T1", "Potential"): 10, ("T1", "Workload"): -20, ("T1", "Accounts"): 0,
              ("T2", "Potential"): -50, ("T2", "Workload"): 40, ("T2", "Accounts"): 5}
    for key, pct in expect.items():
        assert float(got[key]["data-value"]) == pytest.approx(pct)
    assert got[("T2", "Workload")]["title"] == "T2 · Workload: +40.0% vs mean"
    zero = float(got[("T1", "Potential")]["y"]) + float(got[("T1", "Potential")]["height"])
    assert float(got[("T1", "Workload")]["y"]) == pytest.approx(zero, abs=0.11)  # hangs down
    h = {k: float(got[k]["height"]) for k in expect if expect[k]}
    assert h[("T2", "Potential")] / h[("T1", "Potential")] == pytest.approx(5, rel=0.02)
    assert h[("T2", "Workload")] / h[("T1", "Workload")] == pytest.approx(2, rel=0.02)


def test_balance_chart_escapes_names():
    rows = pd.DataFrame({"territory_id": ['<script>"x"&'], "deviation_potential": [0.1],
                         "deviation_workload_hours": [0.1], "deviation_accounts": [0.1]})
    svg = balance_svg(rows, 0.1)
    assert "<script>" not in svg
    assert {b["data-territory"] for b in _bars(svg)} == {'<script>"x"&'}


def test_map_page_balance_chart_shows_the_tables_deviations(app):
    app.run()
    assert not app.exception
    image = app.get("image")[0].proto.imgs[0]
    assert image.url.startswith("data:image/svg+xml;base64,")
    bars = _bars(base64.b64decode(image.url.split(",", 1)[1]).decode("utf-8"))
    table = _table(app).set_index("territory_id")  # shown in percent
    with_rep = table.dropna(subset=["deviation_workload_hours"])
    assert {b["data-territory"] for b in bars} == set(with_rep.index)
    column = {"Potential": "deviation_potential", "Workload": "deviation_workload_hours",
              "Accounts": "deviation_accounts"}
    for b in bars:
        assert float(b["data-value"]) == pytest.approx(
            with_rep.loc[b["data-territory"], column[b["data-series"]]], abs=1e-3)


def test_a_first_load_draws_the_map_before_the_numbers(app, monkeypatch):
    """Nothing computed yet for the plan: the map goes out first, in its territories'
    colours and without numbers, the metrics are computed after it, and the page runs once
    more by itself so that the map gets the numbers; once computed, one run does all."""
    import ui.map
    import ui.plan_metrics

    events = []
    real_map, real_metrics = ui.map.territory_map, ui.plan_metrics.plan_metrics

    def spy_map(spec, *a, **kw):
        events.append(("map", spec))
        return real_map(spec, *a, **kw)

    def spy_metrics(ctx, *a, **kw):
        events.append(("metrics", None))
        return real_metrics(ctx, *a, **kw)

    monkeypatch.setattr(ui.map, "territory_map", spy_map)
    monkeypatch.setattr(ui.plan_metrics, "plan_metrics", spy_metrics)
    app.run()
    assert not app.exception
    kinds = [k for k, _ in events]
    assert kinds[:4] == ["map", "metrics", "metrics", "map"], kinds
    first, second = events[0][1], events[3][1]
    assert first["numbers"] is None
    assert second["numbers"]
    assert all(t["attainment"] is None for t in first["territories"])
    assert any(t["attainment"] is not None for t in second["territories"])
    assert first["codes"] == second["codes"]  # the same colours, before and after
    assert first["geometry"] == second["geometry"]
    cards = {m.label: m.value for m in app.metric}

    events.clear()  # computed now: one run, the numbers before the map
    app.run()
    assert [k for k, _ in events][:2] == ["metrics", "map"]
    assert events[1][1]["numbers"] == second["numbers"]
    assert {m.label: m.value for m in app.metric} == cards


MARKET_LAYERS = [label for label, (where, metric, _) in LAYERS.items()
                 if metric in MARKET_NUMBERS]


@pytest.mark.parametrize("layer", MARKET_LAYERS)
def test_a_market_layer_colours_the_counties_by_the_census(app, sent_specs, layer):
    """The map's numbers for a market layer, read from the file the browser is sent,
    against the shipped county table and the demo accounts (plain pandas and SQL); the
    legend's classes (the layer in the spec the map's picker switches to) span the
    counties the market reaches."""
    app.run()
    assert not app.exception
    _, numbers, shapes = _sent(app, "/numbers-")
    got = pd.DataFrame({k: numbers[k] for k in MARKET_NUMBERS}, index=shapes["ids"])
    census = pd.read_parquet(market.COUNTY_MARKET_FILE).set_index("county")
    shown_ids = got.index.intersection(census.index)
    assert len(shown_ids) > 3000
    assert (got.loc[shown_ids, "market_population"]
            == census.loc[shown_ids, "population"]).all()
    accounts = dict(_query(app.db_path, "SELECT county, count(*) FROM accounts "
                                        "WHERE county IS NOT NULL GROUP BY county"))
    est = got["market_establishments"]
    for county in ("06037", "17031", "48201"):  # Los Angeles, Cook, Harris
        assert got.at[county, "accounts_per_1k_establishments"] == pytest.approx(
            1000 * accounts.get(county, 0) / est[county], abs=0.006)
    spec_layer = sent_specs[-1]["layers"][layer]
    metric = LAYERS[layer][1]
    assert spec_layer["metric"] == metric
    assert spec_layer["mode"] == "unit"
    breaks = spec_layer["breaks"]
    values = got[metric][got[metric] > 0]
    assert len(breaks) >= 3
    assert values.min() <= breaks[0]
    assert breaks[-1] <= values.max()


def _sent(app, marker: str) -> tuple[str, dict, dict]:
    """(every element's message, the cached file whose name holds `marker`, the shapes
    file): what the page sent the browser."""
    import json
    import re

    from ui.map import CACHE_DIR

    text = "\n".join(str(getattr(n, "proto", "")) for n in _walk(app._tree))
    names = set(re.findall(r"/app/static/cache/([\w./-]+\.json)", text))

    def read(part):
        return json.loads((CACHE_DIR / next(n for n in names if part in n)).read_text())

    return text, read(marker), read("units-")


def _walk(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _walk(child)


def test_an_imported_overlay_is_a_layer_of_the_map(app, sent_specs, tmp_path):
    """A ZIP-keyed overlay on the county plan: offered in "Colour units by", its values
    (in the file the browser is sent) are the ZIPs' sums by county, worked out by hand;
    deleted, the map falls back to the territories."""

    from conftest import write_csv

    from analytics import overlays

    # Agawam 01001 (Hampden, 25013), Amherst 01002 and Hadley 01035 (Hampshire, 25015)
    path = write_csv(tmp_path / "rivals.csv", [["zip", "sites"], ["01001", "3"],
                                               ["01002", "2"], ["01035", "1"]])
    with Store(app.db_path) as store:
        overlays.import_overlay(store, path, "Rivals", "zip5")
    app.run()
    label = "Rivals · sites (your overlay)"
    assert not app.exception
    assert list(sent_specs[-1]["layers"])[-1] == label  # after the map's own layers
    layer = sent_specs[-1]["layers"][label]
    assert layer["metric"] == "overlay:Rivals:sites"
    _, _, shapes = _sent(app, "/numbers-")
    from ui.map import CACHE_DIR

    values = json.loads((CACHE_DIR / layer["values"].split("/cache/", 1)[1]).read_text())
    got = {u: v for u, v in zip(shapes["ids"], values["values"], strict=True) if v is not None}
    assert got == {"25013": 3, "25015": 3}
    with Store(app.db_path) as store:
        overlays.delete_overlay(store, "Rivals")
    app.run()
    assert not app.exception
    assert label not in sent_specs[-1]["layers"]
