"""Performance explorer: where we win and lose, by unit, territory or rep, with drill-down."""

import functools

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from analytics import catalog, plans
from analytics import performance as pf
from analytics.schema import H3_RESOLUTIONS
from analytics.units import POSTAL_KINDS, UnitType
from ui.downloads import table_downloads
from ui.filters import explorer_head, url_choice, write_url
from ui.map import territory_map, view_of
from ui.map_spec import explorer_spec, territory_palette
from ui.page_entry import run_through_app
from ui.plan_metrics import plan_metrics
from ui.text import literal
from ui.widgets import as_shown, kpi_row, metric_card, metric_column

run_through_app()  # a first request of a fresh server may come here directly

METRIC_LABELS = {name: catalog.label(name) for name in pf.RANK_METRICS}
LEVELS = {"unit": "Unit", "territory": "Territory", "rep": "Rep"}
UNITS = [*(f"h3:{r}" for r in H3_RESOLUTIONS), *POSTAL_KINDS]
CUTS = ["Bottom N", "Top N", "Percentile"]

ctx, scope = explorer_head("Performance explorer", {
    "metric": "p_metric", "level": "p_level", "unit": "p_unit", "cut": "p_cut", "n": "p_n"})
plan = ctx.plan

# -- what to rank ------------------------------------------------------------------------
c1, c2, c3, c4, c5 = st.columns([2.2, 1.6, 1.6, 1.4, 1.2], vertical_alignment="bottom")
url_choice("p_metric", list(METRIC_LABELS), "attainment")
url_choice("p_level", list(LEVELS), "territory")
url_choice("p_unit", UNITS, str(plan.unit) if str(plan.unit) in UNITS else "county")
url_choice("p_cut", CUTS, "Bottom N")
metric = c1.selectbox("Metric", list(METRIC_LABELS), key="p_metric",
                      format_func=METRIC_LABELS.get, help=pf.RANK_METRICS.get(
                          st.session_state.get("p_metric"), ""))
level_kind = c2.segmented_control("Level", list(LEVELS), key="p_level",
                                  format_func=LEVELS.get) or "territory"
unit_text = c3.selectbox("Unit", UNITS, key="p_unit", disabled=level_kind != "unit",
                         format_func=lambda u: UnitType.parse(u).label)
cut = c4.selectbox("Show", CUTS, key="p_cut")
if "p_n" not in st.session_state:
    st.session_state["p_n"] = st.session_state.pop("_url_p_n", None) or "10"
n_text = c5.text_input("N or P", key="p_n", help="N areas, or a percentile P (>= 50: at "
                       "or above it; < 50: at or below it)")
level = pf.Level("unit", UnitType.parse(unit_text)) if level_kind == "unit" \
    else pf.Level(level_kind)
try:
    n_value = float(n_text)
    if cut != "Percentile" and (n_value < 1 or n_value != int(n_value)):
        raise ValueError
except ValueError:
    st.error(f"{literal(repr(n_text))}: give a whole number of areas (1 or more), or a "
             "percentile 0-100")
    st.stop()
write_url(ctx, scope, {"metric": metric, "level": level_kind,
                       "unit": unit_text if level_kind == "unit" else None, "cut": cut,
                       "n": n_text})

if metric == "attainment" and level.kind == "unit":
    st.info("Units have no quota, so no attainment: rank territories or reps, or choose "
            "another metric for units.")
    st.stop()


@st.cache_data(show_spinner="Measuring every area...", max_entries=32)
def _areas(db, version, plan_id, stamp, period, as_of, level_text, scope_key, _ctx, _scope):
    return pf.area_table(_ctx.cur, _ctx.plan, _ctx.period, _ctx.as_of,
                         pf.Level.parse(level_text), _scope)


stamp = str(ctx.cur.execute("SELECT updated_at FROM plans WHERE plan_id = ?",
                            [plan.plan_id]).fetchone()[0])
scope_key = repr(scope)
table = _areas(ctx.db_key, ctx.data_version, plan.plan_id, stamp, str(ctx.period),
               ctx.as_of.isoformat(), str(level), scope_key, ctx, scope)
kw = {"min_accounts": scope.min_accounts, "min_establishments": scope.min_establishments}
if cut == "Top N":
    kw["top"] = int(n_value)
elif cut == "Bottom N":
    kw["bottom"] = int(n_value)
