"""The rep's week benchmark: routes for every territory of the default data, and the time of
a week with 300 due accounts.

    python benchmarks/bench_routes.py                # the default dataset
    python benchmarks/bench_routes.py --db PATH      # another database's active plan

Targets (issue 14): a week of 5 days over a territory with 300 due accounts in <= 5 s; the
routes at least 15% shorter than the nearest-neighbour order on the default data (the figure
per territory).

Printed for each territory of the active plan (the week from the working day after the as-of
date, 5 days, the saved settings): due accounts, visits routed, the routes' km and hours, the
same visits in nearest-neighbour order from home (the baseline, in the same run, with its own
time) and one trip per visit (home -> account -> home, the workload metric's assumption),
and the time of `routes.plan_week` end to end (the due accounts' query, the matrix, VROOM,
the tables). Then the 300-due case: the territory with the most due accounts, with the
visit frequencies raised until it has at least 300 (`visits_per_year` x 4 for every
segment), timed over `--runs`.

Speed is printed, never asserted. Results: stdout and benchmarks/out/bench_routes.{txt,json}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_S = 5.0
TARGET_SAVING = 0.15


def _demo_db(folder: Path) -> Path:
    from analytics import demo
    from analytics.store import Store

    path = folder / "demo.duckdb"
    with Store(path) as store:
        demo.build_demo(store)
    return path


def _nn_seconds(week) -> float:
    """Time of the baseline alone: the nearest-neighbour order of the same visits."""
    import numpy as np

    from analytics import routes

    visits = week.stops[week.stops["kind"] == "visit"]
    s = week.settings
    lat = np.r_[week.home[0], visits["lat"].to_numpy(float)]
    lon = np.r_[week.home[1], visits["lon"].to_numpy(float)]
    t = time.perf_counter()
    km = routes.road_km_matrix(lat, lon, s)
    seconds = np.rint(km / s.speed_kmh * 3600).astype(np.int64)
    service = np.rint(visits["visit_minutes"].to_numpy(float) * 60).astype(np.int64)
    routes.nearest_neighbour(seconds, service, round(s.day_hours * 3600),
                             list(range(1, len(lat))))
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, help="database (default: the demo data, built)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--days", type=int, default=5)
    args = ap.parse_args()

    from analytics import plans, routes
    from analytics.period import resolve
    from analytics.settings import load_settings
    from analytics.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or _demo_db(Path(tmp))
        with Store(db, read_only=True) as store:
            cur = store.cursor()
            settings = load_settings(store)
            _, as_of = resolve(store.get_meta("as_of"), None, None)
            plan = plans.get_plan(cur, None)
            start = routes.default_start(as_of)
            terr = plans.territories(cur, plan)
            rows = []
            for t in terr.loc[terr["rep_id"].notna(), "territory_id"]:
                t0 = time.perf_counter()
                try:
                    week = routes.plan_week(cur, plan, territory=t, start=start,
                                            days=args.days, settings=settings)
                except Exception as exc:  # noqa: BLE001 - a territory without a home
                    rows.append({"territory": t, "error": str(exc)})
                    continue
                took = time.perf_counter() - t0
                h = week.headline()
                rows.append({"territory": t, "due": h["due_accounts"], "visits": h["visits"],
                             "km": h["km"], "hours": h["hours"],
                             "nn_km": h["nearest_neighbour_km"],
                             "nn_days": h["nearest_neighbour_days"],
                             "saving_vs_nn": h["saving_vs_nearest_neighbour"],
                             "trip_km": h["one_trip_per_visit_km"],
                             "saving_vs_trips": h["saving_vs_one_trip_per_visit"],
                             "seconds": round(took, 3),
                             "nn_seconds": round(_nn_seconds(week), 4)})
            # the 300-due case: the territory with the most due accounts, more often visited
            ok = [r for r in rows if "error" not in r]
            busiest = max(ok, key=lambda r: r["due"])["territory"]
            factor, heavy = 1.0, settings
            while True:
                due = len(routes.due_accounts(cur, plan, [busiest],
                                              routes.working_days(start, args.days), heavy))
                if due >= 300 or factor >= 64:
                    break
                factor *= 2
                heavy = replace(settings, visits_per_year=settings.visits_per_year * factor,
                                visits_by_segment={k: v * factor for k, v in
                                                   settings.visits_by_segment.items()})
            times, week = [], None
            for _ in range(args.runs):
                t0 = time.perf_counter()
                week = routes.plan_week(cur, plan, territory=busiest, start=start,
                                        days=args.days, settings=heavy)
                times.append(time.perf_counter() - t0)

    total_km = sum(r["km"] for r in ok)
    total_nn = sum(r["nn_km"] for r in ok)
    met = sum(1 for r in ok if (r["saving_vs_nn"] or 0) >= TARGET_SAVING)
    lines = [f"Routes of a {args.days}-day week from {start} ({db if args.db else 'demo'}); "
             f"settings: day {settings.day_hours:g} h, visit {settings.visit_minutes:g} min, "
             f"road factor {settings.road_factor:g}, {settings.speed_kmh:g} km/h",
             f"{'territory':>9} {'due':>5} {'visits':>6} {'km':>8} {'NN km':>8} "
             f"{'saved':>7} {'trips km':>9} {'saved':>7} {'s':>6} {'NN s':>7}"]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['territory']:>9} {r['error']}")
            continue
        lines.append(f"{r['territory']:>9} {r['due']:>5} {r['visits']:>6} {r['km']:>8.0f} "
                     f"{r['nn_km']:>8.0f} {(r['saving_vs_nn'] or 0):>7.1%} "
                     f"{r['trip_km']:>9.0f} {(r['saving_vs_trips'] or 0):>7.1%} "
                     f"{r['seconds']:>6.2f} {r['nn_seconds']:>7.4f}")
    lines += [
        f"all territories: routes {total_km:,.0f} km, nearest-neighbour order "
        f"{total_nn:,.0f} km: {1 - total_km / total_nn:.1%} shorter (target >= "
        f"{TARGET_SAVING:.0%}); {met} of {len(ok)} territories at or above the target",
        f"300 due: territory {busiest}, visit frequencies x {factor:g}: "
        f"{week.due} due ({min(week.due, routes.MAX_CANDIDATES)} considered), "
        f"{week.visits} visits, {week.km:,.0f} km vs nearest-neighbour {week.nn_km:,.0f} km "
        f"({(week.saving_vs_nearest or 0):.1%}); plan_week median "
        f"{statistics.median(times):.2f} s of {args.runs} (max {max(times):.2f} s; "
        f"target <= {TARGET_S:g} s)",
    ]
    text = "\n".join(lines)
    print(text)
    OUT.mkdir(exist_ok=True)
    (OUT / "bench_routes.txt").write_text(text + "\n", encoding="utf-8")
    (OUT / "bench_routes.json").write_text(json.dumps({
        "start": str(start), "days": args.days, "territories": rows,
        "total_km": total_km, "total_nn_km": total_nn,
        "saving_vs_nn": 1 - total_km / total_nn, "territories_at_target": met,
        "heavy": {"territory": busiest, "factor": factor, "due": week.due,
                  "visits": week.visits, "seconds": times, "km": week.km,
                  "nn_km": week.nn_km},
    }, indent=1, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
