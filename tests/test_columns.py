"""The one header matcher: every import kind, its aliases, overrides, messages, ambiguity.

Expectations are worked out by hand from the rules in `analytics/columns.py` and the alias
lists of each spec, not from the matcher's output.
"""

from __future__ import annotations

import pytest

from analytics.columns import (
    ACCOUNT_LIST,
    PLAN_FILE,
    TERRITORY_POLYGONS,
    match_columns,
    normalise_header,
)
from analytics.errors import InputError
from analytics.schema import ACCOUNTS, REPS, SALES, Field, TableSpec


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Account_ID", "account id"),
        ("  account-id  ", "account id"),
        ("ACCOUNT.ID", "account id"),
        ("account __ -. id", "account id"),
        ("\ufeffId", "id"),
        ("\ufeff Name", "name"),
        ("BillingPostalCode", "billingpostalcode"),  # API names stay one word
        ("Billing Zip/Postal Code", "billing zip/postal code"),  # `/` is kept
        ("Zip\tCode", "zip code"),
        (5, "5"),
    ],
)
def test_normalise_header(raw, expected):
    assert normalise_header(raw) == expected


# (spec, headers, overrides, expected field -> header)
MATCHES = {
    # ---- accounts
    "accounts: Salesforce report API names": (
        ACCOUNTS,
        ["Id", "Account Name", "BillingLatitude", "BillingLongitude", "BillingPostalCode",
         "BillingCountry", "Type", "AnnualRevenue", "OwnerId"],
        None,
        {"account_id": "Id", "name": "Account Name", "lat": "BillingLatitude",
         "lon": "BillingLongitude", "postal_code": "BillingPostalCode",
         "country": "BillingCountry", "segment": "Type", "potential": "AnnualRevenue",
         "owner_rep_id": "OwnerId"},
    ),
    "accounts: report labels with spaces and a slash": (
        ACCOUNTS,
        ["Account ID", "Billing Zip/Postal Code", "Billing Country", "Last Activity"],
        None,
        {"account_id": "Account ID", "postal_code": "Billing Zip/Postal Code",
         "country": "Billing Country", "last_activity_date": "Last Activity"},
    ),
    "accounts: case, spacing and punctuation": (
        ACCOUNTS,
        ["ACCOUNT-ID", " Zip.Code ", "Lat", "LONG", "visits_per_year"],
        None,
        {"account_id": "ACCOUNT-ID", "postal_code": " Zip.Code ", "lat": "Lat",
         "lon": "LONG", "visits_per_year": "visits_per_year"},
    ),
    "accounts: exact name beats an alias listed before it": (
        ACCOUNTS, ["Id", "account_id"], None, {"account_id": "account_id"},
    ),
    "accounts: the first alias of the list wins, not the first column": (
        ACCOUNTS, ["account_id", "postcode", "ZIP"], None,
        {"account_id": "account_id", "postal_code": "ZIP"},
    ),
    "accounts: two headers alike, the first counts": (
        ACCOUNTS, ["Account ID", "account_id"], None, {"account_id": "Account ID"},
    ),
    "accounts: overrides as written win over lat/lon": (
        ACCOUNTS, ["account_id", "lat", "lon", "Y_COORD", "X_COORD"],
        {"lat": "Y_COORD", "lon": "X_COORD"},
        {"lat": "Y_COORD", "lon": "X_COORD", "account_id": "account_id"},
    ),
    "accounts: an override found by its normalised name": (
        ACCOUNTS, ["account_id", "Y_COORD"], {"lat": "y coord"},
        {"lat": "Y_COORD", "account_id": "account_id"},
    ),
    "accounts: a column taken by an override is not matched again": (
        ACCOUNTS, ["id", "account number"], {"owner_rep_id": "id"},
        {"owner_rep_id": "id", "account_id": "account number"},
    ),
    "accounts: an override picks one of two headers alike": (
        ACCOUNTS, ["Lat", "lat", "account_id"], {"lat": "lat"},
        {"lat": "lat", "account_id": "account_id"},
    ),
    # ---- deals
    "sales: Salesforce opportunity API names": (
        SALES,
        ["Id", "AccountId", "Amount", "CloseDate", "StageName", "OwnerId", "IsWon",
         "IsClosed"],
        None,
        {"opportunity_id": "Id", "account_id": "AccountId", "amount": "Amount",
         "close_date": "CloseDate", "stage": "StageName", "rep_id": "OwnerId",
         "is_won": "IsWon", "is_closed": "IsClosed"},
    ),
    "sales: CRM export names": (
        SALES,
        ["opportunity_id", "sales_agent", "product", "account", "deal_stage", "close_date",
         "close_value"],
        None,
        {"opportunity_id": "opportunity_id", "account_id": "account",
         "amount": "close_value", "close_date": "close_date", "stage": "deal_stage",
         "product": "product", "rep_id": "sales_agent"},
    ),
    "sales: `Closed` and `Closed Date` go to different fields": (
        SALES, ["Opportunity ID", "Account", "Value", "Closed Date", "Closed"], None,
        {"opportunity_id": "Opportunity ID", "account_id": "Account", "amount": "Value",
         "close_date": "Closed Date", "is_closed": "Closed"},
    ),
    # ---- reps
    "reps: user export": (
        REPS, ["User ID", "Full Name", "Quota", "Manager", "Role"], None,
        {"rep_id": "User ID", "name": "Full Name", "annual_quota": "Quota",
         "manager_id": "Manager", "region": "Role"},
    ),
    "reps: short coordinate names are aliases of home_lat/home_lon": (
        REPS, ["rep_id", "lat", "lng"], None,
        {"rep_id": "rep_id", "home_lat": "lat", "home_lon": "lng"},
    ),
    # ---- plan files
    "plan: canonical names": (
        PLAN_FILE, ["unit_id", "territory_id", "territory_name", "rep_id"], None,
        {"unit_id": "unit_id", "territory_id": "territory_id",
         "territory_name": "territory_name", "rep_id": "rep_id"},
    ),
    "plan: aliases in any case": (
        PLAN_FILE, ["ZIP Code", "Territory", "Name", "Owner ID"], None,
        {"unit_id": "ZIP Code", "territory_id": "Territory", "territory_name": "Name",
         "rep_id": "Owner ID"},
    ),
    "plan: FIPS, a territory code and a Salesforce owner": (
        PLAN_FILE, ["FIPS", "Territory Code", "OwnerId"], None,
        {"unit_id": "FIPS", "territory_id": "Territory Code", "rep_id": "OwnerId"},
    ),
    "plan: zip comes before county in the alias list": (
        PLAN_FILE, ["county", "zip", "territory"], None,
        {"unit_id": "zip", "territory_id": "territory"},
    ),
    "plan: H3 cells": (
        PLAN_FILE, ["cell", "territory id"], None,
        {"unit_id": "cell", "territory_id": "territory id"},
    ),
    "plan: two headers alike, the last counts": (
        PLAN_FILE, ["unit_id", "Territory ID", "territory_id"], None,
        {"unit_id": "unit_id", "territory_id": "territory_id"},
    ),
    # ---- territory polygons
    "polygons: canonical names and `name`": (
        TERRITORY_POLYGONS, ["territory_id", "name", "rep_id"], None,
        {"territory_id": "territory_id", "territory_name": "name", "rep_id": "rep_id"},
    ),
    "polygons: short aliases in capitals": (
        TERRITORY_POLYGONS, ["ID", "Label", "Owner"], None,
        {"territory_id": "ID", "territory_name": "Label", "rep_id": "Owner"},
    ),
    "polygons: `territory name` beats `name`": (
        TERRITORY_POLYGONS, ["code", "name", "territory name"], None,
        {"territory_id": "code", "territory_name": "territory name"},
    ),
    "polygons: `territory id` beats `id`": (
        TERRITORY_POLYGONS, ["id", "Territory ID"], None, {"territory_id": "Territory ID"},
    ),
    "polygons: the first alias of the list wins": (
        TERRITORY_POLYGONS, ["label", "name", "territory"], None,
        {"territory_id": "territory", "territory_name": "name"},
    ),
    "polygons: two headers alike, the last counts": (
        TERRITORY_POLYGONS, ["Code", "code"], None, {"territory_id": "code"},
    ),
    # ---- account lists
    "account list: spaced names": (
        ACCOUNT_LIST, ["Account ID", "Territory"], None,
        {"account_id": "Account ID", "territory_id": "Territory"},
    ),
    "account list: Salesforce ObjectTerritory2Association": (
        ACCOUNT_LIST, ["ObjectId", "Territory2Id"], None,
        {"account_id": "ObjectId", "territory_id": "Territory2Id"},
    ),
    "account list: API name and dashes": (
        ACCOUNT_LIST, ["AccountId", "territory-id"], None,
        {"account_id": "AccountId", "territory_id": "territory-id"},
    ),
    "account list: two headers alike, the last counts": (
        ACCOUNT_LIST, ["account", "Account", "territory_id"], None,
        {"account_id": "Account", "territory_id": "territory_id"},
    ),
}


