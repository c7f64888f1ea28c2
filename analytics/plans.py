"""Territory plans: which territory each unit belongs to, with their reps and account pins.

A plan has one base unit type. Resolving an account follows docs/metrics.md: an account override
wins, else the territory of the account's unit, else the account is unassigned.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from analytics.columns import PLAN_FILE, match_columns
from analytics.errors import InputError
from analytics.ingest import ImportRejected, ImportReport, Rejection, TableReport, read_source
from analytics.resolution import resolved_cte
from analytics.schema import PLAN_STATES
from analytics.store import Store
from analytics.units import UnitType


@dataclass(frozen=True)
class Plan:
    plan_id: int
    name: str
    unit: UnitType
    state: str


def get_plan(cur: duckdb.DuckDBPyConnection, name: str | None = None) -> Plan:
    """The plan of that name, or the active plan when `name` is None."""
    if name is None:
        row = cur.execute(
            "SELECT plan_id, name, unit_type, state FROM plans WHERE state = 'active'"
        ).fetchone()
        if row is None:
            raise InputError("there is no active plan: import one with "
                             "`plan import --state active` or name one with --plan")
    else:
        row = cur.execute(
            "SELECT plan_id, name, unit_type, state FROM plans WHERE name = ?", [name]
        ).fetchone()
        if row is None:
            names = [r[0] for r in cur.execute("SELECT name FROM plans ORDER BY name").fetchall()]
            raise InputError(f"no plan named {name!r}; plans: {', '.join(names) or '(none)'}")
    return Plan(row[0], row[1], UnitType.parse(row[2]), row[3])


def list_plans(cur: duckdb.DuckDBPyConnection, *, snapshots: bool = False) -> pd.DataFrame:
    """The plans, the active one first; snapshots (frozen copies) only when asked for."""
    return cur.execute(
        """SELECT p.name, p.unit_type, p.state,
                  (SELECT count(*) FROM territories t WHERE t.plan_id = p.plan_id)
                      AS territories,
                  (SELECT count(*) FROM plan_units u WHERE u.plan_id = p.plan_id) AS units,
                  (SELECT count(*) FROM account_overrides o WHERE o.plan_id = p.plan_id)
                      AS account_overrides,
                  p.created_at, p.updated_at, p.note
           FROM plans p WHERE ? OR p.state <> 'snapshot'
           ORDER BY p.state = 'active' DESC, p.name""", [snapshots]
    ).df()


def import_plan(
    store: Store,
    name: str,
    unit: UnitType,
    path: str | Path,
    *,
    state: str | None = None,
    note: str | None = None,
    label: str | None = None,
) -> tuple[Plan, ImportReport]:
    """Create a plan from a file of `unit_id, territory_id[, territory_name, rep_id]`.

    All or nothing: any bad row (unknown unit id, a unit given twice, a territory with two
    names or reps) stores nothing and the report names each row. The first plan of a
    database becomes the active one unless another state is asked for.
    """
    name = checked_name(name)
    if state is not None and state not in PLAN_STATES:
        raise InputError(f"unknown plan state {state!r}: expected {', '.join(PLAN_STATES)}")
    label = label or str(path)
    tr = TableReport("plan", label)
    report = ImportReport([tr])
    with store.transaction() as cur:
        if cur.execute("SELECT 1 FROM plans WHERE name = ?", [name]).fetchone():
            raise InputError(f"a plan named {name!r} already exists: choose another name")
        headers = read_source(cur, Path(path), "raw_plan", label)
        chosen = match_columns(headers, PLAN_FILE, file=label)
        cols = ", ".join(
            f"NULLIF(trim(CAST(\"{chosen[k].replace(chr(34), chr(34) * 2)}\" AS VARCHAR)), '') "
            f"AS {k}" if k in chosen else f"NULL::VARCHAR AS {k}"
            for k in PLAN_FILE.names
        )
        raw = cur.execute(f"SELECT __row, {cols} FROM raw_plan ORDER BY __row").df()
        tr.rows = len(raw)
        tr.columns = chosen
        raw["unit_norm"] = unit.normalize_ids(raw["unit_id"].fillna("").tolist())
        _check_rows(cur, raw, unit, chosen, tr)
        if tr.rejected:
            raise ImportRejected(
                f"{label}: {tr.rejected_rows} of {tr.rows} rows are wrong; the plan was not "
                "created",
                report,
            )
        state = first_state(cur, state)
        plan_id = new_plan(cur, name, unit, state=state, note=note,
                           detail=f"imported from {Path(label).name}: {len(raw)} units, {state}")
        terr = (
            raw.groupby("territory_id", sort=True)
            .agg(name=("territory_name", "first"), rep_id=("rep_id", "first"))
            .reset_index()
        )
        terr.insert(0, "plan_id", plan_id)
        terr["name"] = terr["name"].fillna(terr["territory_id"])
        cur.register("new_territories", terr)
        cur.execute(
            "INSERT INTO territories (plan_id, territory_id, name, rep_id) "
            "SELECT plan_id, territory_id, name, rep_id FROM new_territories"
        )
        assign = pd.DataFrame({
            "plan_id": plan_id, "unit_id": raw["unit_norm"], "territory_id": raw["territory_id"]
        })
        cur.register("new_assign", assign)
        cur.execute("INSERT INTO plan_units SELECT plan_id, unit_id, territory_id FROM new_assign")
        tr.inserted = len(assign)
        report.committed = True
    return Plan(plan_id, name, unit, state), report


def _check_rows(cur, raw: pd.DataFrame, unit: UnitType, chosen, tr: TableReport) -> None:
    def reject(row, key, value, reason):
        tr.rejected.append(Rejection(tr.file, int(row), chosen.get(key, key), value, reason))

    seen: dict[str, int] = {}
    for row, uid, norm, tid in zip(
        raw["__row"], raw["unit_id"], raw["unit_norm"], raw["territory_id"], strict=True
    ):
        if uid is None or pd.isna(uid):
            reject(row, "unit_id", None, "missing unit id")
        else:
            why = unit.validate_id(norm)
            if why:
                reject(row, "unit_id", uid, f"{why} (the plan's unit is {unit})")
            elif norm in seen:
                reject(row, "unit_id", uid, f"unit listed twice (also on row {seen[norm]})")
            else:
                seen[norm] = int(row)
        if tid is None or pd.isna(tid):
            reject(row, "territory_id", None, "missing territory id")
    for key in ("territory_name", "rep_id"):
        if key not in chosen:
            continue
        sub = raw.dropna(subset=["territory_id", key])
        firsts = sub.groupby("territory_id")[key].first()
        for row, tid, val in zip(sub["__row"], sub["territory_id"], sub[key], strict=True):
            if val != firsts[tid]:
                reject(row, key, val,
                       f"territory {tid} already has {key} {firsts[tid]!r} on an earlier row")
    if "rep_id" in chosen:
        reps = {r[0] for r in cur.execute("SELECT rep_id FROM reps").fetchall()}
        for row, val in zip(raw["__row"], raw["rep_id"], strict=True):
            if val is not None and not pd.isna(val) and val not in reps:
                reject(row, "rep_id", val, "no rep with this id: load the reps file first")


def assignment(cur: duckdb.DuckDBPyConnection, plan: Plan) -> pd.DataFrame:
    """unit_id, territory_id sorted by unit (plain Python strings: read after every stroke,
    so no conversion to Arrow-backed strings)."""
    cols = cur.execute(
        "SELECT unit_id, territory_id FROM plan_units WHERE plan_id = ? ORDER BY unit_id",
        [plan.plan_id],
    ).fetchnumpy()
    return pd.DataFrame({k: pd.Series(np.asarray(cols[k], dtype=object), dtype=object)
                         for k in ("unit_id", "territory_id")})


def territories(cur: duckdb.DuckDBPyConnection, plan: Plan) -> pd.DataFrame:
    return cur.execute(
        """SELECT t.territory_id, t.name AS territory_name, t.rep_id, r.name AS rep_name,
                  t.parent_id, t.color, t.locked,
                  coalesce(t.annual_quota, r.annual_quota, 0) AS annual_quota,
                  r.home_lat, r.home_lon
           FROM territories t LEFT JOIN reps r ON r.rep_id = t.rep_id
           WHERE t.plan_id = ? ORDER BY t.territory_id""",
        [plan.plan_id],
    ).df()


def coverage(cur: duckdb.DuckDBPyConnection, plan: Plan) -> dict:
    """Accounts resolved to a territory with a rep, the unassigned ones, and placement."""
    cte, params = resolved_cte(plan)
    resolved = f"""
        WITH {cte}, r AS (
            SELECT a.account_id, a.name, a.segment, a.postal_code, a.state, a.potential,
                   a.placed_by, {plan.unit.unit_id_sql('a')} AS unit_id, a.territory_id
            FROM resolved a
        )"""
    totals = cur.execute(
        resolved + """
        SELECT count(*), sum(potential),
               count(*) FILTER (WHERE t.rep_id IS NOT NULL),
               sum(potential) FILTER (WHERE t.rep_id IS NOT NULL),
               count(*) FILTER (WHERE r.territory_id IS NULL),
               coalesce(sum(potential) FILTER (WHERE r.territory_id IS NULL), 0)
        FROM r LEFT JOIN territories t ON t.plan_id = ? AND t.territory_id = r.territory_id
        """,
        [*params, plan.plan_id],
    ).fetchone()
    n, pot, n_cov, pot_cov, n_un, pot_un = totals
    unassigned = cur.execute(
        resolved + """SELECT account_id, name, segment, postal_code, state, unit_id,
                             potential FROM r WHERE territory_id IS NULL
                      ORDER BY potential DESC LIMIT 1000""",
        params,
    ).df()
    placement = cur.execute(
        "SELECT placed_by, count(*) AS accounts FROM accounts GROUP BY 1 ORDER BY 2 DESC"
    ).df()
    return {
        "accounts": n,
        "covered_accounts_share": (n_cov / n) if n else None,
        "covered_potential_share": (pot_cov / pot) if pot else None,
        "unassigned_accounts": n_un,
        "unassigned_potential": pot_un,
        "unassigned": unassigned,
        "placement": placement,
    }


# --------------------------------------------------------------------------------------
# plan lifecycle: create, clone, rename, delete, state; every step in the plan's history
# --------------------------------------------------------------------------------------
PLAN_TABLES = ("territories", "plan_units", "account_overrides", "territory_types",
               "assignment_rules")
"""Tables holding a plan's content (a clone copies them, a delete removes them)."""


