"""The rep's week on a map: one colour per day, the stops numbered in order, the home.

Drawn with folium on the app's own Leaflet (`ui.map.base_map`: no asset from another host);
names reach the map only as escaped text.
"""

from __future__ import annotations

from html import escape

import folium
import pandas as pd
from streamlit_folium import st_folium

from analytics.routes import Week, day_color
from ui.map import base_map, external_assets

STOP_CSS = ("box-sizing:border-box;width:22px;height:22px;border-radius:11px;color:#fff;"
            "font:bold 11px/18px sans-serif;text-align:center;border:2px solid #fff;"
            "box-shadow:0 0 2px #333;")
HOME_CSS = ("box-sizing:border-box;width:26px;height:26px;border-radius:4px;"
            "background:#111;color:#fff;font:bold 15px/22px sans-serif;text-align:center;"
            "border:2px solid #fff;")


def week_map(week: Week, *, key: str, tiles: bool = False, height: int = 560,
             outline=None) -> None:
    """Draw the week: the territory's outline (`outline`, a shapely geometry) for context,
    a line per day (home, the stops in order, home), a numbered marker per stop with its
    account, day and arrival in the tooltip, the home as a marker."""
    stops = week.stops
    fmap = base_map((week.home[0], week.home[1]), 9, tiles, draw=False)
    if outline is not None and not outline.is_empty:
        import shapely

        folium.GeoJson(
            shapely.geometry.mapping(outline.simplify(0.002)), name="territory",
            style_function=lambda _: {"color": "#555555", "weight": 1.5, "fill": True,
                                      "fillColor": "#CFE3F3", "fillOpacity": 0.35},
        ).add_to(fmap)
    lat, lon = stops["lat"].to_numpy(float), stops["lon"].to_numpy(float)
    if len(stops):
        fmap.fit_bounds([[float(lat.min()), float(lon.min())],
                         [float(lat.max()), float(lon.max())]], padding=(20, 20))
    for d, date in enumerate(week.dates, start=1):
        day = stops[stops["day"] == d]
        if not (day["kind"] == "visit").any():
            continue
        color = day_color(d)
        row = week.days.iloc[d - 1]
        folium.PolyLine(
            list(zip(day["lat"], day["lon"], strict=True)), color=color, weight=4,
            opacity=0.85,
            tooltip=escape(f"Day {d} {date:%a %Y-%m-%d}: {int(row['visits'])} visits, "
                           f"{row['hours']:.1f} h, {row['km']:.0f} km"),
        ).add_to(fmap)
        for s in day[day["kind"] == "visit"].itertuples(index=False):
            folium.Marker(
                [float(s.lat), float(s.lon)],
                icon=folium.DivIcon(
                    html=(f'<div class="atlas-stop" data-day="{d}" data-stop="{s.stop}" '
                          f'style="{STOP_CSS}background:{color}">{s.stop}</div>'),
                    icon_size=(22, 22), icon_anchor=(11, 11)),
                tooltip=escape(f"Day {d}, stop {s.stop}: {s.name} ({s.account_id}), arrive "
                               f"{s.arrive}"),
            ).add_to(fmap)
    folium.Marker(
        [week.home[0], week.home[1]],
        icon=folium.DivIcon(html=f'<div class="atlas-home" style="{HOME_CSS}">&#8962;</div>',
                            icon_size=(26, 26), icon_anchor=(13, 13)),
        tooltip=escape(f"Home of {week.rep_name}"),
    ).add_to(fmap)
    assert not external_assets(fmap), external_assets(fmap)
    st_folium(fmap, key=key, height=height, use_container_width=True, returned_objects=[])


def day_legend(week: Week) -> pd.DataFrame:
    """One row per day for the table beside the map (colour swatch, date, numbers)."""
    days = week.days.copy()
    days.insert(0, "colour", [day_color(d) for d in days["day"]])
    return days
