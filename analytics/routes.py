"""The rep's week: the visits that are due, ordered into day routes from the rep's home.

Which accounts are due (docs/metrics.md, "The rep's week"): an account is visited
`visits_per_year` times a year (its own, else its segment's, else the default:
`catalog.visits_sql`), so its next visit is due `365 / visits_per_year` days after its
`last_activity_date`; never touched, it is due now. It is due this week when that date is on
or before the week's last working day. Accounts with 0 visits a year are never due.

When not all fit, the routes keep the high-potential, long-unvisited ones: each due account
gets a priority from 0 to 100, half its potential's rank and half how overdue it is (days
since its last touch over its visit interval; never touched counts as most overdue), both
as percentile ranks among the due accounts.

The routes come from VROOM (`pyvroom`), a vehicle routing solver: one vehicle per working day,
leaving the rep's home at `day_start_hour` and back within `day_hours`, each visit
`visit_minutes` long, higher priorities kept first, then the least driving. Distances are the
travel metric's: great-circle km x `road_factor`, driven at `speed_kmh`; no road network ships
with the app, so a route is an order of visits and an estimate of the driving, not
turn-by-turn directions (a phone or car navigator does that from the GPX file).

What routing buys is measured on the same visits two other ways: in nearest-neighbour order
from home (the next stop is always the nearest that still fits the day; a new day when none
does), and one trip per visit (home -> account -> home, what the workload metric assumes).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analytics import catalog
from analytics.errors import InputError
from analytics.metrics import haversine_km
from analytics.plans import Plan, territories
from analytics.resolution import resolved_cte
from analytics.settings import Settings

MAX_DAYS = 10
"""Working days one plan covers at most (two weeks)."""
MAX_CANDIDATES = 400
"""Due accounts handed to the solver at most, the highest priorities first: far more than
fit a week (a day of 8 hours holds about ten 45-minute visits), and a solve stays within a
second or two."""
DAY_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000",
              "#F0E442", "#882255", "#117733")
"""One colour per day (Okabe-Ito, then Tol): colour-blind safe."""


def day_color(day: int) -> str:
    """The colour of day `day` (1-based) on the map, in the pack and the legend."""
    return DAY_COLORS[(day - 1) % len(DAY_COLORS)]
STOP_COLUMNS = ["day", "date", "stop", "kind", "account_id", "name", "segment",
                "postal_code", "lat", "lon", "arrive", "depart", "leg_km", "leg_minutes",
                "visit_minutes", "potential", "last_activity_date", "due_date", "priority",
                "placed_by"]
DAY_COLUMNS = ["day", "date", "visits", "leave", "back", "hours", "drive_hours",
               "visit_hours", "km"]


@dataclass
class Week:
    """The routes of one rep's week, and what they save against simpler orders."""

    plan: str
    territory_ids: list[str]
    rep_id: str
    rep_name: str
    home: tuple[float, float]
    dates: list[dt.date]
    settings: Settings
    stops: pd.DataFrame
    """STOP_COLUMNS: per day the home start (stop 0), the visits (1..n), home again."""
    days: pd.DataFrame
    """DAY_COLUMNS, one row per working day (a day with no visit has 0 of everything)."""
    unplanned: pd.DataFrame
    """The due accounts not in the routes, with `reason`."""
    due: int
    km: float
    hours: float
    nn_km: float
    nn_hours: float
    nn_days: int
    trip_km: float
    trip_hours: float
    solve_seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def visits(self) -> int:
        return int((self.stops["kind"] == "visit").sum())

    @property
    def saving_vs_nearest(self) -> float | None:
        """1 - routed km / nearest-neighbour km (None: nothing to compare)."""
        return 1 - self.km / self.nn_km if self.nn_km > 0 else None

    @property
    def saving_vs_trips(self) -> float | None:
        """1 - routed km / one-trip-per-visit km."""
        return 1 - self.km / self.trip_km if self.trip_km > 0 else None

    def day_stops(self, day: int | None = None) -> pd.DataFrame:
        """The stops of one day (1-based), or of the week."""
        return self.stops if day is None else self.stops[self.stops["day"] == day]

    def headline(self) -> dict:
        """The week in numbers (the JSON export's `week`, the page's metrics)."""
        return {
            "plan": self.plan, "territories": list(self.territory_ids), "rep_id": self.rep_id,
            "rep_name": self.rep_name, "home_lat": self.home[0], "home_lon": self.home[1],
            "first_day": self.dates[0].isoformat(), "last_day": self.dates[-1].isoformat(),
            "days": len(self.dates), "due_accounts": self.due, "visits": self.visits,
            "not_planned": len(self.unplanned), "km": round(self.km, 1),
            "hours": round(self.hours, 2), "nearest_neighbour_km": round(self.nn_km, 1),
            "nearest_neighbour_hours": round(self.nn_hours, 2),
            "nearest_neighbour_days": self.nn_days,
            "saving_vs_nearest_neighbour": _round(self.saving_vs_nearest),
            "one_trip_per_visit_km": round(self.trip_km, 1),
            "one_trip_per_visit_hours": round(self.trip_hours, 2),
            "saving_vs_one_trip_per_visit": _round(self.saving_vs_trips),
            "day_hours": self.settings.day_hours, "visit_minutes": self.settings.visit_minutes,
            "road_factor": self.settings.road_factor, "speed_kmh": self.settings.speed_kmh,
            "solve_seconds": round(self.solve_seconds, 3),
        }


