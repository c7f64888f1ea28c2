"""The import on Apache Spark: `load`'s rules over files one machine cannot take.

    python -m analytics.spark.job --accounts A --sales S [--reps R] --out DIR
    spark-submit --py-files territory_atlas.zip analytics/spark/job.py ... (docs/scale-out.md)

Reads Parquet (a file or a folder of files; Delta when the `delta` format is installed),
matches columns as `load` does, runs the per-row rules in each partition through the
importer's own code (`analytics.spark.parts`), and the rules across rows (an id on two
rows, a deal's account) as Spark joins. Writes DIR/accounts, sales, reps, rejected as
Parquet and DIR/atlas_output.json last; `python -m analytics attach` opens it in the app.
Rows are numbered as `load` numbers them: the record number, counted across a folder's
files in name order.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import warnings
from pathlib import Path

import pyarrow as pa

from analytics import ingest
from analytics.columns import match_columns
from analytics.errors import InputError
from analytics.schema import ACCOUNTS, REPS, SALES, TableSpec
from analytics.spark import output, parts

REPO_ROOT = Path(__file__).resolve().parents[2]
DEAL_FILE_ROWS = 250_000
"""Deals per output file (Spark writes each as one row group): small enough that a
period's question skips the files of other dates."""


def session(master: str = "local[2]", memory: str | None = None, app: str = "territory-atlas",
            ui: bool = False):
    """A SparkSession; on `local[*]` its Python workers import this checkout. `ui` keeps
    Spark's web UI on (its REST API gives `stage_metrics`)."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # pyspark 4.3 warns it is not certified on pandas 3; the job passes Arrow, not pandas
    os.environ.setdefault("PYTHONWARNINGS",
                          "ignore:PySpark does not yet fully support pandas:FutureWarning")
    warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas")
    path = os.environ.get("PYTHONPATH", "")
    if str(REPO_ROOT) not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), path) if p)
    builder = (SparkSession.builder.appName(app)
               .config("spark.ui.enabled", "true" if ui else "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.sql.execution.arrow.maxRecordsPerBatch", "200000"))
    if master:
        builder = builder.master(master)
    if memory:
        builder = builder.config("spark.driver.memory", memory)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


# --------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------
def read_rows(spark, path: str, label: str):
    """The file (or folder) as a DataFrame with `__row`: its record number, counted
    across the files in name order, as `load` numbers a single file's records."""
    from pyspark.sql import functions as F

    p = Path(path)
    if "://" not in path and not p.exists():
        raise InputError("file not found", file=label)
    fmt = "delta" if (p / "_delta_log").is_dir() else "parquet"
    try:
        df = spark.read.format(fmt).load(path)
        df = df.select("*", F.col("_metadata.file_path").alias("__file"),
                       F.col("_metadata.row_index").alias("__index"))
        sizes = sorted(df.groupBy("__file").count().collect())
    except InputError:
        raise
    except Exception as exc:  # Spark's AnalysisException and friends
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"cannot read as {fmt}: {first}", file=label) from exc
    offsets, total = [], 0
    for row in sizes:
        offsets += [F.lit(row["__file"]), F.lit(total)]
        total += row["count"]
    start = F.create_map(*offsets)[F.col("__file")] if offsets else F.lit(0)
    return df.withColumn("__row", start + F.col("__index") + 1).drop("__file", "__index")


def _cols(names):
    """Columns by their exact names (a header may hold dots or spaces)."""
    from pyspark.sql import functions as F

    return [F.col("`" + n.replace("`", "``") + "`") for n in names]


def _chosen(df, spec: TableSpec, mapping: dict[str, str] | None, label: str):
    headers = [c for c in df.columns if c != "__row"]
    return match_columns(headers, spec, mapping, file=label)


def _date_formats(df, spec: TableSpec, chosen: dict[str, str]) -> dict[str, str]:
    """Each text date column's slash-date order, decided over the whole file as `load`
    decides it (counts per partition, summed)."""
    from pyspark.sql.types import StringType

    types = {f.name: f.dataType for f in df.schema.fields}
    wanted = {f.name: chosen[f.name] for f in spec.fields
              if f.kind == "date" and f.name in chosen
              and isinstance(types.get(chosen[f.name]), StringType)}
    if not wanted:
        return {}
    columns = sorted(set(wanted.values()))

    def counts(batches):
        for batch in batches:
            rows = parts.date_counts(pa.Table.from_batches([batch]), columns)
            yield pa.RecordBatch.from_pylist(
                [{"column": c, "mdy": m, "dmy": d} for c, m, d in rows],
                schema=pa.schema([("column", pa.string()), ("mdy", pa.int64()),
                                  ("dmy", pa.int64())]))

    sums = {c: [0, 0] for c in columns}
    for row in (df.select(*_cols(columns)).mapInArrow(counts,
                                                     "column string, mdy long, dmy long")
                .groupBy("column").sum("mdy", "dmy").collect()):
        sums[row[0]] = [row[1], row[2]]
    return {field: ingest.date_format_of(*sums[col]) for field, col in wanted.items()}


