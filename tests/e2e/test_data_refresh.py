"""A data refresh while managers use the app: `load` in a terminal while the real server
holds the database; the open page shows the new data at its next run, without a restart."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from tests.conftest import write_csv
from tests.e2e.conftest import ROOT, serving, wait_for_app

pytestmark = pytest.mark.e2e


def test_load_from_a_terminal_reaches_the_open_app(page, demo_db, tmp_path):
    db = tmp_path / "atlas.duckdb"
    shutil.copy(demo_db, db)
    with serving(db) as url:
        page.goto(f"{url}/data")
        wait_for_app(page)
        caption = page.get_by_text(re.compile(r"^The database holds"))
        expect(caption).to_contain_text("20,564 accounts")  # the app now holds the file

        new = write_csv(tmp_path / "new.csv", [
            ["account_id", "name", "lat", "lon", "postal_code", "country", "potential"],
            ["NEW1", "Fresh Clinic", 45.52, -122.68, "97201", "US", 1000],
            ["NEW2", "Second Clinic", 45.50, -122.60, "97202", "US", 2500],
        ])
        done = subprocess.run(
            [sys.executable, "-m", "analytics", "load", "--db", str(db), "--accounts",
             str(new)], capture_output=True, text=True, cwd=ROOT, timeout=300,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        assert done.returncode == 0, done.stderr
        assert "handing the import to it" in done.stderr
        assert "2 added" in done.stdout

        page.reload()  # the manager's next interaction: a new run of the same server
        wait_for_app(page)
        expect(page.get_by_text(re.compile(r"^The database holds"))).to_contain_text(
            "20,566 accounts")
