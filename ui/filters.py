"""The explorer's filters, shared by the Performance and Coverage pages and kept in the URL.

A link reproduces the view: on the first run of a session the URL's query parameters set
the widgets (plan, as-of, period, filters and the page's own choices); on every run after,
the widgets write the URL. Values the app does not know (a segment that is not in the data,
a malformed date) are dropped with a warning instead of failing.
"""

from __future__ import annotations

import datetime as dt

import streamlit as st

from analytics.cube import AccountFilter
from analytics.performance import Scope
from ui.context import Context, sidebar_context
from ui.text import literal

LIST_FILTERS = ("segment", "industry", "product", "rep", "territory", "region")
MIN_FILTERS = ("min_accounts", "min_establishments")
"""Whole-number floors on an area (rankings), read from and written to the URL."""


def _key(name: str) -> str:
    return f"f_{name}"


# -- keeping widget values across pages ---------------------------------------------------
def _restore(key: str) -> None:
    """Streamlit forgets a widget's value on a page that does not draw it: keep a copy."""
    shadow = f"_keep_{key}"
    if key not in st.session_state and shadow in st.session_state:
        st.session_state[key] = st.session_state[shadow]


def _remember(key: str) -> None:
    st.session_state[f"_keep_{key}"] = st.session_state.get(key)


# -- URL -> widgets, once per session -----------------------------------------------------
def load_url(page_keys: dict[str, str]) -> list[str]:
    """Apply the URL's query parameters to the widget keys (first run of the session).

    `page_keys` maps a parameter name to a widget key for the page's own choices (text
    values). Call before any widget is drawn. Returns warnings about values left out.
    """
    flag = "_url_loaded"
    if st.session_state.get(flag):
        return []
    st.session_state[flag] = True
    params = st.query_params
    warnings = []
    if "plan" in params:
        st.session_state["_next_plan"] = params["plan"]
    if "as_of" in params:
        try:
            st.session_state["as_of"] = dt.date.fromisoformat(params["as_of"])
        except ValueError:
            warnings.append(f"as_of={params['as_of']!r} is not a date (YYYY-MM-DD)")
    if "period" in params:
        start, _, end = params["period"].partition(":")
        try:
            st.session_state["period"] = (dt.date.fromisoformat(start),
                                          dt.date.fromisoformat(end))
        except ValueError:
            warnings.append(f"period={params['period']!r}: expected START:END dates")
    for name in LIST_FILTERS:
        values = params.get_all(name)
        if values:
            st.session_state[f"_url_{name}"] = values
    for name in MIN_FILTERS:
        if name in params:
            try:
                st.session_state[_key(name)] = max(int(params[name]), 0)
            except ValueError:
                warnings.append(f"{name}={params[name]!r} is not a whole number")
    for name, key in page_keys.items():
        if name in params:
            st.session_state[f"_url_{key}"] = params[name]
    return warnings


def url_choice(key: str, options: list[str], default: str) -> None:
    """Set a page widget's value from the URL (if valid) before the widget is drawn."""
    _restore(key)
    wanted = st.session_state.pop(f"_url_{key}", None)
    if wanted is not None and wanted in options:
        st.session_state[key] = wanted
    if st.session_state.get(key) not in options:
        st.session_state[key] = default


def write_url(ctx: Context, scope: Scope, page_values: dict[str, object]) -> None:
    """The current view as query parameters (what a shared link reproduces)."""
    params = {}
    if ctx.plan is not None:
        params["plan"] = ctx.plan.name
    params["as_of"] = ctx.as_of.isoformat()
    params["period"] = f"{ctx.period.start.isoformat()}:{ctx.period.end.isoformat()}"
    for name, values in (("segment", scope.flt.segments), ("industry", scope.flt.industries),
                         ("product", scope.flt.products), ("rep", scope.reps),
                         ("territory", scope.territories), ("region", scope.regions)):
        if values:
            params[name] = list(values)
    for name in MIN_FILTERS:
        if getattr(scope, name):
            params[name] = str(getattr(scope, name))
    params.update({k: str(v) for k, v in page_values.items() if v is not None})
    if dict(st.query_params.to_dict()) != {k: (v[-1] if isinstance(v, list) else v)
                                          for k, v in params.items()}:
        st.query_params.from_dict(params)