def _round(v: float | None, digits: int = 4) -> float | None:
    return None if v is None else round(v, digits)


# --------------------------------------------------------------------------------------
# days and due accounts
# --------------------------------------------------------------------------------------
def working_days(start: dt.date, days: int) -> list[dt.date]:
    """`days` working days (Monday to Friday) from `start` (a weekend start moves to Monday)."""
    if not 1 <= days <= MAX_DAYS:
        raise InputError(f"days: from 1 to {MAX_DAYS} working days, not {days}")
    out, d = [], start
    while len(out) < days:
        if d.weekday() < 5:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def default_start(as_of: dt.date) -> dt.date:
    """The first working day after the as-of date."""
    return working_days(as_of + dt.timedelta(days=1), 1)[0]


def priority(potential, overdue) -> np.ndarray:
    """0..100: half the potential's percentile rank, half the overdue ratio's (NaN overdue:
    never touched, ranked most overdue), among the accounts given."""
    pot = pd.Series(np.asarray(potential, float))
    due = pd.Series(np.asarray(overdue, float)).fillna(np.inf)
    if not len(pot):
        return np.zeros(0, dtype=int)
    score = 0.5 * pot.rank(pct=True, method="average") + \
        0.5 * due.rank(pct=True, method="average")
    return np.clip(np.rint(score.to_numpy() * 100), 0, 100).astype(int)


def due_accounts(cur, plan: Plan, territory_ids: list[str], dates: list[dt.date],
                 settings: Settings) -> pd.DataFrame:
    """The accounts of these territories due a visit by the last of `dates`, with their
    visit interval, due date, overdue ratio and priority (highest first)."""
    cte, params = resolved_cte(plan)
    visits, visit_params = catalog.visits_sql(settings)
    minutes, minute_params = catalog.visit_minutes_sql(settings)
    frame = cur.execute(
        f"""WITH {cte}
            SELECT a.account_id, a.name, a.segment, a.postal_code, a.lat, a.lon, a.potential,
                   a.last_activity_date, a.placed_by, {visits} AS visits,
                   {minutes} AS visit_minutes
            FROM resolved a
            WHERE a.territory_id IN (SELECT unnest(?::VARCHAR[]))
            ORDER BY a.account_id""",
        [*params, *visit_params, *minute_params, list(territory_ids)]).df()
    frame = frame[frame["visits"] > 0].copy()
    interval = 365.0 / frame["visits"].to_numpy(float)
    last = pd.to_datetime(frame["last_activity_date"])
    frame["interval_days"] = interval
    # due on the first whole day at least `interval` days after the last touch
    due_date = last + pd.to_timedelta(np.ceil(interval), unit="D")
    frame["due_date"] = due_date.dt.date
    end = pd.Timestamp(dates[-1])
    frame = frame[(last.isna() | (due_date <= end)).to_numpy()].copy()
    since = (end - pd.to_datetime(frame["last_activity_date"])).dt.days.to_numpy(float)
    frame["overdue"] = since / frame["interval_days"].to_numpy(float)
    frame["priority"] = priority(frame["potential"], frame["overdue"])
    frame["last_activity_date"] = pd.to_datetime(frame["last_activity_date"]).dt.date
    return frame.sort_values(["priority", "potential", "account_id"],
                             ascending=[False, False, True]).reset_index(drop=True)


