"""A data refresh while the app runs (analytics/handover.py): `load` from another process
hands the import to the process holding the database, which runs it and answers.

The holder here is this test process with the database open for writing and a `Watcher`
running, exactly as the app holds it (`ui.context.get_store`); `load` runs as a real
separate process, which DuckDB's file lock keeps out of the file.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO, write_csv

from analytics import handover, users
from analytics.store import Store

HEADER = ["account_id", "name", "lat", "lon", "postal_code", "country", "potential"]


def load(db, *args, as_user=None):
    """`python -m analytics [--as USER] load --db DB ARGS` as a separate process."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    who = ["--as", as_user] if as_user else []
    return subprocess.run([sys.executable, "-m", "analytics", *who, "load", "--db", str(db),
                           *args], capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=300)


@pytest.fixture
def held(demo_copy):
    """The demo database held open for writing by this process, with the app's watcher."""
    store = Store(demo_copy)
    watcher = handover.Watcher(store, interval=0.1)
    watcher.start()
    yield store
    watcher.stop()
    watcher.join(timeout=5)
    store.close()


def count(store, sql, params=None):
    return store.con.cursor().execute(sql, params or []).fetchone()[0]


def test_load_while_the_app_holds_the_database_goes_through_the_app(held, tmp_path):
    before = count(held, "SELECT count(*) FROM accounts")
    version = held.get_meta("data_version")
    path = write_csv(tmp_path / "new.csv", [
        HEADER,
        ["NEW1", "Fresh Clinic", 45.52, -122.68, "97201", "US", 1000],
        ["NEW2", "Second Clinic", 45.50, -122.60, "97202", "US", 2500.5],
    ])
    done = load(held.path, "--accounts", str(path))
    assert done.returncode == 0, done.stderr
    assert "handing the import to it" in done.stderr
    assert "accounts: " in done.stdout
    assert "2 added" in done.stdout
    assert count(held, "SELECT count(*) FROM accounts") == before + 2
    assert count(held, "SELECT potential FROM accounts WHERE account_id = 'NEW2'") == 2500.5
    assert held.get_meta("data_version") != version  # the pages' caches move on
    assert not any(handover.requests_dir(held.path).iterdir())  # nothing left behind


def test_rejected_rows_come_back_by_file_row_and_column(held, tmp_path):
    before = count(held, "SELECT count(*) FROM accounts")
    path = write_csv(tmp_path / "bad.csv", [
        HEADER,
        ["OK1", "Good", 45.5, -122.6, "97201", "US", 10],
        ["BAD1", "Bad lat", 245.5, -122.6, "97201", "US", 10],
    ])
    report = tmp_path / "rejected.csv"
    done = load(held.path, "--accounts", str(path), "--report", str(report))
    assert done.returncode == 2
    assert f"{path}, row 3, column 'lat'" in done.stderr  # the user's own file name
    assert "BAD1" in report.read_text() or "245.5" in report.read_text()
    assert count(held, "SELECT count(*) FROM accounts") == before + 1


def test_all_or_nothing_refusal_stores_nothing(held, tmp_path):
    before = count(held, "SELECT count(*) FROM accounts")
    path = write_csv(tmp_path / "bad.csv", [
        HEADER, ["OK2", "Good", 45.5, -122.6, "97201", "US", 10],
        ["BAD2", "Bad", 45.5, -122.6, "97201", "US", "lots"],
    ])
    done = load(held.path, "--accounts", str(path), "--all-or-nothing")
    assert done.returncode == 2
    assert "column 'potential'" in done.stderr
    assert count(held, "SELECT count(*) FROM accounts") == before


def test_the_app_holds_the_roles_of_the_person_named(held, tmp_path):
    users.add_user(held, "ada", "admin", "correct horse battery")
    with users.acting_as(users.get_user(held.cursor(), "ada")):
        users.add_user(held, "vic", "viewer", "correct horse battery")
    before = count(held, "SELECT count(*) FROM accounts")
    path = write_csv(tmp_path / "new.csv", [
        HEADER, ["NEW3", "Viewer's", 45.5, -122.6, "97201", "US", 10]])
    done = load(held.path, "--accounts", str(path), as_user="vic")
    assert done.returncode == 2
    assert "vic is a viewer: only an admin can import data" in done.stderr
    assert count(held, "SELECT count(*) FROM accounts") == before
    done = load(held.path, "--accounts", str(path), as_user="ada")
    assert done.returncode == 0, done.stderr
    assert count(held, "SELECT count(*) FROM accounts") == before + 1


def test_without_an_app_to_take_it_load_gives_up_clearly(demo_copy, tmp_path):
    """The file is held by a process that does not watch for imports: `load` waits, then
    withdraws its request and says what to do; nothing is left behind."""
    store = Store(demo_copy)  # no watcher
    try:
        path = write_csv(tmp_path / "new.csv", [
            HEADER, ["NEW4", "X", 45.5, -122.6, "97201", "US", 10]])
        done = load(demo_copy, "--accounts", str(path), "--wait", "1")
        assert done.returncode == 2
        assert "no Territory Atlas app took the import within 1 s" in done.stderr
        assert "nothing was imported" in done.stderr
        assert not any(handover.requests_dir(demo_copy).iterdir())
        done = load(demo_copy, "--accounts", str(path), "--wait", "0")
        assert done.returncode == 2
        assert "cannot open the database" in done.stderr
        assert count(store, "SELECT count(*) FROM accounts WHERE account_id = 'NEW4'") == 0
    finally:
        store.close()


def test_a_missing_file_is_named_before_anything_is_handed_over(held, tmp_path):
    done = load(held.path, "--accounts", str(tmp_path / "nope.csv"))
    assert done.returncode == 2
    assert "nope.csv" in done.stderr
    assert "no such file" in done.stderr


def test_report_round_trips(tmp_path):
    """The report crosses processes as JSON and comes back equal."""
    from analytics.ingest import ImportReport, Rejection, TableReport

    report = ImportReport([TableReport("accounts", "a.csv", rows=3, inserted=1, updated=1,
                                       columns={"lat": "Latitude"},
                                       rejected=[Rejection("a.csv", 3, "lat", "x", "bad")],
                                       notes=["n"])], committed=True)
    back = handover.report_from_dict(handover.report_to_dict(report))
    assert back == report
    assert back.summary() == report.summary()
