"""Plans: the territory plans in the database, and importing one from a file."""

import streamlit as st

from analytics import ingest, plans
from analytics.errors import InputError
from analytics.schema import H3_RESOLUTIONS
from analytics.units import POSTAL_KINDS, UnitType
from ui.context import sidebar_context
from ui.page_entry import run_through_app
from ui.uploads import save_upload, temp_folder

run_through_app()  # a first request of a fresh server may come here directly

ctx = sidebar_context()
st.title("Plans")
plan_list_slot = st.container()  # filled last, so a plan created below is listed at once

st.subheader("Import a plan")
st.write(
    "A CSV, Excel or Parquet file with `unit_id, territory_id` and optionally "
    "`territory_name, rep_id`: one row per unit."
)
with st.form("plan_import"):
    name = st.text_input("Plan name", key="new_plan_name")
    choices = list(POSTAL_KINDS) + [f"h3:{r}" for r in H3_RESOLUTIONS]
    unit_text = st.selectbox("Base unit", choices, key="new_plan_unit",
                             format_func=lambda u: UnitType.parse(u).label)
    state = st.selectbox("State", ["planning", "active", "archived"], key="new_plan_state")
    upload = st.file_uploader("Plan file", type=["csv", "txt", "xlsx", "parquet"],
                              key="new_plan_file")
    submitted = st.form_submit_button("Create the plan", type="primary")
if submitted:
    if upload is None:
        st.error("Choose a plan file.")
    else:
        tmp = temp_folder()
        try:
            path = save_upload(upload, tmp.name)
            plan, report = plans.import_plan(
                ctx.store, name, UnitType.parse(unit_text), path, state=state,
                label=upload.name,
            )
            st.success(f"Plan {plan.name!r} created with {report.tables[0].inserted:,} units.")
        except ingest.ImportRejected as exc:
            st.error(str(exc))
            st.dataframe(exc.report.frame(), hide_index=True)
        except InputError as exc:
            st.error(str(exc))
        finally:
            tmp.cleanup()

with plan_list_slot:
    st.dataframe(plans.list_plans(ctx.cur), hide_index=True, key="plan_list")
