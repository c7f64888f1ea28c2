"""The territory review: a SWOT from the data with the evidence behind each line, the
funnel against the team, and the drill-downs (segments, strengths, products, competitors,
slipping deals, the top accounts)."""

from urllib.parse import quote, urljoin, urlsplit

import plotly.graph_objects as go
import streamlit as st

from analytics import funnel, plans, rep_fit, review, swot, users
from analytics import performance as pf
from analytics.cube import AccountFilter
from analytics.errors import InputError
from ui.context import sidebar_context
from ui.filters import filter_options
from ui.page_entry import run_through_app
from ui.plan_metrics import plan_metrics
from ui.text import literal
from ui.widgets import money, percent

run_through_app()  # a first request of a fresh server may come here directly

QUADRANT_TITLES = {"strengths": "Strengths", "weaknesses": "Weaknesses",
                   "opportunities": "Opportunities", "threats": "Threats"}
DRILL_LABELS = {"segments": "Segments", "funnel": "Funnel", "strengths": "Rep strengths",
                "products": "Bought together", "competitors": "Competitors",
                "slipping": "Slipping deals", "profile": "Top 20 accounts"}
BY_LABELS = {"segment": "Segment", "industry": "Industry", "product": "Product",
             "lead_source": "Lead source"}

ctx = sidebar_context()
st.title("Territory review")
if ctx.plan is None:
    st.info("No territory plan yet: import one on the Plans page.")
    st.stop()
plan = ctx.plan
terr = plans.territories(ctx.cur, plan)
if terr.empty:
    st.info("This plan has no territory yet.")
    st.stop()
labels = {r.territory_id: f"{r.territory_id} · {r.territory_name or ''}"
          + (f" ({r.rep_name or r.rep_id})" if isinstance(r.rep_id, str) else "")
          for r in terr.itertuples(index=False)}
ids = list(labels)
params = st.query_params
if "review_territory" not in st.session_state \
        or st.session_state["review_territory"] not in ids:
    wanted = params.get("territory")
    st.session_state["review_territory"] = wanted if wanted in ids else ids[0]
if "review_drill" not in st.session_state:
    wanted = params.get("drill")
    st.session_state["review_drill"] = wanted if wanted in DRILL_LABELS else "segments"
territory = st.selectbox("Territory", ids, key="review_territory", format_func=labels.get)
st.query_params["territory"] = territory
st.caption(
    f"Plan {literal(plan.name)}, {ctx.period.start} to {ctx.period.end}, as of {ctx.as_of} "
    "(sidebar). Each line says its number and links to the numbers behind it; the rules "
    "are in docs/metrics.md, \"The territory review\". The team: every territory of the "
    "plan.")

stamp = str(ctx.cur.execute("SELECT updated_at FROM plans WHERE plan_id = ?",
                            [plan.plan_id]).fetchone()[0])
key = (ctx.db_key, ctx.data_version, plan.plan_id, stamp, str(ctx.period),
       ctx.as_of.isoformat())


@st.cache_data(show_spinner="Measuring the team...", max_entries=8)
def _team(key, settings_json, _ctx):
    """What every territory's review of this plan and period compares with (the plan's
    metrics from the cube the map page keeps)."""
    rows, _, _ = plan_metrics(_ctx)
    return swot.team_facts(_ctx.cur, _ctx.plan, _ctx.period, _ctx.as_of, _ctx.settings,
                           summary_rows=rows)


@st.cache_data(show_spinner="Reviewing the territory...", max_entries=32)
def _review(key, territory, settings_json, _ctx):
    return swot.territory_review(_ctx.cur, _ctx.plan, _ctx.period, _ctx.as_of,
                                 _ctx.settings, territory,
                                 team=_team(key, settings_json, _ctx))


@st.cache_data(show_spinner=False, max_entries=64)
def _drill(key, territory, what, arg, settings_json, _ctx):
    """A drill-down's table for one territory (`arg`: the cut or the segment), computed
    once per plan, period and data, not on every rerun of the page."""
    cur, plan, period = _ctx.cur, _ctx.plan, _ctx.period
    mine = pf.Scope(territories=(territory,))
    if what == "segments":
        return review.segment_analysis(cur, plan, period, arg, mine)
    if what == "funnel":  # one segment's: the territory's and the team's
        only = AccountFilter(segments=(arg,))
        return (funnel.funnel(cur, plan, period, pf.Scope(flt=only, territories=(territory,))),
                funnel.funnel(cur, plan, period, pf.Scope(flt=only)))
    if what == "strengths":
        return review.rep_strengths(cur, plan, period, territories=(territory,))
    if what == "products":
        return review.product_pairs(cur, plan, period, territories=(territory,))
    if what == "competitors":
        return swot.competitors(cur, plan, period, (territory,))
    if what == "slipping":
        team = _team(key, settings_json, _ctx)
        return swot.slipping_deals(cur, plan, _ctx.as_of, (territory,), team.big_deal)
    return review.top_accounts_profile(cur, plan, period, mine)


