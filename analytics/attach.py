"""A Territory Atlas database on the Spark job's output (`analytics.spark.job`).

The accounts (with every unit column) and the reps are stored, as an import stores them;
the deals stay in the job's Parquet files and the database's `sales` is a view reading
them in place, so every page and command works unchanged without copying the deals.
Plans, edits, settings and users live in the database as always, and survive a new
attach (the job run again on newer files).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import duckdb
import pandas as pd

from analytics.errors import InputError
from analytics.ingest import REPORT_COLUMNS
from analytics.spark import output
from analytics.spark.parts import table_schema

ATTACHED_FROM = "attached_from"
"""Meta key: the job output folder whose deals the database reads."""
DEALS_VARIABLE = "atlas_deals"
"""The DuckDB variable the `sales` view reads its files from (set on every cursor: a
path is never written into SQL text)."""
DEALS_VIEW = ("CREATE OR REPLACE VIEW sales AS SELECT * FROM "
              f"read_parquet(getvariable('{DEALS_VARIABLE}'))")


def deals_glob(folder: str | Path) -> str:
    return str(Path(folder) / "sales" / "*.parquet")


def prepare_cursor(cur: duckdb.DuckDBPyConnection, folder: str | None) -> None:
    """Point `cur`'s `sales` view at the attached deals (nothing when not attached)."""
    if folder:
        cur.execute(f"SET VARIABLE {DEALS_VARIABLE} = ?", [deals_glob(folder)])


def check_output(folder: Path) -> dict:
    """The manifest of a finished output whose tables have the columns this version
    stores; `InputError` otherwise."""
    manifest = output.read_manifest(folder)
    con = duckdb.connect()
    try:
        for table in ("accounts", "sales", "reps"):
            want = [(f.name, str(f.type)) for f in table_schema(table)]
            got = [(f.name, str(f.type)) for f in con.sql(
                "SELECT * FROM read_parquet(?) LIMIT 0",
                params=[str(folder / table / "*.parquet")]).to_arrow_table().schema]
            if manifest["tables"][table]["files"] and got != want:
                raise InputError(
                    f"the {table!r} files do not have the columns this version stores "
                    f"(found {', '.join(n for n, _ in got)}): run this version's job again",
                    file=str(folder))
    finally:
        con.close()
    return manifest


def attach(store, folder: str | Path) -> dict:
    """Store the output's accounts and reps, point `sales` at its deals, all in one
    transaction (a refused or failed attach leaves the database as it was). Refused on a
    database holding imported data: attach into a new file. Returns what was attached."""
    from analytics import users

    users.require("import data")
    started = time.perf_counter()
    folder = Path(folder).resolve()
    manifest = check_output(folder)
    cur0 = store.unscoped_cursor()
    kind = cur0.execute("SELECT table_type FROM information_schema.tables "
                        "WHERE table_schema = 'main' AND table_name = 'sales'").fetchone()[0]
    held = cur0.execute("SELECT count(*) FROM accounts").fetchone()[0]
    if kind != "VIEW" and held:
        raise InputError(
            f"the database holds {held:,} imported accounts: attach the job's output into "
            "a new database file (--db NEW.duckdb), so nothing imported is replaced",
            file=str(store.path))
    with store.transaction() as cur:
        prepare_cursor(cur, str(folder))
        if kind != "VIEW":
            cur.execute("DROP TABLE sales")
        cur.execute(DEALS_VIEW)
        for table in ("accounts", "reps"):
            cur.execute(f"DELETE FROM {table}")
            cur.execute(f"INSERT INTO {table} BY NAME SELECT * FROM read_parquet(?)",
                        [str(folder / table / "*.parquet")])
        for table in ("stage_history", "deal_stages"):
            cur.execute(f"DELETE FROM {table}")
        cur.execute("DELETE FROM account_overrides WHERE account_id NOT IN "
                    "(SELECT account_id FROM accounts)")
        counts = {t: cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("accounts", "sales", "reps")}
        for table, n in counts.items():
            if n != manifest["tables"][table]["rows"]:
                raise InputError(
                    f"{table}: {n:,} rows read, the manifest says "
                    f"{manifest['tables'][table]['rows']:,}: run the job again",
                    file=str(folder))
        store.set_meta(ATTACHED_FROM, str(folder), cur)
        store.set_meta("data_version", uuid.uuid4().hex, cur)
    store.attached_from = str(folder)
    return {"folder": str(folder), **counts,
            "rejected": manifest["tables"]["rejected"]["rows"],
            "written_at": manifest["written_at"],
            "seconds": round(time.perf_counter() - started, 2)}


def rejected_frame(folder: str | Path) -> pd.DataFrame:
    """The job's rejection report, as an import's (`ingest.REPORT_COLUMNS`)."""
    return pd.DataFrame(rejected_rows(folder), columns=REPORT_COLUMNS)


def rejected_rows(folder: str | Path) -> list[tuple]:
    """The rows the job rejected: (file, row, column, value, reason), in file order."""
    con = duckdb.connect()
    try:
        return con.execute(
            'SELECT file, "row", "column", value, reason FROM read_parquet(?) '
            'ORDER BY file, "row", "column"',
            [str(Path(folder) / "rejected" / "*.parquet")]).fetchall()
    finally:
        con.close()
