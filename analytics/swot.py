"""The territory review: a SWOT written from the data, every line with its number and a link
to the drill-down that shows it (issue 15, point 5; the rules are in docs/metrics.md,
"The territory review").

Each rule below either finds its evidence or says nothing: no line without a number, and no
strength or weakness of a rate without enough closed deals and a 95% interval clear of the
team's rate (`review.MIN_CLOSED`, Wilson's interval). "The team" is every territory of the
plan; links are app paths with the plan, period and filters in the query (the explorer's
shareable URLs), so a line opens on the numbers behind it.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from urllib.parse import urlencode

import numpy as np
import pandas as pd

from analytics import catalog, funnel, metrics, plans, review
from analytics import performance as pf
from analytics.errors import InputError
from analytics.file_names import stem
from analytics.jsonable import plain, records
from analytics.period import Period
from analytics.plans import Plan
from analytics.resolution import resolved_cte
from analytics.review import pct
from analytics.settings import Settings

QUADRANTS = ("strengths", "weaknesses", "opportunities", "threats")
MIN_LOSSES = 5
"""Losses to one competitor in a territory before it is named a threat."""
BIG_DEAL_QUANTILE = 0.75
"""An open deal is big when its amount is at least this quantile of the plan's open deals."""
MARKET_GAP = 0.75
"""Accounts per 1,000 establishments below this share of the plan's: a market gap."""
UNTAPPED_SEGMENTS = 2
"""At most this many untapped segments are named (largest whitespace first)."""
DRILLS = ("segments", "funnel", "strengths", "products", "competitors", "slipping",
          "profile")
"""The review page's drill-downs (`?drill=`), each a table behind some lines."""


@dataclass
class Line:
    """One SWOT line: what it says, its number(s), the rule, and where the evidence is."""

    quadrant: str
    text: str
    rule: str
    value: float | None = None
    team_value: float | None = None
    page: str = "review"
    params: dict = field(default_factory=dict)

    def link(self) -> str:
        return f"{self.page}?{urlencode(self.params, doseq=True)}"


@dataclass
class Review:
    territory_id: str
    territory_name: str | None
    rep_id: str | None
    rep_name: str | None
    plan: str
    period: Period
    as_of: dt.date
    lines: list[Line]
    funnel: pd.DataFrame
    team_funnel: pd.DataFrame

    def quadrant(self, name: str) -> list[Line]:
        return [ln for ln in self.lines if ln.quadrant == name]

    def as_dict(self) -> dict:
        return {
            "territory_id": self.territory_id, "territory_name": self.territory_name,
            "rep_id": self.rep_id, "rep_name": self.rep_name, "plan": self.plan,
            "period": str(self.period), "as_of": self.as_of.isoformat(),
            **{q: [{**{k: plain(v) for k, v in asdict(ln).items()
                       if k not in ("quadrant", "page", "params")}, "link": ln.link()}
                   for ln in self.quadrant(q)] for q in QUADRANTS},
            "funnel": records(self.funnel), "team_funnel": records(self.team_funnel),
        }

    def file_name(self, fmt: str) -> str:
        """review-T07-2026-09-30.md (the territory id made safe for a file system)."""
        return f"review-{stem(self.territory_id, 'territory')}-{self.as_of.isoformat()}.{fmt}"

    def json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, ensure_ascii=False)

    def markdown(self, base_url: str = "") -> str:
        title = f"{self.territory_id} {self.territory_name or ''}".strip()
        who = f"{self.rep_name} ({self.rep_id})" if self.rep_id else "no rep"
        out = [f"# Territory review: {_md(title)}", "",
               f"Plan {_md(self.plan)}, period {self.period}, as of {self.as_of}; rep "
               f"{_md(who)}.", ""]
        for q in QUADRANTS:
            out += [f"## {q.capitalize()}", ""]
            lines = self.quadrant(q)
            out += [f"- {_md(ln.text)} ([evidence]({base_url}{ln.link()}))" for ln in lines] \
                or ["- Nothing the data shows past the rules (docs/metrics.md)."]
            out.append("")
        out += ["## Funnel (closed deals of the period)", "",
                "| stage | reached | lost here | to next | team to next | days (median) |",
                "|---|---:|---:|---:|---:|---:|"]
        team = self.team_funnel.set_index("stage")["conversion_next"]
        for r in self.funnel.itertuples():
            out.append(f"| {_md(r.stage)} | {r.reached:,} | {r.lost_here:,} | "
                       f"{pct(r.conversion_next)} | {pct(team.get(r.stage))} | "
                       f"{_num(r.days_median)} |")
        out += ["", f"Funnel source: {self.funnel['source'].iloc[0]}.", ""]
        return "\n".join(out)


