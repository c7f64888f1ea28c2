"""Market overlays: roll-ups of the shipped public tables to every unit type, checked
against figures read by hand from the sources and against independent sums of the source
tables (plain pandas and h3-py's own per-point cell lookup, not the code under test)."""

from __future__ import annotations

import h3
import numpy as np
import pandas as pd
import pytest

from analytics import geography, market
from analytics.units import H3_RESOLUTIONS, UnitType

ZIPS = pd.read_parquet(geography.US_ZIP_FILE)
BUSINESS = pd.read_parquet(market.ZIP_BUSINESS_FILE)
COUNTIES = pd.read_parquet(market.COUNTY_MARKET_FILE)
COMMUNES = pd.read_parquet(geography.FR_POSTAL_FILE).drop_duplicates("commune")
PLACED = BUSINESS[BUSINESS["zip"].isin(ZIPS["zip"])]  # ZIPs with a point


def row(unit: str, unit_id: str) -> pd.Series:
    frame = market.unit_market(UnitType.parse(unit)).set_index("unit_id")
    return frame.loc[unit_id]


def test_figures_read_from_the_sources():
    # 2020 Census: Autauga County, AL 58,805; Los Angeles County 10,014,009
    assert row("county", "01001")["market_population"] == 58_805
    assert row("county", "06037")["market_population"] == 10_014_009
    # ZIP Code Business Patterns 2018, ZIP 01001 (Agawam, MA): 473 establishments,
    # 9,555 employees, annual payroll $416,529 thousand
    agawam = row("zip5", "01001")
    assert (agawam["market_establishments"], agawam["market_employees"],
            agawam["market_payroll"]) == (473, 9_555, 416_529_000)
    # county unemployment 2016: Autauga 5.3%
    assert row("county", "01001")["market_unemployment_rate"] == pytest.approx(0.053)


@pytest.mark.parametrize("unit", ["county", "state", "zip5", "zip3", "fr_commune", "fr_dept",
                                  *[f"h3:{r}" for r in H3_RESOLUTIONS]])
def test_every_unit_type_adds_up_to_the_source_totals(unit):
    frame = market.unit_market(UnitType.parse(unit))
    assert frame["unit_id"].is_unique
    us_pop = (COUNTIES["population"].sum() if unit in ("county", "state")
              else ZIPS["population"].sum())
    fr_pop = COMMUNES["population"].sum()
    expected_pop = {"fr_commune": fr_pop, "fr_dept": fr_pop}.get(
        unit, us_pop + (fr_pop if unit.startswith("h3") else 0))
    assert frame["market_population"].sum() == expected_pop
    if unit.startswith("fr"):
        assert frame["market_establishments"].sum() == 0
    elif unit == "county":  # ZIP points in the sea (outside every county polygon): left out
        missing = PLACED["establishments"].sum() - frame["market_establishments"].sum()
        assert 0 <= missing < 0.0001 * PLACED["establishments"].sum()
    else:
        for col, src in (("market_establishments", "establishments"),
                         ("market_employees", "employees"), ("market_payroll", "payroll")):
            assert frame[col].sum() == PLACED[src].sum(), col


def test_zip3_is_the_sum_of_its_zips():
    z = ZIPS.merge(BUSINESS, on="zip", how="left").fillna({"establishments": 0})
    z = z[z["zip"].str.startswith("010")]
    got = row("zip3", "010")
    assert got["market_population"] == z["population"].sum()
    assert got["market_establishments"] == z["establishments"].sum()


def test_h3_cells_against_h3_py_per_point():
    """Each ZIP point and commune placed with h3-py's latlng_to_cell, one by one."""
    res = 5
    z = ZIPS.merge(BUSINESS, on="zip", how="left").fillna({"establishments": 0})
    z["cell"] = [h3.latlng_to_cell(a, b, res) for a, b in zip(z["lat"], z["lon"], strict=True)]
    c = COMMUNES.assign(cell=[h3.latlng_to_cell(a, b, res)
                              for a, b in zip(COMMUNES["lat"], COMMUNES["lon"], strict=True)])
    pop = z.groupby("cell")["population"].sum().add(c.groupby("cell")["population"].sum(),
                                                     fill_value=0)
    est = z.groupby("cell")["establishments"].sum()
    got = market.unit_market(UnitType("h3", res)).set_index("unit_id")
    assert set(got.index) == set(pop.index)
    pd.testing.assert_series_equal(got["market_population"].sort_index(),
                                   pop.astype("int64").sort_index(), check_names=False)
    pd.testing.assert_series_equal(got["market_establishments"].reindex(est.index),
                                   est.astype("int64"), check_names=False)


def test_a_states_rate_is_the_population_weighted_mean_of_its_counties():
    al = COUNTIES[COUNTIES["county"].str.startswith("01")]
    expected = (al["population"] * al["unemployment_rate"]).sum() / al["population"].sum()
    assert row("state", "AL")["market_unemployment_rate"] == pytest.approx(expected)
    assert row("state", "AL")["market_population"] == al["population"].sum()


def test_a_territorys_market_is_the_sum_of_its_units():
    assignment = pd.DataFrame({"unit_id": ["01001", "01003", "01005", "99999"],
                               "territory_id": ["T1", "T1", "T2", "T2"]})
    got = market.territory_market(UnitType("county"), assignment).set_index("territory_id")
    # by hand: Autauga 58,805 at 5.3%, Baldwin 231,767 at 5.4%; Barbour 25,223 at 8.6%
    assert got.loc["T1", "market_population"] == 58_805 + 231_767
    assert got.loc["T1", "market_unemployment_rate"] == pytest.approx(
        (58_805 * 0.053 + 231_767 * 0.054) / (58_805 + 231_767))
    assert got.loc["T2", "market_population"] == 25_223  # an unknown unit adds nothing
    assert got.loc["T2", "market_unemployment_rate"] == pytest.approx(0.086)
    units = market.unit_market(UnitType("county")).set_index("unit_id")
    for col in market.SUMS:
        assert got.loc["T1", col] == units.loc[["01001", "01003"], col].sum()


def test_share_columns_are_empty_where_the_market_is_zero():
    frame = pd.DataFrame({"accounts": [5, 3], "potential": [1000.0, 50.0],
                          "market_establishments": [250, 0], "market_population": [0, 100]})
    got = market.share_columns(frame)
    assert got["accounts_per_1k_establishments"].iloc[0] == pytest.approx(20.0)
    assert np.isnan(got["accounts_per_1k_establishments"].iloc[1])
    assert np.isnan(got["potential_per_capita"].iloc[0])
    assert got["potential_per_capita"].iloc[1] == pytest.approx(0.5)


@pytest.mark.parametrize("unit", ["county", "state", "zip5", "zip3", "fr_commune", "fr_dept",
                                  *[f"h3:{r}" for r in H3_RESOLUTIONS]])
def test_the_shipped_roll_ups_are_those_of_the_source_tables(unit):
    """market_units.parquet (read at run time) is what rolling up the sources gives now:
    a changed rule or source table without a rebuilt file fails here."""
    shipped = market.unit_market(UnitType.parse(unit))
    again = market.roll_up(UnitType.parse(unit))
    pd.testing.assert_frame_equal(shipped, again, check_dtype=False)
