"""The database schema, its version, and the fields each imported table carries.

The field specs are the single source of truth for the importer (names, types, aliases,
Salesforce names), the docs and the tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from analytics.stage_history import DAYS_IN_STAGE_SQL, refresh_deal_stages

SCHEMA_VERSION = 9

H3_RESOLUTIONS: tuple[int, ...] = (3, 4, 5, 6, 7, 8)
"""Resolutions whose cell every account carries (computed at import, never by parent-of)."""

POSTAL_UNIT_COLUMNS = ("zip5", "zip3", "county", "state", "fr_dept", "fr_commune")

_H3_COLUMNS = ",\n    ".join(f"h3_r{r} BIGINT" for r in H3_RESOLUTIONS)

PLAN_EVENTS = """CREATE TABLE IF NOT EXISTS plan_events (
    plan_id INTEGER NOT NULL,
    made_at TIMESTAMP NOT NULL,
    author VARCHAR,
    event VARCHAR NOT NULL,
    detail VARCHAR
);"""
CREATION_EVENTS = ("created", "cloned", "snapshot of", "restored from")
"""The first entry of every plan's history: how it came to be (plans.new_plan logs it)."""

STAGE_HISTORY_DDL = """CREATE TABLE IF NOT EXISTS stage_history (
    opportunity_id VARCHAR NOT NULL,
    stage VARCHAR NOT NULL,
    stage_class VARCHAR NOT NULL,
    changed_at DATE NOT NULL,
    days_in_stage INTEGER
);"""
DEAL_STAGES_DDL = """CREATE TABLE IF NOT EXISTS deal_stages (
    opportunity_id VARCHAR NOT NULL,
    stages VARCHAR[] NOT NULL,
    days INTEGER[] NOT NULL
);"""