def _md(text) -> str:
    """Typed text in Markdown: the characters that would make links or emphasis escaped."""
    return "".join("\\" + c if c in "\\`*_[]<>#|!" else c for c in str(text))


def _num(v) -> str:
    return "-" if catalog.missing(v) else f"{v:,.0f}"


def _money(v) -> str:
    return catalog.format_value("won", v)


def _text(v) -> str | None:
    return v if isinstance(v, str) else None


def to_date(period: Period, as_of: dt.date) -> Period:
    """The period up to the as-of date (growth compares dates that have happened)."""
    return Period(period.start, min(period.end, max(as_of, period.start)))


@dataclass
class Team:
    """What every territory's review of one plan, period and as-of date compares with,
    computed once (`team_facts`) and shared: a page caches it, a pack of several reviews
    builds it once."""

    summary_rows: pd.DataFrame
    funnel: pd.DataFrame
    order: list[str]
    counts: dict[str, pd.DataFrame]
    strengths: pd.DataFrame
    area: pd.DataFrame
    area_to_date: pd.DataFrame
    segments: pd.DataFrame
    competitors: pd.DataFrame
    big_deal: float


def team_facts(cur, plan: Plan, period: Period, as_of: dt.date, settings: Settings, *,
               summary_rows: pd.DataFrame | None = None) -> Team:
    """`summary_rows`: the plan's territory metrics when the caller has them (the app
    keeps the per-unit cube they come from across pages)."""
    order = funnel.stage_order(cur)
    rows = summary_rows if summary_rows is not None \
        else metrics.summary(cur, plan, period, as_of, settings)[0]
    threshold = cur.execute("SELECT quantile_cont(amount, ?) FROM sales WHERE stage = 'open'",
                            [BIG_DEAL_QUANTILE]).fetchone()[0]
    counts = {by: review.closed_counts(cur, plan, period, by) for by in ("segment", "product")}
    return Team(
        summary_rows=rows, funnel=funnel.funnel(cur, plan, period, None, order), order=order,
        counts=counts,
        strengths=review.rep_strengths(cur, plan, period, by="segment",
                                       counts=counts["segment"]),
        area=pf.area_table(cur, plan, period, as_of, pf.Level("territory")),
        area_to_date=pf.area_table(cur, plan, to_date(period, as_of), as_of,
                                   pf.Level("territory")),
        segments=pf.breakdown(cur, plan, period, as_of, "segment"),
        competitors=competitors(cur, plan, period), big_deal=float(threshold or 0))


