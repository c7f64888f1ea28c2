"""Territory map: the plan on a map, the whole-plan figures and the territory metrics."""

import streamlit as st

from analytics import adjacency, metrics, plans
from ui.context import sidebar_context
from ui.map import plan_map
from ui.palette import territory_colors
from ui.plan_metrics import plan_metrics
from ui.widgets import kpi_row, money, percent, territory_table

ctx = sidebar_context()
st.title("Territory map")
if ctx.plan is None:
    st.warning("There is no territory plan yet. Import one on the **Plans** page.")
    st.stop()
plan = ctx.plan


@st.cache_data(show_spinner=False, max_entries=8)
def _colors(plan_id: int, unit_text: str, stamp: str, _cur) -> dict[str, str]:
    """Territory colours: neighbours differ. Recomputed when the plan changes (stamp)."""
    assign = plans.assignment(_cur, plan)
    terr = plans.territories(_cur, plan)
    touching = adjacency.territory_neighbours(plan.unit, assign)
    fixed = dict(zip(terr["territory_id"], terr["color"], strict=True))
    return territory_colors(terr["territory_id"].tolist(), touching, fixed)


stamp = str(ctx.cur.execute(
    "SELECT updated_at FROM plans WHERE plan_id = ?", [plan.plan_id]
).fetchone()[0])
rows, whole, cube = plan_metrics(ctx)
colors = _colors(plan.plan_id, str(plan.unit), stamp, ctx.cur)
terr = plans.territories(ctx.cur, plan)
table = rows.merge(terr[["territory_id", "rep_name"]], on="territory_id", how="left")
table.insert(3, "rep_name", table.pop("rep_name"))
table.insert(4, "status", table.pop("status"))  # status at a glance, beside the rep

st.caption(
    f"Plan **{plan.name}** ({plan.state}), units: {plan.unit.label}: "
    f"{len(terr)} territories, {whole['units']:,} units. "
    f"Period {ctx.period.start:%Y-%m-%d} to {ctx.period.end:%Y-%m-%d}, as of "
    f"{ctx.as_of:%Y-%m-%d}. Settings on the **Settings** page."
)
under = int((rows["status"] == "under-served").sum())
over = int((rows["status"] == "over-served").sum())
kpi_row([
    ("Accounts", f"{whole['accounts']:,}", "Every account, assigned or not"),
    ("Potential", money(whole["potential"]), "Annual sales potential"),
    ("Won", money(whole["won"]), "Won deals closing in the period"),
    ("Attainment", percent(whole["attainment"]), "Won / quota for the period"),
    ("Pace", percent(whole["pace"]), "Attainment / share of the period elapsed"),
])
kpi_row([
    ("Open pipeline", money(whole["open_pipeline"]), "Open deals closing in the period"),
    ("Pipeline coverage", "–" if whole["pipeline_coverage"] is None
     else f"{whole['pipeline_coverage']:.2f}x", "Open pipeline / (quota - won)"),
    ("Coverage", percent(whole["coverage_accounts_pct"]),
     "Accounts in a territory that has a rep"),
    ("Unassigned", f"{whole['unassigned_accounts']:,}", "Accounts in no territory"),
    ("Utilization", percent(whole["utilization"]), "Workload hours / capacity hours"),
])
kpi_row([
    ("Under-served", f"{under}", "Territories over capacity beyond the tolerance"),
    ("Over-served", f"{over}", "Territories under the underload threshold"),
    ("Workload balance", percent(whole["balance_cv_workload_hours"]),
     "Coefficient of variation of workload over territories with a rep (0% = equal)"),
    ("Potential balance", percent(whole["balance_cv_potential"]),
     "Coefficient of variation of potential over territories with a rep (0% = equal)"),
    ("Whitespace", money(whole["whitespace"]), "Potential for the period not yet won"),
])
pieces = rows[(rows["units"] > 0) & (rows["components"] > 1)]
if len(pieces):
    st.info(f"{len(pieces)} territories are in more than one piece: "
            + ", ".join(f"{r.territory_name} ({r.components})"
                        for r in pieces.itertuples(index=False)))

tiles = st.toggle("Online basemap tiles", value=False,
                  help="Needs internet. Without it the map draws state outlines.")
units_frame = plans.units_with_territory(ctx.cur, plan, cube.units)
reps = table.merge(terr[["territory_id", "home_lat", "home_lon"]], on="territory_id")
plan_map(plan.unit, units_frame, colors, reps, tiles=tiles)

st.subheader("Territories")
territory_table(table, colors, key="territory_table")
st.download_button(  # the same file as `python -m analytics summary`: shares as fractions
    "Download the summary (CSV, with the whole-plan row)",
    metrics.summary_frame(rows, whole).to_csv(index=False).encode("utf-8"),
    file_name=f"summary-{plan.name}-{ctx.period.start:%Y%m%d}-{ctx.period.end:%Y%m%d}.csv",
    mime="text/csv",
)