DDL = f"""
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);

CREATE TABLE IF NOT EXISTS reps (
    rep_id VARCHAR NOT NULL,
    name VARCHAR,
    home_lat DOUBLE,
    home_lon DOUBLE,
    annual_quota DOUBLE NOT NULL DEFAULT 0,
    capacity_hours DOUBLE,
    manager_id VARCHAR,
    region VARCHAR
);

CREATE TABLE IF NOT EXISTS accounts (
    account_id VARCHAR NOT NULL,
    account_key BIGINT NOT NULL,
    name VARCHAR,
    lat DOUBLE NOT NULL,
    lon DOUBLE NOT NULL,
    postal_code VARCHAR,
    country VARCHAR,
    segment VARCHAR,
    industry VARCHAR,
    potential DOUBLE NOT NULL DEFAULT 0,
    owner_rep_id VARCHAR,
    last_activity_date DATE,
    visits_per_year DOUBLE,
    placed_by VARCHAR NOT NULL,
    zip5 VARCHAR,
    zip3 VARCHAR,
    county VARCHAR,
    state VARCHAR,
    fr_dept VARCHAR,
    fr_commune VARCHAR,
    {_H3_COLUMNS}
);

CREATE TABLE IF NOT EXISTS sales (
    opportunity_id VARCHAR NOT NULL,
    account_id VARCHAR NOT NULL,
    account_key BIGINT NOT NULL,
    amount DOUBLE NOT NULL,
    close_date DATE NOT NULL,
    stage VARCHAR NOT NULL,
    product VARCHAR,
    rep_id VARCHAR,
    created_date DATE,
    lead_source VARCHAR,
    lost_to VARCHAR,
    loss_reason VARCHAR
);

{STAGE_HISTORY_DDL}

{DEAL_STAGES_DDL}

CREATE SEQUENCE IF NOT EXISTS plan_ids START 1;

CREATE TABLE IF NOT EXISTS plans (
    plan_id INTEGER PRIMARY KEY,
    name VARCHAR NOT NULL UNIQUE,
    unit_type VARCHAR NOT NULL,
    state VARCHAR NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    note VARCHAR
);

CREATE TABLE IF NOT EXISTS territories (
    plan_id INTEGER NOT NULL,
    territory_id VARCHAR NOT NULL,
    name VARCHAR,
    rep_id VARCHAR,
    parent_id VARCHAR,
    annual_quota DOUBLE,
    color VARCHAR,
    locked BOOLEAN NOT NULL DEFAULT false,
    territory_type VARCHAR,
    PRIMARY KEY (plan_id, territory_id)
);

CREATE TABLE IF NOT EXISTS territory_types (
    plan_id INTEGER NOT NULL,
    type_name VARCHAR NOT NULL,
    priority INTEGER NOT NULL,
    description VARCHAR,
    PRIMARY KEY (plan_id, type_name)
);

CREATE TABLE IF NOT EXISTS assignment_rules (
    plan_id INTEGER NOT NULL,
    rule_id INTEGER NOT NULL,
    territory_id VARCHAR NOT NULL,
    name VARCHAR,
    criteria VARCHAR NOT NULL,
    boolean_filter VARCHAR,
    PRIMARY KEY (plan_id, rule_id)
);

{PLAN_EVENTS}

CREATE TABLE IF NOT EXISTS snapshots (
    snapshot_plan_id INTEGER PRIMARY KEY,
    source_plan_id INTEGER,
    source_name VARCHAR NOT NULL,
    taken_at TIMESTAMP NOT NULL,
    author VARCHAR,
    note VARCHAR,
    period VARCHAR NOT NULL,
    as_of DATE NOT NULL,
    settings VARCHAR NOT NULL,
    summary VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS plan_units (
    plan_id INTEGER NOT NULL,
    unit_id VARCHAR NOT NULL,
    territory_id VARCHAR NOT NULL,
    PRIMARY KEY (plan_id, unit_id)
);

CREATE TABLE IF NOT EXISTS account_overrides (
    plan_id INTEGER NOT NULL,
    account_id VARCHAR NOT NULL,
    territory_id VARCHAR NOT NULL,
    PRIMARY KEY (plan_id, account_id)
);

CREATE TABLE IF NOT EXISTS plan_edits (
    plan_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    label VARCHAR NOT NULL,
    author VARCHAR,
    made_at TIMESTAMP NOT NULL,
    undone BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (plan_id, seq)
);

CREATE TABLE IF NOT EXISTS users (
    username VARCHAR PRIMARY KEY,
    role VARCHAR NOT NULL,
    password_hash VARCHAR,
    rep_id VARCHAR,
    territories VARCHAR,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS overlays (
    name VARCHAR PRIMARY KEY,
    key_kind VARCHAR NOT NULL,
    source VARCHAR,
    imported_at TIMESTAMP NOT NULL,
    author VARCHAR
);

CREATE TABLE IF NOT EXISTS overlay_values (
    name VARCHAR NOT NULL,
    column_name VARCHAR NOT NULL,
    key VARCHAR NOT NULL,
    value DOUBLE NOT NULL
);

CREATE TABLE IF NOT EXISTS plan_edit_changes (
    plan_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    step INTEGER NOT NULL,
    kind VARCHAR NOT NULL,
    item_id VARCHAR NOT NULL,
    before VARCHAR,
    after VARCHAR
);
"""

