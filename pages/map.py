"""Territory map: paint, draw and recolour territories while the metrics update live."""

import functools

import streamlit as st

from analytics import edits, metrics, plans, users
from analytics.exports.cells import csv_text
from ui import territory_tools
from ui.balance_panel import balance_panel
from ui.context import sidebar_context
from ui.map import territory_map, view_of
from ui.map_editor import BRUSH_SIZES, MODES, on_map_change
from ui.map_spec import map_spec, territory_palette, unit_index
from ui.page_entry import run_through_app
from ui.plan_metrics import metrics_ready, plan_metrics
from ui.text import literal
from ui.widgets import balance_chart, kpi_row, metric_card, percent, territory_table

run_through_app()  # a first request of a fresh server may come here directly

ctx = sidebar_context()
st.title("Territory map")
if ctx.plan is None:
    st.warning("There is no territory plan yet. Import one on the **Plans** page.")
    st.stop()
plan = ctx.plan
index = unit_index(ctx, plan)
terr = plans.territories(ctx.cur, plan)
ids = terr["territory_id"].tolist()
colors = territory_palette(ctx, plan, terr)
can_edit = users.current().role in users.EDITORS  # others: the engine refuses; not offered


def _undo_redo(action, ctx, plan) -> None:
    """Button callback: runs before the rerun, so the same rerun shows the result."""
    done = action(ctx.store, plan)
    st.session_state["edit_message"] = ("info", done.label if done else "Nothing to do")


@st.fragment
def live_editor(ctx, plan, index, colors, can_edit: bool) -> None:
    """Toolbar, map, live numbers and the territory table: a map click or a toolbar
    action reruns only this part of the page. Without `can_edit` (reps, viewers): the map
    and the numbers, no edit tools."""
    terr = plans.territories(ctx.cur, plan)
    ids = terr["territory_id"].tolist()
    if can_edit:
        _toolbar(ctx, plan, terr, ids)
    else:
        who = users.current()
        st.caption(f"Read-only: {literal(who.username)} is a {who.role}"
                   + (" and sees only their own territories of the active plan."
                      if who.role == "rep" else ".") + " " + LAYER_HINT)
    if _live_numbers(ctx, plan, index, colors, terr, can_edit):
        st.rerun()  # the map was drawn before the numbers: the next run gives them to it


LAYER_HINT = ("*Colour units by* (in the map, top right): territories, our numbers per unit "
              "or per territory, the market under the map (public tables), or an overlay "
              "you imported (Data page or `python -m analytics overlay import`).")


def _toolbar(ctx, plan, terr, ids) -> None:
    bar = st.columns([2.6, 3.0, 2.6], vertical_alignment="bottom")
    bar[0].segmented_control("Tool", MODES, key="edit_mode", default=MODES[0],
                                    help="Paint: a click, a drag or a drawn shape puts units "
                                         "in the brush territory. Erase: takes them out of "
                                         "any territory. Inspect: a click shows the unit and "
                                         "its accounts (pin an account there).")
    if "_next_brush" in st.session_state:  # a territory just created becomes the brush
        st.session_state["brush"] = st.session_state.pop("_next_brush")
    if st.session_state.get("brush") not in ids:
        st.session_state["brush"] = ids[0] if ids else None
    names = dict(zip(terr["territory_id"], terr["territory_name"], strict=True))
    locked = set(terr.loc[terr["locked"].fillna(False).astype(bool), "territory_id"])
    bar[1].selectbox(
        "Brush (territory)", ids, key="brush", disabled=not ids,
        format_func=lambda t: f"{t} · {names.get(t) or ''}"
        + (" (locked)" if t in locked else ""),
    )
    bar[2].selectbox("Drag", list(BRUSH_SIZES), key="brush_size",
                     help="In Paint and Erase: hold the mouse button and drag to paint every "
                          "unit the pointer passes over (with a size: every unit whose centre "
                          "is that close), saved and undone as one stroke. Choose 'Drag moves "
                          "the map' to move the map by dragging; the mouse wheel zooms either "
                          "way.")
    undo_label, redo_label = edits.next_labels(ctx.cur, plan)
    # a row of their own: the buttons show their key caps beside the label
    with st.container(horizontal=True):
        # the tooltips name the edit ("Create territory <name>"): Markdown, shown literally
        st.button("Undo", disabled=undo_label is None, shortcut="Ctrl+Z",
                  help=literal(undo_label) if undo_label else "Nothing to undo",
                  on_click=_undo_redo, args=(edits.undo, ctx, plan))
        st.button("Redo", disabled=redo_label is None, shortcut="Ctrl+Shift+Z",
                  help=literal(redo_label) if redo_label else "Nothing to redo",
                  on_click=_undo_redo, args=(edits.redo, ctx, plan))


