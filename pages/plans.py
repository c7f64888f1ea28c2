"""Plans: the plans and their states, snapshots, comparison, rules, exports and imports."""

import streamlit as st

from analytics import compare, hierarchy, plan_import, plans, snapshots
from analytics.errors import InputError
from analytics.schema import H3_RESOLUTIONS, PLAN_STATES
from analytics.units import POSTAL_KINDS, UnitType
from ui import plan_tools
from ui.context import sidebar_context
from ui.map import territory_map, view_of
from ui.map_spec import map_spec, territory_palette, unit_index
from ui.page_entry import run_through_app
from ui.plan_metrics import plan_metrics
from ui.text import literal
from ui.uploads import uploaded
from ui.widgets import kpi_row, percent

run_through_app()  # a first request of a fresh server may come here directly

ctx = sidebar_context()
st.title("Plans")
plan_list_slot = st.container()  # filled last, so a plan created below is listed at once
UNIT_CHOICES = [*POSTAL_KINDS, *(f"h3:{r}" for r in H3_RESOLUTIONS)]


def _done(message: str, plan_name: str | None = None) -> None:
    st.session_state["plans_message"] = ("success", message)
    if plan_name:
        st.session_state["_next_plan"] = plan_name
    st.rerun()


def _refused(err: Exception) -> None:
    st.session_state["plans_message"] = ("error", str(err))
    st.rerun()


# always one element here, message or not: the tabs below keep their place in the page, so
# the browser keeps the open tab across reruns instead of rebuilding them on the first one
with st.container():
    if msg := st.session_state.pop("plans_message", None):
        getattr(st, msg[0])(literal(msg[1]))

tabs = st.tabs(["Import", "Manage", "Snapshots", "Compare", "Hierarchy", "Rules", "Export",
                "History"])
plan = ctx.plan

# -- import --------------------------------------------------------------------------------
with tabs[0]:
    st.write("A **unit list** (CSV, Excel or Parquet: `unit_id, territory_id` and optionally "
             "`territory_name, rep_id`, one row per unit) or **territory polygons** (GeoJSON "
             "or GeoPackage with a territory id property: each unit goes to the polygon "
             "holding its centre) makes a new plan.")
    with st.form("plan_import"):
        name = st.text_input("Plan name", key="new_plan_name")
        unit_text = st.selectbox("Base unit", UNIT_CHOICES, key="new_plan_unit",
                                 format_func=lambda u: UnitType.parse(u).label)
        state = st.selectbox("State", list(PLAN_STATES), key="new_plan_state")
        upload = st.file_uploader("Plan file", key="new_plan_file",
                                  type=["csv", "txt", "xlsx", "parquet", "geojson", "json",
                                        "gpkg"])
        submitted = st.form_submit_button("Create the plan", type="primary")
    if submitted:
        if upload is None:
            st.error("Choose a plan file.")
        else:
            with uploaded(upload) as path:
                unit = UnitType.parse(unit_text)
                if path.suffix.lower() in (".geojson", ".json", ".gpkg"):
                    new, report, details = plan_import.import_plan_polygons(
                        ctx.store, name, unit, path, state=state, label=upload.name)
                    st.success(f"Plan {literal(repr(new.name))} created with "
                               f"{report.tables[0].inserted:,} units from polygons.")
                    if details["empty_features"]:
                        st.warning("Features holding no unit centre: "
                                   + literal(", ".join(map(str, details["empty_features"]))))
                    if details["unmatched_units"]:
                        st.warning(f"{len(details['unmatched_units']):,} units holding "
                                   "accounts are in no polygon (unassigned): "
                                   + literal(", ".join(details["unmatched_units"][:20]))
                                   + (" ..." if len(details["unmatched_units"]) > 20 else ""))
                    if details["overlaps"]:
                        st.info(f"{details['overlaps']} unit centres fall in two polygons: "
                                "the first feature kept them.")
                else:
                    new, report = plans.import_plan(ctx.store, name, unit, path, state=state,
                                                    label=upload.name)
                    st.success(f"Plan {literal(repr(new.name))} created with "
                               f"{report.tables[0].inserted:,} units.")
    if plan is not None:
        with st.form("account_import"):
            st.markdown(f"**Pin accounts in {literal(plan.name)}** from a file of `account_id, "
                        "territory_id` (one undoable edit; all or nothing)")
            up = st.file_uploader("Account list", key="account_list_file",
                                  type=["csv", "txt", "xlsx", "parquet"])
            if st.form_submit_button("Pin the accounts") and up is not None:
                with uploaded(up) as path:
                    result, _ = plan_import.import_account_assignments(
                        ctx.store, plan, path, label=up.name)
                    st.success(literal(result))

