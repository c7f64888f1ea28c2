"""Make a page script work when Streamlit runs it directly instead of through app.py.

Streamlit 1.67 decides at server start whether an app uses the legacy `pages/` directory
mode: the folder exists here, so until app.py has called `st.navigation` once, the first
request of a fresh server is run in that mode. A shared link such as
`/performance?metric=won` opened right after a restart would then run
`pages/performance.py` alone: no page config, no navigation, the wrong sidebar. Each page
calls `run_through_app()` first; in that one case it runs app.py instead (which calls
`st.navigation`, leaving legacy mode for good, and runs the requested page) and stops.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

APP = Path(__file__).resolve().parent.parent / "app.py"


def run_through_app() -> None:
    if not PagesManager.uses_pages_directory:
        return  # the normal case: app.py's st.navigation is running this page
    runpy.run_path(str(APP), run_name="__main__")
    st.stop()
