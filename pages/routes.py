"""The rep's week: the visits due in a territory, in day routes from the rep's home, on a
map and in tables, with CSV / GPX per day and the meeting pack for that rep."""

import datetime as dt

import pandas as pd
import streamlit as st

from analytics import plans, routes
from analytics.errors import InputError
from ui.context import sidebar_context
from ui.page_entry import run_through_app
from ui.route_map import day_legend, week_map
from ui.text import literal
from ui.widgets import color_swatch, kpi_row, money, percent

run_through_app()  # a first request of a fresh server may come here directly

ctx = sidebar_context()
st.title("The rep's week")
if ctx.plan is None:
    st.info("No territory plan yet: import one on the Plans page.")
    st.stop()
plan = ctx.plan
s = ctx.settings
terr = plans.territories(ctx.cur, plan)
with_rep = terr[terr["rep_id"].notna()]
if with_rep.empty:
    st.info("No territory of this plan has a rep: a week is planned from a rep's home.")
    st.stop()
labels = {r.territory_id: f"{r.territory_id} · {r.territory_name or ''} ({r.rep_name or r.rep_id})"
          for r in with_rep.itertuples(index=False)}
ids = list(labels)
wanted = st.query_params.get("territory")
if "route_territory" not in st.session_state or st.session_state["route_territory"] not in ids:
    st.session_state["route_territory"] = wanted if wanted in ids else ids[0]
c1, c2, c3 = st.columns([3, 2, 1])
territory = c1.selectbox("Territory", ids, key="route_territory",
                         format_func=labels.get)
start = c2.date_input("First day", value=routes.default_start(ctx.as_of), key="route_start",
                      help="Working days (Monday to Friday) from this day; a weekend start "
                      "moves to Monday. Default: the working day after the as-of date.")
days = c3.number_input("Days", 1, routes.MAX_DAYS, 5, key="route_days")
st.query_params["territory"] = territory
st.caption(
    f"Due accounts: the next visit falls by the last day ({s.visits_per_year:g} visits a year "
    f"unless the account or its segment says otherwise); days of {s.day_hours:g} h from "
    f"{routes.clock(s.day_start_hour, 0)}, {s.visit_minutes:g} minutes a visit, straight-line "
    f"km x {s.road_factor:g} at {s.speed_kmh:g} km/h (Settings). No road network ships "
    "offline: the GPX gives the order, a navigator the roads.")


@st.cache_data(show_spinner="Planning the week...", max_entries=32)
def _week(db, version, plan_id, stamp, territory, start, days, settings_json, _ctx):
    return routes.plan_week(_ctx.cur, _ctx.plan, territory=territory,
                            start=dt.date.fromisoformat(start), days=days,
                            settings=_ctx.settings)


@st.cache_data(show_spinner=False, max_entries=32)
def _outline(db, version, plan_id, stamp, territories, _ctx):
    """The union of the territories' units: the map's context when offline."""
    from analytics import metrics

    assign = plans.assignment(_ctx.cur, _ctx.plan)
    units = assign.loc[assign["territory_id"].isin(territories), "unit_id"].tolist()
    return metrics.territory_shape(_ctx.plan.unit, units) if units else None


stamp = str(ctx.cur.execute("SELECT updated_at FROM plans WHERE plan_id = ?",
                            [plan.plan_id]).fetchone()[0])
try:
    week = _week(ctx.db_key, ctx.data_version, plan.plan_id, stamp, territory,
                 start.isoformat(), int(days), s.to_json(), ctx)
except InputError as exc:
    st.error(literal(exc))
    st.stop()

h = week.headline()
kpi_row([
    ("Visits / due", f"{h['visits']:,} / {h['due_accounts']:,}",
     "Due accounts routed this week, of all due; the rest are listed below with the reason"),
    ("Driving", f"{h['km']:,.0f} km", "Road km of the routes, home to home"),
    ("Hours", f"{h['hours']:,.1f} h", "Driving and visits, all days"),
    ("Saved vs nearest neighbour", percent(h["saving_vs_nearest_neighbour"]),
     f"The same visits in nearest-neighbour order from home: {h['nearest_neighbour_km']:,.0f}"
     f" km, {h['nearest_neighbour_hours']:,.1f} h over {h['nearest_neighbour_days']} days"),
    ("Saved vs one trip per visit", percent(h["saving_vs_one_trip_per_visit"]),
     f"Home -> account -> home for each visit (the workload metric's assumption): "
     f"{h['one_trip_per_visit_km']:,.0f} km, {h['one_trip_per_visit_hours']:,.1f} h"),
])
for note in week.notes:
    st.caption(literal(note))

left, right = st.columns([3, 2])
with left:
    if week.visits:
        week_map(week, key=f"route_map_{territory}_{start}_{days}",
                 tiles=st.session_state.get("route_tiles", False),
                 outline=_outline(ctx.db_key, ctx.data_version, plan.plan_id, stamp,
                                  tuple(week.territory_ids), ctx))
    else:
        st.info("No visit is due in these days, or none fits a day from the rep's home.")
    st.toggle("Online basemap tiles", key="route_tiles",
              help="OpenStreetMap tiles under the routes, when this computer is online")
