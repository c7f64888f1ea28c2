"""Settings: the values every metric, page, export and command uses (docs/metrics.md)."""

import pandas as pd
import streamlit as st

from analytics import users
from analytics.errors import InputError
from analytics.settings import Settings, save_settings
from ui.context import sidebar_context
from ui.page_entry import run_through_app
from ui.text import literal

run_through_app()  # a first request of a fresh server may come here directly

ctx = sidebar_context()
st.title("Settings")
st.write("Saved with the data: every page, export and `python -m analytics summary` uses "
         "them (a command can override one with `--setting name=value`).")
s = ctx.settings
segments = [r[0] for r in ctx.cur.execute(
    "SELECT DISTINCT segment FROM accounts WHERE segment IS NOT NULL ORDER BY 1").fetchall()]
with st.form("settings"):
    c1, c2, c3 = st.columns(3)
    visit_minutes = c1.number_input("Minutes per visit", 0.0, value=s.visit_minutes,
                                    key="visit_minutes")
    road_factor = c2.number_input("Road factor (road km / straight km)", 0.1,
                                  value=s.road_factor, key="road_factor")
    speed_kmh = c3.number_input("Driving speed (km/h)", 1.0, value=s.speed_kmh,
                                key="speed_kmh")
    capacity = c1.number_input("Capacity hours of a rep with none given", 0.0,
                               value=s.capacity_hours, key="capacity_hours")
    visits = c2.number_input("Visits a year (accounts and segments with none given)", 0.0,
                             value=s.visits_per_year, key="visits_per_year")
    max_travel = c3.number_input("Max travel km (reach)", 0.0, value=s.max_travel_km,
                                 key="max_travel_km")
    tolerance = c1.number_input("Overload tolerance (under-served above 1 + this)", 0.0,
                                value=s.overload_tolerance, key="overload_tolerance")
    underload = c2.number_input("Underload threshold (over-served below)", 0.0,
                                value=s.underload_threshold, key="underload_threshold")
    touch_days = c3.number_input("Touch days (recent activity)", 0, value=s.touch_days,
                                 step=1, key="touch_days")
    day_hours = c1.number_input("Working day for visit routes (hours, home to home)", 0.5,
                                24.0, value=s.day_hours, key="day_hours")
    day_start = c2.number_input("Routes leave home at (hour, 8.5 = 08:30)", 0.0, 23.75,
                                value=s.day_start_hour, step=0.25, key="day_start_hour")
    st.write("By segment (empty: the defaults above): visits a year, and minutes a visit "
             "lasts (workload, coverage, balancing and the rep's week use them)")
    seg_frame = pd.DataFrame({
        "segment": segments,
        "visits_per_year": [s.visits_by_segment.get(x) for x in segments],
        "visit_minutes": [s.visit_minutes_by_segment.get(x) for x in segments],
    }).astype({"visits_per_year": float, "visit_minutes": float})
    edited = st.data_editor(seg_frame, hide_index=True, disabled=["segment"],
                            key="visits_by_segment")
    admin = users.current().role == "admin"
    saved = st.form_submit_button("Save settings", type="primary", disabled=not admin,
                                  help=None if admin else "Only an admin changes settings")
if saved:
    by_segment = {
        r.segment: float(r.visits_per_year) for r in edited.itertuples(index=False)
        if pd.notna(r.visits_per_year)
    }
    minutes_by_segment = {
        r.segment: float(r.visit_minutes) for r in edited.itertuples(index=False)
        if pd.notna(r.visit_minutes)
    }
    try:
        new = Settings(
            visit_minutes=visit_minutes, road_factor=road_factor, speed_kmh=speed_kmh,
            capacity_hours=capacity, visits_per_year=visits, visits_by_segment=by_segment,
            visit_minutes_by_segment=minutes_by_segment,
            overload_tolerance=tolerance, underload_threshold=underload,
            max_travel_km=max_travel, touch_days=int(touch_days), day_hours=day_hours,
            day_start_hour=day_start,
        )
        save_settings(ctx.store, new)
        st.success("Settings saved.")
    except InputError as exc:
        st.error(literal(exc))