def author() -> str:
    """Who is acting: the signed-in person, the command line's `--as USER`, else the
    operating-system user at this machine (analytics/users.py)."""
    from analytics import users

    return users.current().username


def log_event(cur, plan_id: int, event: str, detail: str | None = None) -> None:
    cur.execute("INSERT INTO plan_events VALUES (?, ?, ?, ?, ?)",
                [plan_id, dt.datetime.now(), author(), event, detail])


def first_state(cur, state: str | None) -> str:
    """The state a new plan gets: the one asked for, else active when no plan is active
    (the first plan of a database), else planning."""
    if state is not None:
        return state
    has_active = cur.execute("SELECT 1 FROM plans WHERE state = 'active'").fetchone()
    return "planning" if has_active else "active"


NAME_MAX = 200
"""The longest plan (and territory) name: long enough for any real name, short enough for
file names, slide titles and the sidebar."""


def checked_name(name: str | None, what: str = "plan") -> str:
    """`name` stripped, or InputError: empty, longer than NAME_MAX, or holding control
    characters (they would print as terminal control and break CSV rows)."""
    name = (name or "").strip()
    if not name:
        raise InputError(f"a {what} needs a name")
    if len(name) > NAME_MAX:
        raise InputError(f"a {what} name has at most {NAME_MAX} characters; this one has "
                         f"{len(name):,} ({name[:40]!r}...)")
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):
        raise InputError(f"a {what} name cannot hold control characters (tabs, line breaks, "
                         f"escape codes): {name[:60]!r}")
    return name