# -- the filter widgets -------------------------------------------------------------------
@st.cache_data(show_spinner=False, max_entries=8)
def _options(db: str, version: str, plan_id: int | None, _cur) -> dict[str, list[str]]:
    """The values each filter offers, once per database, data version and plan."""
    def distinct(sql, params=None):
        return [r[0] for r in _cur.execute(sql, params or []).fetchall() if r[0] is not None]

    return {
        "segment": distinct("SELECT DISTINCT segment FROM accounts ORDER BY 1"),
        "industry": distinct("SELECT DISTINCT industry FROM accounts ORDER BY 1"),
        "product": distinct("SELECT DISTINCT product FROM sales ORDER BY 1"),
        "rep": distinct("SELECT DISTINCT rep_id FROM territories WHERE plan_id = ? "
                        "ORDER BY 1", [plan_id]),
        "territory": distinct("SELECT territory_id FROM territories WHERE plan_id = ? "
                              "ORDER BY 1", [plan_id]),
        "region": distinct("SELECT DISTINCT r.region FROM territories t JOIN reps r "
                           "USING (rep_id) WHERE t.plan_id = ? ORDER BY 1", [plan_id]),
    }


def filter_options(ctx: Context) -> dict[str, list[str]]:
    """Segments, industries, products, reps, territories and regions to choose from
    (cached: a page's rerun does not read the accounts again)."""
    plan_id = ctx.plan.plan_id if ctx.plan is not None else None
    return _options(ctx.db_key, ctx.data_version, plan_id, ctx.cur)


def scope_filters(ctx: Context) -> tuple[Scope, list[str]]:
    """Draw the shared filters; return the scope and warnings about URL values left out."""
    opts = filter_options(ctx)
    names = dict(ctx.cur.execute("SELECT rep_id, name FROM reps").fetchall())
    warnings = []
    labels = {"segment": "Segment", "industry": "Industry", "product": "Product",
              "rep": "Rep", "territory": "Territory", "region": "Region"}
    for name in (*LIST_FILTERS, *MIN_FILTERS):
        _restore(_key(name))
    for name in LIST_FILTERS:
        wanted = st.session_state.pop(f"_url_{name}", None)
        if wanted is not None:
            known = [v for v in wanted if v in opts[name]]
            unknown = [v for v in wanted if v not in opts[name]]
            if unknown:
                warnings.append(f"{name}: {', '.join(unknown)} not in the data, left out")
            st.session_state[_key(name)] = known
        current = st.session_state.get(_key(name)) or []
        st.session_state[_key(name)] = [v for v in current if v in opts[name]]
    active = sum(bool(st.session_state.get(_key(n))) for n in LIST_FILTERS)
    with st.expander(f"Filters ({active} active)" if active else "Filters", expanded=False):
        cols = st.columns(4)
        for i, name in enumerate(LIST_FILTERS):
            cols[i % 4].multiselect(
                labels[name], opts[name], key=_key(name),
                format_func=(lambda r: f"{names.get(r, r)} ({r})") if name == "rep" else str,
                placeholder="All")
        cols[2].number_input("Minimum accounts per area", min_value=0, step=1,
                             key=_key("min_accounts"),
                             help="Areas with fewer accounts are left out of rankings")
        cols[3].number_input("Minimum establishments per area", min_value=0, step=100,
                             key=_key("min_establishments"),
                             help="Areas with a smaller market (business establishments, "
                             "2018) are left out of rankings")
    for name in (*LIST_FILTERS, *MIN_FILTERS):
        _remember(_key(name))

    def pick(n):
        return tuple(st.session_state.get(_key(n)) or ())

    scope = Scope(AccountFilter(pick("segment"), pick("industry"), pick("product")),
                  pick("rep"), pick("territory"), pick("region"),
                  int(st.session_state.get(_key("min_accounts")) or 0),
                  int(st.session_state.get(_key("min_establishments")) or 0))
    return scope, warnings


def explorer_head(title: str, page_keys: dict[str, str]) -> tuple[Context, Scope]:
    """The top of an explorer page: the URL read (first run), the sidebar, the title, the
    shared filters, and a warning for each part of the link that could not be used. Stops
    the page when there is no plan yet."""
    warnings = load_url(page_keys)
    ctx = sidebar_context()
    st.title(title)
    if ctx.plan is None:
        st.warning("There is no territory plan yet. Import one on the **Plans** page.")
        st.stop()
    scope, more = scope_filters(ctx)
    for w in warnings + more:
        st.warning(f"From the link: {literal(w)}")
    return ctx, scope