def territory_review(cur, plan: Plan, period: Period, as_of: dt.date, settings: Settings,
                     territory: str, *, team: Team | None = None) -> Review:
    """The SWOT of one territory (rules in docs/metrics.md); `team`: `team_facts` of the
    same plan, period, as-of date and settings when the caller has them."""
    terr = plans.territories(cur, plan)
    row = terr[terr["territory_id"] == territory]
    if row.empty:
        raise InputError(f"territory {territory!r} is not in plan {plan.name!r}; its "
                         f"territories: {', '.join(terr['territory_id'].head(12))}"
                         + (" ..." if len(terr) > 12 else ""))
    t = row.iloc[0]
    rep = t["rep_id"] if isinstance(t["rep_id"], str) else None
    base = {"plan": plan.name, "as_of": as_of.isoformat(),
            "period": f"{period.start.isoformat()}:{period.end.isoformat()}"}
    own = {**base, "territory": territory}
    lines: list[Line] = []
    team = team or team_facts(cur, plan, period, as_of, settings)
    mine_funnel = funnel.funnel(cur, plan, period, pf.Scope(territories=(territory,)),
                                team.order)
    area = team.area
    me = area[area["area"] == territory]
    me = me.iloc[0] if len(me) else None
    srow = team.summary_rows[team.summary_rows["territory_id"] == territory]
    srow = srow.iloc[0] if len(srow) else None

    # strengths and weaknesses of win rate: the territory against the team, by segment and
    # by product; then its rep's own (over all the rep's deals)
    for by, counts in team.counts.items():
        vs = review.versus_team(counts[counts["territory_id"].notna()], "territory_id",
                                review.MIN_CLOSED)
        vs = vs[vs["territory_id"] == territory]
        for r in vs.to_dict("records"):
            if r["verdict"] not in ("strong", "weak"):
                continue
            quadrant = "strengths" if r["verdict"] == "strong" else "weaknesses"
            lines.append(Line(
                quadrant, review.wins_text("The territory", r),
                f"win rate by {by}: the 95% interval clear of the team's rate, "
                f"{review.MIN_CLOSED}+ closed", r["win_rate"], r["team_win_rate"],
                "performance",
                {**own, by: r["value"], "metric": "win_rate_count", "level": "territory"}))
    if rep:
        strengths = team.strengths
        mine = strengths[(strengths["rep_id"] == rep)
                         & strengths["verdict"].isin(["strong", "weak"])]
        for r in mine.to_dict("records"):
            quadrant = "strengths" if r["verdict"] == "strong" else "weaknesses"
            lines.append(Line(
                quadrant, review.wins_text(f"The rep {r['rep_name'] or rep}", r),
                "rep strength by segment (all the rep's closed deals)", r["win_rate"],
                r["team_win_rate"], "review", {**own, "drill": "strengths"}))

    # weaknesses: the leakiest stage, attainment behind pace
    leak = funnel.worst_leak(mine_funnel, team.funnel, review.MIN_CLOSED)
    if leak is not None:
        lines.append(Line(
            "weaknesses",
            f"Only {pct(leak['conversion_next'])} of deals that reach {leak['stage']} go "
            f"on ({leak['reached']:,} reached, {leak['lost_here']:,} lost there) against "
            f"the team's {pct(leak['conversion_next_team'])}",
            "the stage whose conversion to the next falls furthest below the team's, the "
            "95% interval clear of it", leak["conversion_next"], leak["conversion_next_team"],
            "review", {**own, "drill": "funnel"}))
    if me is not None and not catalog.missing(me["pace"]) and me["pace"] < 1:
        lines.append(Line(
            "weaknesses",
            f"Attainment {pct(me['attainment'])} of a {_money(me['quota'])} quota: pace "
            f"{me['pace']:.2f} (behind: {pct(to_date(period, as_of).days / period.days)} of "
            "the period has passed)",
            "pace below 1 (attainment / elapsed share of the period)", me["pace"], 1.0,
            "performance", {**own, "metric": "attainment", "level": "territory"}))

    # opportunities: penetration below the plan's, untapped segments, under-served, market
    tot = area[area["area"].notna()]
    plan_pen = catalog.penetration(tot["won"].sum(), tot["potential"].sum(),
                                   period.days).item()
    if me is not None and not catalog.missing(me["penetration"]) \
            and me["penetration"] < plan_pen and me["whitespace"] > 0:
        lines.append(Line(
            "opportunities",
            f"{_money(me['whitespace'])} of whitespace: penetration "
            f"{pct(me['penetration'])} against the plan's {pct(plan_pen)}",
            "penetration below the plan's, with whitespace", me["penetration"], plan_pen,
            "performance", {**own, "metric": "whitespace", "level": "territory"}))
    lines += _untapped(cur, plan, period, as_of, territory, own, team.segments)
    if srow is not None and srow["status"] == "under-served":
        lines.append(Line(
            "opportunities",
            f"Under-served: {srow['workload_hours']:,.0f} h of visits and travel a year "
            f"against {srow['capacity_hours']:,.0f} h of capacity (utilization "
            f"{pct(srow['utilization'])}): accounts the rep cannot reach",
            "status under-served (utilization above 1 + overload tolerance)",
            srow["utilization"], 1.0 + settings.overload_tolerance, "coverage", own))
    if me is not None:
        plan_rate = catalog.divide(tot["accounts"].sum() * 1000,
                                   tot["market_establishments"].sum()).item()
        rate = me["accounts_per_1k_establishments"]
        if not catalog.missing(rate) and not catalog.missing(plan_rate) \
                and rate < MARKET_GAP * plan_rate:
            lines.append(Line(
                "opportunities",
                f"Market gap: {rate:.1f} accounts per 1,000 establishments against the "
                f"plan's {plan_rate:.1f} ({me['market_establishments']:,.0f} establishments "
                "in the territory)",
                f"accounts per 1,000 establishments below {MARKET_GAP:.0%} of the plan's",
                rate, plan_rate, "performance",
                {**own, "metric": "accounts_per_1k_establishments", "level": "unit",
                 "unit": str(plan.unit)}))

    # threats: growth, competitors, slipping deals
    lines += _growth(team.area_to_date, period, as_of, territory, base)
    lines += _competitors(cur, plan, period, territory, own, team.competitors)
    lines += _slipping(cur, plan, as_of, territory, own, team.big_deal)
    return Review(territory, _text(t["territory_name"]), rep, _text(t["rep_name"]),
                  plan.name, period, as_of, lines, mine_funnel, team.funnel)


