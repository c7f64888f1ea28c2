"""The engine stands alone: no `analytics` module loads Streamlit or the app's `ui` package.

The modules are imported one after another in a fresh interpreter (this test process has
already loaded Streamlit for the page tests), and after each import the loaded modules are
checked, so an indirect import is caught and blamed on the first module that pulls it in.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import analytics

ROOT = Path(__file__).resolve().parents[1]
MODULES = sorted(m.name for m in pkgutil.walk_packages(analytics.__path__, "analytics.")
                 if m.name != "analytics.__main__")  # runs the command line when imported
CHECK = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
    bad = sorted(m for m in sys.modules
                 if m.split('.')[0] in ('ui', 'streamlit', 'streamlit_folium', 'pages'))
    if bad:
        print(name, 'loads', ' '.join(bad))
        break
"""


def test_every_module_is_listed():
    assert "analytics.metrics" in MODULES
    assert "analytics.catalog" in MODULES
    assert len(MODULES) >= 25


def test_no_engine_module_loads_the_ui():
    out = subprocess.run([sys.executable, "-c", CHECK, *MODULES], cwd=ROOT, text=True,
                         capture_output=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_the_check_catches_a_ui_import(tmp_path):
    """The check itself fails on a module that imports Streamlit (so it cannot pass idly)."""
    (tmp_path / "leaky.py").write_text("import streamlit\n")
    out = subprocess.run([sys.executable, "-c", CHECK, "leaky"], cwd=tmp_path, text=True,
                         capture_output=True, timeout=300,
                         env={"PYTHONPATH": str(tmp_path)})
    assert out.stdout.startswith("leaky loads streamlit")