else:
    kw["percentile"] = n_value
ranked = pf.rank(table, metric, **kw)
everything = pf.rank(table, metric, min_accounts=scope.min_accounts,
                     min_establishments=scope.min_establishments)

# -- map and ranked table ------------------------------------------------------------------
selected_points = st.session_state.get("quadrant", {}).get("selection", {}).get("points", [])
picked = {p["customdata"][0] for p in selected_points if p.get("customdata")}
highlight = picked or set(ranked["area"])
rows, whole, cube = plan_metrics(ctx)
colors = territory_palette(ctx, plan, plans.territories(ctx.cur, plan))
spec, index = explorer_spec(ctx, plan, level, table, metric, highlight, colors, rows, cube)
drill = st.session_state.get("drill_area")


def _on_map_click(index, level) -> None:
    """A click on the map drills into the area under it."""
    value = st.session_state.get("explorer_map") or {}
    click = value.get("last_clicked")
    if not click:
        return
    unit = index.at(float(click["lat"]), float(click["lng"]))
    if unit is None:
        return
    if level.kind == "unit":
        st.session_state["drill_area"] = unit
        return
    terr = dict(plans.assignment(ctx.cur, plan).itertuples(index=False))
    tid = terr.get(unit)
    if level.kind == "territory":
        st.session_state["drill_area"] = tid
    else:
        reps = dict(plans.territories(ctx.cur, plan)[["territory_id", "rep_id"]]
                    .itertuples(index=False))
        st.session_state["drill_area"] = reps.get(tid)


left, right = st.columns([5, 4])
with left:
    territory_map(spec, view_of(index), tiles=False, draw=False, key="explorer_map",
                  height=470, on_change=functools.partial(_on_map_click, index, level))
    st.caption(f"{len(highlight):,} areas highlighted"
               + (" (selected on the quadrant chart)" if picked else "")
               + ". Click an area on the map or a row of the table to see its accounts, "
               "deals and trend.")
with right:
    # the ranked metric first; each column once (ranking by won or accounts must not list
    # that column twice: a frame with duplicate columns cannot be shown)
    columns = list(dict.fromkeys(["rank", "area", "name", metric, "accounts", "potential",
                                  "won", "won_deals", "lost_deals", "won_prior"]))
    shown = as_shown(ranked[columns])
    event = st.dataframe(
        shown, hide_index=True, height=440, on_select="rerun", selection_mode="single-row",
        key="ranked_table",
        column_config={c: metric_column(c, METRIC_LABELS[c] if c == metric else None)
                       for c in columns if c in catalog.METRICS})
    rows_sel = list(event.selection.rows) if event and event.selection else []
    # a newly ticked row drills into it; a row left ticked does not override a map click
    if rows_sel and rows_sel != st.session_state.get("_ranked_rows_seen"):
        drill = ranked["area"].iloc[rows_sel[0]]
        st.session_state["drill_area"] = drill
    st.session_state["_ranked_rows_seen"] = rows_sel
    table_downloads(ranked, f"ranking-{metric}-{level}", ctx, scope,
                    {"metric": metric, "level": str(level), "show": f"{cut} {n_text}"},
                    key="ranking")

# -- drill-down ----------------------------------------------------------------------------
drill_slot = st.container()  # always there: the charts below keep their place
with drill_slot:
    if drill is not None and drill in set(table["area"].dropna()):
        row = table.set_index("area").loc[drill]
        st.subheader(f"{LEVELS[level.kind]} {literal(drill)}" + (f" · {literal(row['name'])}"
                                                         if row["name"] != drill else ""))
        kpi_row([metric_card(name, row[name]) for name in
                 ("accounts", "won", "growth", "win_rate_count", "penetration")])
        t1, t2, t3 = st.tabs(["Trend", "Accounts", "Deals"])
        with t1:
            trend = pf.monthly_trend(ctx.cur, plan, ctx.period, scope, level, drill)
            st.plotly_chart(px.bar(trend, x="month", y=["won", "open_pipeline", "lost"],
                                   barmode="group", height=300), width="stretch",
                            key="drill_trend")
        with t2:
            accounts = pf.area_accounts(ctx.cur, plan, ctx.period, level, drill, scope)
            st.dataframe(accounts, hide_index=True, height=300)
            table_downloads(accounts, f"accounts-{drill}", ctx, scope, {"area": drill},
                            key="drill_accounts")
        with t3:
            deals = pf.area_deals(ctx.cur, plan, ctx.period, level, drill, scope)
            st.dataframe(deals, hide_index=True, height=300)
            table_downloads(deals, f"deals-{drill}", ctx, scope, {"area": drill},
                            key="drill_deals")

