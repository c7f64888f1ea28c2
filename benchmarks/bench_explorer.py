"""How long the Performance and Coverage pages' computations take, against pandas.

    python benchmarks/bench_explorer.py --db benchmarks/out/<dataset>/bench.duckdb [--repeat 3]

Times, on the database's active plan (or --plan), each engine call the two pages make:
area tables at every level (no filter and a segment filter), a ranking, the monthly trend,
the segment breakdown, a drill-down, and the per-account coverage; and, as the baseline in
the same run, the same territory table computed with pandas from the tables read into
memory (the naive way: read everything, join, group). Prints medians; the JSON of the run
goes to benchmarks/out/bench_explorer_<label>.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analytics import coverage, performance, plans  # noqa: E402
from analytics.cube import AccountFilter  # noqa: E402
from analytics.period import Period  # noqa: E402
from analytics.settings import load_settings  # noqa: E402
from analytics.store import Store  # noqa: E402


def _time(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def _naive_territory_table(cur, plan, period: Period, segment: str | None):
    """Read accounts, deals and the plan into pandas and group: the baseline."""
    acc = cur.execute(f"SELECT account_id, segment, potential, "
                      f"{plan.unit.unit_id_sql('a')} AS unit_id FROM accounts a").df()
    sales = cur.execute("SELECT account_id, amount, stage, close_date FROM sales").df()
    assign = plans.assignment(cur, plan)
    pins = cur.execute("SELECT account_id, territory_id FROM account_overrides "
                       "WHERE plan_id = ?", [plan.plan_id]).df()
    if segment:
        acc = acc[acc["segment"] == segment]
    acc = acc.merge(assign, on="unit_id", how="left")
    if len(pins):
        pinned = acc["account_id"].map(dict(zip(pins["account_id"], pins["territory_id"],
                                                strict=True)))
        acc["territory_id"] = pinned.fillna(acc["territory_id"])
    close = sales["close_date"]
    s = sales[(close >= str(period.start)) & (close <= str(period.end))]
    s = s.merge(acc[["account_id", "territory_id"]], on="account_id")
    won = s[s["stage"] == "won"].groupby("territory_id")["amount"].agg(
        won="sum", won_deals="count")
    lost = s[s["stage"] == "lost"].groupby("territory_id")["amount"].agg(
        lost="sum", lost_deals="count")
    base = acc.groupby("territory_id").agg(accounts=("account_id", "size"),
                                           potential=("potential", "sum"))
    return base.join(won).join(lost)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--plan", help="default: the active plan")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--period", default=None, help="START:END or a year (default: as-of year)")
    args = ap.parse_args(argv)
    with Store(args.db, read_only=True) as store:
        cur = store.cursor()
        plan = plans.get_plan(cur, args.plan)
        as_of = dt.date.fromisoformat(store.get_meta("as_of") or dt.date.today().isoformat())
        period = Period.parse(args.period) if args.period else Period.year(as_of.year)
        settings = load_settings(store)
        n_acc = cur.execute("SELECT count(*) FROM accounts").fetchone()[0]
        n_deals = cur.execute("SELECT count(*) FROM sales").fetchone()[0]
        segment = cur.execute("SELECT segment FROM accounts WHERE segment IS NOT NULL "
                              "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").fetchone()
        segment = segment[0] if segment else None
        seg_scope = performance.Scope(AccountFilter(segments=(segment,) if segment else ()))
        res = {}
        print(f"{n_acc:,} accounts, {n_deals:,} deals; plan {plan.name!r} ({plan.unit}); "
              f"period {period}; median of {args.repeat}")
        for level in ("territory", "rep", "unit:h3:6", "unit:county"):
            lv = performance.Level.parse(level)
            t, table = _time(lambda lv=lv: performance.area_table(cur, plan, period, as_of, lv),
                             args.repeat)
            t2, _ = _time(lambda lv=lv: performance.area_table(cur, plan, period, as_of, lv,
                                                               seg_scope), args.repeat)
            tr, _ = _time(lambda table=table: performance.rank(table, "win_rate_count",
                                                               bottom=10), args.repeat)
            res[level] = {"areas": len(table), "all_s": t, "segment_s": t2, "rank_s": tr}
            print(f"  area table {level:<12} {len(table):>7,} areas: {t:6.3f} s, "
                  f"with a segment filter {t2:6.3f} s, ranking {tr * 1000:5.1f} ms")
        lv = performance.Level("territory")
        first = res["territory"]
        for name, fn in (
            ("monthly trend", lambda: performance.monthly_trend(cur, plan, period)),
            ("segment breakdown", lambda: performance.breakdown(cur, plan, period, as_of,
                                                                "segment")),
            ("drill-down accounts", lambda: performance.area_accounts(
                cur, plan, period, lv, plans.territories(cur, plan)["territory_id"].iloc[0])),
            ("drill-down deals", lambda: performance.area_deals(
                cur, plan, period, lv, plans.territories(cur, plan)["territory_id"].iloc[0])),
            ("coverage per account", lambda: coverage.account_coverage(cur, plan, as_of,
                                                                       settings)),
        ):
            t, _ = _time(fn, args.repeat)
            res[name] = t
            print(f"  {name:<22} {t:6.3f} s")
        tn, _ = _time(lambda: _naive_territory_table(cur, plan, period, None), args.repeat)
        tns, _ = _time(lambda: _naive_territory_table(cur, plan, period, segment),
                       args.repeat)
        res["naive_territory_s"], res["naive_segment_s"] = tn, tns
        print(f"  baseline: pandas territory table {tn:6.3f} s, with a segment filter "
              f"{tns:6.3f} s -> engine {tn / first['all_s']:.1f}x / "
              f"{tns / first['segment_s']:.1f}x faster")
    out = ROOT / "benchmarks" / "out" / f"bench_explorer_{n_acc}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"accounts": n_acc, "deals": n_deals, "plan": plan.name,
                               "unit": str(plan.unit), "results": res}, indent=1))
    print(f"written {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
