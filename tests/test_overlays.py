"""Overlays a manager imports: stored whole or not at all, every bad row reported by file,
row and column, and added up onto coarser units by hand-checkable rules."""

from __future__ import annotations

import json

import h3
import pandas as pd
import pytest
from conftest import write_csv

from analytics import geography, overlays
from analytics.errors import InputError
from analytics.ingest import ImportRejected
from analytics.store import Store
from analytics.units import UnitType


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "atlas.duckdb") as s:
        yield s


def test_a_zip_overlay_adds_up_onto_zip3_county_state_and_cells(store, tmp_path):
    # Agawam 01001 (Hampden County, 25013), Amherst 01002 and Hadley 01035 (Hampshire
    # County, 25015), all in Massachusetts; 02108 Boston (Suffolk, 25025)
    path = write_csv(tmp_path / "competitors.csv", [
        ["ZIP", "competitors", "sizing"],
        ["01001", "3", "1000"], ["1002", "2", "250.5"], ["01035", "1", ""],
        ["02108", "4", "1,500"]])
    report = overlays.import_overlay(store, path, "Rivals", "zip5")
    assert report.rows == 4
    cur = store.cursor()
    assert overlays.list_overlays(cur)[["name", "key_kind", "columns", "keys"]].values.tolist() \
        == [["Rivals", "zip5", "competitors, sizing", 4]]
    zip5 = overlays.unit_values(cur, "Rivals", "competitors", UnitType("zip5"))
    assert zip5.to_dict() == {"01001": 3, "01002": 2, "01035": 1, "02108": 4}
    assert overlays.unit_values(cur, "Rivals", "competitors", UnitType("zip3")).to_dict() \
        == {"010": 6, "021": 4}
    assert overlays.unit_values(cur, "Rivals", "competitors", UnitType("county")).to_dict() \
        == {"25013": 3, "25015": 3, "25025": 4}
    assert overlays.unit_values(cur, "Rivals", "competitors", UnitType("state")).to_dict() \
        == {"MA": 10}
    # an empty cell is no value; "1,500" is 1500
    assert overlays.unit_values(cur, "Rivals", "sizing", UnitType("zip5")).to_dict() \
        == {"01001": 1000, "01002": 250.5, "02108": 1500}
    # H3: each ZIP's shipped point placed with h3-py
    points = pd.read_parquet(geography.US_ZIP_FILE).set_index("zip")
    expected: dict[str, float] = {}
    for z, n in {"01001": 3, "01002": 2, "01035": 1, "02108": 4}.items():
        cell = h3.latlng_to_cell(points.at[z, "lat"], points.at[z, "lon"], 5)
        expected[cell] = expected.get(cell, 0) + n
    assert overlays.unit_values(cur, "Rivals", "competitors",
                                UnitType("h3", 5)).to_dict() == expected


def test_a_cell_overlay_goes_to_its_parents_and_not_to_finer_cells(store, tmp_path):
    a = h3.latlng_to_cell(40.0, -100.0, 6)
    b = h3.latlng_to_cell(40.3, -100.4, 6)
    path = write_csv(tmp_path / "cells.csv", [["h3", "stores"], [a, "5"], [b, "7"]])
    overlays.import_overlay(store, path, "Stores", "h3:6")
    cur = store.cursor()
    parents = overlays.unit_values(cur, "Stores", "stores", UnitType("h3", 4))
    expected = pd.Series([5.0, 7.0], index=[h3.cell_to_parent(a, 4), h3.cell_to_parent(b, 4)])
    assert parents.to_dict() == expected.groupby(level=0).sum().to_dict()
    assert overlays.layers(cur, UnitType("h3", 4)) == [("Stores", "stores")]
    assert overlays.layers(cur, UnitType("h3", 7)) == []
    assert overlays.layers(cur, UnitType("county")) == []


def test_bad_rows_are_reported_and_nothing_is_stored(store, tmp_path):
    good = write_csv(tmp_path / "good.csv", [["county", "reps"], ["06037", "9"]])
    overlays.import_overlay(store, good, "Reps", "county")
    bad = write_csv(tmp_path / "bad.csv", [
        ["county", "reps", "budget"],
        ["06037", "12", "100"],
        ["ABCDE", "1", "2"],          # row 3: not a county code
        ["06037", "2", "3"],          # row 4: repeated key
        ["17031", "two", "5"],        # row 5: not a number
        ["48201", "1", "inf"],        # row 6: not a finite number
        ["", "1", "1"]])              # row 7: no key
    with pytest.raises(ImportRejected) as err:
        overlays.import_overlay(store, bad, "Reps", "county")
    got = {(r.file, r.row, r.column, r.reason.split(":")[0].split(" (")[0])
           for r in err.value.report.rejections}
    assert got == {("bad.csv", 3, "county", "not a US county code"),
                   ("bad.csv", 4, "county", "repeated key"),
                   ("bad.csv", 5, "reps", "not a number"),
                   ("bad.csv", 6, "budget", "not a number"),
                   ("bad.csv", 7, "county", "empty key")}
    assert "nothing was stored" in str(err.value)
    cur = store.cursor()  # the stored overlay of that name is as it was
    assert overlays.unit_values(cur, "Reps", "reps", UnitType("county")).to_dict() \
        == {"06037": 9}
    assert overlays.list_overlays(cur)["columns"].tolist() == ["reps"]


