"""Data: import accounts, deals and reps, map their columns, read the rejection report."""

import streamlit as st

from analytics import attach, demo, ingest, overlays, users
from analytics.errors import InputError
from analytics.exports.cells import csv_text
from analytics.schema import TABLES
from ui.context import sidebar_context
from ui.page_entry import run_through_app
from ui.text import literal
from ui.uploads import detected_columns, save_upload, temp_folder, uploaded

run_through_app()  # a first request of a fresh server may come here directly


@st.cache_data(show_spinner=False, max_entries=4)
def _job_rejections(folder: str, data_version: str):
    """The attached job's rejection report and its CSV, read once per attach (not on every
    rerun of the page)."""
    frame = attach.rejected_frame(folder)
    return frame, csv_text(frame).encode("utf-8")


ctx = sidebar_context()
st.title("Data")
counts = ctx.store.counts(ctx.cur)
st.caption(
    f"The database holds {counts['accounts']:,} accounts, {counts['sales']:,} deals, "
    f"{counts['reps']:,} reps and {counts['plans']:,} plans."
)

who = users.current()
if who.role != "admin":  # the engine refuses it anyway: say so instead of offering it
    st.info(f"Importing data and reloading the default dataset need an admin; you are "
            f"signed in as {literal(who.username)} ({who.role}).")
    st.stop()

attached = ctx.store.attached_from
if attached:
    st.subheader("Data from the Spark job")
    st.info(f"This database reads its deals in place from the Spark job's output "
            f"{literal(attached)}; its accounts and reps were stored from it. To import "
            "newer accounts, deals or reps, run the job on them and attach its output "
            "again (docs/scale-out.md): plans, edits and settings stay. A stage history "
            "file can still be imported here.")
    job_rejected, job_rejected_csv = _job_rejections(attached, ctx.data_version)
    if len(job_rejected):
        st.write(f"**{len(job_rejected):,} rows** were rejected by the job and not stored.")
        st.dataframe(job_rejected.head(1000), hide_index=True, key="job_rejections")
        st.download_button(
            "Download the job's rejection report (CSV)", job_rejected_csv,
            file_name="rejected-rows.csv", mime="text/csv", on_click="ignore",
            key="job_rejections_csv")

st.subheader("Import files")
st.write(
    "CSV (any delimiter, UTF-8 or Latin-1), Excel or Parquet. Columns are matched by name, "
    "by common aliases and by Salesforce report names; change any match below. Records "
    "with an id already stored are updated, new ones added."
)
uploads = {}
tables = ("stage_history",) if attached else ("accounts", "sales", "reps", "stage_history")
cols = st.columns(len(tables))
for col, table in zip(cols, tables, strict=True):
    uploads[table] = col.file_uploader(
        {"accounts": "Accounts", "sales": "Deals (opportunities)", "reps": "Reps",
         "stage_history": "Stage history (optional)"}[table],
        type=["csv", "txt", "tsv", "xlsx", "xls", "parquet"], key=f"upload_{table}",
    )

mode = st.radio(
    "When some rows are wrong",
    ["Store the good rows, report the bad ones", "Store nothing (all or nothing)"],
    horizontal=True,
)
replace = st.checkbox(
    "Replace each imported table whole (only if its file has no bad row)", value=False
)