with right:
    legend = day_legend(week)
    legend["colour"] = legend["colour"].map(color_swatch)
    st.dataframe(
        legend, hide_index=True, key="route_days_table",
        # what a day needs at a glance first: the day number and the leaving time (the
        # same every day) after the rest
        column_order=["colour", "date", "visits", "back", "hours", "km", "drive_hours",
                      "visit_hours", "leave", "day"],
        column_config={
            "colour": st.column_config.ImageColumn("", width=28),
            "day": st.column_config.NumberColumn("Day", format="%d"),
            "date": st.column_config.DateColumn("Date", format="ddd YYYY-MM-DD"),
            "visits": st.column_config.NumberColumn("Visits", format="%d"),
            "leave": "Leave", "back": "Back",
            "hours": st.column_config.NumberColumn("Hours", format="%.1f"),
            "drive_hours": st.column_config.NumberColumn("Driving h", format="%.1f"),
            "visit_hours": st.column_config.NumberColumn("Visit h", format="%.1f"),
            "km": st.column_config.NumberColumn("km", format="%.0f"),
        })
    st.write("**The whole week**")
    b1, b2, b3 = st.columns(3)
    for col, fmt in zip((b1, b2, b3), ("csv", "gpx", "json"), strict=True):
        col.download_button(
            fmt.upper(), lambda fmt=fmt: routes.week_file(week, fmt).encode("utf-8"),
            file_name=routes.file_name(week, fmt), mime=routes.MIME_TYPES[fmt],
            key=f"route_week_{fmt}", width="stretch", on_click="ignore")
    pack_key = (plan.plan_id, stamp, territory, start.isoformat(), int(days), s.to_json(),
                ctx.data_version, str(ctx.period), ctx.as_of.isoformat())
    if st.button(f"Build the meeting pack for {literal(week.rep_name)} (PDF)",
                 key="route_pack_build"):
        from analytics import exports

        with st.spinner("Building..."):
            pack = exports.PlanPack(ctx.cur, plan, period=ctx.period, as_of=ctx.as_of,
                                    settings=s, weeks=(week,),
                                    focus=tuple(week.territory_ids))
            data, _, mime = exports.export_bytes(ctx.cur, plan, "pdf", period=ctx.period,
                                                 as_of=ctx.as_of, settings=s, pack=pack)
        st.session_state["route_pack"] = {"key": pack_key, "data": data, "mime": mime}
    built = st.session_state.get("route_pack")
    if built and built["key"] == pack_key:
        st.download_button("Download the meeting pack", built["data"],
                           file_name=routes.file_name(week, "pdf"), mime=built["mime"],
                           key="route_pack_download", type="primary", on_click="ignore")

SHOWN = ["stop", "account_id", "name", "segment", "postal_code", "arrive", "depart",
         "leg_km", "leg_minutes", "potential", "last_activity_date", "due_date", "priority"]
tabs = st.tabs([f"Day {d} · {date:%a %d %b}" for d, date in enumerate(week.dates, start=1)])
for d, tab in enumerate(tabs, start=1):
    with tab:
        day = week.day_stops(d)
        if not (day["kind"] == "visit").any():
            st.write("No visit this day.")
            continue
        shown = day[SHOWN].copy()
        shown["potential"] = shown["potential"].map(lambda v: money(v) if pd.notna(v) else "")
        text = ["account_id", "segment", "postal_code", "arrive", "depart"]
        shown[text] = shown[text].astype(object).where(shown[text].notna(), "")  # home rows
        st.dataframe(shown, hide_index=True, key=f"route_day_{d}",
                     column_config={"leg_km": st.column_config.NumberColumn(
                         "km from last", format="%.1f"),
                         "leg_minutes": st.column_config.NumberColumn(
                             "min driving", format="%.0f")})
        e1, e2, _ = st.columns([1, 1, 4])
        for col, fmt in zip((e1, e2), ("csv", "gpx"), strict=True):
            col.download_button(
                f"Day {d} {fmt.upper()}",
                lambda fmt=fmt, d=d: routes.week_file(week, fmt, d).encode("utf-8"),
                file_name=routes.file_name(week, fmt, d), mime=routes.MIME_TYPES[fmt],
                key=f"route_day_{d}_{fmt}", width="stretch", on_click="ignore")

with st.expander(f"Due, not in the routes ({len(week.unplanned):,})"):
    st.dataframe(week.unplanned[["account_id", "name", "segment", "potential",
                                 "last_activity_date", "due_date", "priority", "reason"]],
                 hide_index=True, key="route_unplanned")
st.caption("The same from the command line (docs/cli.md): python -m analytics routes "
           f"--territory {literal(repr(territory))} --start {week.dates[0].isoformat()} "
           f"--days {int(days)} --format gpx --out week.gpx")
