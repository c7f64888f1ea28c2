"""The Spark job's output folder: its tables and the manifest that says it is finished.

The job writes each table as a folder of Parquet files, then `atlas_output.json` last,
naming every file with its size and every table with its rows. A folder without the
manifest, or whose files differ from it, is a job still running or stopped half-way:
`analytics.attach` refuses it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from analytics.errors import InputError
from analytics.schema import SCHEMA_VERSION

MANIFEST = "atlas_output.json"
FORMAT = "territory-atlas-spark-output"
TABLES = ("accounts", "sales", "reps", "rejected")
"""Folders of Parquet files: the accounts with their units and keys, the valid deals with
their account keys, the reps, and the rejected rows (file, row, column, value, reason)."""


def parquet_files(folder: Path) -> list[Path]:
    """The data files of one table folder, in name order (Spark's _SUCCESS and .crc
    files are not data)."""
    return sorted(p for p in folder.glob("*.parquet") if p.is_file())


def write_manifest(out: Path, rows: dict[str, int], summary: dict) -> dict:
    """Name every file of every table with its size, then write the manifest (last)."""
    manifest = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "written_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "tables": {
            t: {"rows": int(rows[t]),
                "files": {p.name: p.stat().st_size for p in parquet_files(out / t)}}
            for t in TABLES
        },
        "summary": summary,
    }
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(out / MANIFEST)  # atomic: a reader sees the whole manifest or none
    return manifest


def read_manifest(out: Path) -> dict:
    """The manifest of a finished output, checked against the files; `InputError` (with
    what to do) for a missing folder, another version's output or a half-written one."""
    label = str(out)
    if not out.exists():
        raise InputError("no such folder: give the folder the Spark job wrote (its --out)",
                         file=label)
    if not out.is_dir():
        raise InputError("is a file, not the folder the Spark job wrote", file=label)
    path = out / MANIFEST
    if not path.is_file():
        raise InputError(
            f"no {MANIFEST} in this folder: it is not a finished Spark job output (the job "
            "writes it last, so a job still running or stopped half-way has none). Run the "
            "job again, or wait for it to finish", file=label)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{MANIFEST} cannot be read ({exc}): run the job again",
                         file=label) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{MANIFEST} is not a Territory Atlas job manifest", file=label)
    version = manifest.get("schema_version")
    if version != SCHEMA_VERSION:
        raise InputError(
            f"the output was written for schema version {version}, and this Territory Atlas "
            f"is version {SCHEMA_VERSION}: run the job of this version "
            "(python -m analytics.spark.job) on the source files again", file=label)
    tables = manifest.get("tables") or {}
    for table in TABLES:
        listed = (tables.get(table) or {}).get("files")
        if not isinstance(listed, dict):
            raise InputError(f"{MANIFEST} lists no {table!r} table: run the job again",
                             file=label)
        found = {p.name: p.stat().st_size for p in parquet_files(out / table)}
        if found != listed:
            missing = sorted(set(listed) - set(found))
            changed = sorted(n for n in set(listed) & set(found) if listed[n] != found[n])
            extra = sorted(set(found) - set(listed))
            what = "; ".join(part for part in (
                f"missing {', '.join(missing[:3])}" if missing else "",
                f"changed since written {', '.join(changed[:3])}" if changed else "",
                f"not from this run {', '.join(extra[:3])}" if extra else "") if part)
            raise InputError(
                f"the {table!r} files differ from {MANIFEST} ({what}): the output is half "
                "written or was changed after the job; run the job again", file=label)
    return manifest