# --------------------------------------------------------------------------------------
# the week
# --------------------------------------------------------------------------------------
def week_territories(cur, plan: Plan, *, territory: str | None = None,
                     rep: str | None = None) -> tuple[list[str], pd.Series]:
    """The territories of one territory's or one rep's week and the rep row (with home)."""
    terr = territories(cur, plan)
    if territory is not None:
        rows = terr[terr["territory_id"] == territory]
        if rows.empty:
            raise InputError(f"territory {territory!r} is not in plan {plan.name!r}")
        row = rows.iloc[0]
        if not isinstance(row["rep_id"], str) or not row["rep_id"]:
            raise InputError(f"territory {territory!r} has no rep: a week is planned from "
                             "a rep's home (give the territory a rep on the Map page)")
        rep = row["rep_id"]
        ids = [territory]
    else:
        if not rep:
            raise InputError("name a territory or a rep")
        rows = terr[terr["rep_id"] == rep]
        if rows.empty:
            raise InputError(f"rep {rep!r} has no territory in plan {plan.name!r}")
        ids = rows["territory_id"].tolist()
        row = rows.iloc[0]
    if pd.isna(row["home_lat"]) or pd.isna(row["home_lon"]):
        raise InputError(f"rep {rep!r} has no home location: add home_lat and home_lon to "
                         "the reps file and import it again")
    return ids, row


