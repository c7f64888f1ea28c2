"""The export formats (names, file extensions, MIME types, writers) and the two entry points:
`export_plan` writes a file, `export_bytes` returns its content for a download button."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import duckdb

from analytics import file_names, plans
from analytics.errors import InputError
from analytics.exports.gis import write_geojson, write_gpkg
from analytics.exports.pack import PlanPack
from analytics.exports.pdf import write_pdf
from analytics.exports.png import write_png
from analytics.exports.pptx import write_pptx
from analytics.exports.salesforce import write_salesforce
from analytics.exports.xlsx import write_xlsx
from analytics.period import Period
from analytics.plans import Plan
from analytics.settings import Settings
from analytics.store import Store

FORMATS = ("pptx", "pdf", "xlsx", "geojson", "gpkg", "png", "salesforce")
EXTENSIONS = {"pptx": ".pptx", "pdf": ".pdf", "xlsx": ".xlsx", "geojson": ".geojson",
              "gpkg": ".gpkg", "png": ".png", "salesforce": "_salesforce.zip"}
MIME_TYPES = {
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
    "png": "image/png",
    "salesforce": "application/zip",
}
WRITERS = {"pptx": write_pptx, "pdf": write_pdf, "xlsx": write_xlsx,
           "geojson": write_geojson, "gpkg": write_gpkg, "png": write_png,
           "salesforce": write_salesforce}


def check_format(fmt: str) -> str:
    f = str(fmt or "").strip().lower()
    if f not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}: expected one of {', '.join(FORMATS)}")
    return f


def default_filename(plan_name: str, fmt: str) -> str:
    return file_names.stem(plan_name, "plan") + EXTENSIONS[check_format(fmt)]


def _plan_of(cur, plan: Plan | str | None) -> Plan:
    return plan if isinstance(plan, Plan) else plans.get_plan(cur, plan)


def export_plan(
    store_or_cur: Store | duckdb.DuckDBPyConnection,
    plan: Plan | str | None,
    fmt: str,
    out_path: str | Path,
    *,
    period: Period,
    as_of: dt.date,
    settings: Settings,
    baseline: Plan | str | None = None,
    pack: PlanPack | None = None,
) -> Path:
    """Write `plan` (a Plan, a name, or None for the active plan) as `fmt` to `out_path`
    (into it under the default file name when it is a folder) and return the path.

    The file appears whole or not at all (written beside it, then renamed). `pack` lets a
    caller writing several formats compute the metrics and shapes once.
    """
    fmt = check_format(fmt)
    cur = store_or_cur.cursor() if isinstance(store_or_cur, Store) else store_or_cur
    if pack is None:
        plan = _plan_of(cur, plan)
        base = _plan_of(cur, baseline) if baseline is not None else None
        pack = PlanPack(cur, plan, period=period, as_of=as_of, settings=settings,
                        baseline=base)
    out = Path(out_path)
    if out.is_dir():
        out = out / default_filename(pack.plan.name, fmt)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".export-") as tmp:
        part = Path(tmp) / ("part" + EXTENSIONS[fmt])  # the suffix GDAL's GPKG driver wants
        WRITERS[fmt](pack, part)
        part.replace(out)
    return out


def export_bytes(
    cur: duckdb.DuckDBPyConnection,
    plan: Plan | str | None,
    fmt: str,
    *,
    period: Period,
    as_of: dt.date,
    settings: Settings,
    baseline: Plan | str | None = None,
    pack: PlanPack | None = None,
) -> tuple[bytes, str, str]:
    """(file content, file name, MIME type), for a download button."""
    fmt = check_format(fmt)
    if pack is None:
        plan = _plan_of(cur, plan)
        base = _plan_of(cur, baseline) if baseline is not None else None
        pack = PlanPack(cur, plan, period=period, as_of=as_of, settings=settings,
                        baseline=base)
    name = default_filename(pack.plan.name, fmt)
    with tempfile.TemporaryDirectory(prefix="atlas-export-") as tmp:
        path = export_plan(cur, pack.plan, fmt, Path(tmp) / name, period=period, as_of=as_of,
                           settings=settings, pack=pack)
        return path.read_bytes(), name, MIME_TYPES[fmt]
