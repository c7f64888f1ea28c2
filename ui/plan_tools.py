"""Panels of the Plans page: create a plan, set parents, rules and types, exports."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from analytics import edits, plans, rules
from analytics.errors import InputError
from analytics.schema import H3_RESOLUTIONS, PLAN_STATES
from analytics.units import POSTAL_KINDS, UnitType
from ui.context import Context
from ui.text import literal

UNIT_CHOICES = [*POSTAL_KINDS, *(f"h3:{r}" for r in H3_RESOLUTIONS)]


def _result(message: str, kind: str = "success", plan_name: str | None = None) -> None:
    st.session_state["plans_message"] = (kind, message)
    if plan_name:
        st.session_state["_next_plan"] = plan_name
    st.rerun()


def create_form(ctx: Context) -> None:
    with st.form("create_plan_form"):
        st.markdown("**New empty plan** (create territories and paint them on the map)")
        c1, c2, c3 = st.columns(3)
        name = c1.text_input("Name", key="empty_plan_name")
        unit = c2.selectbox("Base unit", UNIT_CHOICES, index=UNIT_CHOICES.index("county"),
                            format_func=lambda u: UnitType.parse(u).label,
                            key="empty_plan_unit")
        state = c3.selectbox("State", list(PLAN_STATES), key="empty_plan_state")
        if st.form_submit_button("Create the empty plan"):
            try:
                plan = plans.create_plan(ctx.store, name, UnitType.parse(unit), state=state)
            except InputError as err:
                _result(str(err), "error")
            else:
                _result(f"Plan {plan.name!r} created ({plan.state}); it is now on screen.",
                        plan_name=plan.name)


def parent_form(ctx: Context, plan: plans.Plan, terr: pd.DataFrame) -> None:
    if plan.state == "snapshot" or terr.empty:
        return
    with st.form("parent_form"):
        st.markdown("**Set a parent** (one undoable edit)")
        ids = terr["territory_id"].tolist()
        c1, c2 = st.columns(2)
        child = c1.selectbox("Territory", ids)
        parent = c2.selectbox("Parent", ["(none)", *ids])
        if st.form_submit_button("Save the parent"):
            try:
                result = edits.update_territory(
                    ctx.store, plan, child, parent_id=None if parent == "(none)" else parent)
            except InputError as err:
                _result(str(err), "error")
            else:
                _result(str(result))


def rules_panel(ctx: Context, plan: plans.Plan) -> None:
    """Territory types with a priority, rules on account fields, preview, apply."""
    st.caption("A rule assigns accounts by their fields, whatever their unit (applied as "
               "account pins, in one undoable edit). When rules of several territories match "
               "an account, the territory whose type has the smaller priority number wins.")
    types = rules.list_territory_types(ctx.cur, plan)
    c1, c2 = st.columns([2, 3])
    with c1:
        st.markdown("**Territory types**")
        st.dataframe(types, hide_index=True, height=160)
        with st.form("type_form"):
            name = st.text_input("Type name", placeholder="e.g. Strategic")
            priority = st.number_input("Priority (1 = first)", min_value=1, value=1, step=1)
            if st.form_submit_button("Save the type", disabled=plan.state == "snapshot"):
                try:
                    rules.set_territory_type(ctx.store, plan, name, int(priority))
                except InputError as err:
                    _result(str(err), "error")
                else:
                    _result(f"Type {name!r} saved with priority {int(priority)}.")
        terr = plans.territories(ctx.cur, plan)
        if len(types) and len(terr):
            with st.form("assign_type_form"):
                t = st.selectbox("Territory", terr["territory_id"].tolist())
                ty = st.selectbox("Type", ["(none)", *types["type_name"].tolist()])
                if st.form_submit_button("Give the type"):
                    try:
                        res = rules.assign_type(ctx.store, plan, t,
                                                None if ty == "(none)" else ty)
                    except InputError as err:
                        _result(str(err), "error")
                    else:
                        _result(str(res))
    with c2:
        st.markdown("**Rules**")
        listed = rules.list_rules(ctx.cur, plan)
        st.dataframe(listed, hide_index=True, height=160)
        with st.form("rule_form"):
            terr_ids = plans.territories(ctx.cur, plan)["territory_id"].tolist()
            t = st.selectbox("Assign to territory", terr_ids, key="rule_territory")
            text = st.text_area(
                "Criteria, one per line: FIELD OP VALUE", key="rule_criteria",
                placeholder="segment equals Hospital\nstate in CA,OR\npotential between "
                            "100000..500000",
                help=f"Fields: {', '.join(rules.FIELDS)}. Operators: {', '.join(rules.OPS)}. "
                     "`in` takes comma-separated values, `between` LOW..HIGH. Values are "
                     "matched literally (text ignores case).")
            flt = st.text_input("Boolean filter", key="rule_filter",
                                placeholder="(1 AND 2) OR 3 (empty: all ANDed)")
            name = st.text_input("Rule name (optional)", key="rule_name")
            add = st.form_submit_button("Add the rule", disabled=plan.state == "snapshot")
        if add:
            try:
                crit = [rules.parse_criterion_text(line) for line in text.splitlines()
                        if line.strip()]
                rid = rules.add_rule(ctx.store, plan, t, [c.to_json() for c in crit],
                                     flt or None, name or None)
            except InputError as err:
                _result(str(err), "error")
            else:
                _result(f"Rule {rid} added for {t}. Preview it before applying.")
        if len(listed):
            ids = listed["rule_id"].tolist()
            chosen = st.multiselect("Rules to preview / apply", ids, default=ids,
                                    key="rules_chosen")
            moves = rules.preview(ctx.cur, plan, chosen or None)
            st.markdown(f"**Preview**: {len(moves):,} accounts would move")
            st.dataframe(moves, hide_index=True, height=220)
            c3, c4 = st.columns(2)
            if c3.button("Apply these rules", disabled=plan.state == "snapshot" or
                         moves.empty, key="rules_apply"):
                try:
                    res = rules.apply_rules(ctx.store, plan, chosen or None)
                except InputError as err:
                    _result(str(err), "error")
                else:
                    _result(f"{res} (undo it on the Territory map page)")
            with c4.form("rule_delete_form"):
                gone = st.selectbox("Rule", ids, key="rule_delete_id")
                if st.form_submit_button("Delete the rule"):
                    try:
                        rules.delete_rule(ctx.store, plan, int(gone))
                    except InputError as err:
                        _result(str(err), "error")
                    else:
                        _result(f"Rule {gone} deleted.")


def export_panel(ctx: Context, plan: plans.Plan) -> None:
    """The meeting pack: every format as a download, built when asked for."""
    from analytics import exports

    labels = {"pptx": "PowerPoint", "pdf": "PDF", "xlsx": "Excel", "geojson": "GeoJSON",
              "gpkg": "GeoPackage", "png": "PNG map", "salesforce": "Salesforce (zip)"}
    others = [n for n in plans.list_plans(ctx.cur, snapshots=True)["name"] if n != plan.name]
    c1, c2 = st.columns([2, 3])
    fmt = c1.selectbox("Format", list(exports.FORMATS), format_func=lambda f: labels.get(f, f),
                       key="export_format")
    base = c2.selectbox("Compare with (PowerPoint / PDF comparison slide)",
                        ["(none)", *others], key="export_baseline")
    baseline = None if base == "(none)" else plans.get_plan(ctx.cur, base)
    key = (plan.plan_id, fmt, base, str(ctx.period), ctx.as_of.isoformat(),
           ctx.settings.to_json(), ctx.data_version,
           str(ctx.cur.execute("SELECT updated_at FROM plans WHERE plan_id = ?",
                               [plan.plan_id]).fetchone()[0]))
    built = st.session_state.get("export_built")
    if st.button(f"Build the {labels.get(fmt, fmt)} file", key="export_build"):
        # the metrics, territory shapes and maps are computed once per plan version and kept
        # for this session, so a second format for the same meeting is quick
        pack_key = key[:1] + key[2:]
        kept = st.session_state.get("export_pack")
        if kept is None or kept[0] != pack_key:
            kept = (pack_key, exports.PlanPack(ctx.cur, plan, period=ctx.period,
                                               as_of=ctx.as_of, settings=ctx.settings,
                                               baseline=baseline))
            st.session_state["export_pack"] = kept
        with st.spinner("Building..."):
            try:
                data, filename, mime = exports.export_bytes(
                    ctx.cur, plan, fmt, period=ctx.period, as_of=ctx.as_of,
                    settings=ctx.settings, baseline=baseline, pack=kept[1])
            except InputError as err:
                st.error(literal(err))
                return
        built = {"key": key, "data": data, "filename": filename, "mime": mime}
        st.session_state["export_built"] = built
    if built and built["key"] == key:
        st.download_button(f"Download {literal(built['filename'])}", built["data"],
                           file_name=built["filename"], mime=built["mime"],
                           key="export_download", type="primary", on_click="ignore")
    st.caption("The same from the command line: `python -m analytics export --plan NAME "
               f"--format {fmt} --out FILE` (docs/cli.md), NAME being "
               f"{literal(repr(plan.name))}.")
