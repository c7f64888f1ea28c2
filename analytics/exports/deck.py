"""The page model of the meeting pack: what the slides and the PDF pages say, written once.

`build_deck` turns a `PlanPack` into a `Deck`: a title page (the whole-plan KPIs, the
overview map), one page per territory (its map, its rep, its metrics and deviations), and a
comparison page when a baseline plan is given (the disruption headline, the per-territory
changes in columns, a note on the territories left out). Every title, subtitle, table cell
and note of those pages is written here; `pptx` and `pdf` only lay the pages out (places,
sizes, fonts), so a slide and its PDF page cannot drift apart.

A page's map is a `MapImage`, drawn when a layout asks for it, for the room the layout has:
the overview is drawn to fit (slide and PDF page differ), a territory's map is drawn once per
pack at `TERRITORY_MAP_SIZE` and scaled. Building a deck draws nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import pandas as pd

from analytics.exports.comparison import COMPARED
from analytics.exports.labels import (
    format_value,
    plan_kpis,
    shorten,
    territory_kpis,
    territory_title,
)
from analytics.exports.maps import TERRITORY_MAP_SIZE
from analytics.swot import QUADRANTS

if TYPE_CHECKING:
    from analytics.exports.pack import PlanPack

AUTHOR = "Territory Atlas"
ROWS_PER_COLUMN = 25
"""Rows of one column of the comparison page's table."""
MAX_COMPARISON_ROWS = 50
"""Territories the comparison page shows at most (the largest changes)."""
COMPARISON_HEADER = ("Territory", "Accounts\nchange", "Potential\nchange", "Won\nchange",
                     "Workload\nhours change")

Table = tuple[tuple[str, ...], ...]
"""A table's cell texts, row by row, the header row first ("\n" breaks a line in a cell)."""


@dataclass(frozen=True)
class MapImage:
    """A page's map: `draw(width, max_height)` gives (PNG bytes, width, height in inches)
    for a room of at most `width` x `max_height` inches (a territory's map is always
    TERRITORY_MAP_SIZE; the layout scales it)."""

    draw: Callable[[float, float], tuple[bytes, float, float]]

    def png(self, width: float, max_height: float) -> tuple[bytes, float, float]:
        return self.draw(width, max_height)


@dataclass(frozen=True)
class Page:
    """One slide, one PDF page. `kind` picks the layout: "plan" (KPI table and map side by
    side), "territory" (map and KPI table), "comparison" (tables side by side, notes) or
    "text" (the notes as paragraphs; a note starting with "## " is a heading)."""

    kind: Literal["plan", "territory", "comparison", "text"]
    title: str
    subtitle: str
    kpis: Table = ()
    """The page's metrics table (plan and territory pages)."""
    map: MapImage | None = None
    tables: tuple[Table, ...] = ()
    """Tables shown side by side (the comparison's columns)."""
    notes: tuple[str, ...] = ()
    """Lines under the tables."""


@dataclass(frozen=True)
class Deck:
    """The pages, and the document's own text (properties, PDF footer)."""

    title: str
    subtitle: str
    footer: str
    pages: tuple[Page, ...]
    author: str = AUTHOR


def plan_title(pack: PlanPack) -> str:
    """The document's title, and its first page's."""
    return f"{pack.plan.name}: territory plan"


def plan_subtitle(pack: PlanPack) -> str:
    """Unit, territories, period, as-of date (and the baseline): the first page's subtitle,
    the document's subject."""
    p = pack.plan
    text = (f"{p.unit.label} · {len(pack.terr)} territories · period "
            f"{pack.period.start.isoformat()} to {pack.period.end.isoformat()} · as of "
            f"{pack.as_of.isoformat()}")
    if pack.baseline is not None:
        text += f" · compared with {pack.baseline.name}"
    return text


def build_deck(pack: PlanPack) -> Deck:
    """The pages of `pack`: title page, territory pages in the plan's order, comparison."""
    pages = [_plan_page(pack), *_territory_pages(pack)]
    if pack.comparison is not None:
        pages.append(_comparison_page(pack))
    return Deck(title=plan_title(pack), subtitle=plan_subtitle(pack),
                footer=f"{AUTHOR} · {pack.plan.name} · exported "
                       f"{pack.created.isoformat(sep=' ')}",
                pages=tuple(pages))