def new_plan(cur, name: str, unit: UnitType | str, *, state: str, note: str | None,
             event: str = "created", detail: str | None = None) -> int:
    """The one way a plan row is made (import, convert, clone, snapshot, restore, create),
    inside the caller's transaction: a unique non-empty name, at most one active plan, and
    the first entry of its history (`event`, one of schema.CREATION_EVENTS). Returns its id.
    """
    from analytics import users

    users.require("edit")
    name = checked_name(name)
    if cur.execute("SELECT 1 FROM plans WHERE name = ?", [name]).fetchone():
        raise InputError(f"a plan named {name!r} already exists: choose another name")
    if state == "active":
        cur.execute("UPDATE plans SET state = 'planning' WHERE state = 'active'")
    plan_id = cur.execute("SELECT nextval('plan_ids')").fetchone()[0]
    now = dt.datetime.now().replace(microsecond=0)
    cur.execute("INSERT INTO plans VALUES (?, ?, ?, ?, ?, ?, ?)",
                [plan_id, name, str(unit), state, now, now, note])
    log_event(cur, plan_id, event, detail)
    return plan_id


def create_plan(store: Store, name: str, unit: UnitType, *, state: str = "planning",
                note: str | None = None) -> Plan:
    """An empty plan on a unit type (territories are then created and painted)."""
    _check_state(state)
    with store.transaction() as cur:
        state = "active" if first_state(cur, None) == "active" else state
        new_plan(cur, name, unit, state=state, note=note,
                 detail=f"empty plan on {unit}, {state}")
    return get_plan(store.cursor(), name.strip())


def clone_plan(store: Store, plan: Plan, name: str, *, state: str = "planning",
               note: str | None = None, event: str = "cloned") -> Plan:
    """A copy of a plan (territories, units, pins, types, rules) under a new name."""
    if state not in (*PLAN_STATES, "snapshot"):
        _check_state(state)
    with store.transaction() as cur:
        copy_plan(cur, plan, name, state=state, note=note, event=event)
    return get_plan(store.cursor(), name.strip())


