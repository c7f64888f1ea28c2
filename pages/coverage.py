"""Coverage: which accounts the plan leaves out, and which have no rep."""

import streamlit as st

from analytics import plans
from ui.context import sidebar_context
from ui.widgets import kpi_row, money, percent

ctx = sidebar_context()
st.title("Coverage")
if ctx.plan is None:
    st.warning("There is no territory plan yet. Import one on the **Plans** page.")
    st.stop()
cov = plans.coverage(ctx.cur, ctx.plan)
kpi_row([
    ("Accounts in a territory with a rep", percent(cov["covered_accounts_share"]), None),
    ("Potential in a territory with a rep", percent(cov["covered_potential_share"]), None),
    ("Unassigned accounts", f"{cov['unassigned_accounts']:,}", None),
    ("Unassigned potential", money(cov["unassigned_potential"]), None),
])
st.subheader("Accounts in no territory")
st.dataframe(cov["unassigned"], hide_index=True)
st.subheader("How accounts were placed on the map")
st.dataframe(cov["placement"], hide_index=True)
