"""Performance by area: the per-unit numbers for any unit type, ranked."""

import plotly.express as px
import streamlit as st

from analytics import cube
from analytics.schema import H3_RESOLUTIONS
from analytics.units import POSTAL_KINDS, UnitType
from ui.context import sidebar_context

ctx = sidebar_context()
st.title("Performance by area")
choices = [f"h3:{r}" for r in H3_RESOLUTIONS] + list(POSTAL_KINDS)
unit = UnitType.parse(st.selectbox(
    "Unit", choices, index=choices.index("state"),
    format_func=lambda u: UnitType.parse(u).label,
))
frame = cube.unit_cube(ctx.cur, unit, ctx.period)
frame["penetration"] = (
    frame["won"] / (frame["potential"] * ctx.period.days / 365)
).where(frame["potential"] > 0)
metric = st.radio("Rank by", ["won", "potential", "open_pipeline", "penetration"],
                  horizontal=True)
top = st.slider("Show the top", 5, 50, 20)
ranked = frame.sort_values(metric, ascending=False).head(top)
fig = px.bar(ranked, x="unit_id", y=metric, hover_data=["accounts", "potential", "won"])
fig.update_layout(xaxis_type="category", height=360, margin={"t": 20})
st.plotly_chart(fig, width="stretch")
st.dataframe(
    frame.sort_values(metric, ascending=False), hide_index=True,
    column_config={
        "potential": st.column_config.NumberColumn(format="localized"),
        "won": st.column_config.NumberColumn(format="localized"),
        "open_pipeline": st.column_config.NumberColumn(format="localized"),
        "penetration": st.column_config.NumberColumn(format="percent"),
    },
)
st.caption(
    f"{len(frame):,} units hold accounts; "
    f"{cube.accounts_without_unit(ctx.cur, unit):,} accounts have no {unit.label.lower()}. "
    "Same numbers on the command line: "
    f"`python -m analytics units --unit {unit} --period {ctx.period}`"
)
