"""Edits to a plan, as a manager makes them on the map: each one transaction, each undoable.

Every edit (a paint stroke, an erased area, a rename, a merge, a pin) is written in the same
transaction as the change itself to `plan_edits` (one row) and `plan_edit_changes` (one row
per unit, pin or territory whose state changed, with the state before and after). Undo puts
the "before" states back, redo the "after" states; a new edit after an undo drops the edits
that could have been redone. A crash or a closed tab loses nothing: the store is the plan.

Strokes skip units of locked territories; painting *with* a locked territory is refused.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import pandas as pd

from analytics import users
from analytics.errors import InputError
from analytics.plans import Plan, author, checked_name, get_plan, new_plan
from analytics.resolution import resolved_cte
from analytics.schema import PLAN_STATES
from analytics.store import Store
from analytics.units import UnitType

TERRITORY_FIELDS = ("name", "rep_id", "parent_id", "annual_quota", "color", "locked",
                    "territory_type")
COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
UNIT, PIN, TERRITORY = "unit", "pin", "territory"


@dataclass(frozen=True)
class EditResult:
    """What an edit did: how many items changed, how many a lock protected."""

    label: str
    changed: int
    skipped_locked: int = 0
    seq: int | None = None  # None: nothing changed, nothing logged

    def __str__(self) -> str:
        text = f"{self.label}: {self.changed} changed"
        if self.skipped_locked:
            text += f", {self.skipped_locked} skipped (locked territory)"
        return text


Change = tuple[str, str, str | None, str | None]  # kind, item id, before, after


# --------------------------------------------------------------------------------------
# reading the plan's current state
# --------------------------------------------------------------------------------------
def territory_rows(cur, plan: Plan) -> dict[str, dict]:
    rows = cur.execute(
        f"SELECT territory_id, {', '.join(TERRITORY_FIELDS)} FROM territories "
        "WHERE plan_id = ?", [plan.plan_id]
    ).fetchall()
    return {r[0]: dict(zip(TERRITORY_FIELDS, r[1:], strict=True)) for r in rows}


def _unit_territories(cur, plan: Plan, unit_ids: list[str]) -> dict[str, str]:
    rows = cur.execute(
        "SELECT unit_id, territory_id FROM plan_units WHERE plan_id = ? "
        "AND unit_id IN (SELECT unnest(?::VARCHAR[]))", [plan.plan_id, unit_ids]
    ).fetchall()
    return dict(rows)


def require_territory(terr: dict[str, dict], territory_id: str, plan: Plan) -> dict:
    if territory_id not in terr:
        known = ", ".join(sorted(terr)[:12]) + (" ..." if len(terr) > 12 else "")
        raise InputError(f"plan {plan.name!r} has no territory {territory_id!r} "
                         f"(territories: {known or 'none'})")
    return terr[territory_id]


def _territory_json(row: dict | None) -> str | None:
    return None if row is None else json.dumps(row, sort_keys=True, default=str)


# --------------------------------------------------------------------------------------
# applying and logging changes
# --------------------------------------------------------------------------------------
def _apply(cur, plan: Plan, changes: list[Change], *, undo: bool) -> None:
    """Bring every item to its `after` state (or `before` when undoing), in bulk."""
    ordered = list(reversed(changes)) if undo else changes
    state = {(k, i): (b if undo else a) for k, i, b, a in ordered}
    for kind, table, key in ((UNIT, "plan_units", "unit_id"),
                             (PIN, "account_overrides", "account_id")):
        items = {i: v for (k, i), v in state.items() if k == kind}
        if not items:
            continue
        cur.execute(
            f"DELETE FROM {table} WHERE plan_id = ? AND {key} IN "
            "(SELECT unnest(?::VARCHAR[]))", [plan.plan_id, list(items)]
        )
        rows = pd.DataFrame(
            [(plan.plan_id, i, t) for i, t in items.items() if t is not None],
            columns=["plan_id", key, "territory_id"],
        )
        if len(rows):
            cur.register("edit_rows", rows)
            cur.execute(f"INSERT INTO {table} (plan_id, {key}, territory_id) "
                        f"SELECT plan_id, {key}, territory_id FROM edit_rows")
            cur.unregister("edit_rows")
    for (kind, tid), value in state.items():
        if kind != TERRITORY:
            continue
        cur.execute("DELETE FROM territories WHERE plan_id = ? AND territory_id = ?",
                    [plan.plan_id, tid])
        if value is not None:
            row = json.loads(value)
            cur.execute(
                f"INSERT INTO territories (plan_id, territory_id, {', '.join(TERRITORY_FIELDS)})"
                f" VALUES (?, ?, {', '.join('?' * len(TERRITORY_FIELDS))})",
                [plan.plan_id, tid, *[row.get(f) for f in TERRITORY_FIELDS]],
            )


def touch_plan(cur, plan: Plan) -> None:
    cur.execute("UPDATE plans SET updated_at = ? WHERE plan_id = ?",
                [dt.datetime.now(), plan.plan_id])


def writable(plan: Plan) -> None:
    """Snapshots are frozen: refuse any edit to one."""
    if plan.state == "snapshot":
        raise InputError(f"{plan.name!r} is a snapshot (frozen): restore it as a new plan "
                         "to change it")


def touched(changes: list[Change]) -> set[str]:
    """The territories an edit changes: each unit's and pin's territory before and after,
    and each territory changed itself."""
    out = set()
    for kind, item, before, after in changes:
        if kind == TERRITORY:
            out.add(item)
        else:
            out.update(t for t in (before, after) if t is not None)
    return out


def commit_edit(store: Store, plan: Plan, label: str, build) -> EditResult:
    """Run `build(cur) -> (changes, skipped)` and apply + log its changes, all in one txn
    (built again on the new state if another session's edit committed first)."""
    writable(plan)
    users.require("edit")  # before any work: a viewer or rep is refused at once

    def work(cur) -> EditResult:
        changes, skipped = build(cur)
        if not changes:
            return EditResult(label, 0, skipped)
        users.require("edit", touched(changes))
        _apply(cur, plan, changes, undo=False)
        me = author()
        cur.execute(  # a new edit ends its author's redo history (others keep theirs)
            "DELETE FROM plan_edit_changes WHERE plan_id = ? AND seq IN "
            "(SELECT seq FROM plan_edits WHERE plan_id = ? AND undone "
            "AND author IS NOT DISTINCT FROM ?)", [plan.plan_id, plan.plan_id, me])
        cur.execute("DELETE FROM plan_edits WHERE plan_id = ? AND undone AND "
                    "author IS NOT DISTINCT FROM ?", [plan.plan_id, me])
        seq = cur.execute("SELECT coalesce(max(seq), 0) + 1 FROM plan_edits WHERE plan_id = ?",
                          [plan.plan_id]).fetchone()[0]
        cur.execute("INSERT INTO plan_edits VALUES (?, ?, ?, ?, ?, false)",
                    [plan.plan_id, seq, label, me, dt.datetime.now()])
        log = pd.DataFrame(
            [(plan.plan_id, seq, step, k, i, b, a)
             for step, (k, i, b, a) in enumerate(changes)],
            columns=["plan_id", "seq", "step", "kind", "item_id", "before", "after"],
        )
        cur.register("edit_log", log)
        cur.execute("INSERT INTO plan_edit_changes SELECT * FROM edit_log")
        cur.unregister("edit_log")
        touch_plan(cur, plan)
        return EditResult(label, len(changes), skipped, seq)

    return store.write(work)  # again from the start if a colleague's edit got in first


# --------------------------------------------------------------------------------------
# unit strokes
# --------------------------------------------------------------------------------------
def assign(store: Store, plan: Plan, unit_ids: Iterable[str], territory_id: str | None,
           *, label: str | None = None) -> EditResult:
    """Put units in a territory (None: unassign them, the eraser), skipping locked ones."""
    ids = list(dict.fromkeys(str(u) for u in unit_ids))
    bad = [u for u in ids if plan.unit.validate_id(u)]
    if bad:
        raise InputError(f"{bad[0]!r}: {plan.unit.validate_id(bad[0])} "
                         f"(the plan's unit is {plan.unit})")
    if label is None:
        what = f"{len(ids)} unit" + ("s" if len(ids) != 1 else "")
        label = (f"Erase {what}" if territory_id is None
                 else f"Assign {what} to {territory_id}")

    def build(cur):
        terr = territory_rows(cur, plan)
        if territory_id is not None:
            row = require_territory(terr, territory_id, plan)
            if row["locked"]:
                raise InputError(f"territory {territory_id!r} is locked: unlock it before "
                                 "painting with it")
        locked = {t for t, r in terr.items() if r["locked"]}
        now = _unit_territories(cur, plan, ids)
        changes, skipped = [], 0
        for u in ids:
            before = now.get(u)
            if before in locked:
                skipped += 1
            elif before != territory_id:
                changes.append((UNIT, u, before, territory_id))
        return changes, skipped

    return commit_edit(store, plan, label, build)


def erase(store: Store, plan: Plan, unit_ids: Iterable[str]) -> EditResult:
    return assign(store, plan, unit_ids, None)


# --------------------------------------------------------------------------------------
# territories
# --------------------------------------------------------------------------------------
def create_territory(store: Store, plan: Plan, name: str, *, territory_id: str | None = None,
                     rep_id: str | None = None, color: str | None = None) -> EditResult:
    name = checked_name(name, "territory")

    def build(cur):
        terr = territory_rows(cur, plan)
        tid = (territory_id or "").strip() or _next_id(terr)
        if tid in terr:
            raise InputError(f"plan {plan.name!r} already has a territory {tid!r}")
        _check_fields(cur, {"rep_id": rep_id, "color": color})
        row = {"name": name, "rep_id": rep_id, "parent_id": None, "annual_quota": None,
               "color": color, "locked": False, "territory_type": None}
        return [(TERRITORY, tid, None, _territory_json(row))], 0

    return commit_edit(store, plan, f"Create territory {name}", build)


def _next_id(terr: dict[str, dict]) -> str:
    n = len(terr) + 1
    while f"T{n:02d}" in terr:
        n += 1
    return f"T{n:02d}"


def _check_fields(cur, fields: dict) -> None:
    color = fields.get("color")
    if color is not None and not COLOR.fullmatch(str(color)):
        raise InputError(f"colour {color!r}: expected #rrggbb, e.g. #4477aa")
    rep = fields.get("rep_id")
    if rep is not None and not cur.execute("SELECT 1 FROM reps WHERE rep_id = ?",
                                           [rep]).fetchone():
        raise InputError(f"no rep with id {rep!r}: load the reps file first")
    quota = fields.get("annual_quota")
    if quota is not None and (not isinstance(quota, (int, float)) or quota < 0):
        raise InputError(f"annual quota {quota!r}: expected a number of at least 0")


def update_territory(store: Store, plan: Plan, territory_id: str, *,
                     expected: dict | None = None, **fields) -> EditResult:
    """Rename, recolour, (un)lock, give a rep, a parent or a quota: `name=...`, `color=...`.

    `expected`: the values of these fields as the editor saw them (a version check): when
    someone changed any of them since, the save is refused, saying who changed what, instead
    of overwriting their change."""
    unknown = set(fields) - set(TERRITORY_FIELDS)
    if unknown:
        raise InputError(f"unknown territory field(s) {', '.join(sorted(unknown))}; "
                         f"fields: {', '.join(TERRITORY_FIELDS)}")
    if "name" in fields:
        fields["name"] = checked_name(fields["name"], "territory")
    if "locked" in fields:
        fields["locked"] = bool(fields["locked"])
    words = {"name": "Rename", "color": "Recolour", "rep_id": "Set rep of",
             "locked": "Lock" if fields.get("locked") else "Unlock",
             "parent_id": "Set parent of", "annual_quota": "Set quota of",
             "territory_type": "Set type of"}
    label = " / ".join(words[f] for f in fields) + f" {territory_id}"

    def build(cur):
        terr = territory_rows(cur, plan)
        before = require_territory(terr, territory_id, plan)
        moved = {f: before.get(f) for f, v in (expected or {}).items() if before.get(f) != v}
        if moved:
            last = cur.execute(
                "SELECT e.author, e.made_at FROM plan_edits e JOIN plan_edit_changes c "
                "USING (plan_id, seq) WHERE e.plan_id = ? AND c.kind = ? AND c.item_id = ? "
                "ORDER BY e.seq DESC LIMIT 1", [plan.plan_id, TERRITORY, territory_id]
            ).fetchone()
            by = f" by {last[0]} at {last[1]:%H:%M}" if last else ""
            now = ", ".join(f"{f} is now {v!r} (you saw {expected[f]!r})"
                            for f, v in moved.items())
            raise InputError(f"{territory_id} was changed{by} since you opened it: {now}; "
                             "nothing saved. Look again and save your change on top")
        _check_fields(cur, fields)
        parent = fields.get("parent_id")
        if parent is not None and parent not in terr:
            raise InputError(f"no territory {parent!r} to be the parent")
        seen, up = set(), parent
        while up is not None and up not in seen:  # the parents above may not come back here
            if up == territory_id:
                raise InputError(f"{parent!r} cannot be the parent of {territory_id!r}: "
                                 "it is the territory itself or below it")
            seen.add(up)
            up = terr.get(up, {}).get("parent_id")
        after = {**before, **fields}
        if after == before:
            return [], 0
        return [(TERRITORY, territory_id, _territory_json(before), _territory_json(after))], 0

    return commit_edit(store, plan, label, build)


def set_reps(store: Store, plan: Plan, reps: dict[str, str | None], *,
             expected: dict[str, str | None] | None = None,
             label: str = "Set reps") -> EditResult:
    """Give several territories a rep each in one edit (one undo takes all back).
    `expected`: each territory's rep as the caller saw it; if another edit changed one
    since, nothing is saved."""

    def build(cur):
        terr = territory_rows(cur, plan)
        for rep in sorted({r for r in reps.values() if r is not None}):
            _check_fields(cur, {"rep_id": rep})
        changes = []
        for tid, rep in reps.items():
            before = require_territory(terr, tid, plan)
            if expected is not None and before.get("rep_id") != expected.get(tid):
                raise InputError(f"{tid}'s rep is now {before.get('rep_id')!r}, not "
                                 f"{expected.get(tid)!r} as suggested: the plan changed "
                                 "since; nothing saved. Look at the suggestion again")
            if before.get("rep_id") != rep:
                changes.append((TERRITORY, tid, _territory_json(before),
                                _territory_json({**before, "rep_id": rep})))
        return changes, 0

    return commit_edit(store, plan, label, build)


def set_locked(store: Store, plan: Plan, territory_id: str, locked: bool) -> EditResult:
    return update_territory(store, plan, territory_id, locked=locked)


def merge_territories(store: Store, plan: Plan, sources: Iterable[str],
                      target: str) -> EditResult:
    """Move the units and pins of `sources` into `target`, then delete the sources."""
    sources = [s for s in dict.fromkeys(sources) if s != target]
    if not sources:
        raise InputError("choose at least one territory to merge into another one")

    def build(cur):
        terr = territory_rows(cur, plan)
        require_territory(terr, target, plan)
        for s in sources:
            require_territory(terr, s, plan)
        locked = [t for t in (*sources, target) if terr[t]["locked"]]
        if locked:
            raise InputError(f"territory {locked[0]!r} is locked: unlock it before merging")
        changes: list[Change] = []
        for kind, table, key in ((UNIT, "plan_units", "unit_id"),
                                 (PIN, "account_overrides", "account_id")):
            rows = cur.execute(
                f"SELECT {key}, territory_id FROM {table} WHERE plan_id = ? AND territory_id "
                "IN (SELECT unnest(?::VARCHAR[])) ORDER BY 1", [plan.plan_id, sources]
            ).fetchall()
            changes += [(kind, i, t, target) for i, t in rows]
        changes += [(TERRITORY, s, _territory_json(terr[s]), None) for s in sources]
        return changes, 0

    return commit_edit(store, plan, f"Merge {', '.join(sources)} into {target}", build)


def delete_territory(store: Store, plan: Plan, territory_id: str) -> EditResult:
    """Remove a territory: its units become unassigned, its pins are dropped."""

    def build(cur):
        terr = territory_rows(cur, plan)
        row = require_territory(terr, territory_id, plan)
        if row["locked"]:
            raise InputError(f"territory {territory_id!r} is locked: unlock it before "
                             "deleting it")
        changes: list[Change] = []
        for kind, table, key in ((UNIT, "plan_units", "unit_id"),
                                 (PIN, "account_overrides", "account_id")):
            rows = cur.execute(
                f"SELECT {key} FROM {table} WHERE plan_id = ? AND territory_id = ? ORDER BY 1",
                [plan.plan_id, territory_id]).fetchall()
            changes += [(kind, r[0], territory_id, None) for r in rows]
        changes.append((TERRITORY, territory_id, _territory_json(row), None))
        return changes, 0

    return commit_edit(store, plan, f"Delete territory {territory_id}", build)


# --------------------------------------------------------------------------------------
# account overrides
# --------------------------------------------------------------------------------------
def pin_account(store: Store, plan: Plan, account_id: str,
                territory_id: str | None) -> EditResult:
    """Pin one account to a territory whatever its unit (None: remove the pin)."""
    label = (f"Unpin account {account_id}" if territory_id is None
             else f"Pin account {account_id} to {territory_id}")

    def build(cur):
        if not cur.execute("SELECT 1 FROM accounts WHERE account_id = ?",
                           [account_id]).fetchone():
            raise InputError(f"no account with id {account_id!r}")
        if territory_id is not None:
            require_territory(territory_rows(cur, plan), territory_id, plan)
        row = cur.execute("SELECT territory_id FROM account_overrides WHERE plan_id = ? AND "
                          "account_id = ?", [plan.plan_id, account_id]).fetchone()
        before = row[0] if row else None
        if before == territory_id:
            return [], 0
        return [(PIN, account_id, before, territory_id)], 0

    return commit_edit(store, plan, label, build)


# --------------------------------------------------------------------------------------
# undo, redo, history
# --------------------------------------------------------------------------------------
def _changes(cur, plan: Plan, seq: int) -> list[Change]:
    return [tuple(r) for r in cur.execute(
        "SELECT kind, item_id, before, after FROM plan_edit_changes "
        "WHERE plan_id = ? AND seq = ? ORDER BY step", [plan.plan_id, seq]).fetchall()]


def undo(store: Store, plan: Plan) -> EditResult | None:
    """Take back the latest edit not yet undone (None when there is none)."""
    return _replay(store, plan, undo=True)


def redo(store: Store, plan: Plan) -> EditResult | None:
    """Make again the earliest undone edit (None when there is none)."""
    return _replay(store, plan, undo=False)


def _replay(store: Store, plan: Plan, *, undo: bool) -> EditResult | None:
    """Undo: the acting person's latest edit not undone, back to its "before" states; redo:
    their earliest undone edit, to its "after" states. One transaction. Refused, saying who
    changed what, when someone else has since changed any of the same units, pins or
    territories: taking it back would silently overwrite their work."""
    writable(plan)
    me = users.require("edit").username
    pick = ("NOT undone ORDER BY seq DESC" if undo else "undone ORDER BY seq")

    def work(cur) -> EditResult | None:
        row = cur.execute(f"SELECT seq, label FROM plan_edits WHERE plan_id = ? AND "
                          f"author IS NOT DISTINCT FROM ? AND {pick} LIMIT 1",
                          [plan.plan_id, me]).fetchone()
        if row is None:
            return None
        since = cur.execute(
            """SELECT e.author, e.label, e.made_at, count(DISTINCT c.kind || ':' || c.item_id)
               FROM plan_edits e JOIN plan_edit_changes c USING (plan_id, seq)
               WHERE e.plan_id = ? AND e.seq > ? AND NOT e.undone
                 AND e.author IS DISTINCT FROM ?
                 AND (c.kind, c.item_id) IN (SELECT kind, item_id FROM plan_edit_changes
                                             WHERE plan_id = ? AND seq = ?)
               GROUP BY ALL ORDER BY min(e.seq)""",
            [plan.plan_id, row[0], me, plan.plan_id, row[0]]).fetchall()
        if since:
            who = "; ".join(f"{a} changed {n} of the same items in {label!r} at {at:%H:%M}"
                            for a, label, at, n in since[:3])
            raise InputError(f"{'Undo' if undo else 'Redo'} of {row[1]!r} refused: {who}. "
                             "Change them back by hand, or ask them")
        changes = _changes(cur, plan, row[0])
        _apply(cur, plan, changes, undo=undo)
        cur.execute("UPDATE plan_edits SET undone = ? WHERE plan_id = ? AND seq = ?",
                    [undo, plan.plan_id, row[0]])
        touch_plan(cur, plan)
        return EditResult(f"{'Undo' if undo else 'Redo'}: {row[1]}", len(changes), 0,
                          row[0])

    return store.write(work)


def next_labels(cur: duckdb.DuckDBPyConnection, plan: Plan) -> tuple[str | None, str | None]:
    """(label of the edit undo would take back, label of the edit redo would make), for the
    acting person: undo and redo are per person."""
    me = users.current().username
    u = cur.execute("SELECT label FROM plan_edits WHERE plan_id = ? AND NOT undone AND "
                    "author IS NOT DISTINCT FROM ? ORDER BY seq DESC LIMIT 1",
                    [plan.plan_id, me]).fetchone()
    r = cur.execute("SELECT label FROM plan_edits WHERE plan_id = ? AND undone AND "
                    "author IS NOT DISTINCT FROM ? ORDER BY seq LIMIT 1",
                    [plan.plan_id, me]).fetchone()
    return (u[0] if u else None, r[0] if r else None)


def history(cur: duckdb.DuckDBPyConnection, plan: Plan, limit: int = 200) -> pd.DataFrame:
    """The plan's edits, newest first: who, when, what, how many items, undone or not."""
    return cur.execute(
        """SELECT e.seq, e.made_at, e.author, e.label,
                  (SELECT count(*) FROM plan_edit_changes c
                   WHERE c.plan_id = e.plan_id AND c.seq = e.seq) AS items, e.undone
           FROM plan_edits e WHERE e.plan_id = ? ORDER BY e.seq DESC LIMIT ?""",
        [plan.plan_id, limit]).df()


# --------------------------------------------------------------------------------------
# a plan on another unit type
# --------------------------------------------------------------------------------------
def convert_plan(store: Store, plan: Plan, unit: UnitType, name: str,
                 *, state: str = "planning") -> tuple[Plan, int]:
    """A new plan on `unit`: each new unit goes to the territory holding most of its potential.

    "Holding" follows the accounts: each account counts for the territory it resolves to in
    the old plan (its pin, else its unit's territory). Ties go to the territory with more
    accounts there, then to the smaller territory id. Territories (names, reps, colours,
    locks) and pins are copied. New units without accounts are left unassigned. Returns the
    plan and the number of units assigned.
    """
    name = checked_name(name)
    if state not in PLAN_STATES:
        raise InputError(f"unknown plan state {state!r}: expected {', '.join(PLAN_STATES)}")
    resolved, resolved_params = resolved_cte(plan)
    with store.transaction() as cur:
        plan_id = new_plan(cur, name, unit, state=state,
                           note=f"converted from {plan.name} ({plan.unit})",
                           detail=f"converted from {plan.name} ({plan.unit}), {state}")
        cur.execute(
            f"INSERT INTO territories (plan_id, territory_id, {', '.join(TERRITORY_FIELDS)}) "
            f"SELECT ?, territory_id, {', '.join(TERRITORY_FIELDS)} FROM territories "
            "WHERE plan_id = ?", [plan_id, plan.plan_id])
        cur.execute(
            f"""INSERT INTO plan_units
                WITH {resolved}, r AS (
                    SELECT {unit.unit_id_sql("a")} AS unit_id, a.potential, a.territory_id
                    FROM resolved a
                ), held AS (
                    SELECT unit_id, territory_id, sum(potential) AS potential,
                           count(*) AS accounts
                    FROM r WHERE unit_id IS NOT NULL AND territory_id IS NOT NULL
                    GROUP BY ALL
                ), ranked AS (
                    SELECT *, row_number() OVER (PARTITION BY unit_id
                        ORDER BY potential DESC, accounts DESC, territory_id) AS k
                    FROM held
                )
                SELECT ?, unit_id, territory_id FROM ranked WHERE k = 1""",
            [*resolved_params, plan_id])
        cur.execute("INSERT INTO account_overrides SELECT ?, account_id, territory_id "
                    "FROM account_overrides WHERE plan_id = ?", [plan_id, plan.plan_id])
        n = cur.execute("SELECT count(*) FROM plan_units WHERE plan_id = ?",
                        [plan_id]).fetchone()[0]
    return get_plan(store.cursor(), name), n


# --------------------------------------------------------------------------------------
# a whole proposal at once (the optimiser's result)
# --------------------------------------------------------------------------------------
def replace_assignment(store: Store, plan: Plan, assignment: pd.DataFrame,
                       territories: pd.DataFrame, label: str,
                       pins: pd.DataFrame | None = None) -> EditResult:
    """Make the plan's units and territories those given, as one undoable edit.

    `assignment`: unit_id, territory_id (units not listed keep no territory);
    `territories`: territory_id, territory_name, rep_id. Territories missing from the list
    are removed, new ones created, existing ones keep their other fields (colour, parent,
    quota, lock) with the name and rep given. Locked territories are never changed: their
    units are skipped (and counted). `pins` (account_id, territory_id): account pins to add
    or change in the same edit (others are kept).
    """
    wanted_units = dict(zip(assignment["unit_id"].astype(str),
                            assignment["territory_id"], strict=True))
    new_terr = {str(r.territory_id): r for r in territories.itertuples(index=False)}

    def build(cur):
        terr = territory_rows(cur, plan)
        locked = {t for t, r in terr.items() if r["locked"]}
        changes: list[Change] = []
        for tid, r in new_terr.items():
            before = terr.get(tid)
            after = dict(before or dict.fromkeys(TERRITORY_FIELDS))
            after["name"] = str(r.territory_name)
            after["rep_id"] = r.rep_id if isinstance(r.rep_id, str) else None
            after["locked"] = bool(after.get("locked") or False)
            if tid in locked:
                continue
            if before is None or _territory_json(before) != _territory_json(after):
                changes.append((TERRITORY, tid, _territory_json(before), _territory_json(after)))
        now = dict(cur.execute("SELECT unit_id, territory_id FROM plan_units WHERE plan_id = ?",
                               [plan.plan_id]).fetchall())
        skipped = 0
        for u in sorted(set(now) | set(wanted_units)):
            before, after = now.get(u), wanted_units.get(u)
            if before == after:
                continue
            if before in locked or after in locked:
                skipped += 1
                continue
            changes.append((UNIT, u, before, after))
        held = dict(cur.execute("SELECT account_id, territory_id FROM account_overrides "
                                "WHERE plan_id = ?", [plan.plan_id]).fetchall())
        # a removed territory takes its pins with it; `pins` adds or changes others
        wanted_pins = {a: t for a, t in held.items() if t in new_terr or t in locked}
        for a, t in zip(pins["account_id"].astype(str), pins["territory_id"].astype(str),
                        strict=True) if pins is not None else ():
            if t not in new_terr and t not in terr:
                raise InputError(f"pin of account {a!r}: no territory {t!r}")
            wanted_pins[a] = t
        for a in sorted(set(held) | set(wanted_pins)):
            if held.get(a) != wanted_pins.get(a):
                changes.append((PIN, a, held.get(a), wanted_pins.get(a)))
        for tid, row in terr.items():
            if tid not in new_terr and tid not in locked:
                changes.append((TERRITORY, tid, _territory_json(row), None))
        return changes, skipped

    return commit_edit(store, plan, label, build)
