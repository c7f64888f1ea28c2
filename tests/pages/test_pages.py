"""Page flow with Streamlit's AppTest: what a manager sees and does on each page."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest

from analytics.geography import DATA_DIR
from analytics.overlays import KEY_KINDS

DEMO = DATA_DIR / "demo"


def _count(db, table):
    con = duckdb.connect(str(db))  # same process as the app: same configuration
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


def test_map_page_opens_on_the_default_plan(app):
    app.run()
    assert not app.exception
    assert app.title[0].value == "Territory map"
    metrics = {m.label: m.value for m in app.metric}
    accounts = pd.read_parquet(DEMO / "accounts.parquet")
    assert metrics["Accounts"] == f"{len(accounts):,}"
    # 3 demo accounts lie outside every county polygon (one has a bad geocode at sea)
    assert metrics["Unassigned"] == "3"
    table = app.dataframe[0].value
    plan = pd.read_csv(DEMO / "plan_current_alignment.csv", dtype=str)
    assert len(table) == plan["territory_id"].nunique() == 40
    assert set(table["territory_name"]) == set(plan["territory_name"])
    assert table["accounts"].sum() == len(accounts) - 3


def test_period_changes_the_numbers(app):
    app.run()
    won_2026 = {m.label: m.value for m in app.metric}["Won"]
    app.sidebar.date_input(key="period").set_value(
        (pd.Timestamp("2025-01-01").date(), pd.Timestamp("2025-12-31").date())
    ).run()
    assert not app.exception
    assert {m.label: m.value for m in app.metric}["Won"] != won_2026


def test_data_page_reports_bad_rows_and_stores_good_ones(app):
    app.run()
    app.switch_page("pages/data.py").run()
    assert app.title[0].value == "Data"
    before = _count(app.db_path, "accounts")
    csv = (
        b"Id;Name;BillingLatitude;BillingLongitude;BillingPostalCode;AnnualRevenue\n"
        b"NEW-1;Good Clinic;42.36;-71.06;02108;1000\n"
        b"NEW-2;Bad Revenue;42.36;-71.06;02108;lots\n"
        b"NEW-3;Zip Only;;;10001;500\n"
    )
    app.file_uploader(key="upload_accounts").set_value(
        ("sf-accounts.csv", csv, "text/csv")
    ).run()
    app.button[0].click().run()
    assert not app.exception
    report = app.dataframe[0].value
    assert list(report.columns) == ["file", "row", "column", "value", "reason"]
    assert report.to_dict("records") == [{
        "file": "sf-accounts.csv", "row": 3, "column": "AnnualRevenue", "value": "lots",
        "reason": "not a number",
    }]
    assert _count(app.db_path, "accounts") == before + 2


def test_data_page_imports_a_stage_history_with_its_bad_rows(app):
    app.run()
    app.switch_page("pages/data.py").run()
    before = _count(app.db_path, "stage_history")
    csv = (b"OpportunityId,StageName,CreatedDate\n"
           b"OPP-000001,Prospecting,2025-11-09\n"
           b"OPP-000001,Closed Won,2026-03-12\n"
           b"NO-SUCH-DEAL,Prospecting,2026-01-01\n")
    app.file_uploader(key="upload_stage_history").set_value(
        ("history.csv", csv, "text/csv")).run()
    app.button[0].click().run()
    assert not app.exception
    report = app.dataframe[0].value
    assert report[["file", "row", "column", "value"]].to_dict("records") == [{
        "file": "history.csv", "row": 4, "column": "OpportunityId",
        "value": "NO-SUCH-DEAL"}]
    # OPP-000001's six stored changes are replaced by the file's two
    assert _count(app.db_path, "stage_history") == before - 6 + 2


def test_plans_page_imports_a_plan(app, tmp_path):
    app.run()
    app.switch_page("pages/plans.py").run()
    assert len(app.dataframe[0].value) == 1
    app.text_input(key="new_plan_name").input("Two states")
    app.selectbox(key="new_plan_unit").select("state")
    app.file_uploader(key="new_plan_file").set_value((
        "two-states.csv", b"unit_id,territory_id,territory_name\nCA,W,West\nNY,E,East\n",
        "text/csv",
    ))
    app.button[0].click().run()
    assert not app.exception
    assert any("created with 2 units" in s.value for s in app.success)
    plans = app.dataframe[0].value
    assert "Two states" in set(plans["name"])


def test_performance_and_coverage_pages_render(app):
    app.run()
    app.switch_page("pages/performance.py").run()
    assert not app.exception
    app.selectbox(key="p_cut").select("Top N").run()
    app.text_input(key="p_n").input("40").run()
    frame = app.dataframe[0].value
    assert len(frame) == 40  # every territory of the demo plan, ranked
    assert frame["accounts"].sum() == 20564 - 3  # all but the 3 unassigned accounts
    app.switch_page("pages/coverage.py").run()
    assert not app.exception
    assert {m.label: m.value for m in app.metric}["Unassigned accounts"] == "3"


def test_map_page_draws_an_h3_plan_and_a_state_plan(app, tmp_path):
    import h3

    accounts = pd.read_parquet(DEMO / "accounts.parquet").dropna(subset=["lat", "lon"])
    cells = sorted({h3.latlng_to_cell(la, lo, 4) for la, lo in
                    zip(accounts["lat"], accounts["lon"], strict=True)})
    plan_file = tmp_path / "hex.csv"
    pd.DataFrame({
        "unit_id": cells,
        "territory_id": ["EAST" if h3.cell_to_latlng(c)[1] > -95 else "WEST" for c in cells],
    }).to_csv(plan_file, index=False)
    from analytics import plans
    from analytics.store import Store
    from analytics.units import UnitType

    with Store(app.db_path) as store:
        plans.import_plan(store, "Hexes", UnitType.parse("h3:4"), plan_file)
    app.run()
    app.sidebar.selectbox(key="plan_name").select("Hexes").run()
    assert not app.exception
    table = app.dataframe[0].value
    assert sorted(table["territory_id"]) == ["EAST", "WEST"]
    # accounts placed by postal code may fall in cells the plan (built from coordinates) lacks
    unassigned = {m.label: m.value for m in app.metric}["Unassigned"]
    assert table["accounts"].sum() + int(unassigned.replace(",", "")) == 20564


def test_settings_page_saves_and_the_map_uses_them(app):
    app.run()
    before = app.dataframe[0].value.set_index("territory_id")["workload_hours"]
    app.switch_page("pages/settings.py").run()
    assert app.title[0].value == "Settings"
    app.number_input(key="visit_minutes").set_value(90.0)
    app.button[0].click().run()
    assert not app.exception
    assert any("saved" in s.value for s in app.success)
    app.switch_page("pages/map.py").run()
    after = app.dataframe[0].value.set_index("territory_id")["workload_hours"]
    # doubling the visit minutes adds exactly the visit part again: visits x 45 / 60 hours
    assert (after > before).all()


def test_reloading_the_default_dataset_asks_first(app):
    app.run()
    app.switch_page("pages/data.py").run()
    reload = next(b for b in app.button if b.label.startswith("Reload the default dataset"))
    assert reload.disabled  # one click cannot replace everything
    app.checkbox(key="reload_sure").check().run()
    reload = next(b for b in app.button if b.label.startswith("Reload the default dataset"))
    assert not reload.disabled


def _sample_key(kind: str) -> str:
    import h3

    if kind.startswith("h3:"):
        return h3.latlng_to_cell(40.0, -100.0, int(kind[3:]))
    return {"zip5": "01001", "zip3": "010", "county": "06037", "state": "CA",
            "fr_dept": "75"}[kind]


@pytest.mark.parametrize("kind", KEY_KINDS)
def test_data_page_imports_an_overlay_of_every_key_kind(app, kind):
    """A bad row: reported by row and column, nothing stored; the file mended: stored,
    listed, then deleted."""
    app.run()
    app.switch_page("pages/data.py").run()
    app.selectbox(key="overlay_key").select(kind)
    app.text_input(key="overlay_name").input("Sites")
    key = _sample_key(kind)
    bad = f"key,sites\n{key},4\nnot-a-key,x\n".encode()
    app.file_uploader(key="upload_overlay").set_value(("sites.csv", bad, "text/csv")).run()
    next(b for b in app.button if b.label == "Import overlay").click().run()
    assert not app.exception
    assert any("nothing was stored" in e.value for e in app.error)
    report = app.dataframe[0].value
    assert report[["file", "row", "column"]].values.tolist() == [
        ["sites.csv", 3, "key"], ["sites.csv", 3, "sites"]]
    assert _count(app.db_path, "overlays") == 0
    good = f"key,sites\n{key},4\n".encode()
    app.file_uploader(key="upload_overlay").set_value(("sites.csv", good, "text/csv")).run()
    next(b for b in app.button if b.label == "Import overlay").click().run()
    assert not app.exception
    assert any("Overlay Sites stored: 1 rows" in s.value for s in app.success)
    listed = next(d for d in app.dataframe if "key_kind" in d.value).value
    assert listed[["name", "key_kind", "columns"]].values.tolist() == [["Sites", kind, "sites"]]
    app.selectbox(key="overlay_delete").select("Sites").run()
    next(b for b in app.button if b.label == "Delete overlay").click().run()
    assert not app.exception
    assert _count(app.db_path, "overlays") == 0