@pytest.mark.parametrize(("spec", "headers", "overrides", "expected"), MATCHES.values(),
                         ids=MATCHES.keys())
def test_match(spec, headers, overrides, expected):
    assert match_columns(headers, spec, overrides) == expected


SALES_EXPECTED = (
    "Expected: opportunity_id (or id, opportunity id, opportunityid, opportunity_id); "
    "account_id (or accountid, account id, account, customer id); "
    "amount (or value, deal value, close_value, close value); "
    "close_date (or closedate, close date, date, closed date)."
)

# (spec, headers, overrides, the whole message, file label included)
MISSING = {
    "sales without amount": (
        SALES, ["opportunity_id", "account_id", "close_date", "stage"], None,
        "deals.csv: missing required column(s) amount for sales. Found columns: "
        f"opportunity_id, account_id, close_date, stage. {SALES_EXPECTED} "
        "Rename the column or map it, e.g. --map sales.amount=YourColumn",
    ),
    "sales with only an id": (
        SALES, ["Id"], None,
        "deals.csv: missing required column(s) account_id, amount, close_date for sales. "
        f"Found columns: Id. {SALES_EXPECTED} "
        "Rename the column or map it, e.g. --map sales.account_id=YourColumn",
    ),
    "accounts without any column": (
        ACCOUNTS, [], None,
        "deals.csv: missing required column(s) account_id for accounts. Found columns: "
        "(none). Expected: account_id (or id, account id, accountid, account number). "
        "Rename the column or map it, e.g. --map accounts.account_id=YourColumn",
    ),
    "reps without an id": (
        REPS, ["name"], None,
        "deals.csv: missing required column(s) rep_id for reps. Found columns: name. "
        "Expected: rep_id (or id, user id, userid, rep id). "
        "Rename the column or map it, e.g. --map reps.rep_id=YourColumn",
    ),
    "an override naming a column the file lacks": (
        ACCOUNTS, ["account_id", "lat"], {"lon": "X"},
        "deals.csv: --map accounts.lon=X: the file has no column 'X'; its columns are: "
        "account_id, lat",
    ),
    "plan without a territory": (
        PLAN_FILE, ["county", "rep"], None,
        "deals.csv: missing required column(s) territory_id. Found columns: county, rep. "
        "Expected: unit_id, territory_id and optionally territory_name, rep_id",
    ),
    "plan without unit nor territory": (
        PLAN_FILE, ["name"], None,
        "deals.csv: missing required column(s) unit_id, territory_id. Found columns: "
        "name. Expected: unit_id, territory_id and optionally territory_name, rep_id",
    ),
    "polygons without a territory id": (
        TERRITORY_POLYGONS, ["colour"], None,
        "deals.csv: no territory id column: found colour; expected one of territory_id, "
        "territory, territory id, id, code",
    ),
    "polygons without any property": (
        TERRITORY_POLYGONS, [], None,
        "deals.csv: no territory id column: found none; expected one of territory_id, "
        "territory, territory id, id, code",
    ),
    "account list without either column": (
        ACCOUNT_LIST, ["customer", "zone"], None,
        "deals.csv: expected columns account_id and territory_id; found customer, zone",
    ),
    "account list without a territory": (
        ACCOUNT_LIST, ["account_id"], None,
        "deals.csv: expected columns account_id and territory_id; found account_id",
    ),
}