def plan_week(cur, plan: Plan, *, territory: str | None = None, rep: str | None = None,
              start: dt.date, days: int = 5, settings: Settings) -> Week:
    """Route the due visits of one territory (or all of one rep's) over `days` working
    days from `start`."""
    settings.check()
    dates = working_days(start, days)
    ids, rep_row = week_territories(cur, plan, territory=territory, rep=rep)
    home = (float(rep_row["home_lat"]), float(rep_row["home_lon"]))
    due = due_accounts(cur, plan, ids, dates, settings)
    notes = []
    considered = due.head(MAX_CANDIDATES)
    left_out = due.iloc[MAX_CANDIDATES:].assign(
        reason=f"lower priority than the {MAX_CANDIDATES} accounts considered")
    if len(left_out):
        notes.append(f"{len(due)} accounts are due; the {MAX_CANDIDATES} with the highest "
                     "priority were considered")
    t0 = time.perf_counter()
    lat = np.r_[home[0], considered["lat"].to_numpy(float)]
    lon = np.r_[home[1], considered["lon"].to_numpy(float)]
    road_km = road_km_matrix(lat, lon, settings)
    seconds = np.rint(road_km / settings.speed_kmh * 3600).astype(np.int64)
    # each visit's length: its segment's minutes, else the setting
    service = np.rint(considered["visit_minutes"].to_numpy(float) * 60).astype(np.int64)
    limit = round(settings.day_hours * 3600)
    routes, unassigned = solve(seconds, service, limit, len(dates),
                               considered["priority"].to_numpy(int))
    solve_seconds = time.perf_counter() - t0
    too_far = seconds[0, 1:] + seconds[1:, 0] + service > limit
    missed = [j - 1 for j in sorted(unassigned)]  # matrix point j is considered row j - 1
    unplanned = considered.iloc[missed].assign(reason=np.where(
        too_far[missed],
        "too far for one day: out, the visit and back exceed the day",
        "did not fit the week: lower priority or off the way"))
    unplanned = pd.concat([unplanned, left_out], ignore_index=True)
    stops, day_rows = _tables(routes, considered, home, dates, road_km, seconds, service,
                              settings, rep_row)
    visited = sorted(j for r in routes for j in r)
    nn = nearest_neighbour(seconds, service, limit, visited)
    nn_km = float(sum(_route_km(r, road_km) for r in nn))
    nn_hours = float(sum(_route_seconds(r, seconds, service) for r in nn)) / 3600
    trip_km = float(2 * road_km[0, visited].sum()) if visited else 0.0
    trip_hours = trip_km / settings.speed_kmh + float(
        considered["visit_minutes"].to_numpy(float)[[j - 1 for j in visited]].sum()) / 60
    return Week(
        plan=plan.name, territory_ids=ids, rep_id=str(rep_row["rep_id"]),
        rep_name=str(rep_row["rep_name"]) if isinstance(rep_row["rep_name"], str)
        else str(rep_row["rep_id"]),
        home=home, dates=dates, settings=settings, stops=stops, days=day_rows,
        unplanned=unplanned.drop(columns=["overdue"], errors="ignore"), due=len(due),
        km=float(day_rows["km"].sum()), hours=float(day_rows["hours"].sum()),
        nn_km=nn_km, nn_hours=nn_hours, nn_days=len(nn), trip_km=trip_km,
        trip_hours=trip_hours, solve_seconds=solve_seconds, notes=notes)


def road_km_matrix(lat, lon, settings: Settings) -> np.ndarray:
    """Road km between every pair of points: great-circle km x road factor."""
    lat, lon = np.asarray(lat, float), np.asarray(lon, float)
    return haversine_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :]) * \
        settings.road_factor


def service_of(service, n: int) -> np.ndarray:
    """Visit seconds of matrix points 0..n (0: home, no visit) from one length for all or
    one per point 1..n."""
    per = np.broadcast_to(np.asarray(service, dtype=np.int64), (n,))
    return np.r_[0, per].astype(np.int64)


def solve(seconds: np.ndarray, service, limit: int, days: int,
          priorities: np.ndarray) -> tuple[list[list[int]], set[int]]:
    """VROOM on a duration matrix (point 0: home): per day the matrix points visited in
    order, and the points left out. `service`: the visit seconds, one for all or one per
    point 1..n."""
    import vroom

    n = len(seconds) - 1
    service = service_of(service, n)
    if n == 0:
        return [[] for _ in range(days)], set()
    problem = vroom.Input()
    problem.set_durations_matrix("car", seconds.astype(np.uint32))
    for d in range(days):
        problem.add_vehicle(vroom.Vehicle(d, start=0, end=0,
                                          time_window=vroom.TimeWindow(0, limit)))
    for j in range(1, n + 1):
        problem.add_job(vroom.Job(j, location=j, default_service=int(service[j]),
                                  priority=int(priorities[j - 1])))
    solution = problem.solve(exploration_level=5, nb_threads=2)
    steps = solution.routes
    jobs = steps[steps["type"] == "job"]
    routes = [jobs.loc[jobs["vehicle_id"] == d, "location_index"].astype(int).tolist()
              for d in range(days)]
    done = {j for r in routes for j in r}
    return routes, set(range(1, n + 1)) - done