def _live_numbers(ctx, plan, index, colors, terr, can_edit: bool) -> bool:
    """The map and the numbers around it; True when the map went out before its numbers
    (a first load), so the page must run once more to give them to it."""
    # always one element here, message or not: the map below must keep its place in the page,
    # or the browser would rebuild it (and lose the view)
    message = st.session_state.get("edit_message")
    with st.container():
        if message:
            getattr(st, message[0])(literal(message[1]))

    # -- numbers (after the callback applied the stroke) -------------------------------
    # a first load (nothing computed yet for this plan and period): the map first, in its
    # territories' colours, so it can be used while the numbers are computed; the page
    # then runs once more (cached now) to give the map its numbers
    map_first = not metrics_ready(ctx)
    rows = whole = cube = None
    if not map_first:
        rows, whole, cube = plan_metrics(ctx)

    left, right = st.columns([5, 3])
    with left:
        spec = map_spec(ctx, plan, index, terr, rows, colors, cube, editing=can_edit,
                        picker=True)
        territory_map(
            spec, view_of(index), tiles=st.session_state.get("map_tiles", False),
            draw=can_edit,
            on_change=functools.partial(on_map_change, "territory_map", ctx.store, plan, index)
            if can_edit else None,
        )
        st.toggle("Online basemap tiles", key="map_tiles",
                  help="Needs internet. Without it the map draws state outlines.")
        if can_edit:
            st.caption(LAYER_HINT)
    if map_first:
        with right, st.spinner("Computing the plan's numbers..."):
            rows, whole, cube = plan_metrics(ctx)
    table = rows.merge(terr[["territory_id", "rep_name"]], on="territory_id", how="left")
    table.insert(3, "rep_name", table.pop("rep_name"))
    table.insert(4, "status", table.pop("status"))
    with right:
        for pair in (
            [("Unassigned", f"{whole['unassigned_accounts']:,}", "Accounts in no territory"),
             ("Coverage", percent(whole["coverage_accounts_pct"]),
              "Accounts in a territory that has a rep")],
            [("Workload CV", percent(whole["balance_cv_workload_hours"]),
              "Coefficient of variation of workload over territories with a rep (0% = equal)"),
             ("Potential CV", percent(whole["balance_cv_potential"]),
              "Coefficient of variation of potential over territories with a rep")],
        ):
            kpi_row(pair)
        balance_chart(rows, ctx.settings.overload_tolerance)
        pieces = rows[(rows["units"] > 0) & (rows["components"] > 1)]
        if len(pieces):
            st.warning(f"{len(pieces)} territories are in more than one piece: "
                       + ", ".join(f"{literal(r.territory_id)} ({r.components})"
                                   for r in pieces.itertuples(index=False)))
        if whole["unassigned_accounts"]:
            st.warning(f"{whole['unassigned_accounts']:,} accounts are in no territory "
                       "(grey on the map).")

    st.caption(
        f"Plan **{literal(plan.name)}** ({plan.state}), units: {plan.unit.label}: {len(terr)} "
        f"territories, {whole['units']:,} units assigned of {len(index):,} on the map. Period "
        f"{ctx.period.start:%Y-%m-%d} to {ctx.period.end:%Y-%m-%d}, as of {ctx.as_of:%Y-%m-%d}. "
        "Every edit is saved as it is made."
    )

    st.subheader("Whole plan")
    under = int((rows["status"] == "under-served").sum())
    over = int((rows["status"] == "over-served").sum())
    kpi_row([metric_card("accounts", whole["accounts"], "Every account, assigned or not"),
             *(metric_card(name, whole[name]) for name in ("potential", "won", "attainment",
                                                           "pace"))])
    kpi_row([
        *(metric_card(name, whole[name]) for name in ("open_pipeline", "pipeline_coverage",
                                                      "utilization")),
        ("Under-served", f"{under}", "Territories over capacity beyond the tolerance"),
        ("Over-served", f"{over}", "Territories under the underload threshold"),
    ])

    st.subheader("Territories")
    st.caption("Select a row to zoom the map to that territory.")
    territory_table(table, colors, key="territory_table", selectable=True)
    st.download_button(  # the same file as `python -m analytics summary`: shares as fractions
        "Download the summary (CSV, with the whole-plan row)",
        csv_text(metrics.summary_frame(rows, whole)).encode("utf-8"),
        file_name=f"summary-{plan.name}-{ctx.period.start:%Y%m%d}-{ctx.period.end:%Y%m%d}.csv",
        mime="text/csv", on_click="ignore",  # no rerun racing the download
    )
    if can_edit:
        territory_tools.inspector(ctx, plan, index, terr)
        territory_tools.edit_history(ctx, plan)
    return map_first


live_editor(ctx, plan, index, colors, can_edit)
if can_edit:
    territory_tools.manage(ctx, plan, terr, colors)
    territory_tools.unit_switch(ctx, plan)
    balance_panel(ctx, plan, index, colors)
