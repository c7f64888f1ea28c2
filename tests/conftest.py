"""Shared fixtures for the engine tests: real DuckDB files in tmp_path, never mocks.

The demo database is built once per session (`demo_db`); tests that change a database work
on a copy of it (`demo_copy`) so the session one stays as built.
"""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from analytics import demo
from analytics.store import Store

REPO = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO / "data" / "demo"

ALL_TABLES = (
    "meta", "reps", "accounts", "sales", "plans", "territories", "plan_units",
    "account_overrides",
)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "atlas.duckdb"


@pytest.fixture
def store(db_path: Path):
    with Store(db_path) as s:
        yield s


def write_csv(
    path: Path,
    rows: list[list[object]],
    *,
    delimiter: str = ",",
    encoding: str = "utf-8",
) -> Path:
    """Write `rows` (the first one is the header) as a delimited text file."""
    with open(path, "w", newline="", encoding=encoding) as f:
        writer = csv.writer(f, delimiter=delimiter, lineterminator="\n")
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])
    return path


@pytest.fixture
def make_csv(tmp_path: Path) -> Callable[..., Path]:
    """`make_csv("name.csv", rows, delimiter=";", encoding="cp1252")` -> path in tmp_path."""

    def make(name: str, rows: list[list[object]], **kwargs) -> Path:
        return write_csv(tmp_path / name, rows, **kwargs)

    return make


def snapshot(store: Store) -> dict[str, list[tuple]]:
    """Every row of every table, sorted: equal snapshots mean an unchanged database."""
    cur = store.cursor()
    out = {}
    for table in ALL_TABLES:
        rows = cur.execute(f"SELECT * FROM {table}").fetchall()
        out[table] = sorted(rows, key=repr)
    return out


def scalar(store: Store, sql: str, params: list | None = None):
    return store.cursor().execute(sql, params or []).fetchone()[0]


def rows(store: Store, sql: str, params: list | None = None) -> list[tuple]:
    return store.cursor().execute(sql, params or []).fetchall()


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory) -> Path:
    """The demo dataset built once into a session database (closed; open it read-only)."""
    path = tmp_path_factory.mktemp("demo") / "demo.duckdb"
    with Store(path) as s:
        info = demo.build_demo(s)
    assert info["report"].clean
    return path


@pytest.fixture
def demo_copy(demo_db: Path, tmp_path: Path) -> Path:
    """A private copy of the demo database that a test may change."""
    dst = tmp_path / "demo-copy.duckdb"
    shutil.copyfile(demo_db, dst)
    return dst


@pytest.fixture(scope="session")
def demo_frames() -> dict[str, pd.DataFrame]:
    """The shipped demo files read with plain pandas (the independent oracle)."""
    return {
        name: pd.read_parquet(DEMO_DIR / f"{name}.parquet")
        for name in ("accounts", "sales", "reps")
    }
