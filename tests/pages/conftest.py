"""AppTest fixtures: every test gets its own copy of the session demo database."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app(demo_db, tmp_path, monkeypatch):
    db = tmp_path / "atlas.duckdb"
    shutil.copy(demo_db, db)
    monkeypatch.setenv("TERRITORY_ATLAS_DB", str(db))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.db_path = db
    return at


@pytest.fixture
def sent_specs(monkeypatch):
    """The map specs the pages hand to the browser, in order (the map page's `layers`: every
    layer its own picker offers)."""
    import ui.map

    specs: list[dict] = []
    real = ui.map.territory_map

    def spy(spec, *args, **kwargs):
        specs.append(spec)
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(ui.map, "territory_map", spy)
    return specs
