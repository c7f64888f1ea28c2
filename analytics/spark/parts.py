"""The import's rules on one part of a file: what each Spark partition runs.

Every rule that looks at one row alone (parsing a value, coordinates, placement by postal
code, every unit column, a deal's stage) runs here through `analytics.ingest`'s own SQL and
Python on an in-memory DuckDB, so the job and `load` cannot drift apart. What needs the
whole file (an id repeated on two rows, a deal's account) is the job's, in Spark.
No pyspark here: these functions take and return Arrow tables.
"""

from __future__ import annotations

from functools import cache

import duckdb
import pyarrow as pa

from analytics import ingest
from analytics.schema import ACCOUNTS, DDL, SALES

REJECTION = pa.struct([("col", pa.string()), ("value", pa.string()),
                       ("reason", pa.string())])
POSTAL_REASON_PREFIX = "no coordinates"
"""The placement rejections: `load` gives them only to rows not rejected already (a
repeated id among them), so the job drops them where it finds a repeat."""


@cache
def table_schema(table: str) -> pa.Schema:
    """The Arrow schema of one of the database's tables, from its DDL (the one home);
    worked out once per process (every partition's batch asks for it)."""
    con = duckdb.connect()
    try:
        con.execute(DDL)
        return con.sql(f"SELECT * FROM {table} LIMIT 0").to_arrow_table().schema
    finally:
        con.close()


def _part_schema(fields: list[pa.Field]) -> pa.Schema:
    return pa.schema([pa.field("__row", pa.int64()), *fields,
                      pa.field("rejections", pa.list_(REJECTION))])


def accounts_part_schema() -> pa.Schema:
    """Each input row: its number, the account as stored (empty when rejected here),
    whether it had the empty geocode 0,0, and its rejections."""
    fields = [f for f in table_schema("accounts") if f.name != "account_key"]
    return _part_schema([*fields, pa.field("zero_coords", pa.bool_())])


DEAL_COLUMNS = [f.name for f in table_schema("sales") if f.name != "account_key"]


def sales_part_schema() -> pa.Schema:
    """Each input row: its number, the deal as stored but its account key (ids kept even
    when rejected, for the job's checks across rows) and its rejections."""
    fields = [f for f in table_schema("sales") if f.name != "account_key"]
    return _part_schema(fields)


def _connect(batch: pa.Table, view: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.register(f"{view}_arrow", batch)
    con.execute(f"CREATE TEMP VIEW {view} AS SELECT * FROM {view}_arrow")
    return con


def date_counts(batch: pa.Table, columns: list[str]) -> list[tuple[str, int, int]]:
    """(column, month-first only, day-first only) of text date columns in this part."""
    con = _connect(batch, "raw")
    try:
        return [(c, *ingest.date_format_counts(con, "raw", c)) for c in columns]
    finally:
        con.close()


def _rejections_by_row(con) -> None:
    con.execute("""CREATE TEMP TABLE rej_rows AS SELECT __row,
        list({'col': col, 'value': value, 'reason': reason} ORDER BY col, reason)
          AS rejections
        FROM rej GROUP BY __row""")


def accounts_part(batch: pa.Table, chosen: dict[str, str],
                  date_formats: dict[str, str]) -> pa.Table:
    """Stage, check, place and give every unit column to one part of an accounts file."""
    con = _connect(batch, "raw_accounts")
    try:
        ingest.stage_table(con, "raw_accounts", ACCOUNTS, chosen, date_formats=date_formats,
                           whole_file=False)
        con.execute("CREATE TEMP TABLE zero AS SELECT __row FROM t_accounts "
                    "WHERE lat = 0 AND lon = 0")
        ingest.accounts_rules(con, chosen, ingest.TableReport("accounts", "part"))
        con.register("final_arrow", ingest.accounts_final(con, keep_row=True))
        _rejections_by_row(con)
        schema = accounts_part_schema()
        names = [f.name for f in schema if f.name not in ("__row", "account_id",
                                                            "zero_coords", "rejections")]
        cols = ", ".join(f"f.{n}" for n in names)
        out = con.sql(f"""SELECT t.__row, t.account_id, {cols},
                (t.__row IN (SELECT __row FROM zero)) AS zero_coords,
                coalesce(r.rejections, []) AS rejections
            FROM t_accounts t LEFT JOIN final_arrow f USING (__row)
            LEFT JOIN rej_rows r USING (__row) ORDER BY t.__row""").to_arrow_table()
        return out.select(schema.names).cast(schema)
    finally:
        con.close()


def sales_part(batch: pa.Table, chosen: dict[str, str],
               date_formats: dict[str, str]) -> pa.Table:
    """Stage and check one part of a deals file, each deal with its stage class."""
    con = _connect(batch, "raw_sales")
    try:
        ingest.stage_table(con, "raw_sales", SALES, chosen,
                           date_formats=date_formats, whole_file=False)
        ingest.sales_stage_view(con, chosen, ingest.TableReport("sales", "part"))
        rules = ingest.sales_row_rules(chosen)
        ingest.sales_row_rejections(con, chosen, set(rules))
        _rejections_by_row(con)
        schema = sales_part_schema()
        cols = ", ".join("s.stage_norm AS stage" if n == "stage" else f"s.{n}"
                         for n in DEAL_COLUMNS)
        out = con.sql(f"""SELECT s.__row, {cols}, coalesce(r.rejections, []) AS rejections
            FROM s_sales s LEFT JOIN rej_rows r USING (__row)
            ORDER BY s.__row""").to_arrow_table()
        return out.select(schema.names).cast(schema)
    finally:
        con.close()
