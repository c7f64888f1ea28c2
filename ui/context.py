"""The sidebar context every page shares: the database, the plan, the period."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property

import duckdb
import streamlit as st

from analytics import access, demo, handover, plans, users
from analytics.errors import InputError
from analytics.period import Period
from analytics.settings import Settings, load_settings
from analytics.store import Store, default_db_path
from ui.text import literal


@st.cache_resource(show_spinner="Opening the database...")
def get_store(path: str) -> Store:
    """One Store per database file for the whole server; pages take a cursor per run.

    A new, empty database is filled with the embedded default dataset, so the app opens on
    real data with no set-up. Imports from the command line while the app holds the file
    are handed to it (analytics/handover.py).
    """
    store = Store(path)
    if not store.attached_from and not any(store.counts().values()):
        # the server filling its own empty file, not a person's import: whoever opened the
        # first page (before any sign-in, or a viewer) must not stop the quick start
        with users.acting_as(users.local_admin()):
            demo.build_demo(store)
    handover.Watcher(store).start()  # `load` from a terminal runs here while the app runs
    return store


def open_store() -> Store:
    """The server's database, or the page stops with what to do when it cannot be opened
    (another version's file, the Spark output it reads gone)."""
    try:
        return get_store(str(default_db_path()))
    except InputError as exc:
        st.error(literal(exc))
        st.stop()


@dataclass
class Context:
    store: Store
    cur: duckdb.DuckDBPyConnection
    plan: plans.Plan | None
    period: Period
    as_of: dt.date
    settings: Settings

    @cached_property
    def db_key(self) -> str:
        """The database and what the acting person may read of it: the first part of every
        cache key over data, so a rep never gets a result cached for a manager (once per
        run, like the cursor whose scope it names)."""
        return f"{self.store.path}|{access.scope_key(users.current(), self.cur)}"

    @property
    def data_version(self) -> str:
        """Changes with every import: part of every cache key over the data."""
        return self.store.get_meta("data_version") or ""


def _default_as_of(store: Store) -> dt.date:
    fixed = store.get_meta("as_of")
    return dt.date.fromisoformat(fixed) if fixed else dt.date.today()


def sidebar_context() -> Context:
    """Draw the shared sidebar (dataset, plan, period) and return what the pages need."""
    store = open_store()
    cur = store.cursor()
    version = store.get_meta("data_version")
    if st.session_state.get("_data_version", version) != version:
        st.toast("New data was imported: every page shows it now.")
    st.session_state["_data_version"] = version
    plan_list = plans.list_plans(cur)
    with st.sidebar:
        st.caption(literal(store.get_meta("dataset") or "Your data"))
        plan = None
        if len(plan_list):
            names = plan_list["name"].tolist()
            labels = {
                r.name: f"{r.name} ({r.state})" for r in plan_list.itertuples(index=False)
            }
            if st.session_state.get("_next_plan") in names:  # a plan just made elsewhere
                st.session_state["plan_name"] = st.session_state.pop("_next_plan")
            if st.session_state.get("plan_name") not in names:
                st.session_state["plan_name"] = names[0]
            chosen = st.selectbox(
                "Plan", names, key="plan_name", format_func=lambda n: labels[n]
            )
            plan = plans.get_plan(cur, chosen)
        else:
            st.info("No territory plan yet: import one on the Plans page.")
        if "as_of" not in st.session_state:  # a link or an earlier page may have set it
            st.session_state["as_of"] = _default_as_of(store)
        as_of = st.date_input("As of", key="as_of")
        year = Period.year(as_of.year)
        if "period" not in st.session_state:
            st.session_state["period"] = (year.start, year.end)
        picked = st.date_input(
            "Period", key="period",
            help="Whole days, both ends included. Default: the calendar year of the as-of "
            "date.",
        )
        if isinstance(picked, tuple) and len(picked) == 2:
            period = Period(picked[0], picked[1])
        else:  # half-picked range: keep the year until the end date is chosen
            period = year
        st.caption(f"Database: `{store.path}`")
    return Context(store, cur, plan, period, as_of, load_settings(store))
