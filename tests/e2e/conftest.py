"""A real Streamlit server on a free local port, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(db: Path, *, port: int | None = None, extra: tuple[str, ...] = ()):
    """The app as `make run` serves it (`python -m ui.serve`: `streamlit run app.py` and
    the warm-up) on `db` on a free local port (or `port`), with `extra` command line
    options; its URL while the block runs."""
    port = port or free_port()
    env = {**os.environ, "TERRITORY_ATLAS_DB": str(db)}
    log = open(db.parent / "streamlit.log", "w")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [sys.executable, "-m", "ui.serve", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", *extra],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        raise RuntimeError("streamlit did not start: " + (db.parent / "streamlit.log")
                           .read_text())
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def app_url(demo_db, tmp_path_factory):
    """Start `streamlit run app.py` on the demo database; stop it after the session."""
    db = tmp_path_factory.mktemp("e2e-run") / "atlas.duckdb"
    shutil.copy(demo_db, db)
    with serving(db) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("Debian's chromium is not installed: apt-get install chromium")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                  accept_downloads=True)
    pg = context.new_page()
    yield pg
    context.close()


def wait_for_app(page, timeout: float = 90_000) -> None:
    """Streamlit's own e2e tests wait for this: the script has finished its run."""
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout
    )


@pytest.fixture(scope="session")
def counties(demo_db):
    """The shipped counties with their centre, area and demo accounts (the tests' oracle)."""
    from tests.e2e.atlas_page import county_frame

    return county_frame(demo_db)
