"""Coverage: under- and over-served territories, whitespace, accounts out of reach or not
touched, accounts in no territory, and what it would take to fix each under-served one."""

import plotly.graph_objects as go
import streamlit as st

from analytics import coverage, plans
from analytics.cube import AccountFilter
from ui.downloads import table_downloads
from ui.filters import explorer_head, write_url
from ui.map import territory_map, view_of
from ui.map_spec import map_spec, territory_palette, unit_index
from ui.page_entry import run_through_app
from ui.plan_metrics import plan_metrics
from ui.text import literal
from ui.widgets import kpi_row, money, percent

run_through_app()  # a first request of a fresh server may come here directly

ctx, scope = explorer_head("Coverage", {})
plan = ctx.plan
write_url(ctx, scope, {})
s = ctx.settings


@st.cache_data(show_spinner="Measuring every account...", max_entries=16)
def _accounts(db, version, plan_id, stamp, as_of, settings_json, scope_key, _ctx, _scope):
    return coverage.account_coverage(_ctx.cur, _ctx.plan, _ctx.as_of, _ctx.settings, _scope)


stamp = str(ctx.cur.execute("SELECT updated_at FROM plans WHERE plan_id = ?",
                            [plan.plan_id]).fetchone()[0])
accounts = _accounts(ctx.db_key, ctx.data_version, plan.plan_id, stamp,
                     ctx.as_of.isoformat(), s.to_json(), repr(scope), ctx, scope)
rows, whole, cube = plan_metrics(ctx)
if scope.territories or scope.reps or scope.regions:  # territory rows follow the filters
    keep = set(accounts["territory_id"].dropna())
    rows = rows[rows["territory_id"].isin(keep)]

out_of_reach = accounts[accounts["out_of_reach"]]
not_touched = accounts[~accounts["touched"]]
unassigned = accounts[accounts["territory_id"].isna()]
with_rep = accounts["rep_id"].notna()
kpi_row([
    ("Accounts with a rep", percent(with_rep.mean() if len(accounts) else None),
     "Accounts in a territory that has a rep"),
    ("Potential with a rep", percent(accounts.loc[with_rep, "potential"].sum()
                                     / accounts["potential"].sum()
                                     if accounts["potential"].sum() else None), None),
    ("Unassigned accounts", f"{len(unassigned):,}", "Accounts in no territory"),
    ("Out of reach", f"{len(out_of_reach):,}",
     f"Farther than {s.max_travel_km:,.0f} km from their rep's home"),
    ("Not touched", f"{len(not_touched):,}",
     f"No activity in the {s.touch_days} days before {ctx.as_of:%Y-%m-%d}"),
])

# -- utilization against the band ------------------------------------------------------------
st.subheader("Under- and over-served territories")
util = rows.dropna(subset=["utilization"]).sort_values("utilization", ascending=False)
status_color = {"under-served": "#EE6677", "over-served": "#4477AA", "balanced": "#228833",
                "no rep": "#BBBBBB"}
fig = go.Figure(go.Bar(
    x=util["territory_id"], y=util["utilization"] * 100,
    marker_color=[status_color.get(x, "#BBBBBB") for x in util["status"]],
    customdata=util[["territory_name", "status"]],
    hovertemplate="%{x} %{customdata[0]}: %{y:.0f}% (%{customdata[1]})<extra></extra>"))
fig.add_hrect(y0=s.underload_threshold * 100, y1=(1 + s.overload_tolerance) * 100,
              fillcolor="#BBBBBB", opacity=0.25, line_width=0,
              annotation_text=f"band {s.underload_threshold:.0%} to "
                              f"{1 + s.overload_tolerance:.0%}",
              annotation_position="top right")
fig.update_layout(height=320, yaxis={"ticksuffix": "%", "title": "utilization"},
                  margin={"t": 20, "b": 10}, xaxis_type="category")
st.plotly_chart(fig, width="stretch", key="utilization_chart")
c1, c2 = st.columns(2)
cols = ["territory_id", "territory_name", "rep_id", "workload_hours", "capacity_hours",
        "utilization", "accounts", "potential"]
for col, status, title in ((c1, "under-served", "Under-served"),
                           (c2, "over-served", "Over-served")):
    with col:
        part = rows[rows["status"] == status][cols].sort_values(
            "utilization", ascending=status == "over-served")
        st.markdown(f"**{title}** ({len(part)})")
        st.dataframe(part, hide_index=True, height=240, column_config={
            "utilization": st.column_config.NumberColumn(format="percent"),
            "workload_hours": st.column_config.NumberColumn(format="%.0f"),
            "potential": st.column_config.NumberColumn(format="localized")})
        table_downloads(part, f"{status}-territories", ctx, scope, key=f"cov_{status}")

st.subheader("What would it take")
whole_terr = (accounts if scope.flt == AccountFilter() else
              _accounts(ctx.db_key, ctx.data_version, plan.plan_id, stamp,
                        ctx.as_of.isoformat(), s.to_json(),
                        repr(coverage.territory_scope(scope)), ctx,
                        coverage.territory_scope(scope)))
takes = coverage.what_it_takes(rows, whole_terr, s)
# one container however many lines: the map and tabs below keep their place across reruns
with st.container():
    if scope.flt != AccountFilter():
        st.caption("A territory's workload counts all its accounts: these lines ignore the "
                   "segment, industry and product filters.")
    if takes.empty:
        st.success("No territory is over capacity beyond the tolerance.")
    else:
        for line in takes["line"]:
            st.markdown(f"- {literal(line)}")
        table_downloads(takes, "what-it-would-take", ctx, scope, key="cov_takes")

# -- whitespace map ------------------------------------------------------------------------
st.subheader("Whitespace: potential not yet won")
index = unit_index(ctx, plan)
terr = plans.territories(ctx.cur, plan)
colors = territory_palette(ctx, plan, terr)
spec = map_spec(ctx, plan, index, terr, rows, colors, cube, layer="Whitespace (unit)")
spec["fit"] = None
territory_map(spec, view_of(index), tiles=False, draw=False, key="whitespace_map",
              height=440)
st.caption(f"Whitespace for the period: {money(whole['whitespace'])} "
           f"(potential x days / 365 - won, at least 0, per {plan.unit.label.lower()}).")

# -- account lists -------------------------------------------------------------------------
st.subheader("Accounts")
show = ["account_id", "name", "segment", "state", "territory_id", "rep_name", "potential",
        "travel_km", "last_activity_date", "workload_hours"]
t1, t2, t3 = st.tabs([f"Out of reach ({len(out_of_reach):,})",
                      f"Not touched ({len(not_touched):,})",
                      f"Unassigned ({len(unassigned):,})"])
for tab, frame, name in ((t1, out_of_reach, "out-of-reach"), (t2, not_touched, "not-touched"),
                         (t3, unassigned, "unassigned")):
    with tab:
        part = frame.sort_values("potential", ascending=False)[show]
        st.dataframe(part.head(2000), hide_index=True, height=300, column_config={
            "potential": st.column_config.NumberColumn(format="localized"),
            "travel_km": st.column_config.NumberColumn(format="%.0f"),
            "workload_hours": st.column_config.NumberColumn(format="%.1f")})
        if len(part) > 2000:
            st.caption(f"The 2,000 with the largest potential of {len(part):,}; the "
                       "downloads have them all.")
        table_downloads(part, f"accounts-{name}", ctx, scope, key=f"cov_acc_{name}")
st.caption("Same numbers on the command line: `python -m analytics coverage` "
           "(docs/cli.md).")