try:
    result = _review(key, territory, ctx.settings.to_json(), ctx)
except InputError as exc:
    st.error(literal(exc))
    st.stop()

rows = [st.columns(2), st.columns(2)]  # strengths | weaknesses, opportunities | threats
for i, (q, title) in enumerate(QUADRANT_TITLES.items()):
    with rows[i // 2][i % 2].container(border=True, key=f"review_{q}"):
        st.subheader(title)
        lines = result.quadrant(q)
        if not lines:
            st.caption("Nothing the data shows past the rules.")
        for line in lines:
            st.markdown(f"{literal(line.text)} · [evidence]({line.link()})",
                        help=literal(f"Rule: {line.rule}"))

def app_base() -> str:
    """The app's address as this browser reaches it, so the evidence links of a downloaded
    review open from the meeting notes ("" when unknown; only scheme, host and path kept,
    every other character percent-encoded)."""
    parts = urlsplit(st.context.url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return quote(urljoin(f"{parts.scheme}://{parts.netloc}{parts.path}", "."), safe=":/.-_~")


d1, d2, _ = st.columns([1, 1, 3])
d1.download_button("Review (Markdown)", result.markdown(app_base()).encode("utf-8"),
                   file_name=result.file_name("md"), mime="text/markdown",
                   key="review_md", on_click="ignore")
d2.download_button("Review (JSON)", result.json().encode("utf-8"),
                   file_name=result.file_name("json"), mime="application/json",
                   key="review_json", on_click="ignore")
if st.button("Build this territory's meeting pack (PDF)", key="review_pack_build"):
    from analytics import exports

    with st.spinner("Building..."):
        pack = exports.PlanPack(ctx.cur, plan, period=ctx.period, as_of=ctx.as_of,
                                settings=ctx.settings, reviews=(result,),
                                focus=(territory,))
        data, _, mime = exports.export_bytes(ctx.cur, plan, "pdf", period=ctx.period,
                                             as_of=ctx.as_of, settings=ctx.settings,
                                             pack=pack)
    st.session_state["review_pack"] = {"key": (key, territory), "data": data, "mime": mime}
built = st.session_state.get("review_pack")
if built and built["key"] == (key, territory):
    st.download_button("Download the meeting pack", built["data"],
                       file_name=result.file_name("pdf"), mime=built["mime"],
                       key="review_pack_download", type="primary", on_click="ignore")

st.divider()
st.subheader("Drill-down")
drill = st.segmented_control("Show", list(DRILL_LABELS), key="review_drill",
                             format_func=DRILL_LABELS.get) or "segments"
st.query_params["drill"] = drill
settings_json = ctx.settings.to_json()


def drill_table(what: str, arg=None):
    return _drill(key, territory, what, arg, settings_json, ctx)


if drill == "segments":
    by = st.segmented_control("By", list(BY_LABELS), key="review_by",
                              format_func=BY_LABELS.get, default="segment") or "segment"
    table = drill_table("segments", by)
    st.dataframe(table.drop(columns="by"), hide_index=True, key="review_segments",
                 column_config={"win_rate": st.column_config.NumberColumn(format="percent"),
                                "share_of_won": st.column_config.NumberColumn(
                                    format="percent"),
                                "growth": st.column_config.NumberColumn(format="percent"),
                                "sales_cycle_days": st.column_config.NumberColumn(
                                    "sales cycle (days)", format="%.0f")})
elif drill == "funnel":
    seg = st.selectbox("Segment", ["All segments", *filter_options(ctx)["segment"]],
                       key="review_funnel_segment",
                       help="The funnel of one segment's deals, the territory's against "
                       "the team's in the same segment")
    if seg == "All segments":
        mine_f, team_f = result.funnel, result.team_funnel
    else:
        mine_f, team_f = drill_table("funnel", seg)
    team = team_f.set_index("stage")
    shown = mine_f.assign(
        team_conversion_next=mine_f["stage"].map(team["conversion_next"]),
        team_days_median=mine_f["stage"].map(team["days_median"]))
    worst = shown.loc[shown["lost_here"].idxmax()] if shown["lost_here"].sum() else None
    st.caption(f"Source: {literal(shown['source'].iloc[0])}. The deals closed in the period; "
               "a deal reached a stage when its history holds it or a later one."
               + (f" Most deals are lost at {literal(worst['stage'])} "
                  f"({worst['lost_here']:,} of {shown['lost_here'].sum():,})."
                  if worst is not None else ""))
    fig = go.Figure(go.Funnel(y=shown["stage"], x=shown["reached"],
                              textinfo="value+percent initial"))
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 10, "b": 10})
    st.plotly_chart(fig, key="review_funnel_chart")
    st.dataframe(shown.drop(columns=["position", "source"]), hide_index=True,
                 key="review_funnel",
                 column_config={c: st.column_config.NumberColumn(format="percent") for c in
                                ("conversion_next", "conversion_won",
                                 "team_conversion_next")})
