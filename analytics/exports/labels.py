"""Which metrics the slides and PDF pages show, and how: labels and number formats come from
the metric catalogue (`analytics.catalog`), so a slide, its PDF page, the app's tables and
the tests that read them back agree.
"""

from __future__ import annotations

from analytics import catalog
from analytics.catalog import EMPTY, LABELS, format_value  # noqa: F401 (the package's API)
from analytics.catalog import missing as is_missing

PLAN_KPIS = (
    "accounts", "potential", "won", "open_pipeline", "quota", "attainment", "pace",
    "pipeline_coverage", "penetration", "whitespace", "workload_hours", "capacity_hours",
    "utilization", "travel_km", "reach_pct", "touched_pct", "coverage_accounts_pct",
    "coverage_potential_pct", "unassigned_accounts", "balance_cv_potential",
    "balance_cv_workload_hours", "balance_cv_accounts",
)
"""The whole-plan KPIs of the title slide (the two disruption shares follow with a baseline)."""
TERRITORY_KPIS = (
    ("accounts", "deviation_accounts"), ("potential", "deviation_potential"), ("won", None),
    ("open_pipeline", None), ("quota", None), ("attainment", None), ("pace", None),
    ("pipeline_coverage", None), ("penetration", None), ("whitespace", None),
    ("workload_hours", "deviation_workload_hours"), ("capacity_hours", None),
    ("utilization", None), ("status", None), ("travel_km", None), ("reach_pct", None),
    ("touched_pct", None), ("units", None), ("components", None), ("polsby_popper", None),
)
"""A territory slide's rows: (metric, its deviation from the mean or None)."""
WHOLE = {name for name, m in catalog.METRICS.items() if m.kind in ("money", "hours")}
"""Amounts and hours: formatted whole in the workbook."""
RATIO = {name for name, m in catalog.METRICS.items() if m.kind in ("ratio", "index", "km")}
"""Ratios that are not shares, and distances: two decimals in the workbook."""


def plan_kpis(plan_row: dict, *, baseline: bool = False) -> list[tuple[str, str]]:
    """(label, text) of the title slide's KPI table."""
    cols = [*PLAN_KPIS, *(("disruption_accounts_pct", "disruption_potential_pct")
                          if baseline else ())]
    return [(LABELS[c], format_value(c, plan_row.get(c))) for c in cols]


def territory_kpis(row) -> list[tuple[str, str, str]]:
    """(label, value, deviation) of a territory slide's metrics table."""
    return [(LABELS[c], format_value(c, row[c]), format_value(d, row[d]) if d else "")
            for c, d in TERRITORY_KPIS]


def territory_title(territory_id: str, name) -> str:
    name = "" if is_missing(name) else str(name)
    return territory_id if not name or name == territory_id else f"{territory_id} – {name}"


def shorten(text: str, n: int) -> str:
    """`text` cut to `n` characters, an ellipsis marking the cut (legends, table cells)."""
    return text if len(text) <= n else text[: n - 1] + "…"