def _untapped(cur, plan, period, as_of, territory, own, team) -> list[Line]:
    """Segments whose penetration in the territory is below the plan's in the same
    segment, the largest whitespace first."""
    mine = pf.breakdown(cur, plan, period, as_of, "segment",
                        pf.Scope(territories=(territory,)))
    if mine.empty:
        return []
    team = team.set_index("segment")
    out = []
    mine = mine[mine["whitespace"] > 0].sort_values(["whitespace", "segment"],
                                                    ascending=[False, True])
    for r in mine.itertuples():
        team_pen = team["penetration"].get(r.segment, np.nan)
        if catalog.missing(r.penetration) or catalog.missing(team_pen) \
                or r.penetration >= team_pen:
            continue
        out.append(Line(
            "opportunities",
            f"Untapped {r.segment}: {_money(r.whitespace)} of whitespace, penetration "
            f"{pct(r.penetration)} against the plan's {pct(team_pen)} in {r.segment}",
            "a segment's penetration below the plan's in that segment (largest whitespace "
            f"first, at most {UNTAPPED_SEGMENTS})", r.penetration, team_pen, "performance",
            {**own, "segment": r.segment, "metric": "whitespace", "level": "unit",
             "unit": str(plan.unit)}))
        if len(out) == UNTAPPED_SEGMENTS:
            break
    return out


def _growth(rows, period, as_of, territory, base) -> list[Line]:
    """Won to date against the same dates a year earlier, below the plan's growth (`rows`:
    the territories' area table over the period to date)."""
    span = to_date(period, as_of)
    rows = rows[rows["area"].notna()]
    me = rows[rows["area"] == territory]
    plan_growth = catalog.growth(rows["won"].sum(), rows["won_prior"].sum()).item()
    if me.empty or catalog.missing(me["growth"].iloc[0]):
        return []
    g = me["growth"].iloc[0]
    if g >= 0 and (catalog.missing(plan_growth) or g >= plan_growth):
        return []
    prior = pf.prior_period(span)
    return [Line(
        "threats",
        f"Won {_money(me['won'].iloc[0])} from {span.start} to {span.end}: {g:+.0%} on the "
        f"same dates a year earlier ({_money(me['won_prior'].iloc[0])}, {prior.start} to "
        f"{prior.end}); the plan {plan_growth:+.0%}",
        "growth to date below zero or below the plan's", g, plan_growth, "performance",
        {**base, "period": f"{span.start.isoformat()}:{span.end.isoformat()}",
         "territory": territory, "metric": "growth", "level": "territory"})]