if plan is None:
    with plan_list_slot:
        st.info("No plan yet: import one, or create an empty one below.")
    plan_tools.create_form(ctx)
    st.stop()

# -- manage ----------------------------------------------------------------------------------
with tabs[1]:
    st.markdown(f"The plan chosen in the sidebar: **{literal(plan.name)}** ({plan.state}, "
                f"{plan.unit.label}).")
    c1, c2 = st.columns(2)
    with c1.form("rename_form"):
        new_name = st.text_input("Rename to", value=plan.name)
        if st.form_submit_button("Rename") and new_name != plan.name:
            try:
                renamed = plans.rename_plan(ctx.store, plan, new_name)
                _done(f"Renamed to {renamed.name!r}.", renamed.name)
            except InputError as err:
                _refused(err)
    with c2.form("clone_form"):
        clone_name = st.text_input("Clone as", value=f"{plan.name} (copy)")
        if st.form_submit_button("Clone"):
            try:
                clone = plans.clone_plan(ctx.store, plan, clone_name)
                _done(f"Cloned as {clone.name!r} (planning); it is now on screen.", clone.name)
            except InputError as err:
                _refused(err)
    c3, c4 = st.columns(2)
    with c3.form("state_form"):
        options = list(PLAN_STATES)
        new_state = st.selectbox("State", options, key="plan_state_choice",
                                 index=options.index(plan.state)
                                 if plan.state in options else 0,
                                 disabled=plan.state == "snapshot",
                                 help="Exactly one plan is active: activating this one puts "
                                      "the active plan back to planning.")
        if st.form_submit_button("Set the state") and new_state != plan.state:
            try:
                plans.set_state(ctx.store, plan, new_state)
                _done(f"{plan.name!r} is now {new_state}.")
            except InputError as err:
                _refused(err)
    with c4.form("delete_plan_form"):
        sure = st.checkbox(f"Delete {literal(repr(plan.name))} and all its territories, "
                           "units and pins")
        if st.form_submit_button("Delete the plan") and sure:
            try:
                plans.delete_plan(ctx.store, plan)
                st.session_state.pop("plan_name", None)
                _done(f"Deleted {plan.name!r}.")
            except InputError as err:
                _refused(err)
    plan_tools.create_form(ctx)

# -- snapshots -------------------------------------------------------------------------------
with tabs[2]:
    with st.form("snapshot_form"):
        note = st.text_input("Note", placeholder="e.g. QBR 2026-Q3, before the Texas split")
        if st.form_submit_button(f"Take a snapshot of {literal(plan.name)}",
                                 disabled=plan.state == "snapshot"):
            try:
                snap = snapshots.take_snapshot(ctx.store, plan, note=note or None,
                                               period=ctx.period, as_of=ctx.as_of,
                                               settings=ctx.settings)
                _done(f"Snapshot {snap.name!r} taken with its numbers for {ctx.period}.")
            except InputError as err:
                _refused(err)
    snaps = snapshots.list_snapshots(ctx.cur)
    if snaps.empty:
        st.caption("No snapshot yet.")
    else:
        st.dataframe(snaps, hide_index=True, column_config={
            "attainment": st.column_config.NumberColumn(format="percent"),
            "balance_cv_workload_hours": st.column_config.NumberColumn(
                "workload CV", format="percent"),
            "won": st.column_config.NumberColumn(format="localized")})
        with st.form("restore_form"):
            pick = st.selectbox("Snapshot", snaps["snapshot"].tolist())
            as_name = st.text_input("Restore as plan", value="")
            if st.form_submit_button("Restore as a new plan"):
                try:
                    new = snapshots.restore_snapshot(
                        ctx.store, plans.get_plan(ctx.cur, pick),
                        as_name or f"{pick} (restored)")
                    _done(f"Restored as {new.name!r} (planning); it is now on screen.",
                          new.name)
                except InputError as err:
                    _refused(err)

