"""Meeting-pack exports of a plan: slides, PDF, workbook, GIS files, a map image, CRM load files.

`export_plan` writes one format to a file, `export_bytes` returns it for a download button.
Everything is drawn and written here, offline (no map tiles, no network): maps with
matplotlib's Agg renderer from the shipped unit geometry, slides with python-pptx, the PDF
with reportlab (DejaVu Sans, shipped with matplotlib, so any name prints), the workbook with
xlsxwriter, GeoPackage with pyogrio.

- pptx: a title slide (the whole-plan KPIs, an overview map with a legend), one slide per
  territory (its map, its rep, its metrics and deviations), and a comparison slide when a
  baseline plan is given;
- pdf: the same pages;
- xlsx: sheets `units` (unit -> territory; first, so that the workbook imports back as a
  plan as it is), `territories` (the `summary` rows and the `__plan__` row; the sheet shown
  on opening), `accounts` (every account and its territory), `settings` (the conditions and
  settings used), and `comparison` with a baseline;
- geojson, gpkg: one feature per territory, the dissolved (multi)polygon of its units
  (WGS84) with its metrics as properties;
- png: the overview map;
- salesforce: a zip of Data Loader CSV files that rebuild the plan as a territory model
  (`Territory2`, `ObjectTerritory2Association`, `UserTerritory2Association`) and a README
  on the order to load them and the ids to fill in.

Modules: `formats` (the format table, `export_plan`, `export_bytes`); `pack` (`PlanPack`:
metrics, territory shapes, colours, computed once per plan and conditions; the geometry of
point units); `maps` (the overview and territory maps, and how their view is chosen);
`labels` (metric labels, KPI lists, `format_value`); `comparison` (a plan against a
baseline); `deck` (the page model: every page's title, subtitle, tables and notes, built
once from a pack); one module per writer: `pptx` and `pdf` (both lay out the deck's pages),
`xlsx`, `gis` (GeoJSON and GeoPackage), `png`, `salesforce`.

Cost: a `PlanPack` computes the metrics, the territory unions, the maps and the pages once,
lazily; pass one pack to several `export_plan` calls to share them.
"""

from analytics.exports.comparison import COMPARED
from analytics.exports.formats import (
    EXTENSIONS,
    FORMATS,
    MIME_TYPES,
    WRITERS,
    check_format,
    default_filename,
    export_bytes,
    export_plan,
)
from analytics.exports.labels import (
    LABELS,
    PLAN_KPIS,
    TERRITORY_KPIS,
    format_value,
    territory_title,
)
from analytics.exports.pack import PlanPack
from analytics.exports.salesforce import (
    MODEL_PLACEHOLDER,
    SALESFORCE_FILES,
    TYPE_PLACEHOLDER,
    developer_names,
)
from analytics.exports.xlsx import XLSX_SHEETS

__all__ = [
    "COMPARED",
    "EXTENSIONS",
    "FORMATS",
    "LABELS",
    "MIME_TYPES",
    "MODEL_PLACEHOLDER",
    "PLAN_KPIS",
    "SALESFORCE_FILES",
    "TERRITORY_KPIS",
    "TYPE_PLACEHOLDER",
    "WRITERS",
    "XLSX_SHEETS",
    "PlanPack",
    "check_format",
    "default_filename",
    "developer_names",
    "export_bytes",
    "export_plan",
    "format_value",
    "territory_title",
]
