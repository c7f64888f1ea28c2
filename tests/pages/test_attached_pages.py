"""The app on a database attached to the Spark job's output (tests/conftest.py's
`spark_world`): every page opens and shows what the same files give through `load`."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ui.text import literal

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["pages/map.py", "pages/performance.py", "pages/coverage.py", "pages/plans.py",
         "pages/review.py", "pages/routes.py", "pages/settings.py", "pages/data.py"]


def _app(db: Path, tmp_path: Path, monkeypatch, name: str) -> AppTest:
    copy = tmp_path / f"{name}.duckdb"
    shutil.copy(db, copy)
    monkeypatch.setenv("TERRITORY_ATLAS_DB", str(copy))
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)


def _seen(app: AppTest) -> dict:
    """What a manager reads on the page: its metrics and tables (but when each database
    was made: the plan's history is timed)."""
    return {"metrics": {m.label: m.value for m in app.metric},
            "tables": [t.value.reset_index(drop=True).select_dtypes(exclude="datetime")
                       for t in app.dataframe]}


@pytest.mark.parametrize("page", PAGES)
def test_every_page_shows_on_the_attached_data_what_load_gives(spark_world, tmp_path,
                                                                monkeypatch, page):
    seen = []
    for name in ("loaded", "attached"):
        app = _app(spark_world[name], tmp_path, monkeypatch, name)
        app.run()
        if page != "pages/map.py":
            app.switch_page(page).run()
        assert not app.exception, (name, app.exception)
        seen.append(_seen(app))
    loaded, attached = seen
    if page == "pages/data.py":  # the attached one says where its data is instead
        return
    assert attached["metrics"] == loaded["metrics"]
    assert len(attached["tables"]) == len(loaded["tables"])
    for a, b in zip(loaded["tables"], attached["tables"], strict=True):
        assert a.equals(b) or a.round(6).equals(b.round(6))


def test_the_data_page_says_where_the_data_is_and_shows_the_jobs_rejections(
        spark_world, tmp_path, monkeypatch):
    app = _app(spark_world["attached"], tmp_path, monkeypatch, "attached")
    app.run()
    app.switch_page("pages/data.py").run()
    assert not app.exception
    info = " ".join(i.value for i in app.info)
    assert literal(str(spark_world["out"])) in info     # shown as text
    assert "run the job on them and attach its output again" in info
    table = app.dataframe[0].value      # the first table on the page
    assert len(table) == len(spark_world["report"].rejections)
    assert set(table["reason"]) == {r.reason for r in spark_world["report"].rejections}
    # only the stage history can be imported here; no reload of the default dataset
    labels = [u.label for u in app.get("file_uploader")]
    assert labels[0] == "Stage history (optional)"
    assert "Accounts" not in labels
    assert not [b for b in app.button if b.label.startswith("Reload the default dataset")]


def test_a_filter_and_a_period_on_the_attached_data(spark_world, tmp_path, monkeypatch):
    """The explorer's segment filter and another period: the same numbers as `load`'s."""
    seen = []
    for name in ("loaded", "attached"):
        app = _app(spark_world[name], tmp_path, monkeypatch, name)
        app.run()
        app.switch_page("pages/performance.py").run()
        app.sidebar.date_input(key="period").set_value(
            (dt.date(2025, 1, 1), dt.date(2025, 12, 31))).run()
        assert not app.exception
        seen.append(_seen(app))
    assert seen[0]["metrics"] == seen[1]["metrics"]
    for a, b in zip(seen[0]["tables"], seen[1]["tables"], strict=True):
        assert a.equals(b) or a.round(6).equals(b.round(6))


def test_a_moved_job_output_is_said_plainly(spark_world, tmp_path, monkeypatch):
    """The database reads its deals from a folder that is gone: the page says which and
    how to attach again, instead of a file error."""
    out = tmp_path / "out"
    shutil.copytree(spark_world["out"], out)
    db = tmp_path / "moved.duckdb"
    from analytics import attach
    from analytics.store import Store

    with Store(db) as s:
        attach.attach(s, out)
    shutil.rmtree(out)
    monkeypatch.setenv("TERRITORY_ATLAS_DB", str(db))
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    app.run()
    assert not app.exception
    text = " ".join(e.value for e in app.error)
    assert literal(str(out)) in text
    assert "attach a new output" in text
