"""The map page's Balance panel: choose, run, preview, then apply or save as a new plan.

The run happens in the script with a progress bar; its time budget is the stop (a Streamlit
script cannot be interrupted and resumed with its state, so "stop and keep the best" is the
budget running out: the best plan found so far is kept). Nothing is written before Apply (one
undoable edit, Undo on the toolbar takes it back) or Save as a new plan.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analytics import balance, catalog, overlays, plans
from analytics.errors import InputError
from ui.context import Context
from ui.map import territory_map, unit_codes, view_of
from ui.map_spec import map_spec
from ui.text import literal
from ui.widgets import as_shown, metric_column

KEY = "balance_result"
NONE = "(none)"
WHOLE_PLAN = ("balance_max_dev_potential", "balance_cv_potential",
              "balance_max_dev_workload_hours", "balance_max_dev_accounts",
              "disruption_accounts_pct", "disruption_potential_pct", "unassigned_accounts")


def measures(ctx: Context, plan: plans.Plan) -> dict[str, str]:
    """What a plan can be balanced on: measure -> label (our numbers, the market under the
    map, the manager's overlays that add up onto the plan's units)."""
    out = {m: catalog.label(m) for m in (*balance.MEASURES, *balance.MARKET_MEASURES)}
    for name, col in overlays.layers(ctx.cur, plan.unit):
        out[f"overlay:{name}:{col}"] = f"{name} · {col} (your overlay)"
    return out


def _options(ctx: Context, plan: plans.Plan,
             terr: pd.DataFrame) -> balance.BalanceOptions | None:
    """The form; returns the options when Run was pressed (None otherwise)."""
    stored_locks = terr.loc[terr["locked"].fillna(False).astype(bool), "territory_id"].tolist()
    label = measures(ctx, plan)
    with st.form("balance_form"):
        c1, c2, c3 = st.columns(3)
        mode = c1.segmented_control("Mode", list(balance.MODES), default="rebalance",
                                    key="bal_mode", help="Rebalance: keep the territories "
                                    "and move as few accounts as possible. Build: draw them "
                                    "again from scratch.")
        primary = c2.selectbox("Balance on", list(label), key="bal_primary",
                               format_func=label.get)
        tol = c3.number_input("Tolerance (±%)", 0.5, 50.0, 2.0, 0.5, key="bal_tol")
        c4, c5, c6 = st.columns(3)
        second = c4.selectbox("Also balance (secondary)", [NONE, *label],
                              key="bal_second", format_func=lambda m: label.get(m, m))
        second_w = c5.number_input("Its weight", 0.0, 10.0, 0.5, 0.1, key="bal_second_w")
        second_tol = c6.number_input("Its tolerance (±%)", 0.5, 50.0, 5.0, 0.5,
                                     key="bal_second_tol")
        c7, c8, c9 = st.columns(3)
        k = c7.number_input("Territories (build)", 1, 500, max(len(terr), 1), key="bal_k")
        keep = c8.slider("Keep today's accounts", 0.0, 3.0, 1.0, 0.25, key="bal_keep",
                         help="Rebalance: how strongly moving an account counts against a "
                              "move (0: not at all)")
        budget = c9.number_input("Time budget (s)", 1.0, 120.0, 15.0, 1.0, key="bal_budget",
                                 help="The search stops then and keeps the best plan so far")
        locked = st.multiselect("Keep these territories as they are", terr["territory_id"],
                                default=stored_locks, key="bal_locked",
                                help="Stored locks always hold")
        c10, c11, c12 = st.columns([3, 1, 1])
        named = c10.text_input("Keep these accounts with their rep (account ids, comma "
                               "separated)", key="bal_keep_accounts",
                               help="Named accounts stay with today's rep: pinned where "
                                    "their unit goes to another territory")
        top = c11.number_input("and the top N by potential", 0, 100_000, 0,
                               key="bal_keep_top")
        seed = c12.number_input("Seed", 0, 10**6, 0, key="bal_seed",
                                help="The same seed gives the same plan")
        if not st.form_submit_button("Run", type="primary"):
            return None
    text = f"{primary}=1"
    tols = f"{primary}={tol / 100}"
    if second != NONE and second != primary:
        text += f",{second}={second_w}"
        tols += f",{second}={second_tol / 100}"
    targets = balance.parse_targets(text, tols)
    return balance.BalanceOptions(
        mode=mode or "rebalance", targets=targets,
        territories=int(k) if mode == "build" else None, keep_current=float(keep),
        locked=tuple(t for t in locked if t not in stored_locks), seed=int(seed),
        max_seconds=float(budget),
        keep_accounts=tuple(a.strip() for a in (named or "").split(",") if a.strip()),
        keep_top=int(top))


def _run(ctx: Context, plan: plans.Plan, opts: balance.BalanceOptions) -> None:
    bar = st.progress(0.0, text="Balancing...")
    tol = opts.targets[0].tolerance

    def progress(fraction: float, best: float) -> bool:
        bar.progress(min(fraction, 1.0), text=f"Balancing... worst territory at "
                     f"{best * tol:.1%} of the mean (target ±{tol:.0%})")
        return True

    try:
        result = balance.balance(ctx.cur, plan, ctx.period, ctx.as_of, ctx.settings, opts,
                                 progress=progress)
    except InputError as err:
        bar.empty()
        st.error(literal(err))
        return
    bar.empty()
    stamp = str(ctx.cur.execute("SELECT updated_at FROM plans WHERE plan_id = ?",
                                [plan.plan_id]).fetchone()[0])
    st.session_state[KEY] = (plan.plan_id, stamp, result)


def _side_by_side(result: balance.BalanceResult) -> pd.DataFrame:
    (b_rows, b_whole), (a_rows, a_whole) = result.before, result.after
    out = []
    for name in WHOLE_PLAN:
        out.append((catalog.label(name), catalog.format_value(name, b_whole.get(name)),
                    catalog.format_value(name, a_whole.get(name))))
    out.append(("Mean compactness (Polsby-Popper)",
                catalog.format_value("polsby_popper", b_rows["polsby_popper"].mean()),
                catalog.format_value("polsby_popper", a_rows["polsby_popper"].mean())))
    out.append(("Territories in one piece",
                str(int((b_rows["components"] == 1).sum())),
                str(int((a_rows["components"] == 1).sum()))))
    return pd.DataFrame(out, columns=["", "Today", "Proposed"])


def _preview(ctx: Context, plan: plans.Plan, index, colors: dict,
             result: balance.BalanceResult) -> None:
    rep = result.report
    st.markdown(f"**Proposal** ({result.mode}, {rep['seconds']} s, {rep['moves']:,} moves): "
                f"{len(result.moved_units):,} units change territory, highlighted below.")
    for line in rep["cannot_meet"]:
        st.warning(literal(line))
    for line in [*rep["missed"], *rep.get("beyond_travel_limit", []),
                 *rep.get("far_from_home", [])]:
        st.info(literal(line))
    for line in [*rep["pieces"], *rep["notes"]]:
        st.caption(literal(line))
    left, right = st.columns([5, 4])
    with right:
        st.dataframe(_side_by_side(result), hide_index=True)
    with left:
        terr = plans.territories(ctx.cur, plan)
        rows, _ = result.after
        spec = map_spec(ctx, plan, index, terr, rows, colors, _cube(ctx, plan))
        proposal = result.assignment
        names = result.territories.set_index("territory_id")
        order = terr["territory_id"].tolist() + [t for t in names.index if t not in set(
            terr["territory_id"])]
        spec["codes"] = unit_codes(index, proposal, order)
        from analytics.palette import PALETTE

        for k, t in enumerate(order[len(terr):]):  # new territories (a build with another K)
            spec["territories"].append({
                "id": t, "name": str(names.loc[t, "territory_name"]),
                "color": PALETTE[k % len(PALETTE)], "rep": None, "locked": False,
                "attainment": None, "utilization": None, "potential": None,
                "workload_hours": None, "status": ""})
        moved = set(result.moved_units)
        spec["dim"] = "".join("1" if u in moved else "0" for u in index.ids)
        spec["fit"] = None
        territory_map(spec, view_of(index), tiles=False, draw=False, key="balance_map",
                      height=420)
    table = result.comparison()
    config = {}
    for c in table.columns:
        name = c.removesuffix("_before")
        if name in catalog.METRICS:
            today = " (today)" if c.endswith("_before") else ""
            config[c] = metric_column(name, catalog.label(name, short=True) + today)
    shown = as_shown(table)
    for c in table.columns:
        if c.endswith("_before") and catalog.is_share(c.removesuffix("_before")):
            shown[c] = pd.to_numeric(shown[c], errors="coerce") * 100
    st.dataframe(shown, hide_index=True, column_config=config)
    c1, c2, c3, c4 = st.columns([1.2, 2, 1.4, 1])
    if c1.button("Apply to this plan", type="primary", key="bal_apply",
                 help="One undoable edit: Undo on the toolbar takes it all back"):
        try:
            done = balance.apply_result(ctx.store, plan, result)
        except InputError as err:
            st.error(literal(err))
        else:
            st.session_state.pop(KEY, None)
            st.session_state["edit_message"] = ("info", str(done))
            st.rerun()
    name = c2.text_input("New plan name", value=f"{plan.name} (balanced)", key="bal_name",
                         label_visibility="collapsed")
    if c3.button("Save as a new plan", key="bal_save"):
        try:
            new = balance.save_result(ctx.store, result, name)
        except InputError as err:
            st.error(literal(err))
        else:
            st.session_state.pop(KEY, None)
            st.session_state["edit_message"] = (
                "info", f"Saved as plan {new.name!r} (planning); compare it with "
                f"{plan.name!r} on the Plans page.")
            st.rerun()
    if c4.button("Discard", key="bal_discard"):
        st.session_state.pop(KEY, None)
        st.rerun()


def _cube(ctx: Context, plan: plans.Plan):
    from ui.plan_metrics import plan_metrics

    return plan_metrics(ctx)[2]


def balance_panel(ctx: Context, plan: plans.Plan, index, colors: dict) -> None:
    """The panel, under the map's tools (an expander: the map above keeps its place)."""
    kept = st.session_state.get(KEY)
    if kept is not None:
        stamp = str(ctx.cur.execute("SELECT updated_at FROM plans WHERE plan_id = ?",
                                    [plan.plan_id]).fetchone()[0])
        if kept[0] != plan.plan_id or kept[1] != stamp:  # another plan, or it changed since
            st.session_state.pop(KEY, None)
            kept = None
    with st.expander("Balance territories automatically", expanded=kept is not None):
        if plan.state == "snapshot":
            st.info("A snapshot is frozen: restore it as a new plan to balance it.")
            return
        terr = plans.territories(ctx.cur, plan)
        try:
            opts = _options(ctx, plan, terr)
        except InputError as err:
            st.error(literal(err))
            opts = None
        if opts is not None:
            _run(ctx, plan, opts)
            kept = st.session_state.get(KEY)
        if kept is not None:
            _preview(ctx, plan, index, colors, kept[2])
        elif opts is None:
            st.caption("Even territories in one piece, each rep's home inside their own, "
                       "locked territories and pins kept. Nothing is saved until you apply "
                       "or save the proposal (docs/balance.md).")