# -- charts --------------------------------------------------------------------------------
st.subheader("Charts")
ch1, ch2 = st.columns(2)
with ch1:
    terr_table = _areas(ctx.db_key, ctx.data_version, plan.plan_id, stamp,
                        str(ctx.period), ctx.as_of.isoformat(), "territory", scope_key, ctx,
                        scope)
    att = terr_table.dropna(subset=["area"]).sort_values("attainment", ascending=False)
    elapsed = ctx.period.elapsed(ctx.as_of)
    fig = go.Figure(go.Bar(x=att["area"], y=att["attainment"] * 100, name="Attainment",
                           marker_color="#4477AA", customdata=att[["name"]],
                           hovertemplate="%{x} %{customdata[0]}: %{y:.1f}%<extra></extra>"))
    fig.add_hline(y=elapsed * 100, line_dash="dash", line_color="#EE6677",
                  annotation_text=f"pace line: {elapsed:.0%} of the period elapsed")
    fig.update_layout(title="Attainment by territory against the pace line", height=340,
                      yaxis={"ticksuffix": "%"}, margin={"t": 40, "b": 10},
                      xaxis_type="category")
    st.plotly_chart(fig, width="stretch", key="attainment_chart")
with ch2:
    pts = everything.copy()
    if len(pts):
        px_med, won_med = pts["potential"].median(), pts["won"].median()
        pts["group"] = [
            ("strong" if w >= won_med else "opportunity") if p >= px_med else
            ("over-invested" if w >= won_med else "weak")
            for p, w in zip(pts["potential"], pts["won"], strict=True)
        ]
        fig = px.scatter(pts, x="potential", y="won", color="group", custom_data=["area"],
                         hover_name="name", height=340,
                         color_discrete_map={"strong": "#228833", "opportunity": "#CCBB44",
                                             "over-invested": "#66CCEE", "weak": "#EE6677"},
                         title="Potential against won (select points to show them on the "
                               "map)")
        fig.add_vline(x=px_med, line_dash="dot", line_color="#888888")
        fig.add_hline(y=won_med, line_dash="dot", line_color="#888888")
        fig.update_layout(margin={"t": 40, "b": 10}, dragmode="select")
        st.plotly_chart(fig, width="stretch", key="quadrant", on_select="rerun",
                        selection_mode=("points", "box", "lasso"))
ch3, ch4 = st.columns(2)
with ch3:
    trend = pf.monthly_trend(ctx.cur, plan, ctx.period, scope)
    fig = px.line(trend, x="month", y=["won", "open_pipeline"], markers=True, height=320,
                  title="Monthly won and pipeline (by close month)")
    fig.update_layout(margin={"t": 40, "b": 10})
    st.plotly_chart(fig, width="stretch", key="trend_chart")
with ch4:
    by = st.segmented_control("Breakdown by", ["segment", "industry", "product"],
                              default="segment", key="p_breakdown") or "segment"
    brk = pf.breakdown(ctx.cur, plan, ctx.period, ctx.as_of, by, scope)
    if len(brk):
        long = brk.melt(id_vars=[by], value_vars=["win_rate_count", "penetration"],
                        var_name="measure", value_name="share")
        long["share"] = long["share"] * 100
        fig = px.bar(long, x=by, y="share", color="measure", barmode="group", height=320,
                     title=f"Win rate and penetration by {by} (%)")
        fig.update_layout(margin={"t": 40, "b": 10})
        st.plotly_chart(fig, width="stretch", key="breakdown_chart")
        cols = [by, "accounts", "won", "win_rate_count", "win_rate_amount", "penetration",
                "avg_deal_size", "growth"]
        st.dataframe(as_shown(brk[cols]), hide_index=True,
                     column_config={c: metric_column(c) for c in cols[1:]})
        table_downloads(brk, f"breakdown-{by}", ctx, scope, {"breakdown": by},
                        key="breakdown")

st.caption("Same ranking on the command line: `python -m analytics rank --metric "
           f"{metric} --level {level} ...` (docs/cli.md). Definitions: docs/metrics.md.")
