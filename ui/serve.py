"""`python -m ui.serve [streamlit options]`: `streamlit run app.py`, with the app's modules
imported while a fresh server waits for its first visitor (what `make run` starts).

A fresh server imports pandas, DuckDB, shapely, folium and the engine when the first page is
opened: 0.7 s on the 2-core reference machine before anything is drawn. Here a thread
imports them as soon as Streamlit's runtime exists, so the first page finds them imported
(or waits for the one being imported). Only libraries and the engine (which never imports
Streamlit): the app's own `ui` modules (0.08 s) are left to the page, as streamlit-folium
registers its component only when imported during a page run.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
import time
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app.py"
APP_MODULES = (  # what app.py and the map page import, but Streamlit and the ui modules
    "numpy", "pandas", "pyarrow", "duckdb", "shapely", "h3", "branca", "folium",
    "folium.plugins", "analytics.users", "analytics.access", "analytics.catalog",
    "analytics.edits", "analytics.metrics", "analytics.plans", "analytics.exports.cells",
    "analytics.geography", "analytics.unit_index", "analytics.adjacency", "analytics.palette",
    "analytics.balance", "analytics.demo", "analytics.handover",
)


def import_when_ready(timeout: float = 60.0) -> None:
    """Wait for Streamlit's runtime, then import APP_MODULES."""
    from streamlit.runtime import Runtime

    deadline = time.monotonic() + timeout
    while not Runtime.exists():
        if time.monotonic() > deadline:
            return
        time.sleep(0.01)
    for name in APP_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # the page imports it again and shows the error
            logging.getLogger(__name__).exception("warm-up: importing %s failed", name)
            break


def main(argv: list[str]) -> int:
    threading.Thread(target=import_when_ready, name="atlas-warm-up", daemon=True).start()
    sys.argv = ["streamlit", "run", str(APP), *argv]
    from streamlit.web import cli

    return cli.main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