def _staged(df, chosen: dict[str, str], schema, part):
    """`part` (an `analytics.spark.parts` function) over every partition."""
    from pyspark.sql.pandas.types import from_arrow_schema

    columns = ["__row", *sorted(set(chosen.values()))]

    def run(batches):
        for batch in batches:
            yield from part(pa.Table.from_batches([batch])).to_batches()

    return df.select(*_cols(columns)).mapInArrow(run, from_arrow_schema(schema))


# --------------------------------------------------------------------------------------
# the rules across rows
# --------------------------------------------------------------------------------------
def _rows_text(col):
    from pyspark.sql import functions as F

    return F.array_join(F.transform(F.sort_array(col), lambda x: x.cast("string")), ", ")


def _repeated(df, key: str, header: str):
    """(rows whose id repeats, their rejections), with `load`'s text."""
    from pyspark.sql import functions as F

    keys = (df.where(F.col(key).isNotNull()).groupBy(key)
            .agg(F.count("*").alias("n"), F.collect_list("__row").alias("rows"))
            .where("n > 1"))
    rejected = (df.select("__row", key).join(keys, key)
                .select("__row", F.lit(header).alias("col"), F.col(key).alias("value"),
                        F.format_string(ingest.DUPLICATE_ID, F.lit(key),
                                        _rows_text(F.col("rows"))).alias("reason")))
    return keys.select(key), rejected


def _own_rejections(df):
    from pyspark.sql import functions as F

    return (df.select("__row", F.explode("rejections").alias("r"))
            .select("__row", "r.col", "r.value", "r.reason"))


def _numbered(df, key: str = "account_key"):
    """`key` = 1, 2, ... in `__row` order, as `load` numbers a first import's accounts:
    ranges of rows per partition, each counted, then numbered from its offset."""
    from pyspark import TaskContext
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    ranged = (df.repartitionByRange(max(1, df.rdd.getNumPartitions()), "__row")
              .sortWithinPartitions("__row"))
    ranged = ranged.persist()
    sizes = dict(ranged.groupBy(F.spark_partition_id().alias("p")).count().collect())
    offsets, total = {}, 0
    for p in sorted(sizes):
        offsets[p], total = total, total + sizes[p]
    schema = to_arrow_schema(ranged.schema)

    def number(batches):
        import numpy as np

        start = offsets.get(TaskContext.get().partitionId(), 0)
        for batch in batches:
            keys = np.arange(start + 1, start + 1 + batch.num_rows, dtype=np.int64)
            start += batch.num_rows
            yield batch.append_column(key, pa.array(keys))

    out_schema = schema.append(pa.field(key, pa.int64()))
    return ranged.mapInArrow(number, from_arrow_schema(out_schema)), ranged