elif drill == "strengths":
    rep = terr.loc[terr["territory_id"] == territory, "rep_id"].iloc[0]
    table = _team(key, settings_json, ctx).strengths
    if isinstance(rep, str):
        st.write(f"**{literal(result.rep_name or rep)}**, all their closed deals, against "
                 "the team:")
        st.dataframe(table[table["rep_id"] == rep], hide_index=True,
                     key="review_rep_strengths")
    st.write("Every rep on this territory's accounts, against the team there:")
    st.dataframe(drill_table("strengths"), hide_index=True,
                 key="review_territory_strengths")
elif drill == "products":
    st.dataframe(drill_table("products"), hide_index=True, key="review_pairs")
elif drill == "competitors":
    st.dataframe(drill_table("competitors"), hide_index=True,
                 key="review_competitors",
                 column_config={"share_of_losses": st.column_config.NumberColumn(
                     format="percent")})
elif drill == "slipping":
    late, threshold = drill_table("slipping")
    st.caption(f"Open deals of at least {money(threshold)} whose close date is before "
               f"{ctx.as_of}: {len(late):,}, {money(late['amount'].sum())}.")
    st.dataframe(late, hide_index=True, key="review_slipping")
else:
    profile = drill_table("profile")
    won_share = profile.loc[profile["what"] == "share of won", "top"].iloc[0]
    st.caption(f"The top {review.TOP_N} accounts by won amount hold "
               f"{percent(won_share)} of the territory's won amount.")
    st.dataframe(profile, hide_index=True, key="review_profile")
st.caption("The same from the command line (docs/cli.md): python -m analytics review "
           f"--territory {literal(repr(territory))} --format md")

st.divider()
st.subheader("Rep fit: who should hold which territory")
st.caption(
    "For the whole plan: the assignment of today's reps to the territories with a rep that "
    "gives the highest expected won amount (each territory's deal flow by segment x the "
    "rep's win rate there, pulled towards the team's), less the share of the won amount "
    "of accounts that would change hands. A suggestion only; applying it is one edit that "
    "Undo takes back. Rules: docs/metrics.md, \"Rep fit\".")
f1, f2, _ = st.columns([1, 1, 2])
loss = f1.number_input("Handover loss", 0.0, 1.0, rep_fit.HANDOVER_LOSS, 0.05,
                       key="fit_loss", format="%.2f",
                       help="Share of a handed-over account's won amount counted as lost "
                       "with the relationship: 1 keeps every account with its rep")
shrink = f2.number_input("Shrink (deals)", 0, 100, review.MIN_CLOSED, 1, key="fit_shrink",
                         help="Each rep's win rate is pulled towards the team's by this "
                         "many deals, so a rep's few lucky deals do not count much")


@st.cache_data(show_spinner="Fitting reps to territories...", max_entries=16)
def _fit(key, loss, shrink, _ctx):
    return rep_fit.rep_fit(_ctx.cur, _ctx.plan, _ctx.period, handover_loss=loss,
                           shrink=shrink)


try:
    fit = _fit(key, float(loss), int(shrink), ctx)
except InputError as exc:
    st.info(literal(exc))
    st.stop()
h = fit.headline()
more = h["gain"] / h["expected_current"] if h["expected_current"] else None
flash = st.session_state.pop("fit_done", None)
if flash:
    st.success(flash)
st.write(f"**{h['changes']} of {h['territories']}** territories would change rep: expected "
         f"won {money(h['expected_current'])} today, {money(h['expected_suggested'])} "
         f"suggested ({percent(more)} more).")
st.dataframe(fit.table, hide_index=True, key="fit_table",
             column_order=["territory_id", "territory_name", "current_rep_name",
                           "suggested_rep_name", "gain", "expected_current",
                           "expected_suggested", "handover_accounts", "handover_won",
                           "deal_flow", "current_rep", "suggested_rep"])
can_edit = users.current().role in users.EDITORS
if st.button(f"Apply: give {h['changes']} territories their suggested rep (one edit)",
             key="fit_apply",
             disabled=not h["changes"] or not can_edit or plan.state == "snapshot",
             help=None if can_edit else "Only admins and managers change plans"):
    try:
        done = rep_fit.apply_rep_fit(ctx.store, plan, fit)
    except InputError as exc:
        st.error(literal(exc))
    else:  # the plan's new stamp makes every cached number above fresh
        st.session_state["fit_done"] = (f"{literal(str(done))}. Undo on the map page or "
                                        "`python -m analytics plan undo` takes it back.")
        st.rerun()
