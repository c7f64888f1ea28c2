"""Territory metrics for the pages, with the expensive parts cached.

The per-unit cube is rebuilt only when the data, unit type, period, as-of date or settings
change; territory shapes and unit adjacency are kept across reruns.
"""

from __future__ import annotations

import streamlit as st

from analytics import metrics, plans
from ui.context import Context


@st.cache_resource(show_spinner=False)
def _shapes_cache(db_path: str) -> dict:
    """Territory unions and unit neighbours, shared by every session on this database."""
    return {}


@st.cache_resource(show_spinner=False, max_entries=32)
def _cube(db_path: str, unit: str, period: str, as_of: str, settings: str, version: str,
          _ctx: Context) -> metrics.MetricCube:
    """The per-unit cube; travel sums are added as the plans shown need them
    (`PlanInputs.load`: each unit to its own territory's rep), so a first load does not
    measure every account against every rep's home, and a new rep needs no new cube."""
    return metrics.MetricCube.build(
        _ctx.cur, _ctx.plan.unit, _ctx.period, _ctx.as_of, _ctx.settings, None, set()
    )


_COMPUTED: set[tuple] = set()
"""Keys of (cube, plan) whose metrics this server has computed: the next call is cheap."""


def _key(ctx: Context) -> tuple:
    plan = ctx.plan
    return (ctx.db_key, str(plan.unit), str(ctx.period), ctx.as_of.isoformat(),
            ctx.settings.to_json(), ctx.data_version, plan.plan_id)


def metrics_ready(ctx: Context) -> bool:
    """Whether `plan_metrics` for this context was computed before (its cube built, its
    reps' travel summed), so a page may wait for it; otherwise the map page draws the map
    first and the numbers after. A cube evicted since only makes one load slower."""
    return _key(ctx) in _COMPUTED


def plan_metrics(ctx: Context, baseline: plans.Plan | None = None):
    """(territory rows, plan dict, the cube) for the context's plan."""
    plan = ctx.plan
    cube = _cube(*_key(ctx)[:-1], ctx)
    plan_in = metrics.PlanInputs.load(ctx.cur, plan, cube)
    base = (metrics.disruption_frame(ctx.cur, plan, baseline)
            if baseline is not None else None)
    rows, plan_row = metrics.territory_metrics(
        cube, plan_in, shapes_cache=_shapes_cache(str(ctx.store.path)), baseline=base
    )
    _COMPUTED.add(_key(ctx))
    return rows, plan_row, cube
