"""Import of accounts, deals and reps: column matching, parsing, placement, rejections.

Expected values are written by hand or computed independently (the h3 library per point,
plain pandas over the shipped reference files), never by the importer itself.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import h3
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import REPO, rows, scalar, snapshot, write_csv

from analytics import ingest
from analytics.errors import InputError
from analytics.ingest import ImportRejected
from analytics.store import Store

US_ZIP = pd.read_parquet(REPO / "data" / "reference" / "us_zip.parquet")
FR_POSTAL = pd.read_parquet(REPO / "data" / "reference" / "fr_postal.parquet")

ACCOUNT_HEADER = ["account_id", "name", "lat", "lon", "postal_code", "country", "potential"]


def account(store, account_id: str) -> dict:
    frame = store.cursor().execute(
        "SELECT * FROM accounts WHERE account_id = ?", [account_id]
    ).df()
    assert len(frame) == 1, f"{account_id}: {len(frame)} rows"
    rec = frame.iloc[0].to_dict()
    return {k: (None if not isinstance(v, str) and pd.isna(v) else v) for k, v in rec.items()}


def ids(store, table: str = "accounts", key: str = "account_id") -> list[str]:
    return [r[0] for r in rows(store, f"SELECT {key} FROM {table} ORDER BY {key}")]


def rejection_set(report) -> set[tuple]:
    """(row, column, value) of every rejection."""
    return {(r.row, r.column, r.value) for r in report.rejections}


def find(report, row: int, column: str) -> ingest.Rejection:
    hits = [r for r in report.rejections if r.row == row and r.column == column]
    assert len(hits) == 1, f"row {row} column {column}: {report.rejections}"
    return hits[0]


def zip_point(code: str) -> tuple[float, float]:
    rec = US_ZIP[US_ZIP["zip"] == code].iloc[0]
    return float(rec["lat"]), float(rec["lon"])


# --------------------------------------------------------------------------------------
# column matching
# --------------------------------------------------------------------------------------
def test_canonical_names_comma_csv(store, make_csv):
    path = make_csv("accounts.csv", [
        ["account_id", "name", "lat", "lon", "postal_code", "country", "segment", "industry",
         "potential", "owner_rep_id", "last_activity_date", "visits_per_year"],
        ["A1", "Boston Clinic", "42.3601", "-71.0589", "02108", "US", "Clinic", "Cardiology",
         "1500.25", "R1", "2026-02-03", "6"],
        ["A2", "Chicago Lab", "41.8781", "-87.6298", "60601", "USA", "Hospital", "Oncology",
         "", "", "", ""],
    ])
    report = ingest.load(store, accounts=path)
    assert report.committed
    assert report.clean
    (tr,) = report.tables
    assert tr.rows == 2
    assert tr.inserted == 2
    assert tr.updated == 0
    assert tr.columns == {n: n for n in tr.columns}  # every field matched by its own name
    assert set(tr.columns) == {
        "account_id", "name", "lat", "lon", "postal_code", "country", "segment", "industry",
        "potential", "owner_rep_id", "last_activity_date", "visits_per_year",
    }
    a1 = account(store, "A1")
    assert a1["name"] == "Boston Clinic"
    assert a1["lat"] == pytest.approx(42.3601)
    assert a1["lon"] == pytest.approx(-71.0589)
    assert a1["postal_code"] == "02108"
    assert a1["zip5"] == "02108"
    assert a1["zip3"] == "021"
    assert a1["country"] == "US"
    assert a1["segment"] == "Clinic"
    assert a1["industry"] == "Cardiology"
    assert a1["potential"] == pytest.approx(1500.25)
    assert a1["owner_rep_id"] == "R1"
    assert pd.Timestamp(a1["last_activity_date"]).date() == dt.date(2026, 2, 3)
    assert a1["visits_per_year"] == 6
    assert a1["placed_by"] == "file"
    a2 = account(store, "A2")
    assert a2["country"] == "US"  # "USA" normalised
    assert a2["potential"] == 0  # empty potential counts as 0
    assert a2["owner_rep_id"] is None
    assert a2["last_activity_date"] is None
    assert a2["visits_per_year"] is None


def test_aliases_semicolon_csv(store, make_csv):
    path = make_csv("kunden.csv", [
        ["Customer ID", "Company", "Latitude", "Longitude", "Zip Code", "Country Code",
         "Tier", "Sector", "Sales Potential", "Owner ID", "Last Activity", "Visits"],
        ["C-1", "Acme", "42,3601", "-71,0589", "02108", "us", "Gold", "Retail", "1 234,5",
         "R9", "2026-05-06", "4"],
    ], delimiter=";")
    report = ingest.load(store, accounts=path)
    assert report.clean
    assert report.tables[0].columns == {
        "account_id": "Customer ID", "name": "Company", "lat": "Latitude",
        "lon": "Longitude", "postal_code": "Zip Code", "country": "Country Code",
        "segment": "Tier", "industry": "Sector", "potential": "Sales Potential",
        "owner_rep_id": "Owner ID", "last_activity_date": "Last Activity",
        "visits_per_year": "Visits",
    }
    c1 = account(store, "C-1")
    assert c1["name"] == "Acme"
    assert c1["lat"] == pytest.approx(42.3601)
    assert c1["lon"] == pytest.approx(-71.0589)
    assert c1["country"] == "US"
    assert c1["segment"] == "Gold"
    assert c1["industry"] == "Retail"
    assert c1["potential"] == pytest.approx(1234.5)
    assert c1["owner_rep_id"] == "R9"
    assert c1["visits_per_year"] == 4


def test_salesforce_reports(store, make_csv, tmp_path):
    users = make_csv("User.csv", [["Id", "Name"], ["005A", "Ann Rep"], ["005B", "Bob Rep"]])
    accounts = make_csv("Account.tsv", [
        ["Id", "Name", "BillingLatitude", "BillingLongitude", "BillingPostalCode",
         "BillingCountry", "Industry", "AnnualRevenue", "OwnerId"],
        ["001A", "Mass General", "42.3626", "-71.0685", "02114", "United States",
         "Healthcare", "2500000", "005A"],
        ["001B", "Beacon Hill Clinic", "", "", "02108", "USA", "Healthcare", "$12", "005B"],
    ], delimiter="\t")
    opps = make_csv("Opportunity.csv", [
        ["Id", "AccountId", "Amount", "CloseDate", "StageName", "IsWon", "IsClosed",
         "OwnerId"],
        ["006A", "001A", "1,234.50", "03/15/2026", "Closed Won", "true", "true", "005A"],
        ["006B", "001A", "500", "2026-04-01", "Prospecting", "false", "false", "005A"],
        ["006C", "001B", "75", "12/01/2025", "Closed Lost", "false", "true", "005B"],
    ])
    report = ingest.load(store, reps=users, accounts=accounts, sales=opps)
    assert report.clean, report.rejections
    by_table = {t.table: t.columns for t in report.tables}
    assert by_table["reps"] == {"rep_id": "Id", "name": "Name"}
    assert by_table["accounts"] == {
        "account_id": "Id", "name": "Name", "lat": "BillingLatitude",
        "lon": "BillingLongitude", "postal_code": "BillingPostalCode",
        "country": "BillingCountry", "industry": "Industry", "potential": "AnnualRevenue",
        "owner_rep_id": "OwnerId",
    }
    assert by_table["sales"] == {
        "opportunity_id": "Id", "account_id": "AccountId", "amount": "Amount",
        "close_date": "CloseDate", "stage": "StageName", "is_won": "IsWon",
        "is_closed": "IsClosed", "rep_id": "OwnerId",
    }
    assert rows(store, "SELECT rep_id, name FROM reps ORDER BY rep_id") == [
        ("005A", "Ann Rep"), ("005B", "Bob Rep"),
    ]
    assert account(store, "001A")["potential"] == 2_500_000
    assert account(store, "001B")["potential"] == 12  # "$12"
    assert account(store, "001B")["owner_rep_id"] == "005B"
    assert rows(store, "SELECT opportunity_id, account_id, amount, close_date, stage, rep_id "
                       "FROM sales ORDER BY opportunity_id") == [
        ("006A", "001A", 1234.5, dt.date(2026, 3, 15), "won", "005A"),
        ("006B", "001A", 500.0, dt.date(2026, 4, 1), "open", "005A"),
        ("006C", "001B", 75.0, dt.date(2025, 12, 1), "lost", "005B"),
    ]


def test_salesforce_stage_names_without_flags(store, make_csv):
    acc = make_csv("a.csv", [ACCOUNT_HEADER, ["A1", "x", "42.36", "-71.06", "", "US", "1"]])
    opps = make_csv("o.csv", [
        ["Id", "AccountId", "Amount", "CloseDate", "StageName"],
        ["O1", "A1", "10", "2026-01-10", "Closed Won"],
        ["O2", "A1", "20", "2026-01-11", "Negotiation/Review"],
        ["O3", "A1", "30", "2026-01-12", "Closed Lost"],
        ["O4", "A1", "40", "2026-01-13", "won"],
    ])
    report = ingest.load(store, accounts=acc, sales=opps)
    assert report.clean
    assert rows(store, "SELECT opportunity_id, stage FROM sales ORDER BY 1") == [
        ("O1", "won"), ("O2", "open"), ("O3", "lost"), ("O4", "won"),
    ]


def test_explicit_mapping_overrides_matching(store, make_csv):
    path = make_csv("geo.csv", [
        ["account_id", "lat", "lon", "Y_COORD", "X_COORD"],
        # lat/lon here are deliberately wrong (a decoy): the mapping must win
        ["A1", "10", "10", "42.3601", "-71.0589"],
    ])
    mapping = ingest.parse_mapping(["accounts.lat=Y_COORD", "accounts.lon=X_COORD"])
    assert mapping == {"accounts": {"lat": "Y_COORD", "lon": "X_COORD"}}
    report = ingest.load(store, accounts=path, mapping=mapping)
    assert report.clean
    assert report.tables[0].columns["lat"] == "Y_COORD"
    assert report.tables[0].columns["lon"] == "X_COORD"
    a1 = account(store, "A1")
    assert (a1["lat"], a1["lon"]) == (pytest.approx(42.3601), pytest.approx(-71.0589))
    assert a1["state"] == "MA"


@pytest.mark.parametrize(
    ("item", "needle"),
    [
        ("accounts.lat", "expected table.field=Column"),
        ("lat=Y", "expected table.field=Column"),
        ("accounts.lat=", "expected table.field=Column"),
        ("customers.lat=Y", "unknown table 'customers'"),
        ("accounts.latitude=Y", "accounts has no field 'latitude'"),
    ],
)
def test_parse_mapping_errors(item, needle):
    with pytest.raises(InputError, match="--map") as exc:
        ingest.parse_mapping([item])
    assert needle in str(exc.value)


def test_mapping_to_a_missing_column(store, make_csv):
    path = make_csv("a.csv", [["account_id", "lat", "lon"], ["A1", "42.36", "-71.06"]])
    mapping = ingest.parse_mapping(["accounts.lat=Y_COORD"])
    before = snapshot(store)
    with pytest.raises(InputError) as exc:
        ingest.load(store, accounts=path, mapping=mapping)
    msg = str(exc.value)
    assert str(path) in msg
    assert "Y_COORD" in msg
    assert "account_id, lat, lon" in msg
    assert snapshot(store) == before


# --------------------------------------------------------------------------------------
# values: numbers, dates, encodings, file formats
# --------------------------------------------------------------------------------------
def test_number_formats(store, make_csv):
    path = make_csv("n.csv", [
        ["account_id", "lat", "lon", "potential"],
        ["N1", "42.36", "-71.06", "1,234.50"],
        ["N2", "42.36", "-71.06", "$12"],
        ["N3", "42.36", "-71.06", "1 234,5"],
        ["N4", "42.36", "-71.06", "1.234.567,25"],
        ["N5", "42.36", "-71.06", "€ 7"],
        ["N6", "42.36", "-71.06", "1234"],
        ["N7", "42.36", "-71.06", "0,5"],
    ])
    report = ingest.load(store, accounts=path)
    assert report.clean, report.rejections
    got = dict(rows(store, "SELECT account_id, potential FROM accounts"))
    assert got == {"N1": 1234.5, "N2": 12.0, "N3": 1234.5, "N4": 1234567.25, "N5": 7.0,
                   "N6": 1234.0, "N7": 0.5}


def test_dates_us_and_iso(store, make_csv):
    acc = make_csv("a.csv", [ACCOUNT_HEADER, ["A1", "x", "42.36", "-71.06", "", "US", "1"]])
    sales = make_csv("s.csv", [
        ["opportunity_id", "account_id", "amount", "close_date", "stage"],
        ["S1", "A1", "1", "03/15/2026", "won"],   # US month/day/year
        ["S2", "A1", "1", "04/01/2026", "won"],   # April 1st, not January 4th
        ["S3", "A1", "1", "2026-12-31", "open"],  # ISO
        ["S4", "A1", "1", "1/2/2026", "lost"],    # no leading zeros
    ])
    assert ingest.load(store, accounts=acc, sales=sales).clean
    assert dict(rows(store, "SELECT opportunity_id, close_date FROM sales")) == {
        "S1": dt.date(2026, 3, 15), "S2": dt.date(2026, 4, 1), "S3": dt.date(2026, 12, 31),
        "S4": dt.date(2026, 1, 2),
    }


def test_day_first_dates_when_the_column_says_so(store, make_csv):
    acc = make_csv("a.csv", [ACCOUNT_HEADER, ["A1", "x", "42.36", "-71.06", "", "FR", "1"]])
    sales = make_csv("s.csv", [
        ["opportunity_id", "account_id", "amount", "close_date", "stage"],
        ["S1", "A1", "1", "15/03/2026", "won"],   # cannot be month 15: the column is d/m/y
        ["S2", "A1", "1", "01/04/2026", "won"],   # so this is April 1st
        ["S3", "A1", "1", "31.12.2026", "open"],  # dotted day.month.year
    ], delimiter=";")
    assert ingest.load(store, accounts=acc, sales=sales).clean
    assert dict(rows(store, "SELECT opportunity_id, close_date FROM sales")) == {
        "S1": dt.date(2026, 3, 15), "S2": dt.date(2026, 4, 1), "S3": dt.date(2026, 12, 31),
    }


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1"])
def test_windows_1252_and_latin1_csv(store, make_csv, encoding):
    names = ["Café Élysée", "Hôpital Saint-Éloi", "Clinique Müller & Söhne", "Centre Œil"]
    if encoding == "latin-1":
        names[3] = "Centre Ñandú"  # Latin-1 has no Œ
    path = make_csv("accents.csv", [
        ["account_id", "name", "lat", "lon"],
        *[[f"E{i}", n, "48.85", "2.35"] for i, n in enumerate(names)],
    ], delimiter=";", encoding=encoding)
    raw = path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # the file really is not UTF-8
    report = ingest.load(store, accounts=path)
    assert report.clean
    got = dict(rows(store, "SELECT account_id, name FROM accounts"))
    assert got == {f"E{i}": n for i, n in enumerate(names)}


def test_utf8_bom_header(store, tmp_path):
    path = tmp_path / "bom.csv"
    path.write_text("account_id,name,lat,lon\nB1,Zoë,42.36,-71.06\n", encoding="utf-8-sig")
    report = ingest.load(store, accounts=path)
    assert report.clean
    # the byte-order mark is not part of the first column's name
    assert report.tables[0].columns["account_id"] == "account_id"
    assert rows(store, "SELECT account_id, name FROM accounts") == [("B1", "Zoë")]


def test_excel_file(store, tmp_path):
    frame = pd.DataFrame({
        "Account ID": ["X1", "X2", "X3"],
        "Account Name": ["Excel One", "Excel Two", "Excel Three"],
        "Latitude": [42.3601, None, 41.8781],
        "Longitude": [-71.0589, None, -87.6298],
        "ZIP": ["02108", "02114", "60601"],
        "Annual Revenue": [1000.5, 2000, -3],
        "Last Activity Date": [pd.Timestamp("2026-01-31"), pd.Timestamp("2026-02-28"), None],
    })
    path = tmp_path / "accounts.xlsx"
    frame.to_excel(path, index=False, engine="openpyxl")
    report = ingest.load(store, accounts=path)
    # X3 has a negative revenue: Excel row 4 (header is row 1)
    (rej,) = report.rejections
    assert (rej.file, rej.row, rej.column, rej.reason) == (
        str(path), 4, "Annual Revenue", "must not be negative",
    )
    assert float(rej.value) == -3
    assert ids(store) == ["X1", "X2"]
    x1, x2 = account(store, "X1"), account(store, "X2")
    assert x1["potential"] == 1000.5
    assert x1["zip5"] == "02108"
    assert pd.Timestamp(x1["last_activity_date"]).date() == dt.date(2026, 1, 31)
    assert x2["placed_by"] == "postal_code"
    assert (x2["lat"], x2["lon"]) == pytest.approx(zip_point("02114"))
    assert pd.Timestamp(x2["last_activity_date"]).date() == dt.date(2026, 2, 28)


def test_parquet_file_with_typed_columns(store, tmp_path):
    nan = float("nan")  # what numpy and some Parquet writers store for a missing float
    accounts = pa.table({
        "account_id": ["P1", "P2", "P3", "P4"],
        "lat": pa.array([42.3601, None, 95.0, nan], pa.float64()),
        "lon": pa.array([-71.0589, None, 10.0, nan], pa.float64()),
        "zip": pa.array([2108, 2108, None, 60601], pa.int64()),  # a number: zero lost
        "potential": pa.array([10.0, 20.0, 30.0, nan]),
    })
    sales = pa.table({
        "opportunity_id": ["S1", "S2"],
        "account_id": ["P1", "P2"],
        "amount": pa.array([5.5, 6.5]),
        "close_date": pa.array([dt.date(2026, 3, 1), dt.date(2026, 4, 1)], pa.date32()),
        "stage": ["won", "open"],
    })
    pq.write_table(accounts, tmp_path / "accounts.parquet")
    pq.write_table(sales, tmp_path / "sales.parquet")
    report = ingest.load(store, accounts=tmp_path / "accounts.parquet",
                         sales=tmp_path / "sales.parquet")
    # Parquet rows are numbered 1.. (no header row)
    (rej,) = report.rejections
    assert (rej.row, rej.column, rej.reason) == (3, "lat", "latitude must be between -90 and 90")
    assert float(rej.value) == 95
    assert ids(store) == ["P1", "P2", "P4"]
    assert account(store, "P1")["zip5"] == "02108"
    p2 = account(store, "P2")
    assert p2["placed_by"] == "postal_code"
    assert p2["postal_code"] == "02108"
    # NaN is a missing value, not a bad one: placed by its ZIP code, potential 0
    p4 = account(store, "P4")
    assert p4["placed_by"] == "postal_code"
    assert (p4["lat"], p4["lon"]) == pytest.approx(zip_point("60601"))
    assert p4["potential"] == 0
    assert rows(store, "SELECT opportunity_id, amount, close_date, stage FROM sales "
                       "ORDER BY 1") == [
        ("S1", 5.5, dt.date(2026, 3, 1), "won"), ("S2", 6.5, dt.date(2026, 4, 1), "open"),
    ]


# --------------------------------------------------------------------------------------
# placement: postal codes, point in polygon, H3
# --------------------------------------------------------------------------------------
def test_us_zip_placement_keeps_leading_zero(store, make_csv):
    path = make_csv("zips.csv", [
        ["account_id", "postal_code", "country"],
        ["Z1", "02108", "US"],
        ["Z2", "02108-1234", "US"],   # ZIP+4
        ["Z3", "2108", ""],           # a spreadsheet dropped the leading zero; country missing
        ["Z4", "60601", "USA"],
    ])
    report = ingest.load(store, accounts=path)
    assert report.clean, report.rejections
    assert any("4 accounts had no coordinates" in n for n in report.tables[0].notes)
    boston = zip_point("02108")
    for aid in ("Z1", "Z2", "Z3"):
        a = account(store, aid)
        assert a["placed_by"] == "postal_code"
        assert (a["lat"], a["lon"]) == pytest.approx(boston)
        assert a["postal_code"] == "02108"
        assert a["zip5"] == "02108"
        assert a["zip3"] == "021"
        assert a["country"] == "US"
        assert a["county"] == "25025"
        assert a["state"] == "MA"
        assert a["fr_dept"] is None
        assert a["fr_commune"] is None
    z4 = account(store, "Z4")
    assert (z4["lat"], z4["lon"]) == pytest.approx(zip_point("60601"))
    assert z4["county"] == "17031"
    assert z4["state"] == "IL"


def test_french_postal_placement(store, make_csv):
    path = make_csv("fr.csv", [
        ["account_id", "name", "code postal", "pays"],
        ["F1", "Louvre", "75001", "France"],
        ["F2", "Ajaccio", "20000", "FR"],      # Corse-du-Sud
        ["F3", "Bastia", "20200", "FR"],       # Haute-Corse
        ["F4", "Nice", "06000", "France"],
        ["F5", "Nice sans zéro", "6000", "FR"],
    ])
    report = ingest.load(store, accounts=path)
    assert report.clean, report.rejections
    f1 = account(store, "F1")
    assert f1["placed_by"] == "postal_code"
    assert f1["country"] == "FR"
    assert f1["fr_dept"] == "75"
    assert f1["postal_code"] == "75001"
    assert f1["lat"] == pytest.approx(48.86, abs=0.05)  # Paris
    assert f1["lon"] == pytest.approx(2.34, abs=0.05)
    assert f1["county"] is None
    assert f1["state"] is None
    assert f1["zip5"] is None
    f2 = account(store, "F2")
    assert f2["fr_dept"] == "2A"
    assert f2["fr_commune"] == "2A004"
    ajaccio = FR_POSTAL[FR_POSTAL["commune"] == "2A004"].iloc[0]
    assert (f2["lat"], f2["lon"]) == pytest.approx((ajaccio["lat"], ajaccio["lon"]))
    f3 = account(store, "F3")
    assert f3["fr_dept"] == "2B"
    assert f3["fr_commune"] == "2B033"
    for aid in ("F4", "F5"):
        nice = account(store, aid)
        assert nice["fr_dept"] == "06"
        assert nice["fr_commune"] == "06088"
        assert nice["postal_code"] == "06000"


def test_point_in_polygon_fills_county_and_state(store, make_csv):
    path = make_csv("pts.csv", [
        ["account_id", "lat", "lon"],
        ["BOS", "42.3601", "-71.0589"],    # Boston: Suffolk County, MA
        ["CHI", "41.8781", "-87.6298"],    # Chicago: Cook County, IL
        ["LAX", "34.0522", "-118.2437"],   # Los Angeles County, CA
        ["NYC", "40.7484", "-73.9857"],    # Manhattan: New York County, NY
        ["PAR", "48.8566", "2.3522"],      # Paris: not a US county
        ["AJA", "41.9268", "8.7369"],      # Ajaccio, Corse-du-Sud
    ])
    assert ingest.load(store, accounts=path).clean
    got = {r[0]: r[1:] for r in rows(
        store, "SELECT account_id, county, state, country, placed_by, fr_dept FROM accounts")}
    assert got == {
        "BOS": ("25025", "MA", "US", "file", None),
        "CHI": ("17031", "IL", "US", "file", None),
        "LAX": ("06037", "CA", "US", "file", None),
        "NYC": ("36061", "NY", "US", "file", None),
        # country inferred from the coordinates, departement from the polygons
        "PAR": (None, None, "FR", "file", "75"),
        "AJA": (None, None, "FR", "file", "2A"),
    }


def test_h3_cells_are_the_cell_each_point_lies_in(store, tmp_path):
    rng = np.random.default_rng(20261127)
    lat = np.round(rng.uniform(25.0, 48.0, 400), 6)
    lon = np.round(rng.uniform(-123.0, -70.0, 400), 6)
    frame = pd.DataFrame({
        "account_id": [f"H{i:03d}" for i in range(len(lat))], "lat": lat, "lon": lon,
    })
    frame.to_csv(tmp_path / "h3.csv", index=False)
    assert ingest.load(store, accounts=tmp_path / "h3.csv").clean
    stored = store.cursor().execute(
        "SELECT account_id, lat, lon, h3_r3, h3_r4, h3_r5, h3_r6, h3_r7, h3_r8 "
        "FROM accounts ORDER BY account_id"
    ).df()
    assert len(stored) == 400
    differs_from_parent = dict.fromkeys(range(3, 8), 0)
    for rec in stored.itertuples(index=False):
        for res in range(3, 9):
            expected = h3.str_to_int(h3.latlng_to_cell(rec.lat, rec.lon, res))
            assert getattr(rec, f"h3_r{res}") == expected, (rec.account_id, res)
        r8 = h3.int_to_str(int(rec.h3_r8))
        for res in range(3, 8):
            if h3.str_to_int(h3.cell_to_parent(r8, res)) != getattr(rec, f"h3_r{res}"):
                differs_from_parent[res] += 1
    # the stored cell is the one the point lies in, which is NOT always the res-8 parent
    assert all(n > 0 for n in differs_from_parent.values()), differs_from_parent


def test_zero_zero_coordinates_are_an_empty_geocode(store, make_csv):
    path = make_csv("zz.csv", [
        ["account_id", "lat", "lon", "zip"], ["Z0", "0", "0", "02108"],
    ])
    report = ingest.load(store, accounts=path)
    assert report.clean
    assert any("0,0" in n for n in report.tables[0].notes)
    z0 = account(store, "Z0")
    assert z0["placed_by"] == "postal_code"
    assert (z0["lat"], z0["lon"]) == pytest.approx(zip_point("02108"))


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------
def test_bad_rows_are_rejected_with_file_row_column_value_reason(store, make_csv):
    acc = make_csv("accounts.csv", [
        ["account_id", "name", "lat", "lon", "postal_code", "potential", "last_activity_date"],
        ["GOOD1", "ok", "42.36", "-71.06", "", "100", "2026-01-05"],      # row 2
        ["BADNUM", "x", "42.36", "-71.06", "", "12abc", ""],              # row 3
        ["BADDATE", "x", "42.36", "-71.06", "", "1", "2026-13-45"],       # row 4
        ["LAT95", "x", "95", "-71.06", "", "1", ""],                      # row 5
        ["LON200", "x", "42.36", "-200", "", "1", ""],                    # row 6
        ["LATONLY", "x", "42.36", "", "", "1", ""],                       # row 7
        ["DUP", "first", "42.36", "-71.06", "", "1", ""],                 # row 8
        ["DUP", "second", "42.36", "-71.06", "", "1", ""],                # row 9
        ["NOWHERE", "x", "", "", "99999", "1", ""],                       # row 10
        ["NEG", "x", "42.36", "-71.06", "", "-5", ""],                    # row 11
        ["GOOD2", "ok", "", "", "02108", "200", ""],                      # row 12
        ["NOPLACE", "x", "", "", "", "1", ""],                            # row 13
    ])
    sales = make_csv("sales.csv", [
        ["opportunity_id", "account_id", "amount", "close_date", "stage"],
        ["S1", "GOOD1", "10", "2026-02-01", "won"],       # row 2
        ["S2", "GHOST", "10", "2026-02-01", "won"],       # row 3: account does not exist
        ["S3", "GOOD2", "10", "2026-02-01", "maybe"],     # row 4: unknown stage
        ["S4", "DUP", "10", "2026-02-01", "won"],         # row 5: its account was rejected
        ["S5", "GOOD2", "ten", "2026-02-01", "open"],     # row 6: amount not a number
        ["S6", "GOOD2", "10", "someday", "open"],         # row 7: not a date
        ["S7", "GOOD2", "20", "2026-03-01", "open"],      # row 8
    ])
    report = ingest.load(store, accounts=acc, sales=sales)
    assert report.committed
    assert not report.clean
    a, s = str(acc), str(sales)
    assert {r.file for r in report.tables[0].rejected} == {a}
    assert {r.file for r in report.tables[1].rejected} == {s}
    expected = {
        (a, 3, "potential", "12abc", "not a number"),
        (a, 4, "last_activity_date", "2026-13-45", "not a date"),
        (a, 5, "lat", "95", "latitude must be between -90 and 90"),
        (a, 6, "lon", "-200", "longitude must be between -180 and 180"),
        (a, 7, "lon", None, "latitude and longitude must be given together"),
        (a, 8, "account_id", "DUP", "duplicate account_id: the same id is on rows 8, 9"),
        (a, 9, "account_id", "DUP", "duplicate account_id: the same id is on rows 8, 9"),
        (a, 10, "postal_code", "99999", "not in the shipped US ZIP reference"),
        (a, 11, "potential", "-5", "must not be negative"),
        (a, 13, "postal_code", None, "no coordinates and no postal code"),
        (s, 3, "account_id", "GHOST", "account GHOST does not exist"),
        (s, 4, "stage", "maybe", "unknown stage"),
        (s, 5, "account_id", "DUP", "account DUP does not exist"),
        (s, 6, "amount", "ten", "not a number"),
        (s, 7, "close_date", "someday", "not a date"),
    }
    got = report.rejections
    assert len(got) == len(expected), "\n".join(map(str, got))
    for file, row, column, value, reason in expected:
        hits = [r for r in got if (r.file, r.row, r.column, r.value) == (file, row, column,
                                                                          value)]
        assert len(hits) == 1, (row, column, got)
        assert reason in hits[0].reason, hits[0]
    # the message a user reads names file, row, column and value
    text = str(find(report, 5, "lat"))
    assert text.startswith(f"{a}, row 5, column 'lat': '95': latitude")
    assert report.tables[0].rejected_rows == 10
    assert report.tables[1].rejected_rows == 5
    # the good rows went in
    assert ids(store) == ["GOOD1", "GOOD2"]
    assert ids(store, "sales", "opportunity_id") == ["S1", "S7"]
    assert report.tables[0].inserted == 2
    assert report.tables[1].inserted == 2
    frame = report.frame()
    assert list(frame.columns) == ["file", "row", "column", "value", "reason"]
    assert len(frame) == len(expected)


def test_missing_required_column_stores_nothing(store, make_csv):
    first = make_csv("first.csv", [ACCOUNT_HEADER, ["A1", "x", "42.36", "-71.06", "", "US", "1"]])
    ingest.load(store, accounts=first)
    before = snapshot(store)
    good = make_csv("good.csv", [ACCOUNT_HEADER, ["A2", "y", "42.36", "-71.06", "", "US", "2"]])
    no_amount = make_csv("deals.csv", [
        ["opportunity_id", "account_id", "close_date", "stage"],
        ["S1", "A1", "2026-01-01", "won"],
    ])
    with pytest.raises(InputError) as exc:
        ingest.load(store, accounts=good, sales=no_amount)
    err = exc.value
    assert err.file == str(no_amount)
    msg = str(err)
    assert "missing required column(s) amount" in msg
    assert "Found columns: opportunity_id, account_id, close_date, stage" in msg
    assert "Expected: opportunity_id" in msg
    assert "amount (or value" in msg
    # the accounts file in the same import was not stored either
    assert snapshot(store) == before


def test_missing_id_column(store, make_csv):
    path = make_csv("noid.csv", [["name", "lat", "lon"], ["x", "1", "2"]])
    with pytest.raises(InputError, match=r"missing required column\(s\) account_id"):
        ingest.load(store, accounts=path)
    assert scalar(store, "SELECT count(*) FROM accounts") == 0


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("nope.csv", None, "file not found"),
        ("empty.csv", "", "the file is empty"),
        ("data.json", "{}", "unsupported file type '.json'"),
    ],
)
def test_unreadable_files(store, tmp_path, name, content, needle):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=needle) as exc:
        ingest.load(store, accounts=path)
    assert exc.value.file == str(path)


def test_nothing_to_load(store):
    with pytest.raises(InputError, match="nothing to load"):
        ingest.load(store)


@pytest.fixture(scope="module")
def loaded_db(tmp_path_factory) -> Path:
    """A database file holding reps, 3 accounts and 3 deals (built once per module)."""
    folder = tmp_path_factory.mktemp("loaded")
    reps = write_csv(folder / "reps0.csv", [["rep_id", "name", "annual_quota"],
                                            ["R1", "Ann", "1000"]])
    acc = write_csv(folder / "acc0.csv", [
        ACCOUNT_HEADER,
        ["A1", "one", "42.36", "-71.06", "", "US", "10"],
        ["A2", "two", "41.88", "-87.63", "", "US", "20"],
        ["A3", "three", "34.05", "-118.24", "", "US", "30"],
    ])
    sales = write_csv(folder / "sales0.csv", [
        ["opportunity_id", "account_id", "amount", "close_date", "stage"],
        ["S1", "A1", "100", "2026-01-01", "won"],
        ["S2", "A2", "200", "2026-01-02", "open"],
        ["S3", "A3", "300", "2026-01-03", "lost"],
    ])
    path = folder / "loaded.duckdb"
    with Store(path) as s:
        assert ingest.load(s, reps=reps, accounts=acc, sales=sales).clean
    return path


@pytest.fixture
def loaded(loaded_db, tmp_path):
    """A private copy of `loaded_db`, open for writing."""
    path = tmp_path / "loaded.duckdb"
    shutil.copyfile(loaded_db, path)
    with Store(path) as s:
        yield s


BAD_ACCOUNTS = [
    ACCOUNT_HEADER,
    ["A1", "one again", "42.36", "-71.06", "", "US", "11"],
    ["A9", "bad", "95", "-71.06", "", "US", "1"],
]


def test_all_or_nothing_leaves_database_unchanged(loaded, make_csv):
    before = snapshot(loaded)
    path = make_csv("bad.csv", BAD_ACCOUNTS)
    with pytest.raises(ImportRejected) as exc:
        ingest.load(loaded, accounts=path, all_or_nothing=True)
    assert "all-or-nothing" in str(exc.value)
    assert not exc.value.report.committed
    assert rejection_set(exc.value.report) == {(3, "lat", "95")}
    assert "nothing was stored" in exc.value.report.summary()
    assert snapshot(loaded) == before


def test_replace_with_bad_rows_leaves_database_unchanged(loaded, make_csv):
    before = snapshot(loaded)
    path = make_csv("bad.csv", BAD_ACCOUNTS)
    with pytest.raises(ImportRejected, match="--replace needs a file that imports cleanly"):
        ingest.load(loaded, accounts=path, replace=True)
    assert snapshot(loaded) == before


def test_bad_sales_rows_abort_replace_of_both_tables(loaded, make_csv):
    before = snapshot(loaded)
    acc = make_csv("acc.csv", [ACCOUNT_HEADER, ["B1", "b", "42.36", "-71.06", "", "US", "1"]])
    sales = make_csv("s.csv", [
        ["opportunity_id", "account_id", "amount", "close_date", "stage"],
        ["T1", "B1", "-1", "2026-01-01", "won"],
    ])
    with pytest.raises(ImportRejected):
        ingest.load(loaded, accounts=acc, sales=sales, replace=True)
    assert snapshot(loaded) == before


def test_upsert_updates_and_adds(loaded, make_csv):
    path = make_csv("upd.csv", [
        ACCOUNT_HEADER,
        ["A2", "two renamed", "41.88", "-87.63", "", "US", "25"],
        ["A4", "four", "40.75", "-73.99", "", "US", "40"],
    ])
    report = ingest.load(loaded, accounts=path)
    (tr,) = report.tables
    assert (tr.rows, tr.inserted, tr.updated, tr.removed) == (2, 1, 1, 0)
    assert rows(loaded, "SELECT account_id, name, potential FROM accounts ORDER BY 1") == [
        ("A1", "one", 10.0), ("A2", "two renamed", 25.0), ("A3", "three", 30.0),
        ("A4", "four", 40.0),
    ]
    # deals are untouched by an accounts upsert
    assert ids(loaded, "sales", "opportunity_id") == ["S1", "S2", "S3"]
    sales = make_csv("supd.csv", [
        ["opportunity_id", "account_id", "amount", "close_date", "stage"],
        ["S2", "A2", "250", "2026-01-02", "won"],
        ["S4", "A4", "400", "2026-02-01", "open"],
    ])
    tr = ingest.load(loaded, sales=sales).tables[0]
    assert (tr.inserted, tr.updated) == (1, 1)
    assert rows(loaded, "SELECT opportunity_id, amount, stage FROM sales ORDER BY 1") == [
        ("S1", 100.0, "won"), ("S2", 250.0, "won"), ("S3", 300.0, "lost"),
        ("S4", 400.0, "open"),
    ]


def test_replace_clean_file_replaces_table_and_drops_orphans(loaded, make_csv):
    cur = loaded.cursor()
    cur.execute("INSERT INTO account_overrides VALUES (1, 'A1', 'T1'), (1, 'A3', 'T2')")
    path = make_csv("new.csv", [
        ACCOUNT_HEADER,
        ["A1", "one v2", "42.36", "-71.06", "", "US", "15"],
        ["A5", "five", "47.61", "-122.33", "", "US", "50"],
    ])
    report = ingest.load(loaded, accounts=path, replace=True)
    (tr,) = report.tables
    assert (tr.inserted, tr.updated, tr.removed) == (1, 1, 2)
    assert "2 removed (replaced table)" in report.summary()
    assert rows(loaded, "SELECT account_id, name, potential FROM accounts ORDER BY 1") == [
        ("A1", "one v2", 15.0), ("A5", "five", 50.0),
    ]
    # deals and pins of A2 and A3 are gone with their accounts; A1's stay
    assert ids(loaded, "sales", "opportunity_id") == ["S1"]
    assert any("2 deals" in n for n in tr.notes)
    assert rows(loaded, "SELECT account_id FROM account_overrides") == [("A1",)]
    assert ids(loaded, "reps", "rep_id") == ["R1"]  # tables not loaded are kept


def test_replace_sales_checks_accounts_in_the_database(loaded, make_csv):
    sales = make_csv("s.csv", [
        ["opportunity_id", "account_id", "amount", "close_date", "stage"],
        ["Z1", "A3", "1", "2026-05-05", "open"],
    ])
    report = ingest.load(loaded, sales=sales, replace=True)
    assert report.clean
    assert ids(loaded, "sales", "opportunity_id") == ["Z1"]
    assert report.tables[0].removed == 3


def test_rejected_import_summary_lists_counts(store, make_csv):
    path = make_csv("a.csv", [ACCOUNT_HEADER, ["A1", "x", "42", "-71", "", "US", "oops"]])
    report = ingest.load(store, accounts=path)
    assert report.summary() == f"accounts: {path}: 1 rows read, 0 added, 0 updated, 1 rejected"


def _write_rows(path: Path, header: str, lines: list[str]) -> Path:
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def test_reps_file(store, tmp_path):
    path = _write_rows(tmp_path / "reps.txt", "User ID\tFull Name\tQuota\tCapacity\tRole", [
        "R1\tAnn\t1,000,000\t1200\tEast",
        "R2\tBob\t\t\tWest",
        "R3\tCid\t-1\t\tWest",
    ])
    report = ingest.load(store, reps=path)
    assert rejection_set(report) == {(4, "Quota", "-1")}
    assert rows(store, "SELECT rep_id, name, annual_quota, capacity_hours, region FROM reps "
                       "ORDER BY 1") == [
        ("R1", "Ann", 1_000_000.0, 1200.0, "East"), ("R2", "Bob", 0.0, None, "West"),
    ]


def test_row_numbers_after_a_blank_line(store, tmp_path):
    path = tmp_path / "blank.csv"
    path.write_text("account_id,lat,lon\nA1,42.36,-71.06\n\nA2,95,-71.06\n")
    report = ingest.load(store, accounts=path)
    assert rejection_set(report) == {(4, "lat", "95")}  # A2 is on line 4 of the file


def test_row_numbers_with_blank_lines_and_a_quoted_line_break(store, tmp_path):
    path = tmp_path / "blank2.csv"
    path.write_text(
        'account_id;name;lat;lon\r\n'          # line 1
        '\r\n'                                  # line 2: blank
        'A1;"two\r\nlines";42.36;-71.06\r\n'   # lines 3-4: one record
        '\r\n'                                  # line 5: blank
        'A2;x;95;-71.06\r\n'                    # line 6
    )
    report = ingest.load(store, accounts=path)
    assert rejection_set(report) == {(6, "lat", "95")}


def test_county_matches_an_independent_point_in_polygon(store, tmp_path):
    """The county of random US points equals a plain geopandas spatial join."""
    import gzip
    import json

    import geopandas as gpd
    import shapely

    with gzip.open(REPO / "data" / "geo" / "us_counties.geojson.gz", "rt") as f:
        feats = [ft for ft in json.load(f)["features"] if ft["geometry"]]
    counties = gpd.GeoDataFrame(
        {"fips": [str(ft["id"]) for ft in feats]},
        geometry=[shapely.geometry.shape(ft["geometry"]) for ft in feats], crs=4326,
    )
    rng = np.random.default_rng(11)
    lat = np.round(rng.uniform(30.0, 47.0, 600), 5)
    lon = np.round(rng.uniform(-120.0, -75.0, 600), 5)
    pts = gpd.GeoDataFrame({"account_id": [f"Q{i:03d}" for i in range(600)]},
                           geometry=gpd.points_from_xy(lon, lat), crs=4326)
    joined = gpd.sjoin(pts, counties, predicate="within", how="inner")
    joined = joined.drop_duplicates("account_id")  # a point on a shared border: either
    expected = dict(zip(joined["account_id"], joined["fips"], strict=True))
    assert len(expected) > 400  # most random points in that box are on US land
    pd.DataFrame({"account_id": pts["account_id"], "lat": lat, "lon": lon,
                  "country": "US"}).to_csv(tmp_path / "q.csv", index=False)
    assert ingest.load(store, accounts=tmp_path / "q.csv").clean
    got = dict(rows(store, "SELECT account_id, county FROM accounts"))
    wrong = {k: (got[k], v) for k, v in expected.items() if got[k] != v}
    assert not wrong


def test_orders_file_without_stage_counts_as_won(store, make_csv):
    acc = make_csv("a.csv", [ACCOUNT_HEADER, ["A1", "x", "42.36", "-71.06", "", "US", "1"]])
    orders = make_csv("orders.csv", [
        ["deal id", "customer id", "sales", "order date"],
        ["O1", "A1", "19.99", "2026-01-15"],
        ["O2", "A1", "5", "01/20/2026"],
    ])
    report = ingest.load(store, accounts=acc, sales=orders)
    assert report.clean
    assert any("every row is counted as a won sale" in n for n in report.tables[1].notes)
    assert rows(store, "SELECT opportunity_id, amount, close_date, stage FROM sales "
                       "ORDER BY 1") == [
        ("O1", 19.99, dt.date(2026, 1, 15), "won"), ("O2", 5.0, dt.date(2026, 1, 20), "won"),
    ]


def test_salesforce_report_amounts_and_times(store, tmp_path):
    acc = tmp_path / "acc.csv"
    acc.write_text("Account ID,Billing Zip/Postal Code\nA1,02108\n")
    opp = tmp_path / "opp.csv"
    opp.write_text(
        "Opportunity ID,Account ID,Amount,Close Date,Stage\n"
        'O1,A1,"USD 1,234.50",12/31/2026 10:30 AM,Closed Won\n'
        "O2,A1,99 EUR,2026-06-01 14:05,Prospecting\n"
    )
    report = ingest.load(store, accounts=acc, sales=opp)
    assert report.clean
    got = rows(store, "SELECT opportunity_id, amount, close_date, stage FROM sales "
                      "ORDER BY opportunity_id")
    assert got == [("O1", 1234.5, dt.date(2026, 12, 31), "won"),
                   ("O2", 99.0, dt.date(2026, 6, 1), "open")]


@pytest.mark.parametrize(("name", "content", "kind"), [
    ("broken.xlsx", b"PK\x03\x04 this is not a real workbook", "Excel"),
    ("broken.parquet", b"not parquet at all", "Parquet"),
])
def test_unreadable_files_say_what_to_do(store, tmp_path, name, content, kind):
    path = tmp_path / name
    path.write_bytes(content)
    before = snapshot(store)
    with pytest.raises(InputError) as err:
        ingest.load(store, accounts=path)
    assert str(path) in str(err.value)
    assert f"cannot read the file as {kind}" in str(err.value)
    assert snapshot(store) == before


def test_unreadable_csv_names_the_users_file_not_a_temporary_copy(store, tmp_path):
    path = tmp_path / "noise.csv"
    path.write_bytes(bytes(range(256)) * 20)  # not UTF-8: goes through a temporary copy
    with pytest.raises(InputError) as err:
        ingest.load(store, accounts=path)
    assert "atlas-utf8" not in str(err.value)
    assert str(path) in str(err.value)


def test_deal_file_checks_in_one_scan_report_every_rejection(store, make_csv):
    """The deal file (a view, checked in one scan) reports exactly what the account file's
    checks report: repeated ids on every row that holds them, bad values, unknown
    accounts, unknown stages and missing IsClosed, each once, by file, row and column."""
    acc = make_csv("a.csv", [ACCOUNT_HEADER, ["A1", "x", "42.36", "-71.06", "", "US", "1"]])
    deals = make_csv("d.csv", [
        ["Id", "AccountId", "Amount", "CloseDate", "StageName", "IsWon", "IsClosed"],
        ["O1", "A1", "10", "2026-01-10", "x", "true", "true"],      # row 2
        ["O2", "A1", "20", "2026-01-11", "x", "false", "false"],    # row 3: O2 x3
        ["O2", "A1", "30", "2026-01-12", "x", "false", "true"],     # row 4
        ["O3", "GHOST", "40", "2026-01-13", "x", "true", "true"],   # row 5: no account
        ["O2", "A1", "five", "2026-01-14", "x", "true", "true"],    # row 6: also bad amount
        ["O4", "A1", "50", "2026-01-15", "x", "false", ""],         # row 7: no IsClosed
        ["O5", "A1", "60", "2026-01-16", "x", "true", "true"],      # row 8
        ["O5", "A1", "70", "2026-01-17", "x", "true", "true"],      # row 9: O5 x2
    ])
    report = ingest.load(store, accounts=acc, sales=deals)
    d = str(deals)
    got = sorted((r.row, r.column, r.value, r.reason) for r in report.tables[1].rejected)
    o2 = "duplicate opportunity_id: the same id is on rows 3, 4, 6 (fix the file so each id " \
         "appears once)"
    o5 = "duplicate opportunity_id: the same id is on rows 8, 9 (fix the file so each id " \
         "appears once)"
    assert got == sorted([
        (3, "Id", "O2", o2), (4, "Id", "O2", o2), (6, "Id", "O2", o2),
        (5, "AccountId", "GHOST",
         "account GHOST does not exist: import it in the accounts file first"),
        (6, "Amount", "five", "not a number"),
        (7, "IsClosed", None, "missing IsClosed/IsWon value"),
        (8, "Id", "O5", o5), (9, "Id", "O5", o5),
    ]), got
    assert {r.file for r in report.tables[1].rejected} == {d}
    assert ids(store, "sales", "opportunity_id") == ["O1"]


def test_a_clean_deal_file_has_no_rejection(store, make_csv):
    acc = make_csv("a.csv", [ACCOUNT_HEADER, ["A1", "x", "42.36", "-71.06", "", "US", "1"]])
    deals = make_csv("d.csv", [["opportunity_id", "account_id", "amount", "close_date",
                                "stage"]]
                     + [[f"O{i}", "A1", str(i), "2026-01-10", "won"] for i in range(500)])
    report = ingest.load(store, accounts=acc, sales=deals)
    assert report.clean, report.rejections
    assert len(ids(store, "sales", "opportunity_id")) == 500