# -- compare ---------------------------------------------------------------------------------
with tabs[3]:
    everything = plans.list_plans(ctx.cur, snapshots=True)["name"].tolist()
    others = [n for n in everything if n != plan.name]
    if not others:
        st.caption("Another plan or a snapshot is needed to compare with.")
    else:
        base_name = st.selectbox(f"Compare {literal(plan.name)} with", others, key="compare_with")
        baseline = plans.get_plan(ctx.cur, base_name)
        result = compare.compare_plans(ctx.cur, plan, baseline, ctx.period, ctx.as_of,
                                       ctx.settings)
        kpi_row([
            ("Accounts moved", f"{len(result.moved_accounts):,}", None),
            ("Disruption (accounts)", percent(result.disruption["disruption_accounts_pct"]),
             "Share of accounts whose territory differs"),
            ("Disruption (potential)",
             percent(result.disruption["disruption_potential_pct"]), None),
            ("Units moved", f"{len(result.moved_units):,}" if result.same_units else "–",
             "Only when both plans have the same unit type"),
        ])
        if result.same_units and len(result.moved_units):
            index = unit_index(ctx, plan)
            rows, _, cube = plan_metrics(ctx)
            terr = plans.territories(ctx.cur, plan)
            spec = map_spec(ctx, plan, index, terr, rows,
                            territory_palette(ctx, plan, terr), cube)
            moved = set(result.moved_units["unit_id"])
            spec.update(fit=None,
                        dim="".join("1" if u in moved else "0" for u in index.ids))
            territory_map(spec, view_of(index), tiles=False, draw=False, key="compare_map",
                          height=420)
            st.caption("Bright: the units that changed territory, in their new territory's "
                       "colour.")
        delta_cols = ["territory_id", "territory_name"] + [
            c for c in result.territories.columns if c.endswith("_delta")]
        st.markdown("**Per territory: plan minus baseline**")
        st.dataframe(result.territories[delta_cols], hide_index=True)
        c1, c2 = st.columns(2)
        c1.markdown("**Units that moved**")
        c1.dataframe(result.moved_units, hide_index=True, height=260)
        c2.markdown("**Accounts that moved** (largest potential first)")
        c2.dataframe(result.moved_accounts, hide_index=True, height=260)

# -- hierarchy ------------------------------------------------------------------------------
with tabs[4]:
    terr = plans.territories(ctx.cur, plan)
    st.caption("A territory's parent (set on the Territory map page's territory panel or with "
               "`plan territory T --parent`) makes a hierarchy such as region > district > "
               "territory; a parent's numbers are its subtree's.")
    rows, _, _ = plan_metrics(ctx)
    try:
        rolled = hierarchy.rollup(rows, terr, ctx.period, ctx.as_of)
    except InputError as err:
        st.error(literal(err))
    else:
        if rolled.empty:
            st.caption("No territory has a parent in this plan.")
        else:
            st.dataframe(rolled, hide_index=True, column_config={
                c: st.column_config.NumberColumn(format="percent")
                for c in ("attainment", "pace", "penetration", "utilization")})
    plan_tools.parent_form(ctx, plan, terr)

# -- rules, export, history -----------------------------------------------------------------
with tabs[5]:
    plan_tools.rules_panel(ctx, plan)
with tabs[6]:
    plan_tools.export_panel(ctx, plan)
with tabs[7]:
    st.dataframe(plans.plan_history(ctx.cur, plan), hide_index=True)

with plan_list_slot:
    st.dataframe(plans.list_plans(ctx.cur), hide_index=True, key="plan_list")
