"""The DuckDB store: where the database file lives, its schema version, and transactions.

One `Store` wraps one DuckDB connection. Threads (Streamlit script runs) take their own
`cursor()`: a single connection shared by threads fails with "connection is busy".
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import duckdb

from analytics.errors import InputError
from analytics.schema import DDL, MIGRATIONS, SCHEMA_VERSION

DB_ENV = "TERRITORY_ATLAS_DB"
T = TypeVar("T")


def default_db_path() -> Path:
    """`$TERRITORY_ATLAS_DB`, else the user's data folder (never inside the checkout)."""
    if os.environ.get(DB_ENV):
        return Path(os.environ[DB_ENV]).expanduser()
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "territory-atlas" / "atlas.duckdb"


CONFLICT_RETRIES = 25


def is_conflict(exc: Exception) -> bool:
    """A write that lost a race with another session's (retrying it is safe): a row both
    changed, or the same new key (an edit's sequence number) both inserted."""
    text = str(exc)
    return "Conflict" in text or "Duplicate key" in text


class DatabaseBusy(InputError):
    """Another process holds the database file (DuckDB: one writer process at a time)."""


class Store:
    """A territory database. Use as a context manager or call `close()`."""

    def __init__(self, path: str | Path | None = None, *, read_only: bool = False,
                 check_attached: bool = True) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        if read_only and not self.path.exists():
            raise InputError(
                "no database here: build one with `python -m analytics demo --db PATH` or "
                "import files with `load`",
                file=str(self.path),
            )
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:
            raise DatabaseBusy(
                f"cannot open the database: {exc}. Is another Territory Atlas process "
                "using it? Close it or choose another file with --db.",
                file=str(self.path),
            ) from exc
        except duckdb.Error as exc:
            raise InputError(
                f"this file is not a Territory Atlas database ({exc})", file=str(self.path)
            ) from exc
        self.attached_from: str | None = None  # until read below: migrations, meta
        if not read_only:
            self._migrate()
        self._check_version()
        self.attached_from = self._attached_from(check_attached)

    # -- lifecycle ---------------------------------------------------------------------
    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor showing what the acting person may read (analytics/access.py: a rep's
        cursor holds only their own territories' rows)."""
        from analytics import access, users

        who = users.current()
        cur = self.unscoped_cursor()
        return access.scope_cursor(cur, who) if access.is_scoped(who) else cur

    def unscoped_cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor on the whole database, whoever acts (sign-in, meta, counts)."""
        from analytics.attach import prepare_cursor

        cur = self.con.cursor()
        prepare_cursor(cur, self.attached_from)
        return cur

    def _attached_from(self, check: bool) -> str | None:
        """The Spark job output whose deals this database reads (analytics/attach.py);
        with `check`, an `InputError` saying what to do when it is gone."""
        from analytics.attach import ATTACHED_FROM
        from analytics.spark import output

        folder = self.get_meta(ATTACHED_FROM) if self._version() is not None else None
        if folder and check:
            try:
                output.read_manifest(Path(folder))
            except InputError as exc:
                raise InputError(
                    f"this database reads its deals from the Spark job's output {folder}, "
                    f"which is not usable now ({exc.message}): put the folder back, or "
                    "attach a new output with `python -m analytics attach --db "
                    f"{self.path} --from FOLDER`", file=str(self.path)) from exc
        return folder

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """One unit of work: everything inside commits together or not at all."""
        cur = self.cursor()
        cur.begin()
        try:
            yield cur
        except BaseException:
            cur.rollback()
            raise
        else:
            cur.commit()
        finally:
            cur.close()

    def write(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """`work(cur)` in one transaction; run again from the start (up to
        `CONFLICT_RETRIES` times, after a short random pause) when another session's
        transaction committed a change to the same rows first.

        DuckDB's concurrency is optimistic: of two transactions updating the same row (two
        managers' edits both touch their plan's row), the later one fails with "Conflict"
        and nothing of it is kept. `work` must read what it needs through `cur`, so a rerun
        decides on the state the other session left.
        """
        for attempt in range(CONFLICT_RETRIES + 1):
            try:
                with self.transaction() as cur:
                    return work(cur)
            except (duckdb.TransactionException, duckdb.ConstraintException) as exc:
                if attempt == CONFLICT_RETRIES or not is_conflict(exc):
                    raise
                time.sleep(random.uniform(0.01, 0.04) * min(attempt + 1, 6))  # noqa: S311
        raise AssertionError("unreachable")

    # -- schema ------------------------------------------------------------------------
    def _migrate(self) -> None:
        version = self._version()
        if version is None:
            with self.transaction() as cur:
                cur.execute(DDL)
                cur.execute(
                    "INSERT INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
                )
            return
        if version < SCHEMA_VERSION:  # one transaction: all steps or none
            with self.transaction() as cur:
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    for sql in MIGRATIONS[step]:
                        sql(cur) if callable(sql) else cur.execute(sql)
                cur.execute(DDL)  # tables a migration added: CREATE ... IF NOT EXISTS
                cur.execute(
                    "UPDATE meta SET value = ? WHERE key = 'schema_version'",
                    [str(SCHEMA_VERSION)],
                )

    def _version(self) -> int | None:
        try:
            row = self.con.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
        except duckdb.CatalogException:
            return None
        return int(row[0]) if row else None

    def _check_version(self) -> None:
        version = self._version()
        if version is not None and version > SCHEMA_VERSION:
            raise InputError(
                f"the database has schema version {version}, newer than this Territory "
                f"Atlas ({SCHEMA_VERSION}); upgrade the app",
                file=str(self.path),
            )

    # -- settings kept with the data ---------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.unscoped_cursor().execute("SELECT value FROM meta WHERE key = ?",
                                             [key]).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str, cur: duckdb.DuckDBPyConnection | None = None):
        (cur or self.unscoped_cursor()).execute(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value]
        )

    def counts(self, cur: duckdb.DuckDBPyConnection | None = None) -> dict[str, int]:
        """Rows through `cur` (what its person may read), else in the whole database
        (whether it is empty, whoever asks)."""
        cur = cur or self.unscoped_cursor()
        return {
            t: cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("accounts", "sales", "reps", "plans")
        }
