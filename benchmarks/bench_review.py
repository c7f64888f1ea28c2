"""The territory review benchmark: a territory's review on the default data and over 1M
accounts / 10M deals with their stage history.

    python benchmarks/bench_review.py                       # the default data only
    python benchmarks/bench_review.py --big PATH            # and a copy of a big database
                                                            # (`make bench-map` builds one)

Targets (issue 15): the review page and a territory's review section in <= 1 s on the
default data; a review over 1M accounts / 10M deals in <= 5 s.

Printed: `swot.territory_review` end to end for a few territories, cold (what the team is
measured by, `swot.team_facts`, computed in the call) and warm (passed in, as the page
caches it per plan and period), `team_facts` alone, and the team funnel alone against a
baseline in the same run: the same funnel in plain pandas over the history read out of
DuckDB. The big database gets the
review's optional fields and a stage history written in SQL first (created date, lead
source, lost-to, 4-6 stage changes a deal: about 45M rows for 10M deals); that time is
printed too. Speed is printed, never asserted. Results: stdout and
benchmarks/out/bench_review.{txt,json}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from analytics.stage_history import (  # noqa: E402
    NEXT_CHANGE,
    refresh_deal_stages,
    store_stage_order,
)

STAGES = ["Prospecting", "Qualification", "Needs Analysis", "Proposal/Price Quote",
          "Negotiation/Review"]


def add_review_fields(cur) -> float:
    """Created date, lead source, lost-to and a stage history for every deal, in SQL."""
    start = time.perf_counter()
    cur.execute("""UPDATE sales SET
        created_date = close_date - CAST(7 + hash(opportunity_id) % 150 AS INTEGER),
        lead_source = ['Referral', 'Web', 'Trade show', 'Outbound', 'Partner']
                      [1 + CAST(hash(opportunity_id || 's') % 5 AS BIGINT)],
        lost_to = CASE WHEN stage = 'lost' THEN ['Halvard Medical', 'Norcross Devices',
                  'Pellucid Health', '(no decision)']
                  [1 + CAST(hash(opportunity_id || 'c') % 4 AS BIGINT)] END""")
    stages = ", ".join(f"({k}, '{s}')" for k, s in enumerate(STAGES))
    cur.execute(f"""CREATE TEMP TABLE changes AS
        SELECT s.opportunity_id, st.name AS stage, 'open' AS stage_class,
               s.created_date + CAST(st.k * (s.close_date - s.created_date) / 6 AS INTEGER)
               AS changed_at
        FROM sales s, (VALUES {stages}) st(k, name)
        WHERE st.k <= CASE WHEN s.stage = 'lost' THEN hash(s.opportunity_id) % 5 ELSE 4 END
        UNION ALL
        SELECT opportunity_id, CASE stage WHEN 'won' THEN 'Closed Won' ELSE 'Closed Lost'
               END, stage, close_date
        FROM sales WHERE stage IN ('won', 'lost')""")
    # as the importer writes them: each change's days to the next, the stage order kept
    cur.execute(f"INSERT INTO stage_history BY NAME SELECT *, {NEXT_CHANGE} - changed_at "
                "AS days_in_stage FROM changes")
    refresh_deal_stages(cur)
    store_stage_order(cur)
    return time.perf_counter() - start


def pandas_funnel(cur, period) -> float:
    """The baseline: the team funnel's reached counts in plain pandas (history and closed
    deals read out of DuckDB, the furthest stage per deal by a groupby)."""
    start = time.perf_counter()
    closed = cur.execute("SELECT opportunity_id, stage FROM sales WHERE stage IN "
                         "('won', 'lost') AND close_date BETWEEN ? AND ?",
                         [period.start, period.end]).df()
    hist = cur.execute("SELECT opportunity_id, stage FROM stage_history "
                       "WHERE stage_class = 'open'").df()
    rank = {s: i for i, s in enumerate(STAGES)}
    far = hist.assign(p=hist["stage"].map(rank)).groupby("opportunity_id")["p"].max()
    f = far.reindex(closed["opportunity_id"]).fillna(0).to_numpy()
    won = (closed["stage"] == "won").to_numpy()
    [int(((f >= k) | won).sum()) for k in range(len(STAGES))]
    return time.perf_counter() - start


def measure(db: Path, label: str, territories: list[str], runs: int) -> dict:
    from analytics import funnel, plans, swot
    from analytics.period import Period
    from analytics.settings import load_settings
    from analytics.store import Store

    with Store(db, read_only=True) as store:
        cur = store.cursor()
        plan = plans.get_plan(cur, None)
        as_of = dt.date.fromisoformat(store.get_meta("as_of"))
        period = Period.year(as_of.year)
        settings = load_settings(store)
        counts = cur.execute("SELECT (SELECT count(*) FROM accounts), (SELECT count(*) FROM "
                             "sales), (SELECT count(*) FROM stage_history)").fetchone()
        terr = plans.territories(cur, plan)["territory_id"].tolist()
        picked = [t for t in territories if t in terr] or terr[:3]
        out = {"label": label, "accounts": counts[0], "deals": counts[1],
               "stage_changes": counts[2], "territories": {}}
        t0 = time.perf_counter()
        funnel.funnel(cur, plan, period)
        out["team_funnel_s"] = time.perf_counter() - t0
        out["pandas_funnel_s"] = pandas_funnel(cur, period)
        t0 = time.perf_counter()
        team_facts = swot.team_facts(cur, plan, period, as_of, settings)
        out["team_facts_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        swot.team_facts(cur, plan, period, as_of, settings,
                        summary_rows=team_facts.summary_rows)
        out["team_facts_cube_kept_s"] = time.perf_counter() - t0
        for t in picked:
            cold, warm = [], []
            for _ in range(runs):
                t0 = time.perf_counter()
                review = swot.territory_review(cur, plan, period, as_of, settings, t)
                cold.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                swot.territory_review(cur, plan, period, as_of, settings, t,
                                      team=team_facts)
                warm.append(time.perf_counter() - t0)
            out["territories"][t] = {"cold_s": statistics.median(cold),
                                     "warm_s": statistics.median(warm),
                                     "lines": len(review.lines)}
    return out


def report(result: dict) -> list[str]:
    lines = [f"{result['label']}: {result['accounts']:,} accounts, {result['deals']:,} deals, "
             f"{result['stage_changes']:,} stage changes",
             f"  team funnel {result['team_funnel_s']:.2f} s (pandas baseline "
             f"{result['pandas_funnel_s']:.2f} s); what every review compares with "
             f"(team_facts: plan metrics, team funnel, counts, strengths, areas) "
             f"{result['team_facts_s']:.2f} s, {result['team_facts_cube_kept_s']:.2f} s with "
             "the plan's metrics kept (the app keeps the cube across pages)"]
    for t, r in result["territories"].items():
        lines.append(f"  {t}: review {r['warm_s']:.2f} s with the team's facts cached (the "
                     f"page, a pack of several), {r['cold_s']:.2f} s from nothing (CLI); "
                     f"{r['lines']} lines")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--big", type=Path, help="a big database to copy and review (its "
                   "deals get the review fields and a stage history first)")
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    from analytics import demo
    from analytics.store import Store

    results, text = [], []
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "demo.duckdb"
        with Store(small) as s:
            demo.build_demo(s)
        results.append(measure(small, "default data", ["T07", "T20", "T33"], args.runs))
        text += report(results[-1])
        print("\n".join(text), flush=True)
        if args.big:
            big = Path(tmp) / "big.duckdb"
            shutil.copy(args.big, big)
            with Store(big) as s:
                cur = s.cursor()
                cur.execute("DELETE FROM stage_history")
                took = add_review_fields(cur)
            text.append(f"big: review fields and stage history written in {took:.1f} s")
            print(text[-1], flush=True)
            results.append(measure(big, "1M accounts / 10M deals", ["T01", "T07", "T20"],
                                   args.runs))
            results[-1]["prepare_s"] = took
            text += report(results[-1])
            print("\n".join(report(results[-1])), flush=True)
    OUT.mkdir(exist_ok=True)
    (OUT / "bench_review.txt").write_text("\n".join(text) + "\n")
    (OUT / "bench_review.json").write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
