"""Snapshots: a plan frozen with its metrics, a note and a timestamp, for a meeting.

A snapshot is a read-only copy of the plan (state `snapshot`: territories, units, pins,
types, rules) plus, in `snapshots`, the summary exactly as it was (every docs/metrics.md column
for the period, as-of date and settings used, as JSON), so its numbers stay what they were
even after the data or the settings change. It can be compared, exported, and restored as a
new plan.
"""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import pandas as pd

from analytics import metrics
from analytics.errors import InputError
from analytics.period import Period
from analytics.plans import Plan, author, clone_plan, copy_plan, get_plan, log_event
from analytics.settings import Settings
from analytics.store import Store


def take_snapshot(store: Store, plan: Plan, *, note: str | None = None,
                  name: str | None = None, period: Period, as_of: dt.date,
                  settings: Settings) -> Plan:
    """Freeze `plan` now. The name defaults to '<plan> @ <timestamp>'."""
    if plan.state == "snapshot":
        raise InputError(f"{plan.name!r} is already a snapshot")
    now = dt.datetime.now().replace(microsecond=0)
    rows, whole = metrics.summary(store.cursor(), plan, period, as_of, settings)
    frame = metrics.summary_frame(rows, whole)
    with store.transaction() as cur:  # the copy, its frozen state and numbers: all or none
        if not (name or "").strip():
            name = f"{plan.name} @ {now:%Y-%m-%d %H:%M:%S}"
            k = 2
            while cur.execute("SELECT 1 FROM plans WHERE name = ?", [name]).fetchone():
                name = f"{plan.name} @ {now:%Y-%m-%d %H:%M:%S} ({k})"  # two in one second
                k += 1
        name = name.strip()
        snap_id = copy_plan(cur, plan, name, state="snapshot", note=note,
                            event="snapshot of")
        cur.execute(
            "INSERT INTO snapshots VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [snap_id, plan.plan_id, plan.name, now, author(), note, str(period), as_of,
             settings.to_json(), _exact_json(frame)])
        log_event(cur, plan.plan_id, "snapshot", f"{name}" + (f": {note}" if note else ""))
    return get_plan(store.cursor(), name)


def _exact_json(frame: pd.DataFrame) -> str:
    """Records as JSON with every float exactly (pandas' to_json keeps 10 digits only)."""
    def plain(v):
        if v is None or (isinstance(v, float) and v != v):
            return None
        if hasattr(v, "item"):  # numpy scalars
            return v.item()
        return v

    return json.dumps([{k: plain(v) for k, v in r.items()}
                       for r in frame.to_dict(orient="records")], default=str)


def list_snapshots(cur: duckdb.DuckDBPyConnection, plan: Plan | None = None) -> pd.DataFrame:
    """Snapshots (of one plan, or all), newest first, with their headline numbers."""
    frame = cur.execute(
        """SELECT p.name AS snapshot, s.source_name AS plan, s.taken_at, s.author, s.note,
                  s.period, s.as_of, p.unit_type, s.summary
           FROM snapshots s JOIN plans p ON p.plan_id = s.snapshot_plan_id
           WHERE ? IS NULL OR s.source_plan_id = ?
           ORDER BY s.taken_at DESC, p.name""",
        [None if plan is None else plan.plan_id, None if plan is None else plan.plan_id],
    ).df()
    whole = [next((r for r in json.loads(s) if r["territory_id"] == "__plan__"), {})
             for s in frame["summary"]]
    for col in ("accounts", "won", "attainment", "unassigned_accounts",
                "balance_cv_workload_hours"):
        frame[col] = [w.get(col) for w in whole]
    return frame.drop(columns=["summary"])


def snapshot_summary(cur: duckdb.DuckDBPyConnection, snapshot: Plan) -> tuple[pd.DataFrame,
                                                                             dict]:
    """The frozen summary of a snapshot: (territory rows, whole-plan dict), as taken."""
    row = cur.execute("SELECT summary, period, as_of, settings FROM snapshots "
                      "WHERE snapshot_plan_id = ?", [snapshot.plan_id]).fetchone()
    if row is None:
        raise InputError(f"{snapshot.name!r} is not a snapshot")
    frame = pd.DataFrame(json.loads(row[0]))
    # a snapshot taken before a column existed shows it empty (as taken, never recomputed)
    rows = frame[frame["territory_id"] != "__plan__"].reindex(
        columns=metrics.TERRITORY_COLUMNS)
    whole = {k: (None if isinstance(v, float) and v != v else v)  # NaN -> None, as summary
             for k, v in frame[frame["territory_id"] == "__plan__"].iloc[0].to_dict().items()}
    whole.update({"period": row[1], "as_of": str(row[2]), "settings": row[3]})
    return rows.reset_index(drop=True), whole


def restore_snapshot(store: Store, snapshot: Plan, name: str) -> Plan:
    """A new plan (state planning) with the snapshot's territories, units and pins."""
    if snapshot.state != "snapshot":
        raise InputError(f"{snapshot.name!r} is not a snapshot")
    return clone_plan(store, snapshot, name, state="planning",
                      note=f"restored from snapshot {snapshot.name}", event="restored from")
