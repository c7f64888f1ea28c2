"""Map events to plan edits: a click paints or inspects a unit, a drawn shape or a drag of
the brush paints many.

`apply_map_event` is plain Python (no Streamlit) so the tests can drive it with the values
streamlit-folium sends; `on_map_change` is the `st_folium` callback that runs it before the
page script, so the same rerun already shows the new colours and numbers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import streamlit as st

from analytics import edits
from analytics.errors import InputError
from analytics.plans import Plan
from analytics.store import Store
from analytics.unit_index import UnitIndex

MODES = ("Paint", "Erase", "Inspect")
# what dragging the mouse does in Paint and Erase: move the map, or paint every unit the
# pointer passes over (and, with a size, every unit whose centre is that many km from it)
BRUSH_SIZES = {"Drag moves the map": None, "Drag paints, 1 unit": 0.0,
               "Drag paints, 10 km": 10.0, "Drag paints, 25 km": 25.0,
               "Drag paints, 50 km": 50.0}
MAX_STROKE_UNITS = 100_000  # a stroke naming more units than this is not one the map sent


def brush_radius(size: str | None) -> float | None:
    """The drag brush's radius in km for a `BRUSH_SIZES` label (None: drag moves the map)."""
    return BRUSH_SIZES.get(size) if size else None


@dataclass
class MapEvent:
    """What one component value brought that was not handled before."""

    click: dict | None
    drawing: dict | None
    stroke: str | None = None  # a drag stroke's id (the map's), with its units
    units: list | None = None


def new_event(value: dict | None, seen: dict) -> MapEvent:
    """The click and drawing in `value` that differ from those already handled (`seen`).

    A drawn rectangle also reports the click of its last corner in the same value: the
    drawing wins and that click is ignored. A drag of the brush comes as a drawn line whose
    properties name the stroke and the units it painted (`atlas_stroke`, `units`).
    """
    value = value or {}
    click, drawing = value.get("last_clicked"), value.get("last_active_drawing")
    click_key = json.dumps(click, sort_keys=True) if click else None
    draw_key = json.dumps(drawing, sort_keys=True) if drawing else None
    new_draw = draw_key is not None and draw_key != seen.get("drawing")
    new_click = click_key is not None and click_key != seen.get("click")
    seen["click"], seen["drawing"] = click_key, draw_key
    if new_draw:
        geometry = drawing.get("geometry") if isinstance(drawing, dict) else None
        props = (drawing.get("properties") or {}) if isinstance(drawing, dict) else {}
        if isinstance(props, dict) and "atlas_stroke" in props:
            units = props.get("units")
            return MapEvent(None, None, str(props["atlas_stroke"])[:64],
                            units if isinstance(units, list) else [])
        # a feature with other properties is a clicked map layer, not a shape the user drew
        if geometry and not props:
            return MapEvent(None, geometry)
        return MapEvent(None, None)
    return MapEvent(click if new_click else None, None)


def shape_corner(geometry: dict) -> list[float] | None:
    """A drawn polygon's first corner [lng, lat]: how the map and the server name it."""
    try:
        lng, lat = geometry["coordinates"][0][0][:2]
        return [float(lng), float(lat)]
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def apply_map_event(store: Store, plan: Plan, index: UnitIndex, event: MapEvent, mode: str,
                    brush: str | None) -> tuple[edits.EditResult | None, str | None, str]:
    """Run the edit the event asks for: (result, unit clicked, message for the manager)."""
    if event.stroke is not None:
        pos = index.position()
        named = event.units[:MAX_STROKE_UNITS]
        units = list(dict.fromkeys(u for u in named if isinstance(u, str) and u in pos))
        if not units:
            return None, None, "The brush stroke holds no unit of this map: nothing changed."
        if mode == "Inspect":
            return None, None, "Choose Paint or Erase to paint with the brush."
        result = _stroke(store, plan, units, mode, brush, f"{len(units)} units (brush)")
        return result, None, _message(result)
    if event.drawing is not None:
        units = index.inside(event.drawing)
        if not units:
            return None, None, "The drawn shape holds no unit centre: nothing changed."
        if mode == "Inspect":
            return None, None, f"The drawn shape holds {len(units)} units; choose Paint or " \
                               "Erase to assign them."
        result = _stroke(store, plan, units, mode, brush, f"{len(units)} units (drawn shape)")
        return result, None, _message(result)
    if event.click is not None:
        unit = index.at(float(event.click["lat"]), float(event.click["lng"]))
        if unit is None:
            return None, None, "No unit there (no accounts and not in the plan)."
        if mode == "Inspect":
            return None, unit, f"Selected unit {unit}."
        result = _stroke(store, plan, [unit], mode, brush, f"unit {unit}")
        return result, unit, _message(result)
    return None, None, ""


def _stroke(store, plan, units, mode, brush, what) -> edits.EditResult:
    if mode == "Erase":
        return edits.assign(store, plan, units, None, label=f"Erase {what}")
    if not brush:
        raise InputError("choose a territory to paint with first")
    return edits.assign(store, plan, units, brush, label=f"Assign {what} to {brush}")


def _message(result: edits.EditResult) -> str:
    if result.changed == 0 and result.skipped_locked:
        return (f"{result.label}: nothing changed, {result.skipped_locked} unit(s) belong to "
                "locked territories.")
    if result.changed == 0:
        return f"{result.label}: already so, nothing changed."
    return str(result)


def on_map_change(key: str, store: Store, plan: Plan, index: UnitIndex) -> None:
    """st_folium's on_change: apply the new click or drawing before the page runs."""
    seen = st.session_state.setdefault(f"{key}_seen", {})
    event = new_event(st.session_state.get(key), seen)
    # the map knows its click or drag is answered by this rerun's spec
    n = (st.session_state.get("map_answered") or {}).get("n", 0) + 1
    if event.click is not None:
        st.session_state["map_answered"] = {"n": n, "lat": event.click["lat"],
                                            "lng": event.click["lng"]}
    elif event.stroke is not None:
        st.session_state["map_answered"] = {"n": n, "stroke": event.stroke}
    elif event.drawing is not None:  # named by its first corner, as the map knows it
        corner = shape_corner(event.drawing)
        if corner is not None:
            st.session_state["map_answered"] = {"n": n, "shape": corner}
    mode = st.session_state.get("edit_mode", MODES[0])
    brush = st.session_state.get("brush")
    try:
        result, unit, message = apply_map_event(store, plan, index, event, mode, brush)
    except InputError as err:
        st.session_state["edit_message"] = ("error", str(err))
        return
    if unit is not None and mode == "Inspect":
        st.session_state["inspect_unit"] = unit
    if message:
        kind = "warning" if result is not None and result.changed == 0 else "info"
        st.session_state["edit_message"] = (kind, message)
