"""The metric catalogue: every quantity of docs/metrics.md by name, once.

Each entry gives a metric's label (and a short one for narrow table columns), its kind
(money, percent, deviation, count, hours, km, ratio, index, text, flag), a help text, and for
derived metrics the one function that computes it from additive sums. The engine (metrics,
performance, hierarchy, coverage, exports) computes with these functions; pages, widgets and
the map read labels and formats from here. Adding a metric is one entry.

The formula functions take numpy arrays (or columns) and return arrays, with docs/metrics.md's
"empty" cases as NaN. Rules that are SQL (an account's visits per year, the touch window) have
their fragment here too, so the per-unit cube and the per-account coverage use one text.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

KINDS = ("money", "percent", "deviation", "count", "hours", "km", "ratio", "index", "text",
         "flag", "date")
EMPTY = "–"
BALANCE_METRICS = ("potential", "workload_hours", "accounts")
"""The measures whose spread over territories the plan's balance columns measure."""
ADDITIVE = ["accounts", "potential", "won", "open_pipeline", "quota", "workload_hours",
            "capacity_hours", "units"]
"""Territory columns that add up over territories (a parent's numbers are their sums)."""


@dataclass(frozen=True)
class Metric:
    """One quantity: how it is called, shown, explained and (if derived) computed."""

    name: str
    label: str
    kind: str
    help: str
    short: str = ""
    compute: Callable[..., np.ndarray] | None = None
    """Derived metrics: f(columns, days, elapsed) -> array, columns holding the sums."""
    higher_is_better: bool | None = True

    @property
    def short_label(self) -> str:
        return self.short or self.label

    @property
    def is_share(self) -> bool:
        """A fraction in the data, a percentage on screen."""
        return self.kind in ("percent", "deviation")


# --------------------------------------------------------------------------------------
# formulas (docs/metrics.md); NaN where the definition says "empty"
# --------------------------------------------------------------------------------------
def divide(num, den) -> np.ndarray:
    """num / den, NaN where den is 0."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den != 0, num / np.where(den != 0, den, 1), np.nan)


def period_quota(annual_quota, days: int) -> np.ndarray:
    """Quota for the period: annual quota x days / 365."""
    return np.asarray(annual_quota, float) * days / 365


def attainment(won, quota) -> np.ndarray:
    quota = np.asarray(quota, float)
    return np.where(quota > 0, divide(won, quota), np.nan)


def pace(won, quota, elapsed: float) -> np.ndarray:
    quota = np.asarray(quota, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((quota > 0) & (elapsed > 0),
                        attainment(won, quota) / (elapsed or 1), np.nan)


def pipeline_coverage(open_pipeline, quota, won) -> np.ndarray:
    gap = np.asarray(quota, float) - np.asarray(won, float)
    return np.where(gap > 0, divide(open_pipeline, gap), np.nan)


def penetration(won, potential, days: int) -> np.ndarray:
    potential = np.asarray(potential, float)
    return np.where(potential != 0, divide(won, potential * days / 365), np.nan)


def whitespace(won, potential, days: int) -> np.ndarray:
    return np.maximum(np.asarray(potential, float) * days / 365 - np.asarray(won, float), 0)


def growth(won, won_prior) -> np.ndarray:
    prior = np.asarray(won_prior, float)
    return np.where(prior > 0, divide(won, prior) - 1, np.nan)


def win_rate(won, lost) -> np.ndarray:
    """won / (won + lost), by count or by amount; NaN with neither."""
    won, lost = np.asarray(won, float), np.asarray(lost, float)
    return np.where(won + lost > 0, divide(won, won + lost), np.nan)


def avg_deal_size(won, won_deals) -> np.ndarray:
    wd = np.asarray(won_deals, float)
    return np.where(wd > 0, divide(won, wd), np.nan)


def utilization(workload_hours, capacity_hours) -> np.ndarray:
    return divide(workload_hours, capacity_hours)


def visit_hours(visit_minutes) -> np.ndarray:
    """Hours spent at accounts from the sum over them of visits x minutes per visit (the
    account's segment's `visit_minutes`, else the setting: `visit_minutes_sql`)."""
    return np.asarray(visit_minutes, float) / 60


def travel_hours(visits_km, settings) -> np.ndarray:
    """Hours on the road for `visits x km` summed over accounts: out and back, at the road
    factor and speed of the settings."""
    return np.asarray(visits_km, float) * 2 * settings.road_factor / settings.speed_kmh


def workload_hours(visit_minutes, visits_km, settings) -> np.ndarray:
    """docs/metrics.md workload: visit hours plus travel hours (visit_minutes = sum of
    visits x minutes per visit; visits_km = sum of visits x km, 0 where the territory has no
    rep or the rep no home)."""
    return visit_hours(visit_minutes) + travel_hours(visits_km, settings)


def status(util, has_rep, settings) -> list[str]:
    """under-served, over-served, no rep, balanced: tested in that order."""
    out = []
    for u, rep in zip(util, has_rep, strict=True):
        if not np.isnan(u) and u > 1 + settings.overload_tolerance:
            out.append("under-served")
        elif not np.isnan(u) and u < settings.underload_threshold:
            out.append("over-served")
        elif not rep:
            out.append("no rep")
        else:
            out.append("balanced")
    return out


def deviation(values, counted) -> np.ndarray:
    """(m - mean) / mean, the mean over the `counted` rows (territories with a rep)."""
    vals = np.asarray(values, float)
    counted = np.asarray(counted, bool)
    mean = vals[counted].mean() if counted.any() else np.nan
    if not mean or np.isnan(mean):
        return np.full(len(vals), np.nan)
    return (vals - mean) / mean


def balance(values) -> tuple[float | None, float | None]:
    """(coefficient of variation, largest absolute deviation) of the values given."""
    vals = np.asarray(values, float)
    mean = vals.mean() if len(vals) else np.nan
    if not len(vals) or not mean or np.isnan(mean):
        return None, None
    return float(vals.std(ddof=0) / mean), float(np.max(np.abs((vals - mean) / mean)))


def touch_from(as_of: dt.date, touch_days) -> dt.date:
    """The first day an activity counts as a touch: as_of - touch_days (or the first date
    there is when that would be earlier)."""
    return as_of - dt.timedelta(days=min(int(touch_days), (as_of - dt.date.min).days))


def segment_value_sql(by_segment: Mapping[str, float], alias: str = "a") -> tuple[str, list]:
    """SQL for a per-segment setting's value of an account (NULL: its segment has none)."""
    segs = list(by_segment)
    sql = (f"(SELECT v.val FROM (SELECT unnest(?::VARCHAR[]) AS seg, unnest(?::DOUBLE[]) "
           f"AS val) v WHERE v.seg = {alias}.segment)")
    return sql, [segs, [float(by_segment[s]) for s in segs]]