def nearest_neighbour(seconds: np.ndarray, service, limit: int,
                      points: list[int]) -> list[list[int]]:
    """The baseline order: from home, always the nearest point that can still be visited
    and home reached within the day; a new day when none can. Points that fit no day alone
    are left out. `service` as for `solve`."""
    service = service_of(service, len(seconds) - 1)
    left = np.zeros(len(seconds), dtype=bool)
    left[list(points)] = True
    alone = seconds[0] + service + seconds[:, 0] <= limit
    left &= alone
    days = []
    while left.any():
        pos, used, route = 0, 0, []
        while True:
            fits = left & (used + seconds[pos] + service + seconds[:, 0] <= limit)
            if not fits.any():
                break
            cand = np.flatnonzero(fits)
            j = int(cand[np.argmin(seconds[pos, cand])])
            used += int(seconds[pos, j]) + int(service[j])
            route.append(j)
            left[j] = False
            pos = j
        days.append(route)
    return days


def _route_km(route: list[int], road_km: np.ndarray) -> float:
    path = [0, *route, 0]
    return float(sum(road_km[a, b] for a, b in itertools.pairwise(path))) if route else 0.0


def _route_seconds(route: list[int], seconds: np.ndarray, service) -> int:
    path = [0, *route, 0]
    service = service_of(service, len(seconds) - 1)
    return int(sum(seconds[a, b] for a, b in itertools.pairwise(path))) + \
        int(service[route].sum()) if route else 0


def clock(start_hour: float, seconds: float) -> str:
    """HH:MM of `seconds` after `start_hour` (past midnight shown as +1d)."""
    minutes = round(start_hour * 60 + seconds / 60)
    days, minutes = divmod(minutes, 24 * 60)
    text = f"{minutes // 60:02d}:{minutes % 60:02d}"
    return text + (f" (+{days}d)" if days else "")


def _tables(routes, considered: pd.DataFrame, home, dates, road_km, seconds, service,
            settings: Settings, rep_row) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows, day_rows = [], []
    rep_name = rep_row["rep_name"] if isinstance(rep_row["rep_name"], str) else rep_row[
        "rep_id"]
    home_row = {"kind": "home", "account_id": None, "name": f"Home of {rep_name}",
                "segment": None, "postal_code": None, "lat": home[0], "lon": home[1],
                "visit_minutes": 0.0, "potential": None, "last_activity_date": None,
                "due_date": None, "priority": None, "placed_by": None}
    start = settings.day_start_hour
    service = service_of(service, len(considered))
    for d, (date, route) in enumerate(zip(dates, routes, strict=True), start=1):
        t, km, drive, visiting = 0, 0.0, 0, 0
        rows.append({**home_row, "day": d, "date": date, "stop": 0, "arrive": None,
                     "depart": clock(start, 0), "leg_km": 0.0, "leg_minutes": 0.0})
        pos = 0
        for i, j in enumerate(route, start=1):
            acc = considered.iloc[j - 1]
            t += int(seconds[pos, j])
            drive += int(seconds[pos, j])
            km += float(road_km[pos, j])
            rows.append({
                "day": d, "date": date, "stop": i, "kind": "visit",
                "account_id": acc["account_id"], "name": acc["name"],
                "segment": acc["segment"], "postal_code": acc["postal_code"],
                "lat": float(acc["lat"]), "lon": float(acc["lon"]),
                "arrive": clock(start, t), "depart": clock(start, t + int(service[j])),
                "leg_km": round(float(road_km[pos, j]), 2),
                "leg_minutes": round(float(seconds[pos, j]) / 60, 1),
                "visit_minutes": float(service[j]) / 60, "potential": float(acc["potential"]),
                "last_activity_date": acc["last_activity_date"], "due_date": acc["due_date"],
                "priority": int(acc["priority"]), "placed_by": acc["placed_by"]})
            t += int(service[j])
            visiting += int(service[j])
            pos = j
        if route:
            t += int(seconds[pos, 0])
            drive += int(seconds[pos, 0])
            km += float(road_km[pos, 0])
            rows.append({**home_row, "day": d, "date": date, "stop": len(route) + 1,
                         "arrive": clock(start, t), "depart": None,
                         "leg_km": round(float(road_km[pos, 0]), 2),
                         "leg_minutes": round(float(seconds[pos, 0]) / 60, 1)})
        day_rows.append({
            "day": d, "date": date, "visits": len(route),
            "leave": clock(start, 0) if route else None,
            "back": clock(start, t) if route else None, "hours": t / 3600,
            "drive_hours": drive / 3600, "visit_hours": visiting / 3600,
            "km": km})
    stops = pd.DataFrame(rows, columns=STOP_COLUMNS)
    stops["priority"] = stops["priority"].astype("Int64")
    return stops, pd.DataFrame(day_rows, columns=DAY_COLUMNS)


