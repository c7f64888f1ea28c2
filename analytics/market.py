"""The market under the map: population, businesses and unemployment per unit.

Public tables shipped in `data/reference/` (data/SOURCES.md) rolled up to every unit type
the app offers, once per unit type and process (a few seconds at most, then cached):

- population: the 2020 Census. Counties and states take the Census county figures
  (`us_county_market.parquet`); H3 cells, ZIP5 and ZIP3 the ZCTA populations at their
  internal points (`us_zip.parquet`); French communes, departements and H3 cells in France
  the commune populations (COG 2026, `fr_postal.parquet`).
- establishments, employees, annual payroll: ZIP Code Business Patterns 2018 at each ZIP's
  point (a ZIP without a point is left out and counted in `coverage()`); a county by the
  county polygon holding the point, as accounts are placed; a state by the counties.
- unemployment rate (2016): per county; a larger unit's rate is the population-weighted mean
  of its counties' rates (H3 and ZIP: of the county holding each populated ZIP point).

Per territory, the additive columns are sums over its units and the rate a population-
weighted mean (`territory_market`). docs/metrics.md has the formulas and column names.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from analytics import catalog, geography
from analytics.units import H3_RESOLUTIONS, UnitType, h3_cells_at, h3_names

REFERENCE = geography.DATA_DIR / "reference"
ZIP_BUSINESS_FILE = REFERENCE / "us_zip_business.parquet"
COUNTY_MARKET_FILE = REFERENCE / "us_county_market.parquet"
MARKET_UNITS_FILE = REFERENCE / "market_units.parquet"
SUMS = ("market_population", "market_establishments", "market_employees", "market_payroll")
"""Additive market columns (a territory's value is the sum of its units')."""
RATE = "market_unemployment_rate"
COLUMNS = (*SUMS, RATE)
_POP_WEIGHT = "_unemployment_weight"  # population with a known county rate


@cache
def zip_points() -> pd.DataFrame:
    """US ZIP points with population, business counts, county, state and county rate."""
    z = pd.read_parquet(geography.US_ZIP_FILE)
    biz = pd.read_parquet(ZIP_BUSINESS_FILE)
    z = z.merge(biz, on="zip", how="left")
    for col in ("establishments", "employees", "payroll"):
        z[col] = z[col].fillna(0).astype("int64")
    lat, lon = z["lat"].to_numpy(float), z["lon"].to_numpy(float)
    cell8 = h3_cells_at(lat, lon, 8)
    z["county"] = geography.locate_county(lat, lon, np.ones(len(z), bool), cell8)
    # the state as an account's: its county's, else the ZIP's own (analytics/ingest.py)
    z["state_placed"] = z["county"].str[:2].map(geography.STATE_FIPS).fillna(z["state"])
    rate = pd.read_parquet(COUNTY_MARKET_FILE).set_index("county")["unemployment_rate"]
    z["rate"] = z["county"].map(rate)
    return z


@cache
def _communes() -> pd.DataFrame:
    f = pd.read_parquet(geography.FR_POSTAL_FILE).drop_duplicates("commune")
    return f[["commune", "departement", "lat", "lon", "population"]].reset_index(drop=True)


def _rolled(keys, frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Sum `columns` (source -> market column) of `frame` by `keys` (None dropped)."""
    out = frame[list(columns)].rename(columns=columns).assign(unit_id=keys)
    out = out[out["unit_id"].notna()]
    return out.groupby("unit_id", sort=True).sum()


def _rate_parts(keys, population, rate) -> pd.DataFrame:
    """Population-weighted rate sums by key: (weight, weight x rate)."""
    frame = pd.DataFrame({"unit_id": keys, "w": np.asarray(population, float),
                          "r": np.asarray(rate, float)})
    frame = frame[frame["unit_id"].notna() & frame["r"].notna()]
    frame["wr"] = frame["w"] * frame["r"]
    return frame.groupby("unit_id", sort=True)[["w", "wr"]].sum()


@cache
def unit_market(unit: UnitType) -> pd.DataFrame:
    """One row per unit with market data: unit_id, market_* columns (COLUMNS) and the
    rate's weight. Units without any market data are absent (read them as 0 / empty).

    Read from the roll-ups shipped in `market_units.parquet` (built with the reference
    data: 0.02-0.1 s, where rolling up on a first load took 0.7 s of the page's first
    numbers); `roll_up` where the file lacks the unit type."""
    if MARKET_UNITS_FILE.exists():
        frame = pd.read_parquet(MARKET_UNITS_FILE, filters=[("unit", "==", str(unit))])
        if len(frame):
            return frame.drop(columns="unit").reset_index(drop=True)
    return roll_up(unit)


def write_units_file(path=None) -> int:
    """Roll every unit type up and write them to `market_units.parquet` (the data build
    runs this); returns the rows written."""
    from analytics.units import POSTAL_KINDS

    kinds = [*POSTAL_KINDS, *[f"h3:{r}" for r in H3_RESOLUTIONS]]
    frame = pd.concat([roll_up(UnitType.parse(k)).assign(unit=k) for k in kinds],
                      ignore_index=True)
    frame.to_parquet(path or MARKET_UNITS_FILE, index=False, compression="zstd")
    return len(frame)