def visit_minutes_sql(settings, alias: str = "a") -> tuple[str, list]:
    """SQL for the minutes one visit to an account lasts: its segment's, else the setting."""
    seg, params = segment_value_sql(settings.visit_minutes_by_segment, alias)
    return f"coalesce({seg}, ?)", [*params, float(settings.visit_minutes)]


def visits_sql(settings, alias: str = "a") -> tuple[str, list]:
    """SQL for an account's visits per year: its own, else its segment's, else the default."""
    seg, params = segment_value_sql(settings.visits_by_segment, alias)
    return (f"coalesce({alias}.visits_per_year, {seg}, ?)",
            [*params, float(settings.visits_per_year)])


# --------------------------------------------------------------------------------------
# the entries
# --------------------------------------------------------------------------------------
def _c(f: Mapping, k: str) -> np.ndarray:
    return np.asarray(f[k], dtype=float)


_ENTRIES = (
    # additive measures
    Metric("accounts", "Accounts", "count", "Number of accounts resolved to the area"),
    Metric("potential", "Potential (annual)", "money",
           "Sum of the accounts' annual sales potential", short="Potential"),
    Metric("won", "Won", "money", "Won amount of deals closing in the period"),
    Metric("open_pipeline", "Open pipeline", "money",
           "Open amount of deals closing in the period"),
    Metric("lost", "Lost", "money", "Lost amount of deals closing in the period",
           higher_is_better=False),
    Metric("won_deals", "Won deals", "count", "Won deals closing in the period"),
    Metric("lost_deals", "Lost deals", "count", "Lost deals closing in the period",
           higher_is_better=False),
    Metric("won_prior", "Won a year earlier", "money",
           "Won amount closing in the same dates a year earlier"),
    Metric("quota", "Quota (period)", "money",
           "Territory annual quota (else its rep's, else 0) x days / 365"),
    Metric("units", "Units", "count", "Base units assigned to the territory"),
    Metric("workload_hours", "Workload (hours)", "hours",
           "Sum over accounts of visits x (visit minutes + 2 x km x road factor / speed x 60)"
           " / 60; travel counts 0 without a rep", short="Workload hours",
           higher_is_better=None),
    Metric("capacity_hours", "Capacity (hours)", "hours",
           "The rep's annual selling hours; 0 without a rep", short="Capacity hours"),
    # ratios of the sums
    Metric("attainment", "Attainment", "percent", "Won / quota; empty when quota = 0",
           compute=lambda f, days, elapsed: attainment(_c(f, "won"), _c(f, "quota"))),
    Metric("pace", "Pace", "percent",
           "Attainment / share of the period elapsed; empty when quota = 0",
           compute=lambda f, days, elapsed: pace(_c(f, "won"), _c(f, "quota"), elapsed)),
    Metric("pipeline_coverage", "Pipeline coverage", "ratio",
           "Open pipeline / (quota - won); empty when quota - won <= 0",
           compute=lambda f, days, elapsed: pipeline_coverage(
               _c(f, "open_pipeline"), _c(f, "quota"), _c(f, "won"))),
    Metric("penetration", "Penetration", "percent",
           "Won / (potential x days / 365); empty when potential = 0",
           compute=lambda f, days, elapsed: penetration(_c(f, "won"), _c(f, "potential"),
                                                        days)),
    Metric("whitespace", "Whitespace", "money", "max(potential x days / 365 - won, 0)",
           compute=lambda f, days, elapsed: whitespace(_c(f, "won"), _c(f, "potential"),
                                                       days)),
    Metric("growth", "Growth vs a year earlier", "percent",
           "Won / won in the same dates a year earlier - 1", short="Growth",
           compute=lambda f, days, elapsed: growth(_c(f, "won"), _c(f, "won_prior"))),
    Metric("win_rate_count", "Win rate (count)", "percent",
           "Won deals / (won + lost deals) closing in the period",
           compute=lambda f, days, elapsed: win_rate(_c(f, "won_deals"),
                                                     _c(f, "lost_deals"))),
    Metric("win_rate_amount", "Win rate (amount)", "percent",
           "Won amount / (won + lost amount) closing in the period",
           compute=lambda f, days, elapsed: win_rate(_c(f, "won"), _c(f, "lost"))),
    Metric("avg_deal_size", "Average deal size", "money", "Won amount / won deals",
           compute=lambda f, days, elapsed: avg_deal_size(_c(f, "won"), _c(f, "won_deals"))),
    Metric("utilization", "Utilization", "percent",
           "Workload hours / capacity hours; empty when capacity = 0", higher_is_better=None,
           compute=lambda f, days, elapsed: utilization(_c(f, "workload_hours"),
                                                        _c(f, "capacity_hours"))),
    # travel, service and shape
    Metric("travel_km", "Mean travel (km)", "km",
           "Mean great-circle distance from the rep's home to the accounts",
           short="Travel km (mean)", higher_is_better=False),
    Metric("status", "Status", "text",
           "under-served (utilization above 1 + tolerance), over-served (below the "
           "underload threshold), no rep, or balanced", higher_is_better=None),
    Metric("reach_pct", "Accounts within reach", "percent",
           "Share of accounts within the maximum travel distance of the rep's home",
           short="Reach"),
    Metric("touched_pct", "Accounts touched", "percent",
           "Share of accounts with an activity within the touch window before the as-of date",
           short="Touched"),
    Metric("components", "Pieces", "count", "Connected pieces of the territory's units",
           higher_is_better=False),
    Metric("contiguous", "Contiguous", "flag", "The territory is one piece"),
    Metric("polsby_popper", "Compactness (Polsby-Popper)", "index",
           "4 pi area / perimeter², geodesic on WGS84: 1 = a circle", short="Compactness"),
    # whole plan
    Metric("coverage_accounts_pct", "Accounts in a territory with a rep", "percent",
           "Share of all accounts resolved to a territory that has a rep"),
    Metric("coverage_potential_pct", "Potential in a territory with a rep", "percent",
           "Share of all potential resolved to a territory that has a rep"),
    Metric("unassigned_accounts", "Unassigned accounts", "count",
           "Accounts resolved to no territory", higher_is_better=False),
    Metric("disruption_accounts_pct", "Accounts changing territory", "percent",
           "Share of accounts whose territory differs from the baseline plan's",
           higher_is_better=None),
    Metric("disruption_potential_pct", "Potential changing territory", "percent",
           "Share of potential whose territory differs from the baseline plan's",
           higher_is_better=None),
    # the market under the map (analytics/market.py: shipped public tables)
    Metric("market_population", "Population (2020 Census)", "count",
           "People living in the area, 2020 Census", short="Population",
           higher_is_better=None),
    Metric("market_establishments", "Establishments (2018)", "count",
           "Business establishments in the area, ZIP Code Business Patterns 2018",
           short="Establishments", higher_is_better=None),
    Metric("market_employees", "Employees (2018)", "count",
           "Mid-March employees of the area's establishments, 2018", short="Employees",
           higher_is_better=None),
    Metric("market_payroll", "Annual payroll (2018)", "money",
           "Annual payroll of the area's establishments, 2018", short="Payroll",
           higher_is_better=None),
    Metric("market_unemployment_rate", "Unemployment rate (2016)", "percent",
           "County unemployment rates 2016, weighted by population", short="Unemployment",
           higher_is_better=None),
    Metric("accounts_per_1k_establishments", "Accounts per 1,000 establishments", "ratio",
           "1,000 x accounts / establishments; empty when establishments = 0",
           short="Accounts / 1k est.",
           compute=lambda f, days, elapsed: divide(1000 * _c(f, "accounts"),
                                                   _c(f, "market_establishments"))),
    Metric("potential_per_capita", "Potential per capita", "money",
           "Annual potential / population; empty when population = 0",
           short="Potential / person",
           compute=lambda f, days, elapsed: divide(_c(f, "potential"),
                                                   _c(f, "market_population"))),
)
_WORDS = {"potential": "potential", "workload_hours": "workload", "accounts": "accounts"}
_BALANCE = tuple(
    entry for m in BALANCE_METRICS for entry in (
        Metric(f"deviation_{m}", f"{_WORDS[m].capitalize()} vs mean", "deviation",
               f"({_WORDS[m]} - mean) / mean over territories with a rep",
               short=f"Dev. {_WORDS[m]}", higher_is_better=None),
        Metric(f"balance_cv_{m}", f"Balance CV, {_WORDS[m]}", "percent",
               f"Standard deviation / mean of {_WORDS[m]} over territories with a rep",
               higher_is_better=False),
        Metric(f"balance_max_dev_{m}", f"Max deviation, {_WORDS[m]}", "percent",
               f"Largest |deviation| of {_WORDS[m]} over territories with a rep",
               higher_is_better=False),
    ))