def competitors(cur, plan: Plan, period: Period,
                territories: tuple[str, ...] = ()) -> pd.DataFrame:
    """Lost deals closing in the period by the competitor they went to (`lost_to`, blank =
    not recorded) and loss reason: count, amount, and the share of the losses."""
    where, params = review.territory_sql(territories)
    cte, cte_params = resolved_cte(plan)
    frame = cur.execute(
        f"""WITH {cte}
            SELECT coalesce(s.lost_to, '(not recorded)') AS competitor,
                   coalesce(s.loss_reason, '(not recorded)') AS loss_reason,
                   count(*) AS lost_deals, sum(s.amount) AS lost
            FROM sales s JOIN resolved a ON a.account_id = s.account_id
            WHERE s.stage = 'lost' AND s.close_date BETWEEN ? AND ? AND {where}
            GROUP BY ALL""",
        [*cte_params, period.start, period.end, *params]).df()
    frame["share_of_losses"] = catalog.divide(frame["lost_deals"], frame["lost_deals"].sum())
    return frame.sort_values(["lost_deals", "competitor", "loss_reason"],
                             ascending=[False, True, True]).reset_index(drop=True)


def _competitors(cur, plan, period, territory, own, team) -> list[Line]:
    mine = competitors(cur, plan, period, (territory,))
    named = mine[~mine["competitor"].isin(["(not recorded)", "(no decision)"])]
    if named.empty:
        return []
    by = named.groupby("competitor")["lost_deals"].sum().sort_values(ascending=False)
    top, count = by.index[0], int(by.iloc[0])
    if count < MIN_LOSSES:
        return []
    share = count / mine["lost_deals"].sum()
    team_share = team.loc[team["competitor"] == top, "lost_deals"].sum() \
        / team["lost_deals"].sum()
    reason = named[named["competitor"] == top].iloc[0]["loss_reason"]
    return [Line(
        "threats",
        f"{top} took {count} of the territory's {int(mine['lost_deals'].sum())} lost deals "
        f"({pct(share)}; the team: {pct(team_share)}); the reason given most: {reason}",
        f"the competitor most often named on lost deals, {MIN_LOSSES}+ losses", share,
        team_share, "review", {**own, "drill": "competitors"})]


def slipping_deals(cur, plan: Plan, as_of: dt.date, territories: tuple[str, ...] = (),
                   threshold: float | None = None) -> tuple[pd.DataFrame, float]:
    """(open deals whose close date is before the as-of date and whose amount is at least
    the plan's BIG_DEAL_QUANTILE of open deal amounts, largest first; that threshold)."""
    cte, cte_params = resolved_cte(plan)
    if threshold is None:
        threshold = cur.execute(
            "SELECT quantile_cont(amount, ?) FROM sales WHERE stage = 'open'",
            [BIG_DEAL_QUANTILE]).fetchone()[0]
    where, params = review.territory_sql(territories)
    frame = cur.execute(
        f"""WITH {cte}
            SELECT s.opportunity_id, s.close_date, ?::DATE - s.close_date AS days_late,
                   s.amount, s.product, a.account_id, a.name AS account_name,
                   a.territory_id, s.rep_id
            FROM sales s JOIN resolved a ON a.account_id = s.account_id
            WHERE s.stage = 'open' AND s.close_date < ? AND s.amount >= ? AND {where}
            ORDER BY s.amount DESC, s.opportunity_id""",
        [*cte_params, as_of, as_of, threshold or 0, *params]).df()
    return frame, float(threshold or 0)


def _slipping(cur, plan, as_of, territory, own, threshold) -> list[Line]:
    late, threshold = slipping_deals(cur, plan, as_of, (territory,), threshold)
    if late.empty:
        return []
    return [Line(
        "threats",
        f"{len(late)} big open deals ({_money(late['amount'].sum())}) are past their close "
        f"date, the largest {_money(late['amount'].iloc[0])} "
        f"({late['days_late'].iloc[0]} days late)",
        f"open deals of at least {_money(threshold)} (the plan's top "
        f"{1 - BIG_DEAL_QUANTILE:.0%} of open deals) with a close date before the as-of date",
        float(late["amount"].sum()), None, "review", {**own, "drill": "slipping"})]