def _plan_page(pack: PlanPack) -> Page:
    kpis = plan_kpis(pack.plan_row, baseline=pack.baseline is not None)
    return Page("plan", plan_title(pack), plan_subtitle(pack),
                kpis=(("Whole plan", ""), *kpis),
                map=MapImage(lambda w, h: pack.maps.overview(width=w, max_height=h)))


def _territory_pages(pack: PlanPack) -> list[Page]:
    rows = pack.rows.set_index("territory_id", drop=False)
    pages = []
    for t in pack.terr["territory_id"]:
        if pack.focus and t not in pack.focus:
            continue
        row = rows.loc[t]
        pages.append(Page(
            "territory", territory_title(t, row["territory_name"]), _rep_line(pack, row),
            kpis=(("Metric", "Value", "vs mean"), *territory_kpis(row)),
            map=MapImage(lambda w, h, t=t: (pack.maps.territory_png(t), *TERRITORY_MAP_SIZE))))
        for week in pack.weeks:
            if week.territory_ids[0] == t:
                pages += _week_pages(pack, week)
        for review in pack.reviews:
            if review.territory_id == t:
                pages += _review_pages(review)
    return pages


def _review_pages(review) -> list[Page]:
    """The territory review (analytics/swot.py): the SWOT with each line's number, then
    the funnel against the team."""
    title = f"{territory_title(review.territory_id, review.territory_name)}: review"
    subtitle = (f"{review.period.start} to {review.period.end}, as of {review.as_of} · "
                + (f"rep {review.rep_name or review.rep_id}" if review.rep_id else "no rep"))
    notes = []
    for q in QUADRANTS:
        notes.append(f"## {q.capitalize()}")
        lines = review.quadrant(q)
        notes += [f"• {ln.text}" for ln in lines] or ["• Nothing the data shows past the rules."]
    team = review.team_funnel.set_index("stage")
    header = ("Stage", "Reached", "Lost here", "To next", "Team")
    rows = [(shorten(str(r.stage), 24), f"{r.reached:,}", f"{r.lost_here:,}",
             format_value("win_rate_count", r.conversion_next),
             format_value("win_rate_count", team["conversion_next"].get(r.stage)))
            for r in review.funnel.itertuples(index=False)]
    return [Page("text", title, subtitle, notes=tuple(notes)),
            Page("comparison", f"{review.territory_id}: the funnel", subtitle,
                 tables=((header, *rows),),
                 notes=(f"Deals closed in the period; source: {review.funnel['source'].iloc[0]}."
                        " Rules: docs/metrics.md, the territory review.",))]