chosen_files = {t: u for t, u in uploads.items() if u is not None}
if chosen_files:
    tmp = temp_folder()
    paths, mapping = {}, {}
    for table, upload in chosen_files.items():
        spec = TABLES[table]
        path = save_upload(upload, tmp.name)
        paths[table] = path
        try:
            headers, auto = detected_columns(path, upload.name, spec)
        except InputError as exc:
            st.error(literal(exc))
            st.stop()
        with st.expander(f"Columns of {literal(upload.name)} ({table})", expanded=False):
            options = ["(none)", *headers]
            for f in spec.fields:
                pick = st.selectbox(
                    f"{f.name}{' (required)' if f.required else ''}", options,
                    index=options.index(auto[f.name]) if f.name in auto else 0,
                    key=f"map_{table}_{f.name}",
                )
                if pick != "(none)":
                    mapping.setdefault(table, {})[f.name] = pick
    if st.button("Import", type="primary"):
        try:
            with st.spinner("Importing..."):
                report = ingest.load(
                    ctx.store, **{t: str(p) for t, p in paths.items()}, mapping=mapping,
                    replace=replace, all_or_nothing=mode.startswith("Store nothing"),
                    labels={t: u.name for t, u in chosen_files.items()},
                )
            st.session_state["last_report"] = report
        except ingest.ImportRejected as exc:
            st.session_state["last_report"] = exc.report
            st.error(literal(exc))
        except InputError as exc:
            st.session_state.pop("last_report", None)
            st.error(literal(exc))
    tmp.cleanup()

report = st.session_state.get("last_report")
if report is not None:
    st.subheader("Import report")
    (st.success if report.committed and report.clean else st.warning)(report.summary())
    if not report.clean:
        frame = report.frame()
        st.write(f"**{len(frame)} problems** in the rows below; those rows were not stored.")
        st.dataframe(frame, hide_index=True, key="rejections")
        st.download_button(
            "Download the rejection report (CSV)", csv_text(frame).encode("utf-8"),
            file_name="rejected-rows.csv", mime="text/csv", on_click="ignore",
        )

st.divider()
st.subheader("Your own overlays")
st.write(
    "A table keyed by ZIP5, ZIP3, county FIPS, state, departement or H3 cell, with numeric "
    "columns (competitor sites per ZIP, your own market sizing...). Each column becomes a "
    "map layer under *Colour units by*, added up onto coarser units (a ZIP's value goes to "
    "its ZIP3, county, state and hexagons). All rows or none: a bad key or value is "
    "reported by row and column and nothing is stored."
)
ocols = st.columns([3, 2, 2], vertical_alignment="bottom")
overlay_file = ocols[0].file_uploader("Overlay file", key="upload_overlay",
                                      type=["csv", "txt", "tsv", "xlsx", "xls", "parquet"])
overlay_key = ocols[1].selectbox("Keyed by", overlays.KEY_KINDS, key="overlay_key")
overlay_name = ocols[2].text_input("Name", key="overlay_name", max_chars=60,
                                   placeholder="e.g. Competitors")
if st.button("Import overlay", disabled=overlay_file is None or not overlay_name.strip()):
    with uploaded(overlay_file) as path:
        got = overlays.import_overlay(ctx.store, path, overlay_name, overlay_key)
        st.success(f"Overlay {literal(overlay_name.strip())} stored: {got.rows:,} rows, "
                   f"{len(got.columns) - 1} layer(s).")
stored = overlays.list_overlays(ctx.cur)
if len(stored):
    st.dataframe(stored, hide_index=True, key="overlay_list")
    gone = st.selectbox("Delete an overlay", stored["name"].tolist(), key="overlay_delete",
                        index=None, placeholder="Choose one")
    if st.button("Delete overlay", disabled=gone is None):
        overlays.delete_overlay(ctx.store, gone)
        st.rerun()

st.divider()
st.subheader("Default dataset")
st.write(
    "US hospitals (CMS FY2016) and clinics at real ZIP points, 40 reps, two years of deals "
    "and the plan *Current alignment*. See `data/SOURCES.md`."
)
if attached:
    st.caption("Not on a database attached to a Spark job's output: make a new database "
               "for the default dataset (`python -m analytics demo --db NEW.duckdb`).")
    st.stop()
sure = st.checkbox("I understand: every account, deal, rep and plan here is replaced",
                   key="reload_sure")
if st.button("Reload the default dataset (replaces all data and plans)", disabled=not sure):
    with st.spinner("Loading..."):
        demo.build_demo(ctx.store, force=True)
    st.session_state.pop("plan_name", None)
    st.success("Default dataset loaded.")