# --------------------------------------------------------------------------------------
# the job
# --------------------------------------------------------------------------------------
def run(spark, *, accounts: str, sales: str, out: str, reps: str | None = None,
        mapping: dict[str, dict[str, str]] | None = None,
        labels: dict[str, str] | None = None) -> dict:
    """Validate, place and write; returns the manifest. Nothing is written into `out`
    until every input has been read and its columns matched."""
    from pyspark.sql import functions as F

    mapping, labels = mapping or {}, labels or {}
    if "://" in out:
        raise InputError("the output must be a folder on this machine or a mounted one "
                         "(the manifest is written there): copy it to object storage "
                         "after the job if needed (docs/scale-out.md)", file=out)
    started = time.perf_counter()
    label = {"accounts": labels.get("accounts", accounts),
             "sales": labels.get("sales", sales),
             "reps": labels.get("reps", reps)}
    raw_acc = read_rows(spark, accounts, label["accounts"])
    raw_sal = read_rows(spark, sales, label["sales"])
    raw_reps = read_rows(spark, reps, label["reps"]) if reps else None
    chosen_acc = _chosen(raw_acc, ACCOUNTS, mapping.get("accounts"), label["accounts"])
    chosen_sal = _chosen(raw_sal, SALES, mapping.get("sales"), label["sales"])
    chosen_reps = (_chosen(raw_reps, REPS, mapping.get("reps"), label["reps"])
                   if raw_reps is not None else None)
    out_path = Path(out)
    (out_path / output.MANIFEST).unlink(missing_ok=True)  # half-written until the end

    # accounts: each row staged, placed and given its units in its partition
    acc_formats = _date_formats(raw_acc, ACCOUNTS, chosen_acc)
    acc = _staged(raw_acc, chosen_acc, parts.accounts_part_schema(),
                  lambda t: parts.accounts_part(t, chosen_acc, acc_formats)).persist()
    acc_dup_keys, acc_dup = _repeated(acc, "account_id", chosen_acc["account_id"])
    own = _own_rejections(acc)
    placement = F.col("reason").startswith(parts.POSTAL_REASON_PREFIX)
    acc_rejected = (own.where(~placement)
                    .unionByName(own.where(placement).join(acc_dup, "__row", "left_anti"))
                    .unionByName(acc_dup))
    accepted = (acc.where(F.size("rejections") == 0)
                .join(acc_dup_keys, "account_id", "left_anti"))
    accepted, ranged = _numbered(accepted.drop("rejections"))
    account_columns = [f.name for f in parts.table_schema("accounts")]
    accepted = accepted.select("__row", "zero_coords", *account_columns).persist()
    n, top, zeros, by_postal = accepted.agg(
        F.count("*"), F.max("account_key"), F.count_if(F.col("zero_coords")),
        F.count_if(F.col("placed_by") == "postal_code")).first()
    if n and top != n:  # a range recomputed differently (a lost executor): never guess
        raise RuntimeError(f"account keys were numbered 1..{top} for {n} accounts: run the "
                           "job again")

    # deals: each row staged in its partition; repeats and unknown accounts across rows
    sal_formats = _date_formats(raw_sal, SALES, chosen_sal)
    sal = _staged(raw_sal, chosen_sal, parts.sales_part_schema(),
                  lambda t: parts.sales_part(t, chosen_sal, sal_formats)).persist()
    sal_dup_keys, sal_dup = _repeated(sal, "opportunity_id", chosen_sal["opportunity_id"])
    unknown = (sal.where(F.col("account_id").isNotNull())
               .join(accepted.select("account_id"), "account_id", "left_anti")
               .select("__row", F.lit(chosen_sal["account_id"]).alias("col"),
                       F.col("account_id").alias("value"),
                       F.format_string(ingest.UNKNOWN_ACCOUNT,
                                       F.col("account_id")).alias("reason")))
    sal_rejected = _own_rejections(sal).unionByName(sal_dup).unionByName(unknown)
    deal_columns = [f.name for f in parts.table_schema("sales")]
    deals = (sal.where(F.size("rejections") == 0)
             .join(sal_dup_keys, "opportunity_id", "left_anti")
             .join(accepted.select("account_id", "account_key"), "account_id")
             .select(*deal_columns))

    # reps: a small file, checked whole on the driver by the importer itself
    reps_table, reps_rejected = _reps(raw_reps, chosen_reps, label["reps"])

    rejected = (acc_rejected.withColumn("file", F.lit(label["accounts"]))
                .unionByName(sal_rejected.withColumn("file", F.lit(label["sales"]))))
    if reps_rejected:
        rejected = rejected.unionByName(spark.createDataFrame(
            reps_rejected, "__row long, col string, value string, reason string, file string"))
    rejected = rejected.select("file", F.col("__row").alias("row"),
                               F.col("col").alias("column"), "value", "reason")

    for table in output.TABLES:
        shutil.rmtree(out_path / table, ignore_errors=True)
    (accepted.drop("__row", "zero_coords").orderBy("account_key")
     .write.mode("overwrite").parquet(str(out_path / "accounts")))
    # in close-date order, in files of DEAL_FILE_ROWS: a period's question then reads only
    # the files and row groups of its dates (Parquet min/max)
    (deals.repartitionByRange(max(1, deals.rdd.getNumPartitions()), "close_date")
     .sortWithinPartitions("close_date", "opportunity_id")
     .write.mode("overwrite").option("maxRecordsPerFile", DEAL_FILE_ROWS)
     .parquet(str(out_path / "sales")))
    spark.createDataFrame(reps_table).coalesce(1).write.mode("overwrite").parquet(
        str(out_path / "reps"))
    rejected.orderBy("file", "row", "column").coalesce(1).write.mode("overwrite").parquet(
        str(out_path / "rejected"))

    rows = {"accounts": n, "reps": reps_table.num_rows}
    rows["sales"] = spark.read.parquet(str(out_path / "sales")).count()
    rows["rejected"] = spark.read.parquet(str(out_path / "rejected")).count()
    summary = {
        "inputs": label,
        "columns": {"accounts": chosen_acc, "sales": chosen_sal, "reps": chosen_reps},
        "read": {"accounts": acc.count(), "sales": sal.count(),
                 "reps": raw_reps.count() if raw_reps is not None else 0},
        "zero_coordinates": zeros,
        "placed_by_postal_code": by_postal,
        "seconds": round(time.perf_counter() - started, 1),
    }
    for df in (acc, sal, accepted, ranged):
        df.unpersist()
    return output.write_manifest(out_path, rows, summary)


