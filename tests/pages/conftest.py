"""AppTest fixtures: every test gets its own copy of a demo database built once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def demo_db_template(tmp_path_factory) -> Path:
    from analytics.demo import build_demo
    from analytics.store import Store

    path = tmp_path_factory.mktemp("pages") / "demo.duckdb"
    with Store(path) as store:
        build_demo(store)
    return path


@pytest.fixture
def app(demo_db_template, tmp_path, monkeypatch):
    db = tmp_path / "atlas.duckdb"
    shutil.copy(demo_db_template, db)
    monkeypatch.setenv("TERRITORY_ATLAS_DB", str(db))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.db_path = db
    return at
