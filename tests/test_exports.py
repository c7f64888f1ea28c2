"""Meeting-pack exports on the demo dataset, each file opened with its own reader.

Every number is checked against `metrics.summary` (and `metrics.resolved_accounts`,
`plans.assignment`) computed here independently of the export; slide and PDF text is
compared with `exports.format_value`, the one formatter the pages print with. The export
time of each format is printed (run with `-s` to see it); no test asserts wall-clock time.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Geod

from analytics import edits, exports, metrics, plans
from analytics.cli import main
from analytics.errors import InputError
from analytics.period import resolve
from analytics.settings import load_settings
from analytics.store import Store
from analytics.units import UnitType, unit_shapes

GEOD = Geod(ellps="WGS84")
TIMINGS: dict[str, float] = {}


# --------------------------------------------------------------------------------------
# fixtures: every format exported once from the demo's active plan
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo(demo_db: Path):
    """(store, cursor, plan, period, as_of, settings) on the demo database, read-only."""
    store = Store(demo_db, read_only=True)
    cur = store.cursor()
    period, as_of = resolve(store.get_meta("as_of"), None, None)
    yield store, cur, plans.get_plan(cur, None), period, as_of, load_settings(store)
    store.close()


@pytest.fixture(scope="module")
def oracle(demo):
    """metrics.summary of the demo plan: (territory rows by id, plan row)."""
    _, cur, plan, period, as_of, settings = demo
    rows, plan_row = metrics.summary(cur, plan, period, as_of, settings)
    return rows.set_index("territory_id", drop=False), plan_row


@pytest.fixture(scope="module")
def files(demo, tmp_path_factory) -> dict[str, Path]:
    """Every format written by `export_plan` (one pack: metrics and shapes computed once)."""
    _, cur, plan, period, as_of, settings = demo
    out = tmp_path_factory.mktemp("exports")
    pack = exports.PlanPack(cur, plan, period=period, as_of=as_of, settings=settings)
    written = {}
    for fmt in exports.FORMATS:
        start = time.perf_counter()
        written[fmt] = exports.export_plan(cur, plan, fmt, out, period=period, as_of=as_of,
                                           settings=settings, pack=pack)
        TIMINGS[fmt] = time.perf_counter() - start
    return written


def test_timings_are_printed(files):
    """Seconds per format on the demo (40 territories, 3,141 counties); the first format
    also pays for the metrics and shapes the others reuse."""
    for fmt, secs in TIMINGS.items():
        print(f"export {fmt}: {secs:.2f} s, {files[fmt].stat().st_size:,} bytes")
    assert set(TIMINGS) == set(exports.FORMATS)


def _same(a, b) -> bool:
    """Equal values: empty (None/NaN) on both sides, or numbers equal to 1e-9, or equal."""
    a_empty = a is None or (isinstance(a, float | np.floating) and math.isnan(a))
    b_empty = b is None or (isinstance(b, float | np.floating) and math.isnan(b))
    if a_empty or b_empty:
        return a_empty and b_empty
    if isinstance(a, bool | np.bool_) or isinstance(b, bool | np.bool_):
        return bool(a) == bool(b)
    if isinstance(a, int | float | np.number) and isinstance(b, int | float | np.number):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return a == b


# --------------------------------------------------------------------------------------
# formatting
# --------------------------------------------------------------------------------------
def test_format_value():
    f = exports.format_value
    assert f("accounts", 20564) == "20,564"
    assert f("potential", 3016585340.35) == "3,016,585,340"
    assert f("attainment", 0.50413) == "50.4%"
    assert f("deviation_potential", -0.8794) == "-87.9%"
    assert f("deviation_accounts", 0.123) == "+12.3%"
    assert f("travel_km", 64.406) == "64.4"
    assert f("pipeline_coverage", 0.6099) == "0.61"
    assert f("pace", None) == f("pace", float("nan")) == "–"
    assert f("contiguous", True) == "yes"
    assert f("status", "over-served") == "over-served"
    assert f("potential_delta", -101_100_000) == "-101.1M"
    assert f("accounts_delta", 0) == "0"
    assert f("accounts_delta", 12) == "+12"


# --------------------------------------------------------------------------------------
# PowerPoint and PDF
# --------------------------------------------------------------------------------------
def _tables(slide) -> list[list[list[str]]]:
    out = []
    for shape in slide.shapes:
        if shape.has_table:
            t = shape.table
            out.append([[t.cell(i, j).text for j in range(len(t.columns))]
                        for i in range(len(t.rows))])
    return out


def test_pptx(files, oracle, demo):
    from pptx import Presentation

    rows, plan_row = oracle
    plan = demo[2]
    prs = Presentation(str(files["pptx"]))
    slides = list(prs.slides)
    assert len(slides) == 1 + len(rows)
    assert slides[0].shapes.title.text == f"{plan.name}: territory plan"
    assert [s.shapes.title.text for s in slides[1:]] == [
        exports.territory_title(t, n) for t, n in zip(rows["territory_id"],
                                                       rows["territory_name"], strict=True)]
    # title slide: every KPI as summary gives it, and the overview map
    (kpis,) = _tables(slides[0])
    shown = {r[0]: r[1] for r in kpis[1:]}
    for col in exports.PLAN_KPIS:
        assert shown[exports.LABELS[col]] == exports.format_value(col, plan_row[col]), col
    assert shown["Accounts"] == f"{plan_row['accounts']:,}"
    assert any(s.shape_type == 13 for s in slides[0].shapes)  # a picture
    # territory slides: metrics and deviations as summary gives them, a map on each
    for k in (0, 1, int(np.argmax(rows["accounts"].to_numpy()))):
        row = rows.iloc[k]
        (table,) = _tables(slides[1 + k])
        assert table[0] == ["Metric", "Value", "vs mean"]
        shown = {r[0]: (r[1], r[2]) for r in table[1:]}
        for col, dev in exports.TERRITORY_KPIS:
            want = (exports.format_value(col, row[col]),
                    exports.format_value(dev, row[dev]) if dev else "")
            assert shown[exports.LABELS[col]] == want, (row["territory_id"], col)
        assert any(s.shape_type == 13 for s in slides[1 + k].shapes)
    t01 = {r[0]: r[1] for r in _tables(slides[1])[0][1:]}
    assert t01["Accounts"] == f"{int(rows.loc['T01', 'accounts']):,}"
    assert t01["Attainment"] == f"{rows.loc['T01', 'attainment']:.1%}"


def _pdf_pages(path: Path) -> list[str]:
    from pypdf import PdfReader

    return [p.extract_text() for p in PdfReader(str(path)).pages]


def test_pdf(files, oracle, demo):
    rows, plan_row = oracle
    pages = _pdf_pages(files["pdf"])
    assert len(pages) == 1 + len(rows)
    assert f"{demo[2].name}: territory plan" in pages[0]
    for col in exports.PLAN_KPIS:
        assert exports.format_value(col, plan_row[col]) in pages[0], col
    for k in (0, 5, len(rows) - 1):
        row, text = rows.iloc[k], pages[1 + k]
        assert exports.territory_title(row["territory_id"], row["territory_name"]) in text
        for col, dev in exports.TERRITORY_KPIS:
            assert exports.LABELS[col] in text
            assert exports.format_value(col, row[col]) in text, (row["territory_id"], col)
            if dev:
                assert exports.format_value(dev, row[dev]) in text


# --------------------------------------------------------------------------------------
# Excel, and its unit sheet imported back as a plan
# --------------------------------------------------------------------------------------
def _sheet(wb, name) -> pd.DataFrame:
    values = list(wb[name].iter_rows(values_only=True))
    return pd.DataFrame(values[1:], columns=values[0])


def test_xlsx(files, oracle, demo):
    import openpyxl

    rows, plan_row = oracle
    _, cur, plan, period, as_of, settings = demo
    wb = openpyxl.load_workbook(files["xlsx"], read_only=True)
    assert wb.sheetnames == list(exports.XLSX_SHEETS)
    assert wb.active.title == "territories"
    # territories: the summary rows, then the __plan__ row
    terr = _sheet(wb, "territories")
    assert terr["territory_id"].tolist() == [*rows["territory_id"], "__plan__"]
    for col in metrics.TERRITORY_COLUMNS:
        for got, want in zip(terr[col][:-1], rows[col], strict=True):
            assert _same(got, want), col
    last = terr.iloc[-1]
    for col in [*metrics.TERRITORY_COLUMNS[3:], *metrics.PLAN_COLUMNS]:
        assert _same(last[col], plan_row[col]), col
    # accounts: every account and the territory it resolves to
    acc = _sheet(wb, "accounts")
    resolved = metrics.resolved_accounts(cur, plan)
    assert len(acc) == len(resolved)
    assert dict(zip(acc["account_id"], [None if pd.isna(t) else t for t in acc["territory_id"]],
                    strict=True)) == {
        a: (None if pd.isna(t) else t)
        for a, t in zip(resolved["account_id"], resolved["territory_id"], strict=True)}
    # units: the assignment
    units = _sheet(wb, "units")
    assign = plans.assignment(cur, plan)
    assert units.columns.tolist()[:3] == ["unit_id", "unit_name", "territory_id"]
    assert sorted(zip(units["unit_id"], units["territory_id"], strict=True)) == sorted(
        zip(assign["unit_id"], assign["territory_id"], strict=True))
    # settings: the conditions, then every setting
    kept = dict(_sheet(wb, "settings").itertuples(index=False, name=None))
    assert kept["plan"] == plan.name
    assert kept["period"] == str(period)
    assert kept["as_of"] == as_of.isoformat()
    for name, value in settings.as_rows():
        assert _same(kept[name], value), name


def test_xlsx_imports_back_as_the_same_plan(files, demo, oracle, demo_copy):
    """The workbook's first sheet is the unit sheet: `plan import` reads it as it is, and
    the plan it makes has the same assignment and the same summary."""
    _, _, plan, period, as_of, settings = demo
    rows, plan_row = oracle
    with Store(demo_copy) as store:
        new, report = plans.import_plan(store, "Reimported", plan.unit, files["xlsx"])
        assert report.tables[0].rejected_rows == 0
        cur = store.cursor()
        pd.testing.assert_frame_equal(plans.assignment(cur, new),
                                      plans.assignment(cur, plans.get_plan(cur, plan.name)))
        new_rows, new_plan = metrics.summary(cur, new, period, as_of, settings)
    pd.testing.assert_frame_equal(new_rows, rows.reset_index(drop=True))
    assert all(_same(new_plan[k], plan_row[k]) for k in plan_row)


# --------------------------------------------------------------------------------------
# GeoJSON and GeoPackage
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def unit_areas(demo) -> dict[str, float]:
    """territory -> the sum of the geodesic areas of its units (m2)."""
    _, cur, plan, *_ = demo
    assign = plans.assignment(cur, plan)
    shapes = unit_shapes(plan.unit, assign["unit_id"].tolist())
    area = {u: abs(GEOD.geometry_area_perimeter(g)[0])
            for u, g in zip(shapes["unit_id"], shapes.geometry, strict=True)}
    return assign.assign(area=assign["unit_id"].map(area)).groupby("territory_id")[
        "area"].sum().to_dict()


def _rings(geom: dict):
    polys = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
    for poly in polys:
        yield from ((k, ring) for k, ring in enumerate(poly))


def test_geojson(files, oracle, unit_areas):
    rows, _ = oracle
    doc = json.loads(files["geojson"].read_text(encoding="utf-8"))
    assert doc["type"] == "FeatureCollection"
    feats = doc["features"]
    assert [f["properties"]["territory_id"] for f in feats] == rows["territory_id"].tolist()
    for f in feats:
        assert f["type"] == "Feature"
        props = f["properties"]
        row = rows.loc[props["territory_id"]]
        for col in metrics.TERRITORY_COLUMNS:
            assert _same(props[col], row[col]), (props["territory_id"], col)
        assert re.fullmatch(r"#[0-9A-Fa-f]{6}", props["color"])
        geom = f["geometry"]
        assert geom["type"] in ("Polygon", "MultiPolygon")
        for k, ring in _rings(geom):
            assert len(ring) >= 4
            assert ring[0] == ring[-1]
            xy = np.asarray(ring)
            assert (np.abs(xy[:, 0]) <= 180).all()
            assert (np.abs(xy[:, 1]) <= 90).all()
            # RFC 7946: exterior rings counter-clockwise, holes clockwise
            assert shapely.is_ccw(shapely.LinearRing(xy)) == (k == 0)
        shape = shapely.geometry.shape(geom)
        assert shape.is_valid
        area = abs(GEOD.geometry_area_perimeter(shape)[0])
        assert area == pytest.approx(unit_areas[props["territory_id"]], rel=0.005)


def test_gpkg(files, oracle, unit_areas):
    import pyogrio

    rows, _ = oracle
    gdf = pyogrio.read_dataframe(files["gpkg"], layer="territories")
    assert gdf.crs.to_epsg() == 4326
    assert gdf["territory_id"].tolist() == rows["territory_id"].tolist()
    for rec, geom in zip(gdf.to_dict(orient="records"), gdf.geometry, strict=True):
        row = rows.loc[rec["territory_id"]]
        for col in metrics.TERRITORY_COLUMNS:
            assert _same(rec[col], row[col]), (rec["territory_id"], col)
        assert geom.geom_type == "MultiPolygon"
        assert geom.is_valid
        area = abs(GEOD.geometry_area_perimeter(geom)[0])
        assert area == pytest.approx(unit_areas[rec["territory_id"]], rel=0.005)


def test_png(files):
    from PIL import Image

    with Image.open(files["png"]) as img:
        assert img.format == "PNG"
        assert img.width >= 1200
        assert 500 <= img.height <= img.width
        colours = img.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is not None
    assert len(colours) > 20


# --------------------------------------------------------------------------------------
# Salesforce Data Loader bundle
# --------------------------------------------------------------------------------------
def _read_zip(data: bytes | Path) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data) as zf:
        return {n: zf.read(n).decode("utf-8") for n in zf.namelist()}


def _csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_salesforce(files, demo):
    _, cur, plan, *_ = demo
    bundle = _read_zip(files["salesforce"])
    assert set(bundle) == {*exports.SALESFORCE_FILES, "README.txt"}
    headers = {n: bundle[n].splitlines()[0] for n in exports.SALESFORCE_FILES}
    assert headers == {
        "Territory2.csv": "Name,DeveloperName,Territory2ModelId,Territory2TypeId,Description",
        "Territory2_parents.csv": "Id,ParentTerritory2Id",
        "ObjectTerritory2Association.csv": "ObjectId,Territory2Id,AssociationCause",
        "UserTerritory2Association.csv": "UserId,Territory2Id,RoleInTerritory2",
    }
    terr = plans.territories(cur, plan)
    names = exports.developer_names(terr["territory_id"])
    by_name = {v: k for k, v in names.items()}
    t2 = _csv_rows(bundle["Territory2.csv"])[1:]
    assert len(t2) == len(terr)
    assert sorted(r[1] for r in t2) == sorted(names.values())
    for r in t2:
        assert re.fullmatch(r"[A-Za-z](?:[A-Za-z0-9]|_(?!_))*", r[1])
        assert len(r[1]) <= 80
        assert not r[1].endswith("_")
        assert r[2] == exports.MODEL_PLACEHOLDER
        assert r[3] == exports.TYPE_PLACEHOLDER
    assert {r[1]: r[0] for r in t2} == {
        names[t]: n for t, n in zip(terr["territory_id"], terr["territory_name"], strict=True)}
    # accounts: exactly the accounts the plan resolves to a territory
    resolved = metrics.resolved_accounts(cur, plan).dropna(subset=["territory_id"])
    assoc = _csv_rows(bundle["ObjectTerritory2Association.csv"])[1:]
    assert {r[2] for r in assoc} == {"Territory2Manual"}
    assert len(assoc) == len(resolved)
    assert {r[0]: by_name[r[1]] for r in assoc} == dict(
        zip(resolved["account_id"], resolved["territory_id"], strict=True))
    # users: one row per territory with a rep
    users = _csv_rows(bundle["UserTerritory2Association.csv"])[1:]
    with_rep = terr.dropna(subset=["rep_id"])
    assert sorted((r[0], by_name[r[1]]) for r in users) == sorted(
        zip(with_rep["rep_id"], with_rep["territory_id"], strict=True))
    # the README says what to load in which order
    readme = bundle["README.txt"]
    steps = ["Insert >\n   Territory2", "Update > Territory2",
             "Insert >\n   ObjectTerritory2Association", "Insert > UserTerritory2Association"]
    flat = " ".join(readme.split())
    positions = [flat.find(" ".join(s.split())) for s in steps]
    assert all(p >= 0 for p in positions), positions
    assert positions == sorted(positions), positions
    assert "Load order" in readme
    assert exports.MODEL_PLACEHOLDER in readme
    assert "Territory2Model" in readme
    assert "Territory2Type" in readme


def test_developer_names_are_valid_and_unique():
    ids = ["T01", "t01", "1st", "North-East / Boston", "a__b_", "", "x" * 120, "x" * 120 + "!"]
    names = exports.developer_names(ids)
    assert len({n.lower() for n in names.values()}) == len(set(ids))
    for n in names.values():
        assert re.fullmatch(r"[A-Za-z](?:[A-Za-z0-9]|_(?!_))*", n), n
        assert len(n) <= 80, n
        assert not n.endswith("_")
    assert names["T01"] == "T01"
    assert names["1st"] == "T_1st"


def test_export_bytes_for_a_download_button(demo):
    _, cur, plan, period, as_of, settings = demo
    data, name, mime = exports.export_bytes(cur, None, "salesforce", period=period,
                                            as_of=as_of, settings=settings)
    assert name == "Current_alignment_salesforce.zip"
    assert mime == "application/zip"
    assert set(_read_zip(data)) == {*exports.SALESFORCE_FILES, "README.txt"}
    with pytest.raises(InputError, match="unknown export format"):
        exports.export_bytes(cur, plan, "docx", period=period, as_of=as_of, settings=settings)


# --------------------------------------------------------------------------------------
# a plan compared with a baseline; a hierarchy; point units
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def alt_db(demo_db: Path, tmp_path_factory) -> Path:
    """A copy of the demo with plan "Alt": T40's units moved to T39, California's counties
    in a new territory T99 without a rep; and T39 made the parent of T38 in "Alt"."""
    path = tmp_path_factory.mktemp("alt") / "alt.duckdb"
    shutil.copyfile(demo_db, path)
    with Store(path) as store:
        cur = store.cursor()
        base = plans.get_plan(cur, None)
        frame = plans.assignment(cur, base).merge(
            plans.territories(cur, base)[["territory_id", "territory_name", "rep_id"]])
        frame.loc[frame["territory_id"] == "T40", ["territory_id", "territory_name",
                                                   "rep_id"]] = ["T39", "New York NY", "R039"]
        frame.loc[frame["unit_id"].str.startswith("06"), [
            "territory_id", "territory_name", "rep_id"]] = ["T99", "California", None]
        plan_file = path.parent / "alt.csv"
        frame.to_csv(plan_file, index=False)
        alt, _ = plans.import_plan(store, "Alt", base.unit, plan_file)
        edits.update_territory(store, alt, "T38", parent_id="T39")
    return path


@pytest.fixture(scope="module")
def alt_files(alt_db: Path, oracle, tmp_path_factory):
    """The Alt plan exported with "Current alignment" as its baseline, and the summaries
    to check it: Alt's (with disruption) and the baseline's (the demo's, unchanged)."""
    out = tmp_path_factory.mktemp("alt-exports")
    with Store(alt_db, read_only=True) as store:
        cur = store.cursor()
        period, as_of = resolve(store.get_meta("as_of"), None, None)
        settings = load_settings(store)
        alt, base = plans.get_plan(cur, "Alt"), plans.get_plan(cur, "Current alignment")
        pack = exports.PlanPack(cur, alt, period=period, as_of=as_of, settings=settings,
                                baseline=base)
        written = {}
        for fmt in ("pptx", "pdf", "xlsx", "salesforce"):
            start = time.perf_counter()
            written[fmt] = exports.export_plan(cur, alt, fmt, out, period=period,
                                               as_of=as_of, settings=settings, pack=pack)
            TIMINGS[f"{fmt} with a baseline"] = time.perf_counter() - start
        rows, plan_row = metrics.summary(cur, alt, period, as_of, settings, baseline=base)
    return written, rows, plan_row, oracle[0].reset_index(drop=True)


def test_comparison_with_a_baseline(alt_files):
    from pptx import Presentation

    written, rows, plan_row, base_rows = alt_files
    for fmt, secs in TIMINGS.items():
        if "baseline" in fmt:
            print(f"export {fmt}: {secs:.2f} s")
    # the deltas, from the two summaries
    a = rows.set_index("territory_id")
    b = base_rows.set_index("territory_id")
    expected = {}
    for t in [*a.index, *[t for t in b.index if t not in a.index]]:
        expected[t] = [float(a[m].get(t, 0.0)) - float(b[m].get(t, 0.0))
                       for m in exports.COMPARED]
    assert expected["T99"][0] > 0
    assert expected["T40"][0] < 0
    assert expected["T01"] == pytest.approx([0] * 4, abs=1e-6)
    # slides: 1 + territories + the comparison slide with the disruption and the deltas
    slides = list(Presentation(str(written["pptx"])).slides)
    assert len(slides) == 1 + len(rows) + 1
    last = slides[-1]
    assert last.shapes.title.text == "Compared with Current alignment"
    text = " ".join(s.text_frame.text for s in last.shapes if s.has_text_frame)
    share = exports.format_value("disruption_accounts_pct", plan_row["disruption_accounts_pct"])
    assert plan_row["disruption_accounts_pct"] > 0
    assert share in text
    cells = [r for table in _tables(last) for r in table[1:]]
    assert len(cells) == len(expected)
    for r in cells:
        t = r[0].split(" – ")[0]
        assert r[1:] == [exports.format_value(f"{m}_delta", v)
                         for m, v in zip(exports.COMPARED, expected[t], strict=True)], t
    # the PDF has the same comparison page; the workbook a comparison sheet
    pages = _pdf_pages(written["pdf"])
    assert len(pages) == 1 + len(rows) + 1
    assert "Compared with Current alignment" in pages[-1]
    assert share in pages[-1]
    import openpyxl

    wb = openpyxl.load_workbook(written["xlsx"], read_only=True)
    assert wb.sheetnames == [*exports.XLSX_SHEETS, "comparison"]
    comp = _sheet(wb, "comparison").set_index("territory_id")
    for t, deltas in expected.items():
        for m, v in zip(exports.COMPARED, deltas, strict=True):
            assert comp.loc[t, f"{m}_delta"] == pytest.approx(v, abs=1e-6)
    assert comp.loc["T40", "change"] == "removed"
    assert comp.loc["T99", "change"] == "new"


def test_salesforce_hierarchy_and_no_rep(alt_files):
    written, rows, *_ = alt_files
    bundle = _read_zip(written["salesforce"])
    assert _csv_rows(bundle["Territory2_parents.csv"]) == [["Id", "ParentTerritory2Id"],
                                                           ["T38", "T39"]]
    users = {r[1] for r in _csv_rows(bundle["UserTerritory2Association.csv"])[1:]}
    assert "T99" not in users
    assert len(users) == int(rows["rep_id"].notna().sum())


def test_point_units_tile_without_overlap(alt_db, tmp_path):
    """ZIP3 units have no polygons: each is drawn as its Voronoi cell cut to a disc, so
    territories are polygons that do not overlap."""
    work = tmp_path / "zip3.duckdb"
    shutil.copyfile(alt_db, work)
    with Store(work) as store:
        base = plans.get_plan(store.cursor(), "Current alignment")
        zplan, _ = edits.convert_plan(store, base, UnitType.parse("zip3"), "ZIP3")
        cur = store.cursor()
        period, as_of = resolve(store.get_meta("as_of"), None, None)
        path = exports.export_plan(cur, zplan, "geojson", tmp_path, period=period,
                                   as_of=as_of, settings=load_settings(store))
    feats = json.loads(path.read_text())["features"]
    shapes = [shapely.geometry.shape(f["geometry"]) for f in feats if f["geometry"]]
    assert len(shapes) >= 35
    assert all(s.is_valid and s.area > 0 for s in shapes)
    total = shapely.union_all(shapes).area
    assert sum(s.area for s in shapes) == pytest.approx(total, rel=1e-3)


# --------------------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------------------
def test_cli_export(demo_db, tmp_path, capsys):
    out = tmp_path / "bundle.zip"
    assert main(["export", "--db", str(demo_db), "--format", "salesforce", "--out",
                 str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert zipfile.is_zipfile(out)
    assert main(["export", "--db", str(demo_db), "--format", "docx", "--out", str(out)]) == 2
    assert main(["export", "--db", str(demo_db), "--plan", "Nope", "--format", "png",
                 "--out", str(tmp_path / "x.png")]) == 2
    assert "no plan named 'Nope'" in capsys.readouterr().err
    assert main(["export", "--db", str(demo_db), "--baseline", "Nope", "--format", "pdf",
                 "--out", str(tmp_path / "x.pdf")]) == 2
    assert not (tmp_path / "x.png").exists()
    assert not (tmp_path / "x.pdf").exists()


@pytest.mark.parametrize("fmt", ["geojson", "gpkg"])
def test_polygons_import_back_as_the_same_plan(fmt, files, demo, oracle, demo_copy):
    """Round trip: the exported territory polygons, imported as a plan (each county to the
    polygon holding its centre), give the same assignment, names, reps and summary."""
    from analytics import plan_import

    _, _, plan, period, as_of, settings = demo
    rows, plan_row = oracle
    with Store(demo_copy) as store:
        new, report, details = plan_import.import_plan_polygons(
            store, f"From {fmt}", plan.unit, files[fmt])
        assert report.clean
        assert details["empty_features"] == []
        cur = store.cursor()
        pd.testing.assert_frame_equal(plans.assignment(cur, new),
                                      plans.assignment(cur, plans.get_plan(cur, plan.name)))
        terr = plans.territories(cur, new)
        new_rows, new_plan = metrics.summary(cur, new, period, as_of, settings)
    assert terr[["territory_id", "territory_name", "rep_id"]].values.tolist() == \
        rows.reset_index(drop=True)[["territory_id", "territory_name", "rep_id"]].values.tolist()
    pd.testing.assert_frame_equal(new_rows, rows.reset_index(drop=True))
    assert all(_same(new_plan[k], plan_row[k]) for k in plan_row)