# --------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------
FORMATS = ("csv", "json", "gpx")
MIME_TYPES = {"csv": "text/csv", "json": "application/json",
              "gpx": "application/gpx+xml"}


def week_csv(week: Week, day: int | None = None) -> str:
    """The stops as CSV (one day or the week), safe to open in a spreadsheet."""
    from analytics.exports.cells import csv_text

    return csv_text(week.day_stops(day))


def week_json(week: Week) -> str:
    """The week's numbers, days, stops and the due accounts left out."""
    def records(frame: pd.DataFrame) -> list[dict]:
        return json.loads(frame.to_json(orient="records", date_format="iso"))

    return json.dumps({"week": week.headline(), "notes": week.notes,
                       "days": records(week.days), "stops": records(week.stops),
                       "not_planned": records(week.unplanned)}, indent=1) + "\n"


def week_gpx(week: Week, day: int | None = None) -> str:
    """GPX 1.1: one route per day (home, the visits in order, home), every visit also a
    waypoint, for phones and car navigation."""
    import gpxpy.gpx

    gpx = gpxpy.gpx.GPX()
    gpx.creator = "Territory Atlas"
    gpx.name = f"{week.rep_name}: visits {week.dates[0]} to {week.dates[-1]}"
    for d, date in enumerate(week.dates, start=1):
        if day is not None and d != day:
            continue
        stops = week.day_stops(d)
        if not (stops["kind"] == "visit").any():
            continue
        row = week.days.iloc[d - 1]
        route = gpxpy.gpx.GPXRoute(
            name=f"Day {d} {date:%a %Y-%m-%d}",
            description=f"{int(row['visits'])} visits, {row['km']:.0f} km, "
                        f"{row['hours']:.1f} h ({row['leave']} to {row['back']})")
        route.number = d
        for s in stops.itertuples(index=False):
            label = (f"{s.stop}. {s.name}" if s.kind == "visit" else str(s.name))
            route.points.append(gpxpy.gpx.GPXRoutePoint(
                latitude=float(s.lat), longitude=float(s.lon), name=label,
                comment=(f"arrive {s.arrive}" if s.arrive else f"leave {s.depart}")))
            if s.kind == "visit":
                gpx.waypoints.append(gpxpy.gpx.GPXWaypoint(
                    latitude=float(s.lat), longitude=float(s.lon), name=label,
                    description=f"Day {d} {date:%a %Y-%m-%d}, arrive {s.arrive}; "
                                f"account {s.account_id}"))
        gpx.routes.append(route)
    return gpx.to_xml(version="1.1")


def week_file(week: Week, fmt: str, day: int | None = None) -> str:
    """The week (or one day) as csv, json or gpx text."""
    if fmt == "csv":
        return week_csv(week, day)
    if fmt == "gpx":
        return week_gpx(week, day)
    if fmt == "json":
        return week_json(week)
    raise InputError(f"unknown route format {fmt!r}: expected one of {', '.join(FORMATS)}")


def file_name(week: Week, fmt: str, day: int | None = None) -> str:
    """week-R001-2026-10-01.gpx, or day-2-R001-2026-10-02.csv."""
    from analytics.file_names import stem

    who = stem(week.rep_id, "rep")
    if day is None:
        return f"week-{who}-{week.dates[0].isoformat()}.{fmt}"
    return f"day-{day}-{who}-{week.dates[day - 1].isoformat()}.{fmt}"