@pytest.mark.parametrize(("spec", "headers", "overrides", "message"), MISSING.values(),
                         ids=MISSING.keys())
def test_missing_required_columns(spec, headers, overrides, message):
    with pytest.raises(InputError) as exc:
        match_columns(headers, spec, overrides, file="deals.csv")
    assert exc.value.file == "deals.csv"
    assert str(exc.value) == message


@pytest.mark.parametrize(
    ("spec", "headers", "expected"),
    [
        (ACCOUNTS, ["name", "lat"], {"name": "name", "lat": "lat"}),
        (SALES, ["Amount", "Stage"], {"amount": "Amount", "stage": "Stage"}),
        (PLAN_FILE, ["county"], {"unit_id": "county"}),
        (TERRITORY_POLYGONS, ["colour"], {}),
        (ACCOUNT_LIST, ["AccountId"], {"account_id": "AccountId"}),
    ],
)
def test_partial_match_returns_what_matched(spec, headers, expected):
    assert match_columns(headers, spec, partial=True) == expected


def test_partial_match_still_refuses_a_missing_override():
    with pytest.raises(InputError, match=r"--map accounts\.lat=b: the file has no column"):
        match_columns(["a"], ACCOUNTS, {"lat": "b"}, partial=True)


# rules on a made-up spec, where one field's alias is another field's name
CLASH = TableSpec("clash", key="rep_id", fields=(
    Field("owner", "id", False, ("rep_id", "x")),
    Field("rep_id", "id", False, ("rep",)),
    Field("other", "id", False, ("x",)),
))


@pytest.mark.parametrize(
    ("headers", "overrides", "expected"),
    [
        # every exact name is matched before any alias: `owner` cannot take `rep_id`
        (["rep_id", "rep"], None, {"rep_id": "rep_id"}),
        # one column feeds one field: `x` goes to the first field listing it
        (["X"], None, {"owner": "X"}),
        # ... unless an override took it; then the next field listing it has none left
        (["X", "rep"], {"rep_id": "x"}, {"rep_id": "X"}),
        # overrides may send one column to two fields
        (["X"], {"owner": "X", "other": "X"}, {"owner": "X", "other": "X"}),
    ],
)
def test_rules_on_clashing_aliases(headers, overrides, expected):
    assert match_columns(headers, CLASH, overrides) == expected