def stage_metrics(spark) -> list[dict]:
    """Each finished stage's tasks, time, input, output and shuffle bytes, from Spark's
    REST API (the session needs `ui=True`): what a cluster would move, measured."""
    import urllib.request

    sc = spark.sparkContext
    url = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/stages?status=complete"
    with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 (our own UI)
        stages = json.loads(answer.read())
    keys = ("stageId", "name", "numTasks", "executorRunTime", "inputBytes", "inputRecords",
            "outputBytes", "outputRecords", "shuffleReadBytes", "shuffleWriteBytes",
            "shuffleWriteRecords", "memoryBytesSpilled", "diskBytesSpilled")
    return sorted(({k: st.get(k) for k in keys} for st in stages),
                  key=lambda st: st["stageId"])


def _reps(raw_reps, chosen, label):
    """The reps through `load`'s own staging on the driver: (stored rows, rejections)."""
    import duckdb

    schema = parts.table_schema("reps")
    if raw_reps is None:
        return schema.empty_table(), []
    con = duckdb.connect()
    try:
        con.register("raw_reps_arrow", raw_reps.toArrow())
        con.execute("CREATE TEMP VIEW raw_reps AS SELECT * FROM raw_reps_arrow")
        ingest.stage_table(con, "raw_reps", REPS, chosen)
        rejected = [(*r, label) for r in con.execute(
            "SELECT __row, col, value, reason FROM rej ORDER BY __row, col").fetchall()]
        table = con.sql("""SELECT rep_id, name, home_lat, home_lon,
                   coalesce(annual_quota, 0) AS annual_quota, capacity_hours, manager_id,
                   region
            FROM t_reps WHERE __row NOT IN (SELECT __row FROM rej)
            ORDER BY __row""").to_arrow_table()
        return table.cast(pa.schema(schema)), rejected
    finally:
        con.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m analytics.spark.job",
        description="Validate and place accounts and deals on Spark; write Parquet for "
                    "`python -m analytics attach`.")
    parser.add_argument("--accounts", required=True, help="accounts: Parquet file/folder")
    parser.add_argument("--sales", required=True, help="deals: Parquet file/folder")
    parser.add_argument("--reps", help="reps: Parquet file/folder")
    parser.add_argument("--out", required=True, help="the output folder (replaced)")
    parser.add_argument("--map", action="append", default=[], metavar="TABLE.FIELD=COL",
                        help="name the column of a field, as for `load`")
    parser.add_argument("--master", default=None,
                        help="Spark master (default: spark-submit's, else local[2])")
    parser.add_argument("--driver-memory", default=None)
    parser.add_argument("--stage-metrics", type=Path, metavar="JSON",
                        help="write each Spark stage's time and shuffle bytes here")
    args = parser.parse_args(argv)
    try:
        mapping = ingest.parse_mapping(args.map)
        master = args.master or (None if os.environ.get("SPARK_ENV_LOADED")
                                 or "spark.master" in os.environ.get("PYSPARK_SUBMIT_ARGS", "")
                                 else "local[2]")
        spark = session(master, args.driver_memory, ui=args.stage_metrics is not None)
        manifest = run(spark, accounts=args.accounts, sales=args.sales, reps=args.reps,
                       out=args.out, mapping=mapping)
        if args.stage_metrics is not None:
            args.stage_metrics.write_text(json.dumps(stage_metrics(spark), indent=1))
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({t: v["rows"] for t, v in manifest["tables"].items()}
                     | {"seconds": manifest["summary"]["seconds"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