@pytest.mark.parametrize("name", ["", " ", "a" * 61, "=cmd()", "x;y"])
def test_names_a_spreadsheet_or_a_shell_would_read(store, tmp_path, name):
    path = write_csv(tmp_path / "x.csv", [["zip", "n"], ["01001", "1"]])
    with pytest.raises(Exception, match="overlay name"):
        overlays.import_overlay(store, path, name, "zip5")


def test_a_coarser_key_is_not_offered_on_finer_units(store, tmp_path):
    path = write_csv(tmp_path / "states.csv", [["state", "n"], ["ca", "1"], ["TX", "2"]])
    overlays.import_overlay(store, path, "By state", "state")
    cur = store.cursor()
    assert overlays.layers(cur, UnitType("state")) == [("By state", "n")]
    assert overlays.layers(cur, UnitType("county")) == []
    assert overlays.unit_values(cur, "By state", "n", UnitType("state")).to_dict() \
        == {"CA": 1, "TX": 2}
    with pytest.raises(Exception, match="cannot be shown on county"):
        overlays.unit_values(cur, "By state", "n", UnitType("county"))
    overlays.delete_overlay(store, "By state")
    assert overlays.list_overlays(store.cursor()).empty


def test_the_command_line_imports_lists_and_deletes(tmp_path, capsys):
    from analytics.cli import main

    db = tmp_path / "atlas.duckdb"
    path = write_csv(tmp_path / "c.csv", [["fips", "clinics"], ["6037", "40"],
                                          ["17031", "x"]])
    assert main(["overlay", "import", str(path), "--db", str(db), "--name", "Clinics",
                 "--key", "county", "--report", str(tmp_path / "bad.csv")]) == 2
    err = capsys.readouterr().err
    assert "c.csv, row 3, column 'clinics': 'x': not a number" in err
    assert pd.read_csv(tmp_path / "bad.csv")["row"].tolist() == [3]
    write_csv(path, [["fips", "clinics"], ["6037", "40"], ["17031", "12"]])
    assert main(["overlay", "import", str(path), "--db", str(db), "--name", "Clinics",
                 "--key", "county"]) == 0
    assert "2 rows stored, columns clinics" in capsys.readouterr().out
    assert main(["overlay", "list", "--db", str(db), "--format", "json"]) == 0
    listed = pd.DataFrame(json.loads(capsys.readouterr().out))
    assert listed[["name", "key_kind", "keys"]].values.tolist() == [["Clinics", "county", 2]]
    assert main(["overlay", "delete", "Clinics", "--db", str(db)]) == 0
    assert main(["overlay", "delete", "Clinics", "--db", str(db)]) == 2


def test_only_an_admin_imports_an_overlay(store, tmp_path):
    from analytics import users

    users.add_user(store, "ada", "admin", "a long password")
    with users.acting_as(users.get_user(store.cursor(), "ada")):
        users.add_user(store, "vic", "viewer", "a long password")
    path = write_csv(tmp_path / "x.csv", [["zip", "n"], ["01001", "1"]])
    with users.acting_as(users.get_user(store.cursor(), "vic")), \
            pytest.raises(Exception, match="only an admin"):
        overlays.import_overlay(store, path, "X", "zip5")
    assert overlays.list_overlays(store.cursor()).empty


@pytest.mark.parametrize("header", ["=SUM(A1)", "a,b", "x=1", "+1", "@cmd"])
def test_a_column_name_that_cannot_name_a_layer_is_refused(store, tmp_path, header):
    path = tmp_path / "h.csv"
    path.write_text(f'zip,"{header}"\n01001,1\n', encoding="utf-8")
    with pytest.raises(InputError, match="rename it") as err:
        overlays.import_overlay(store, path, "H", "zip5")
    assert err.value.column == header
    assert overlays.list_overlays(store.cursor()).empty