MIGRATIONS: dict[int, list[str]] = {
    # 1 -> 2: an integer surrogate key per account, kept on its deals (fast joins)
    2: [
        "ALTER TABLE accounts ADD COLUMN account_key BIGINT",
        "UPDATE accounts SET account_key = k.key FROM (SELECT account_id, "
        "row_number() OVER (ORDER BY account_id) AS key FROM accounts) k "
        "WHERE accounts.account_id = k.account_id",
        "ALTER TABLE sales ADD COLUMN account_key BIGINT",
        "UPDATE sales SET account_key = a.account_key FROM accounts a "
        "WHERE a.account_id = sales.account_id",
    ],
    # 2 -> 3: map editing: locked territories and the undoable edit log
    3: [
        "ALTER TABLE territories ADD COLUMN locked BOOLEAN DEFAULT false",
        "UPDATE territories SET locked = false",
        # the edit tables themselves come from DDL (CREATE TABLE IF NOT EXISTS)
    ],
    # 3 -> 4: territory types, assignment rules, plan events, snapshots (tables from DDL)
    4: [
        "ALTER TABLE territories ADD COLUMN territory_type VARCHAR",
    ],
    # 4 -> 5: every plan's history starts with how it came to be; plans made by an import
    # or a conversion before version 5 had no such entry: one is recorded from the plan row
    5: [
        PLAN_EVENTS,
        "INSERT INTO plan_events SELECT p.plan_id, p.created_at, NULL, 'created', "
        "'recorded on upgrade' || coalesce(': ' || p.note, '') FROM plans p "
        "WHERE NOT EXISTS (SELECT 1 FROM plan_events e WHERE e.plan_id = p.plan_id AND "
        "e.event IN ('" + "', '".join(CREATION_EVENTS) + "'))",
    ],
    # 5 -> 6: people who sign in, with their roles (the table comes from DDL)
    6: [],
    # 6 -> 7: overlays a manager imports (analytics/overlays.py; tables from DDL)
    7: [],
    # 7 -> 8: the territory review's optional deal fields; the stage history (from DDL)
    8: [
        "ALTER TABLE sales ADD COLUMN IF NOT EXISTS created_date DATE",
        "ALTER TABLE sales ADD COLUMN IF NOT EXISTS lead_source VARCHAR",
        "ALTER TABLE sales ADD COLUMN IF NOT EXISTS lost_to VARCHAR",
        "ALTER TABLE sales ADD COLUMN IF NOT EXISTS loss_reason VARCHAR",
    ],
    # 8 -> 9: each change's days in its stage and one row of stages per deal, kept at
    # import (analytics/stage_history.py): worked out here for a history already stored
    9: [
        STAGE_HISTORY_DDL,
        "ALTER TABLE stage_history ADD COLUMN IF NOT EXISTS days_in_stage INTEGER",
        DAYS_IN_STAGE_SQL,
        DEAL_STAGES_DDL,
        refresh_deal_stages,
    ],
}
"""Statements that bring a database of version N-1 to version N (SQL text, or a function
of the cursor for work SQL alone cannot do in bounded memory)."""

PLAN_STATES = ("planning", "active", "archived")
"""States a manager sets; exactly one plan is active."""
SNAPSHOT_STATE = "snapshot"
"""A frozen copy of a plan: read-only, listed with its metrics, restorable as a new plan."""


@dataclass(frozen=True)
class Field:
    """One column of an imported table: its canonical name, type and accepted header names."""

    name: str
    kind: str  # text | id | number | date | lat | lon | postal | stage | flag
    required: bool = False
    aliases: tuple[str, ...] = ()
    minimum: float | None = None


@dataclass(frozen=True)
class TableSpec:
    name: str
    key: str
    fields: tuple[Field, ...] = field(default_factory=tuple)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]


ACCOUNTS = TableSpec(
    "accounts",
    key="account_id",
    fields=(
        Field("account_id", "id", True,
              ("id", "account id", "accountid", "account number", "accountnumber",
               "customer id", "customer_id", "account_number")),
        Field("name", "text", False,
              ("account name", "accountname", "account_name", "customer", "customer name",
               "company", "company name")),
        Field("lat", "lat", False,
              ("latitude", "billinglatitude", "billing latitude", "shippinglatitude", "y")),
        Field("lon", "lon", False,
              ("lng", "long", "longitude", "billinglongitude", "billing longitude",
               "shippinglongitude", "x")),
        Field("postal_code", "postal", False,
              ("zip", "zip code", "zipcode", "zip_code", "postcode", "postal code",
               "postalcode", "billingpostalcode", "billing zip/postal code",
               "billing postal code", "shippingpostalcode", "code postal", "cp")),
        Field("country", "text", False,
              ("billingcountry", "billing country", "country code", "country_code",
               "shippingcountry", "pays")),
        Field("segment", "text", False, ("type", "account type", "accounttype", "tier")),
        Field("industry", "text", False, ("sector", "vertical")),
        Field("potential", "number", False,
              ("annualrevenue", "annual revenue", "sales potential", "market potential",
               "potential_amount"), minimum=0),
        Field("owner_rep_id", "id", False,
              ("ownerid", "owner id", "owner", "account owner id", "rep_id", "rep id",
               "owner_id")),
        Field("last_activity_date", "date", False,
              ("lastactivitydate", "last activity", "last activity date", "last_activity")),
        Field("visits_per_year", "number", False,
              ("visits", "call frequency", "visit frequency", "visits per year"), minimum=0),
    ),
)

