"""What the acting person may read: a rep sees only their own territories in the active plan.

Salesforce's territory model is the reference (docs/security.md): a territory grants its rep
access to its accounts and their deals, and only the active model is visible to them. The
rule is enforced where every read starts, the database cursor: `Store.cursor()` hands a rep
a cursor on which the data tables are shadowed by temporary views holding only their rows
(DuckDB resolves a temporary view before the stored table of the same name). Every engine
function reads through the cursor it is given, so a page, the command line (`--as USER`)
and an export are held to the same scope without a filter argument each could forget.

Admins, managers and viewers read everything (a manager's territories limit what they edit,
not what they read).

What a rep's cursor shows (docs/security.md, "A rep's own view"):

- plans and territory types: the active plan only; its history without details (they name
  other plans and territories);
- territories, unit assignments, pins and assignment rules: their territories (those whose
  rep is them, and the territories below those in the hierarchy);
- accounts: those whose territory (pin, else unit; analytics/resolution.py) is one of theirs;
  deals and their stage history: those of these accounts; reps: themselves;
- users: their own row without its password hash;
- edits, snapshots and any other table: nothing (an edit's changes and a snapshot's
  summary name other territories' units and numbers).
"""

from __future__ import annotations

import duckdb

from analytics.units import UnitType
from analytics.users import User

UNSCOPED = frozenset({"meta"})
"""Tables every cursor reads whole: settings and the schema version hold no accounts."""


def is_scoped(user: User) -> bool:
    """True when `user` reads through a scoped cursor (reps)."""
    return user.role == "rep"


def scope_key(user: User, cur: duckdb.DuckDBPyConnection | None = None) -> str:
    """Part of every cache key over data read through a cursor: two people whose cursors
    can show different rows never share a cached result. With `cur` (the person's own
    cursor), a rep's key also changes with every change to the active plan, which can move
    accounts into or out of their territories."""
    if not is_scoped(user):
        return "all"
    stamp = cur.execute("SELECT max(plan_id), max(updated_at) FROM plans").fetchone() \
        if cur is not None else None
    return f"rep:{user.rep_id}:{stamp}"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _stored_tables(cur: duckdb.DuckDBPyConnection, catalog: str) -> list[str]:
    return [r[0] for r in cur.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = ? AND "
        "table_schema = 'main'", [catalog]).fetchall()]


def scope_cursor(cur: duckdb.DuckDBPyConnection, user: User) -> duckdb.DuckDBPyConnection:
    """Shadow the data tables on `cur` (a fresh cursor) with views of `user`'s rows."""
    catalog = cur.execute("SELECT current_database()").fetchone()[0]
    db = f"{_ident(catalog)}.main"
    cur.execute("CREATE TEMP TABLE scope_plan AS SELECT plan_id, unit_type FROM "
                f"{db}.plans WHERE state = 'active'")
    cur.execute("CREATE TEMP TABLE scope_user (username VARCHAR, rep_id VARCHAR)")
    cur.execute("INSERT INTO scope_user VALUES (?, ?)", [user.username, user.rep_id])
    # their territories: the rep's own and everything below them in the hierarchy
    cur.execute(f"""CREATE TEMP TABLE scope_territories AS
        WITH RECURSIVE mine(territory_id) AS (
            SELECT t.territory_id FROM {db}.territories t
            WHERE t.plan_id IN (SELECT plan_id FROM scope_plan)
              AND t.rep_id = (SELECT rep_id FROM scope_user)
            UNION
            SELECT c.territory_id FROM {db}.territories c JOIN mine m
              ON c.parent_id = m.territory_id
            WHERE c.plan_id IN (SELECT plan_id FROM scope_plan)
        ) SELECT DISTINCT territory_id FROM mine""")
    active = cur.execute("SELECT plan_id, unit_type FROM scope_plan").fetchone()
    if active is not None:
        uid = UnitType.parse(active[1]).unit_id_sql("acc")
        cur.execute(f"""CREATE TEMP TABLE scope_accounts AS
            SELECT acc.account_key FROM {db}.accounts acc
            LEFT JOIN {db}.account_overrides o
              ON o.plan_id = ? AND o.account_id = acc.account_id
            LEFT JOIN {db}.plan_units u ON u.plan_id = ? AND u.unit_id = {uid}
            WHERE coalesce(o.territory_id, u.territory_id) IN
                  (SELECT territory_id FROM scope_territories)""", [active[0], active[0]])
    else:
        cur.execute("CREATE TEMP TABLE scope_accounts (account_key BIGINT)")
    in_plan = "plan_id IN (SELECT plan_id FROM scope_plan)"
    in_terr = "territory_id IN (SELECT territory_id FROM scope_territories)"
    in_accounts = "account_key IN (SELECT account_key FROM scope_accounts)"
    rows = {
        "plans": in_plan,
        "territory_types": in_plan,
        "territories": f"{in_plan} AND {in_terr}",
        "plan_units": f"{in_plan} AND {in_terr}",
        "account_overrides": f"{in_plan} AND {in_terr}",
        "assignment_rules": f"{in_plan} AND {in_terr}",
        "accounts": in_accounts,
        "sales": in_accounts,
        "stage_history": f"opportunity_id IN (SELECT opportunity_id FROM {db}.sales "
                         f"WHERE {in_accounts})",
        "deal_stages": f"opportunity_id IN (SELECT opportunity_id FROM {db}.sales "
                       f"WHERE {in_accounts})",
        "reps": "rep_id = (SELECT rep_id FROM scope_user)",
    }
    for table in _stored_tables(cur, catalog):
        if table in UNSCOPED:
            continue
        if table == "plan_events":  # details name other plans and territories
            cur.execute(f"""CREATE TEMP VIEW plan_events AS SELECT * REPLACE (NULL::VARCHAR
                AS detail) FROM {db}.plan_events WHERE {in_plan}""")
            continue
        if table == "users":
            cur.execute(f"""CREATE TEMP VIEW users AS SELECT * REPLACE (NULL::VARCHAR AS
                password_hash) FROM {db}.users
                WHERE username = (SELECT username FROM scope_user)""")
            continue
        where = rows.get(table, "false")
        try:
            cur.execute(f"CREATE TEMP VIEW {_ident(table)} AS SELECT * FROM "
                        f"{db}.{_ident(table)} WHERE {where}")
        except duckdb.Error:  # a stored view over a file that is gone: nothing to show
            cur.execute(f"CREATE TEMP VIEW {_ident(table)} AS SELECT NULL AS nothing "
                        "WHERE false")
    return cur