def roll_up(unit: UnitType) -> pd.DataFrame:
    """`unit_market` computed from the source tables."""
    z = zip_points()
    county = pd.read_parquet(COUNTY_MARKET_FILE)
    business = {"establishments": "market_establishments", "employees": "market_employees",
                "payroll": "market_payroll"}
    parts = []
    if unit.kind in ("county", "state"):
        ckey = county["county"] if unit.kind == "county" else county["county"].str[:2].map(
            geography.STATE_FIPS)
        parts.append(_rolled(ckey.to_numpy(object), county,
                             {"population": "market_population"}))
        zkey = z["county"] if unit.kind == "county" else z["state_placed"]
        parts.append(_rolled(zkey.to_numpy(object), z, business))
        rate = _rate_parts(ckey.to_numpy(object), county["population"],
                           county["unemployment_rate"])
    elif unit.kind in ("zip5", "zip3", "h3"):
        if unit.kind == "zip5":
            zkey = z["zip"].to_numpy(object)
        elif unit.kind == "zip3":
            zkey = z["zip"].str[:3].to_numpy(object)
        else:
            zkey = _cell_names(z["lat"], z["lon"], unit.resolution)
        parts.append(_rolled(zkey, z, {"population": "market_population", **business}))
        rate = _rate_parts(zkey, z["population"], z["rate"])
        if unit.kind == "h3":  # France: commune populations
            c = _communes()
            parts.append(_rolled(_cell_names(c["lat"], c["lon"], unit.resolution), c,
                                 {"population": "market_population"}))
    elif unit.kind in ("fr_commune", "fr_dept"):
        c = _communes()
        key = c["commune"] if unit.kind == "fr_commune" else c["departement"]
        parts.append(_rolled(key.to_numpy(object), c, {"population": "market_population"}))
        rate = _rate_parts([], [], [])
    else:
        raise ValueError(f"no market data for {unit}")
    frame = pd.concat(parts, axis=1)
    frame = frame.T.groupby(level=0).sum(min_count=1).T  # a column from two parts: added
    for col in SUMS:
        frame[col] = frame[col].fillna(0).astype("int64") if col in frame else 0
    frame = frame.join(rate, how="outer")
    frame[_POP_WEIGHT] = frame["w"].fillna(0)
    frame[RATE] = catalog.divide(frame["wr"].fillna(0).to_numpy(), frame[_POP_WEIGHT].to_numpy())
    for col in SUMS:
        frame[col] = frame[col].fillna(0).astype("int64")
    frame.index.name = "unit_id"
    return frame.reset_index()[["unit_id", *COLUMNS, _POP_WEIGHT]]


def _cell_names(lat, lon, res: int) -> np.ndarray:
    if res not in H3_RESOLUTIONS:
        raise ValueError(f"H3 resolution {res} is not offered")
    return h3_names(h3_cells_at(np.asarray(lat, float), np.asarray(lon, float), res))


@cache
def _indexed(unit: UnitType) -> tuple[pd.Index, dict[str, np.ndarray]]:
    """unit_market as a hash index and column arrays, each with a last row for 'unknown'
    (0, or NaN for the rate): `for_units` runs on every paint stroke."""
    frame = unit_market(unit)
    cols = {c: np.append(frame[c].to_numpy(), 0 if c in SUMS or c == _POP_WEIGHT
                         else np.nan) for c in (*COLUMNS, _POP_WEIGHT)}
    return pd.Index(frame["unit_id"].to_numpy(object)), cols


def for_units(unit: UnitType, unit_ids) -> pd.DataFrame:
    """Market columns for `unit_ids`, in their order (0 / empty where nothing is known)."""
    index, cols = _indexed(unit)
    ids = np.asarray(list(unit_ids), dtype=object)
    pos = index.get_indexer(ids)
    pos[pos < 0] = len(index)
    frame = pd.DataFrame({"unit_id": ids, **{c: a[pos] for c, a in cols.items()}})
    for col in SUMS:
        frame[col] = frame[col].astype("int64")
    return frame


def territory_market(unit: UnitType, assignment: pd.DataFrame) -> pd.DataFrame:
    """Per territory (assignment: unit_id, territory_id): the market sums of its units and
    the population-weighted unemployment rate."""
    frame = for_units(unit, assignment["unit_id"]).assign(
        territory_id=assignment["territory_id"].to_numpy(object))
    frame["_wr"] = frame[RATE].fillna(0) * frame[_POP_WEIGHT]
    out = frame.groupby("territory_id", sort=False)[[*SUMS, _POP_WEIGHT, "_wr"]].sum()
    out[RATE] = catalog.divide(out["_wr"].to_numpy(), out[_POP_WEIGHT].to_numpy())
    return out[list(COLUMNS)].reset_index()


SHARES = ("accounts_per_1k_establishments", "potential_per_capita")
"""Our presence against the market (formulas in analytics/catalog.py)."""


def share_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` (accounts, potential and the market sums per row) with SHARES added."""
    return catalog.derive(frame.copy(), SHARES, days=365, elapsed=1.0)


def coverage() -> dict[str, int]:
    """What the roll-ups leave out: ZIPs of the business table without a point."""
    biz = pd.read_parquet(ZIP_BUSINESS_FILE)
    z = pd.read_parquet(geography.US_ZIP_FILE)
    missing = ~biz["zip"].isin(z["zip"])
    return {"business_zips": len(biz), "business_zips_without_point": int(missing.sum()),
            "establishments_without_point": int(biz.loc[missing, "establishments"].sum())}