SALES = TableSpec(
    "sales",
    key="opportunity_id",
    fields=(
        Field("opportunity_id", "id", True,
              ("id", "opportunity id", "opportunityid", "opportunity_id", "deal id",
               "deal_id", "opportunity")),
        Field("account_id", "id", True,
              ("accountid", "account id", "account", "customer id", "customer_id")),
        Field("amount", "number", True,
              ("value", "deal value", "close_value", "close value", "revenue", "sales"),
              minimum=0),
        Field("close_date", "date", True,
              ("closedate", "close date", "date", "closed date", "order date")),
        Field("stage", "stage", False,
              ("stagename", "stage name", "deal_stage", "deal stage", "status")),
        Field("product", "text", False, ("product name", "product_name", "productname")),
        Field("rep_id", "id", False,
              ("ownerid", "owner id", "owner", "sales_agent", "sales agent", "rep")),
        Field("is_won", "flag", False, ("iswon", "won")),
        Field("is_closed", "flag", False, ("isclosed", "closed")),
        Field("created_date", "date", False,
              ("createddate", "created date", "created", "date created", "open date",
               "opened date", "engage date", "engage_date")),
        Field("lead_source", "text", False,
              ("leadsource", "lead source", "source", "lead origin", "channel")),
        Field("lost_to", "text", False,
              ("competitor", "lost to", "lost to competitor", "main competitor",
               "primary competitor", "competitor name", "lost to c", "competitor c")),
        Field("loss_reason", "text", False,
              ("loss reason", "lossreason", "reason lost", "closed lost reason",
               "lost reason", "loss reason c")),
    ),
)

REPS = TableSpec(
    "reps",
    key="rep_id",
    fields=(
        Field("rep_id", "id", True,
              ("id", "user id", "userid", "rep id", "owner id", "ownerid", "employee id")),
        Field("name", "text", False, ("full name", "user name", "rep name", "sales_agent")),
        Field("home_lat", "lat", False, ("latitude", "lat", "home latitude")),
        Field("home_lon", "lon", False, ("longitude", "lon", "lng", "home longitude")),
        Field("annual_quota", "number", False,
              ("quota", "annual quota", "target", "annual target"), minimum=0),
        Field("capacity_hours", "number", False,
              ("capacity", "capacity hours", "selling hours"), minimum=0),
        Field("manager_id", "id", False, ("managerid", "manager", "manager id")),
        Field("region", "text", False, ("area", "division", "userrole", "role")),
    ),
)

STAGE_HISTORY = TableSpec(
    "stage_history",
    key="opportunity_id",
    fields=(
        Field("opportunity_id", "id", True,
              ("opportunityid", "opportunity id", "opportunity", "deal id", "deal_id",
               "deal", "parentid")),
        Field("stage", "text", True,
              ("stagename", "stage name", "newvalue", "new value", "to stage", "status")),
        Field("changed_at", "date", True,
              ("createddate", "created date", "date", "changed date", "change date",
               "stage date", "entered", "timestamp")),
        Field("field", "text", False, ("field name", "fieldname")),
    ),
)
"""Stage changes of deals: Salesforce's OpportunityHistory (OpportunityId, StageName,
CreatedDate) or OpportunityFieldHistory (Field, NewValue, CreatedDate: only the rows whose
Field is StageName count); several rows per deal, one per change."""

TABLES: dict[str, TableSpec] = {t.name: t for t in (ACCOUNTS, SALES, REPS, STAGE_HISTORY)}
