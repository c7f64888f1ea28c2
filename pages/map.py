"""Territory map: the plan on a map, the whole-plan figures and the territory table."""

import streamlit as st

from analytics import adjacency, cube, plans
from ui.context import sidebar_context
from ui.map import plan_map
from ui.palette import territory_colors
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
unit_cube = cube.unit_cube(ctx.cur, plan.unit, ctx.period, include_unplaced=True)
table, totals = plans.territory_numbers(ctx.cur, plan, ctx.period, cube=unit_cube)
colors = _colors(plan.plan_id, str(plan.unit), stamp, ctx.cur)

st.caption(
    f"Plan **{plan.name}** ({plan.state}), units: {plan.unit.label}: "
    f"{totals['territories']} territories, {totals['units']:,} units. "
    f"Period {ctx.period.start:%Y-%m-%d} to {ctx.period.end:%Y-%m-%d}, as of "
    f"{ctx.as_of:%Y-%m-%d}."
)
quota = table["quota"].sum()
kpi_row([
    ("Accounts", f"{totals['accounts']:,}", "All accounts with a unit of this plan's type"),
    ("Potential", money(totals["potential"]), "Annual sales potential"),
    ("Won", money(totals["won"]), "Won deals closing in the period"),
    ("Open pipeline", money(totals["open_pipeline"]), "Open deals closing in the period"),
    ("Attainment", percent(table["won"].sum() / quota if quota else None),
     "Won in territories / their quota for the period"),
    ("Unassigned", f"{totals['unassigned_accounts']:,}",
     "Accounts whose unit is in no territory"),
])

tiles = st.toggle("Online basemap tiles", value=False,
                  help="Needs internet. Without it the map draws state outlines.")
units_frame = plans.units_with_territory(ctx.cur, plan, unit_cube)
reps = table.merge(
    plans.territories(ctx.cur, plan)[["territory_id", "home_lat", "home_lon"]],
    on="territory_id",
)
plan_map(plan.unit, units_frame, colors, reps, tiles=tiles)

st.subheader("Territories")
territory_table(table, colors, key="territory_table")
st.download_button(
    "Download the table (CSV)", table.to_csv(index=False).encode("utf-8"),
    file_name=f"territories-{plan.name}.csv", mime="text/csv",
)
