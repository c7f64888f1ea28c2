"""The territory panels under the map: manage territories, inspect a unit and pin accounts,
switch the plan's base units, and the plan's edit history. Every action is one saved edit."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analytics import edits, plans
from analytics.errors import InputError
from analytics.schema import H3_RESOLUTIONS
from analytics.units import UnitType
from ui.context import Context
from ui.text import literal

UNIT_CHOICES = (*(f"h3:{r}" for r in H3_RESOLUTIONS if 4 <= r <= 7), "zip3", "zip5",
                "county", "state")


def _run(action, *args, **kwargs) -> None:
    """Run an edit; show its result on the next run, or the reason it was refused."""
    try:
        result = action(*args, **kwargs)
    except InputError as err:
        st.session_state["edit_message"] = ("error", str(err))
    else:
        st.session_state["edit_message"] = ("info", str(result))
    st.rerun()


def manage(ctx: Context, plan: plans.Plan, terr: pd.DataFrame, colors: dict) -> None:
    with st.expander("Territories: rename, recolour, rep, lock, create, merge, delete",
                     expanded=False):
        ids = terr["territory_id"].tolist()
        reps = plans_reps(ctx)
        labels = rep_labels(reps)
        if ids:
            tid = st.selectbox("Territory", ids, key="manage_territory",
                               index=ids.index(st.session_state["brush"])
                               if st.session_state.get("brush") in ids else 0)
            row = terr.set_index("territory_id").loc[tid]
            # what this form showed when it was drawn: the save is checked against it, so a
            # colleague's change made meanwhile is not silently overwritten
            stored = edits.territory_rows(ctx.cur, plan).get(tid, {})
            seen_key = f"territory_seen_{plan.plan_id}_{tid}"
            seen = st.session_state.get(seen_key) or stored
            st.session_state[seen_key] = stored
            with st.form("territory_form"):
                c1, c2, c3, c4 = st.columns([3, 1, 3, 1.2], vertical_alignment="bottom")
                name = c1.text_input("Name", value=row["territory_name"] or "")
                color = c2.color_picker("Colour", value=colors.get(tid, "#999999"))
                rep_ids = ["", *reps["rep_id"]]
                current = row["rep_id"] if isinstance(row["rep_id"], str) else ""
                rep = c3.selectbox("Rep", rep_ids, index=rep_ids.index(current)
                                   if current in rep_ids else 0,
                                   format_func=lambda r: labels.get(r, r))
                lock = c4.checkbox("Locked", value=bool(row["locked"]),
                                   help="Strokes skip the units of a locked territory")
                if st.form_submit_button("Save territory"):
                    changes = {}
                    if name.strip() != (row["territory_name"] or ""):
                        changes["name"] = name
                    if color.lower() != colors.get(tid, "").lower():
                        changes["color"] = color
                    if rep != current:
                        changes["rep_id"] = rep or None
                    if lock != bool(row["locked"]):
                        changes["locked"] = lock
                    if changes:
                        st.session_state.pop(seen_key, None)
                        _run(edits.update_territory, ctx.store, plan, tid,
                             expected={f: seen.get(f) for f in changes}, **changes)
            c1, c2 = st.columns(2)
            with c1.form("merge_form"):
                sources = st.multiselect(f"Merge into {literal(tid)}", [t for t in ids if t != tid])
                if st.form_submit_button("Merge") and sources:
                    _run(edits.merge_territories, ctx.store, plan, sources, tid)
            with c2.form("delete_form"):
                sure = st.checkbox(f"Delete {literal(tid)}: its units become unassigned")
                if st.form_submit_button("Delete territory") and sure:
                    _run(edits.delete_territory, ctx.store, plan, tid)
        with st.form("create_form"):
            st.markdown("**New territory** (becomes the brush)")
            c1, c2, c3 = st.columns([3, 3, 1], vertical_alignment="bottom")
            name = c1.text_input("Name of the new territory")
            rep = c2.selectbox("Rep ", ["", *reps["rep_id"]],
                               format_func=lambda r: labels.get(r, r))
            color = c3.color_picker("Colour ", value="#4477AA")
            if st.form_submit_button("Create territory"):
                try:
                    result = edits.create_territory(ctx.store, plan, name, rep_id=rep or None,
                                                    color=color)
                except InputError as err:
                    st.session_state["edit_message"] = ("error", str(err))
                else:
                    new = plans.territories(ctx.cur, plan)["territory_id"]
                    st.session_state["_next_brush"] = sorted(set(new) - set(ids))[0]
                    st.session_state["edit_message"] = ("info", str(result))
                st.rerun()


def plans_reps(ctx: Context) -> pd.DataFrame:
    return ctx.cur.execute("SELECT rep_id, name FROM reps ORDER BY name").df()


def rep_labels(reps: pd.DataFrame) -> dict[str, str]:
    """rep id -> "Name (id)" for a rep picker, "" -> "(no rep)" (built once: a selectbox
    formats every option, and a filter per option took 78 ms for 200 reps)."""
    labels = {"": "(no rep)"}
    for rep_id, name in zip(reps["rep_id"], reps["name"], strict=True):
        labels[rep_id] = f"{name} ({rep_id})" if isinstance(name, str) and name else rep_id
    return labels


def inspector(ctx: Context, plan: plans.Plan, index, terr: pd.DataFrame) -> None:
    """The unit picked with the Inspect tool: its accounts, and pins to a territory."""
    unit = st.session_state.get("inspect_unit")
    with st.expander(f"Unit detail and account pins{f': {literal(unit)}' if unit else ''}",
                     expanded=bool(unit)):
        if not unit:
            st.caption("Choose the **Inspect** tool and click a unit on the map.")
        else:
            accounts = ctx.cur.execute(
                f"""SELECT a.account_id, a.name, a.segment, a.potential,
                           o.territory_id AS pinned_to
                    FROM accounts a LEFT JOIN account_overrides o
                      ON o.plan_id = ? AND o.account_id = a.account_id
                    WHERE {plan.unit.unit_id_sql('a')} = ?
                    ORDER BY a.potential DESC LIMIT 500""",
                [plan.plan_id, unit]).df()
            row = plans.assignment(ctx.cur, plan)
            owner = row.loc[row["unit_id"] == unit, "territory_id"]
            st.markdown(f"Unit **{literal(unit)}** is in territory "
                        f"**{literal(owner.iloc[0]) if len(owner) else 'none (unassigned)'}**; "
                        f"{len(accounts)} accounts (largest potential first).")
            st.dataframe(accounts, hide_index=True, height=200)
            if len(accounts):
                with st.form("pin_form"):
                    c1, c2 = st.columns(2)
                    acc = c1.selectbox("Account", accounts["account_id"],
                                       format_func=lambda a: f"{a} · " + str(
                                           accounts.set_index("account_id").loc[a, "name"]))
                    ids = terr["territory_id"].tolist()
                    target = c2.selectbox("Pin to territory", ["(remove pin)", *ids])
                    if st.form_submit_button("Save pin"):
                        _run(edits.pin_account, ctx.store, plan, acc,
                             None if target == "(remove pin)" else target)
        pins = ctx.cur.execute(
            "SELECT o.account_id, a.name, o.territory_id FROM account_overrides o "
            "JOIN accounts a USING (account_id) WHERE o.plan_id = ? ORDER BY 1",
            [plan.plan_id]).df()
        if len(pins):
            st.caption(f"{len(pins)} accounts pinned in this plan")
            st.dataframe(pins, hide_index=True, height=min(35 * (len(pins) + 1), 220))


def unit_switch(ctx: Context, plan: plans.Plan) -> None:
    with st.expander(f"Base units: {plan.unit.label}"):
        st.caption("A plan has one unit type. Converting makes a new plan on other units: "
                   "each new unit goes to the territory holding most of its potential.")
        with st.form("convert_form"):
            c1, c2 = st.columns(2)
            choices = [u for u in UNIT_CHOICES if u != str(plan.unit)]
            target = c1.selectbox("Convert to", choices, key="convert_to",
                                  format_func=lambda u: UnitType.parse(u).label)
            name = c2.text_input("New plan name", value="")
            if st.form_submit_button("Convert into a new plan"):
                try:
                    unit = UnitType.parse(target)
                    new, n = edits.convert_plan(ctx.store, plan, unit,
                                                name or f"{plan.name} ({target})")
                except InputError as err:
                    st.session_state["edit_message"] = ("error", str(err))
                else:
                    st.session_state["_next_plan"] = new.name
                    st.session_state["edit_message"] = (
                        "info", f"Created plan {new.name!r} on {unit.label}: {n:,} units "
                        "assigned. It is now the plan on screen.")
                st.rerun()


def edit_history(ctx: Context, plan: plans.Plan) -> None:
    with st.expander("Edit history"):
        hist = edits.history(ctx.cur, plan)
        if hist.empty:
            st.caption("No edits yet. Every stroke is saved as it is made and can be undone.")
        else:
            st.dataframe(hist, hide_index=True)