METRICS: dict[str, Metric] = {m.name: m for m in (*_ENTRIES, *_BALANCE)}
"""Every metric by column name."""

LABELS: dict[str, str] = {name: m.label for name, m in METRICS.items()}


def metric(name: str) -> Metric:
    return METRICS[name]


def label(name: str, *, short: bool = False) -> str:
    """The metric's label (the column name itself for a column the catalogue lacks)."""
    m = METRICS.get(name)
    if m is None:
        return name
    return m.short_label if short else m.label


def kind(name: str) -> str | None:
    m = METRICS.get(name)
    return m.kind if m else None


def is_share(name: str) -> bool:
    m = METRICS.get(name)
    return bool(m and m.is_share)


def derive(frame, names, *, days: int, elapsed: float):
    """Compute the derived metrics `names` into `frame` (a DataFrame or a dict of arrays)
    from the sums it holds, in the order given; returns the frame."""
    for name in names:
        frame[name] = METRICS[name].compute(frame, days, elapsed)
    return frame


RATIOS = ("attainment", "pace", "pipeline_coverage", "penetration", "whitespace")
"""The docs/metrics.md ratio columns of any area that has won, open pipeline, quota, potential."""
EXPLORER_RATIOS = ("attainment", "pace", "penetration", "whitespace", "growth",
                   "win_rate_count", "win_rate_amount", "avg_deal_size")
