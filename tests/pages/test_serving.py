"""The warning when the server listens beyond this machine (ui/serving.py)."""

from __future__ import annotations

import pytest
from streamlit import config

from ui.serving import is_local


@pytest.mark.parametrize(("address", "local"), [
    ("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True),
    ("127.0.0.2", True), ("", True), (None, True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.20", False), ("atlas.example.com", False),
])
def test_which_addresses_are_this_machine_only(address, local):
    assert is_local(address) is local


@pytest.mark.parametrize(("address", "warned"), [("127.0.0.1", False), ("0.0.0.0", True)])
def test_every_page_warns_when_served_beyond_this_machine(app, address, warned):
    before = config.get_option("server.address")
    config.set_option("server.address", address)
    try:
        app.run()
    finally:
        config.set_option("server.address", before)
    assert not app.exception
    texts = [w.value for w in app.warning]
    assert any("no users yet" in t for t in texts) is warned


def test_no_warning_once_everyone_signs_in(app):
    from analytics import users
    from analytics.store import Store

    with Store(app.db_path) as s:
        users.add_user(s, "ada", "admin", "correct horse battery")
    before = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    try:
        app.run()
    finally:
        config.set_option("server.address", before)
    assert not app.exception
    assert not [w for w in app.warning if "no users yet" in w.value]
    assert [t.key for t in app.text_input] == ["sign_in_name", "sign_in_password"]


def test_the_quick_start_serves_this_machine_only():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    assert 'address = "127.0.0.1"' in (root / ".streamlit" / "config.toml").read_text()
    make = (root / "Makefile").read_text()
    assert "ADDRESS ?= 127.0.0.1" in make
    assert "--server.address $(ADDRESS)" in make


def test_a_crash_shows_no_traceback_to_the_user():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    assert 'showErrorDetails = "none"' in (root / ".streamlit" / "config.toml").read_text()


def test_the_warm_up_imports_no_streamlit_component():
    """`make run`'s warm-up (ui/serve.py) imports libraries and the engine before the first
    page; a component module among them would be declared outside a page run, never
    registered, and the map would stay blank. A fresh interpreter tells."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    code = ("import importlib, sys\n"
            "from ui import serve\n"
            "for name in serve.APP_MODULES:\n"
            "    importlib.import_module(name)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('streamlit_folium', 'ui', 'pages', 'plotly')))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == "['ui', 'ui.serve']"
    make = (root / "Makefile").read_text()
    assert "$(PY) -m ui.serve --server.port" in make  # what `make run` starts