def copy_plan(cur, plan: Plan, name: str, *, state: str, note: str | None,
              event: str) -> int:
    """The copy itself, inside the caller's transaction; returns the new plan id."""
    plan_id = new_plan(cur, name, plan.unit, state=state,
                       note=note if note is not None else f"copy of {plan.name}",
                       event=event, detail=f"from {plan.name}")
    for table in PLAN_TABLES:
        cols = [r[0] for r in cur.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
            "ORDER BY ordinal_position", [table]).fetchall()]
        rest = ", ".join(c for c in cols if c != "plan_id")
        cur.execute(f"INSERT INTO {table} (plan_id, {rest}) SELECT ?, {rest} "
                    f"FROM {table} WHERE plan_id = ?", [plan_id, plan.plan_id])
    if event == "cloned":
        log_event(cur, plan.plan_id, "cloned to", name.strip())
    return plan_id


def rename_plan(store: Store, plan: Plan, name: str) -> Plan:
    from analytics import users

    users.require("edit")
    name = checked_name(name)

    def work(cur) -> None:
        if cur.execute("SELECT 1 FROM plans WHERE name = ? AND plan_id <> ?",
                       [name, plan.plan_id]).fetchone():
            raise InputError(f"a plan named {name!r} already exists: choose another name")
        cur.execute("UPDATE plans SET name = ?, updated_at = ? WHERE plan_id = ?",
                    [name, dt.datetime.now(), plan.plan_id])
        log_event(cur, plan.plan_id, "renamed", f"{plan.name} -> {name}")

    store.write(work)  # again if a colleague's change to the plan got in first
    return get_plan(store.cursor(), name)


def set_state(store: Store, plan: Plan, state: str) -> Plan:
    """planning / active / archived; activating a plan puts the previous active one back to
    planning. The active plan cannot be archived or demoted directly: activate another."""
    from analytics import users

    users.require("edit")
    _check_state(state)

    def work(cur) -> None:
        now = _current_state(cur, plan)  # the stored state, not a possibly stale `plan`
        if now == "snapshot":
            raise InputError(f"{plan.name!r} is a snapshot: restore it as a plan to change it")
        if now == "active" and state != "active":
            raise InputError(f"{plan.name!r} is the active plan: activate another plan first "
                             "(exactly one plan is active)")
        if state == "active":
            cur.execute("UPDATE plans SET state = 'planning' WHERE state = 'active'")
        cur.execute("UPDATE plans SET state = ?, updated_at = ? WHERE plan_id = ?",
                    [state, dt.datetime.now(), plan.plan_id])
        log_event(cur, plan.plan_id, "state", f"{now} -> {state}")

    store.write(work)  # again if a colleague's change to the plan got in first
    return get_plan(store.cursor(), plan.name)


def _current_state(cur, plan: Plan) -> str:
    row = cur.execute("SELECT state FROM plans WHERE plan_id = ?", [plan.plan_id]).fetchone()
    if row is None:
        raise InputError(f"plan {plan.name!r} no longer exists")
    return row[0]


def delete_plan(store: Store, plan: Plan) -> None:
    """Delete a plan and everything in it (not the active plan)."""
    from analytics import users

    users.require("edit")

    def work(cur) -> None:
        if _current_state(cur, plan) == "active":  # the stored state, not a stale `plan`
            raise InputError(f"{plan.name!r} is the active plan: activate another plan "
                             "before deleting it")
        for table in (*PLAN_TABLES, "plan_edits", "plan_edit_changes"):
            cur.execute(f"DELETE FROM {table} WHERE plan_id = ?", [plan.plan_id])
        cur.execute("DELETE FROM snapshots WHERE snapshot_plan_id = ?", [plan.plan_id])
        cur.execute("DELETE FROM plans WHERE plan_id = ?", [plan.plan_id])
        log_event(cur, plan.plan_id, "deleted", plan.name)

    store.write(work)  # again if a colleague's change to the plan got in first


def _check_state(state: str) -> None:
    if state not in PLAN_STATES:
        raise InputError(f"unknown plan state {state!r}: expected {', '.join(PLAN_STATES)}")


def plan_history(cur: duckdb.DuckDBPyConnection, plan: Plan, limit: int = 500) -> pd.DataFrame:
    """Who changed what, when: lifecycle events and edits, newest first."""
    return cur.execute(
        """SELECT made_at, author, event AS what, detail FROM plan_events WHERE plan_id = ?
           UNION ALL
           SELECT made_at, author, CASE WHEN undone THEN 'edit (undone)' ELSE 'edit' END,
                  label FROM plan_edits WHERE plan_id = ?
           ORDER BY made_at DESC LIMIT ?""", [plan.plan_id, plan.plan_id, limit]).df()