"""The ratio columns of an explorer area (it also has deal counts, lost and won a year ago)."""


# --------------------------------------------------------------------------------------
# formatting: how slides, PDF pages, cards and tooltips print a value
# --------------------------------------------------------------------------------------
def missing(value) -> bool:
    import pandas as pd

    return value is None or value is pd.NA or (
        isinstance(value, float | np.floating) and math.isnan(value))


def format_value(column: str, value) -> str:
    """A metric as text: shares as percentages, amounts whole, deviations and changes
    (`<name>_delta`) signed, empty values as an en dash."""
    if missing(value):
        return EMPTY
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    v = float(value)
    if column.endswith("_delta"):  # changes: compact, millions and billions rounded
        if abs(v) >= 1e9:
            return f"{v / 1e9:+,.2f}B"
        if abs(v) >= 1e6:
            return f"{v / 1e6:+,.1f}M"
        return f"{v:+,.0f}" if round(v) else "0"
    k = kind(column)
    if k == "deviation":
        return f"{v:+.1%}"
    if k == "count":
        return f"{round(v):,}"
    if k in ("money", "hours"):
        return f"{v:,.0f}"
    if k == "km":
        return f"{v:,.1f}"
    if k in ("ratio", "index"):
        return f"{v:,.2f}"
    return f"{v:.1%}"  # shares: attainment, pace, utilization, coverage, balance, disruption


def format_compact(column: str, value) -> str:
    """Like format_value, with money in M / B when large (KPI cards)."""
    if not missing(value) and kind(column) == "money":
        v = float(value)
        if abs(v) >= 1e9:
            return f"{v / 1e9:,.2f}B"
        if abs(v) >= 1e6:
            return f"{v / 1e6:,.1f}M"
    return format_value(column, value)