def _week_pages(pack: PlanPack, week) -> list[Page]:
    """The rep's week (analytics/routes.py): the routes' map with the days' numbers, then
    the stops in order."""
    h = week.headline()
    saving = h["saving_vs_nearest_neighbour"]
    title = f"{week.rep_name}: visits {week.dates[0]:%a %d %b} to {week.dates[-1]:%a %d %b}"
    subtitle = (f"{h['visits']} of {h['due_accounts']} due accounts · {h['km']:,.0f} km · "
                f"{h['hours']:.1f} h"
                + (f" · {saving:.0%} shorter than the nearest-neighbour order"
                   if saving is not None else ""))
    days = week.days
    kpis = [("Day", "Visits · hours", "km")]
    for d, row in zip(week.dates, days.itertuples(index=False), strict=True):
        kpis.append((f"{d:%a %Y-%m-%d}" + (f" ({row.leave}-{row.back})" if row.visits else ""),
                     f"{row.visits} · {row.hours:.1f} h", f"{row.km:,.0f}"))
    kpis += [
        ("Week", f"{h['visits']} · {h['hours']:.1f} h", f"{h['km']:,.0f}"),
        (f"Nearest-neighbour order ({h['nearest_neighbour_days']} days)",
         f"{h['visits']} · {h['nearest_neighbour_hours']:.1f} h",
         f"{h['nearest_neighbour_km']:,.0f}"),
        ("One trip per visit", f"{h['visits']} · {h['one_trip_per_visit_hours']:.1f} h",
         f"{h['one_trip_per_visit_km']:,.0f}"),
        ("Due, not in the routes", f"{h['not_planned']}", ""),
    ]
    pages = [Page("territory", title, subtitle, kpis=tuple(kpis),
                  map=MapImage(lambda w, hh: (pack.maps.week_png(week), *TERRITORY_MAP_SIZE)))]
    visits = week.stops[week.stops["kind"] == "visit"]
    if len(visits):
        cells = [(f"{r.day}.{r.stop}", shorten(str(r.name), 28), shorten(str(r.segment), 14),
                  str(r.arrive), f"{r.leg_km:,.0f}") for r in visits.itertuples(index=False)]
        per_page = ROWS_PER_COLUMN * 3
        header = ("Day.stop", "Account", "Segment", "Arrive", "km from\nlast stop")
        for k in range(0, len(cells), per_page):
            chunk = cells[k:k + per_page]
            columns = [chunk[i:i + ROWS_PER_COLUMN] for i in range(0, len(chunk),
                                                                   ROWS_PER_COLUMN)]
            pages.append(Page(
                "comparison", f"{week.rep_name}: the stops", subtitle,
                tables=tuple((header, *c) for c in columns),
                notes=("Distances: straight-line km x the road factor; times at the "
                       "driving speed of the settings (no road network offline).",)))
    return pages


def _rep_line(pack: PlanPack, row) -> str:
    t = row["territory_id"]
    rep = row["rep_id"]
    who = (f"Rep: {pack.rep_names.get(t, rep)} ({rep})" if isinstance(rep, str) and rep
           else "No rep")
    return f"{who} · status {row['status']} · {format_value('units', row['units'])} units"


def _comparison_page(pack: PlanPack) -> Page:
    pr = pack.plan_row
    headline = (
        f"{format_value('disruption_accounts_pct', pr.get('disruption_accounts_pct'))} of "
        f"accounts and "
        f"{format_value('disruption_potential_pct', pr.get('disruption_potential_pct'))} of "
        "potential change territory (changes: this plan minus the baseline)")
    chunks, left_out = _comparison_chunks(pack.comparison)
    notes = ((f"{left_out} territories with the smallest changes are not shown: the Excel "
              "export lists every territory.",) if left_out else ())
    return Page("comparison", f"Compared with {pack.baseline.name}", headline,
                tables=tuple((COMPARISON_HEADER, *_comparison_rows(c)) for c in chunks),
                notes=notes)


def _comparison_chunks(frame: pd.DataFrame) -> tuple[list[pd.DataFrame], int]:
    """The comparison rows in columns of at most ROWS_PER_COLUMN; above MAX_COMPARISON_ROWS
    only the largest changes (ranked by accounts and potential) are kept, in plan order.
    Returns (columns, territories left out)."""
    left_out = 0
    if len(frame) > MAX_COMPARISON_ROWS:
        score = (frame["accounts_delta"].abs().rank(method="first")
                 + frame["potential_delta"].abs().rank(method="first"))
        keep = sorted(score.nlargest(MAX_COMPARISON_ROWS).index)
        left_out = len(frame) - len(keep)
        frame = frame.loc[keep]
    ncols = max(1, math.ceil(len(frame) / ROWS_PER_COLUMN))
    per = max(1, math.ceil(len(frame) / ncols))
    return [frame.iloc[k * per:(k + 1) * per] for k in range(ncols)], left_out


def _comparison_rows(frame: pd.DataFrame) -> list[tuple[str, ...]]:
    return [(shorten(territory_title(r["territory_id"], r["territory_name"]), 26)
             + (f" ({r['change']})" if r["change"] else ""),
             *[format_value(f"{m}_delta", r[f"{m}_delta"]) for m in COMPARED])
            for r in frame.to_dict(orient="records")]
