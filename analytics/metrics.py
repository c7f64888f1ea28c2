"""Every metric of docs/metrics.md, per territory and for the whole plan.

Two steps, so that an edit to a plan never rescans the accounts:

1. `MetricCube.build` scans accounts and deals once for a unit type, period, as-of date,
   filter and settings: per unit the additive measures (accounts, potential, won, open
   pipeline, visits, touched accounts), and per (unit, rep) the travel sums to that rep's
   home.
2. `territory_metrics` joins that small cube with a plan's assignment and pins, and derives
   every column. Recomputing after a paint stroke is this step only.

The formulas themselves live in `analytics.catalog`; this module adds them up the fast way
(arrays indexed by unit, a pin correction). It is over 500 lines because the cube, the plan
inputs and the per-territory derivation share array layouts that splitting would have to
make public.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import threading
from dataclasses import dataclass, field

import duckdb
import h3
import numpy as np
import pandas as pd

from analytics import adjacency, catalog, market
from analytics.catalog import BALANCE_METRICS
from analytics.cube import AccountFilter, accounts_cte, unit_measures
from analytics.period import Period
from analytics.plans import Plan, assignment, territories
from analytics.resolution import resolved_accounts
from analytics.settings import Settings
from analytics.units import POLYGON_KINDS, UnitType, unit_shapes

EARTH_RADIUS_KM = 6371.0088
BASE = ["accounts", "potential", "won", "open_pipeline", "visits", "visit_minutes", "touched",
        "has_activity"]
TRAVEL = ["travel_sum", "visits_travel", "reach", "travelled"]

MARKET_COLUMNS = ["market_population", "market_establishments",
                  "accounts_per_1k_establishments", "potential_per_capita"]
"""The market under a territory (analytics/market.py): its units' sums and our shares."""
TERRITORY_COLUMNS = [
    "territory_id", "territory_name", "rep_id",
    "accounts", "potential", "won", "open_pipeline", "quota", "attainment", "pace",
    "pipeline_coverage", "penetration", "whitespace", "travel_km", "workload_hours",
    "capacity_hours", "utilization", "status", "reach_pct", "touched_pct", "units",
    "components", "contiguous", "polsby_popper",
    "deviation_potential", "deviation_workload_hours", "deviation_accounts",
    *MARKET_COLUMNS,
]
PLAN_COLUMNS = [
    "coverage_accounts_pct", "coverage_potential_pct", "unassigned_accounts",
    *[f"balance_cv_{m}" for m in BALANCE_METRICS],
    *[f"balance_max_dev_{m}" for m in BALANCE_METRICS],
    "disruption_accounts_pct", "disruption_potential_pct",
]


def haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance on a sphere of radius 6,371.0088 km (numpy arrays)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    return haversine_radians(p1, np.radians(lon1), np.cos(p1), p2, np.radians(lon2),
                             np.cos(p2))


def haversine_radians(p1, l1, cos_p1, p2, l2, cos_p2):
    """`haversine_km` from latitudes and longitudes in radians and the latitudes' cosines
    (computed once when one side is a million accounts)."""
    h = np.sin((p2 - p1) / 2) ** 2 + cos_p1 * cos_p2 * np.sin((l2 - l1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0, 1)))


@dataclass
class MetricCube:
    """Per-unit measures and per (unit, rep) travel sums for one set of conditions."""

    unit: UnitType
    period: Period
    as_of: dt.date
    settings: Settings
    flt: AccountFilter
    units: pd.DataFrame  # unit_id (None = accounts with no unit) + BASE
    reps: set[str] = field(default_factory=set)  # reps whose travel covers every unit
    # rep -> (units x TRAVEL) travel sums to the rep's home; NaN rows: not computed yet
    rep_arrays: dict = field(default_factory=dict, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def build(
        cls,
        cur: duckdb.DuckDBPyConnection,
        unit: UnitType,
        period: Period,
        as_of: dt.date,
        settings: Settings,
        flt: AccountFilter | None = None,
        reps: set[str] | None = None,
    ) -> MetricCube:
        flt = flt or AccountFilter()
        cube = cls(unit, period, as_of, settings, flt, pd.DataFrame())
        cube.units = unit_measures(cur, unit, period, as_of, settings, flt)
        cube.add_reps(cur, reps or set())
        return cube

    def accounts_cte(self) -> tuple[str, list]:
        return accounts_cte(self.unit, self.settings, self.flt)

    def add_reps(self, cur, reps: set[str]) -> None:
        """Travel sums of every unit to these reps' homes (reps not complete already).

        Per (unit, rep): the sum of great-circle km from each account to the rep's home,
        the sum of visits x km, the accounts within `max_travel_km`, the accounts. Summed
        in numpy over the accounts read once (a SQL cross join grouped by unit and rep
        took 5-13 s for 1M accounts and 45 reps)."""
        new = sorted({r for r in reps if r} - self.reps)
        if new:
            self._fill_travel(cur, dict.fromkeys(new))
            self.reps |= set(new)

    def ensure_travel(self, cur, wanted: dict[str, np.ndarray]) -> None:
        """Travel sums of these units (positions in `units`) to these reps' homes, computed
        where missing: what a plan's territories need, each unit to its own territory's
        rep (a first load at 1M accounts: 1M distances instead of 45M; a stroke then adds
        the moved units to their new rep)."""
        todo = {r: p for r, p in wanted.items() if r and r not in self.reps}
        if todo:
            self._fill_travel(cur, todo)

    def _fill_travel(self, cur, todo: dict[str, np.ndarray | None]) -> None:
        """Fill `rep_arrays` for these reps at these unit positions (None: every unit).
        A stroke usually finds nothing missing: then no query and no work."""
        with self.lock:  # a cube is shared by the sessions on the same data
            n, needs = len(self.units), {}
            for rep, positions in todo.items():
                arr = self.rep_arrays.get(rep)
                if arr is None:
                    arr = self.rep_arrays[rep] = np.full((n, len(TRAVEL)), np.nan)
                need = np.isnan(arr[:, 0])
                if positions is not None:
                    wanted = np.zeros(n, dtype=bool)
                    wanted[positions[(positions >= 0) & (positions < n)]] = True
                    need &= wanted
                if need.any():
                    needs[rep] = need
            if not needs:
                return
            homes = {r: (lat, lon) for r, lat, lon in cur.execute(
                "SELECT rep_id, home_lat, home_lon FROM reps "
                "WHERE rep_id IN (SELECT unnest(?::VARCHAR[])) "
                "AND home_lat IS NOT NULL AND home_lon IS NOT NULL", [sorted(needs)]
            ).fetchall()}
            jobs = []
            for rep, need in needs.items():
                if rep in homes:
                    jobs.append((self.rep_arrays[rep], need, homes[rep]))
                else:  # no home: no travel (as before: no rows)
                    self.rep_arrays[rep][need] = 0.0
            if jobs:
                _travel_to_homes(self._travel_accounts(cur), jobs,
                                 self.settings.max_travel_km)

    def _travel_accounts(self, cur) -> dict:
        """The cube's accounts as arrays for the travel sums (read once per cube)."""
        if getattr(self, "_accounts_for_travel", None) is None:
            acc_cte, acc_params = self.accounts_cte()
            # the stored unit column (an integer for H3), its distinct values turned into
            # unit ids afterwards: formatting 1M ids as text cost 0.25 s
            got = cur.execute(f"WITH {acc_cte} SELECT unit_stored, lat, lon, visits FROM a",
                              acc_params).fetchnumpy()
            stored = got["unit_stored"]
            missing = np.ma.getmaskarray(stored)
            values = np.ma.getdata(stored)
            codes, uniques = pd.factorize(values, use_na_sentinel=False)
            uniques = [None if pd.isna(v) else v for v in pd.Index(uniques).tolist()]
            if missing.any():  # accounts with no unit: a code of their own, id None
                codes = np.where(missing, len(uniques), codes)
                uniques.append(None)
            uniques = unit_ids_of_stored(cur, self.unit, uniques)
            lat = np.radians(np.asarray(got["lat"], dtype=float))
            visits = np.ma.filled(np.ma.asarray(got["visits"], dtype=float), np.nan)
            pos = self.unit_index().get_indexer(np.asarray(uniques, dtype=object))[codes]
            self._accounts_for_travel = {  # pos: each account's unit's row in `units`
                "pos": np.where(pos >= 0, pos, len(self.units)),
                "lat": lat, "cos_lat": np.cos(lat),
                "lon": np.radians(np.asarray(got["lon"], dtype=float)), "visits": visits,
            }
        return self._accounts_for_travel

    # -- arrays for the per-stroke step (built once per cube) ----------------------------
    def unit_index(self) -> pd.Index:
        """Position of each unit in `units` (the row of accounts with no unit excluded)."""
        if getattr(self, "_unit_index", None) is None:
            ids = self.units["unit_id"].astype(object).where(self.units["unit_id"].notna())
            self._unit_index = pd.Index(ids.to_numpy(dtype=object))
            self._base_arr = self.units[BASE].to_numpy(float)
        return self._unit_index

    def base_array(self) -> np.ndarray:
        self.unit_index()
        return self._base_arr

    def rep_travel(self, rep_id: str) -> np.ndarray:
        """(units x TRAVEL) travel sums of every unit to this rep's home (zeros: no home or
        a rep never asked for; NaN: a unit `ensure_travel` was not asked for)."""
        arr = self.rep_arrays.get(rep_id)
        return arr if arr is not None else np.zeros((len(self.units), len(TRAVEL)))


def _travel_to_homes(acc: dict, jobs: list[tuple], max_km: float) -> None:
    """Fill each job's (array, units needed, (home lat, home lon)): per unit needed, the
    sums over its accounts of the great-circle km to the home (`haversine_km`), visits x
    km, accounts within `max_km`, accounts. One rep per task in threads (numpy frees the
    GIL: the distances are most of a first load at 1M accounts)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(job) -> None:
        arr, need, (home_lat, home_lon) = job
        n = len(need)
        sel = np.append(need, False)[acc["pos"]]  # the accounts of the units needed
        pos, visits = acc["pos"][sel], acc["visits"][sel]
        p2 = math.radians(home_lat)
        km = haversine_radians(acc["lat"][sel], acc["lon"][sel], acc["cos_lat"][sel], p2,
                               math.radians(home_lon), math.cos(p2))
        has_visits = ~np.isnan(visits)
        out = np.column_stack([
            np.bincount(pos, weights=km, minlength=n + 1)[:n],
            np.bincount(pos[has_visits], weights=visits[has_visits] * km[has_visits],
                        minlength=n + 1)[:n],
            np.bincount(pos, weights=km <= max_km, minlength=n + 1)[:n],
            np.bincount(pos, minlength=n + 1)[:n].astype(float),
        ])
        arr[need] = out[need]

    with ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
        list(pool.map(one, jobs))


@dataclass
class PlanInputs:
    """What a plan contributes: assignment, territories (with reps) and pinned accounts."""

    assign: pd.DataFrame  # unit_id, territory_id
    terr: pd.DataFrame  # territory_id, territory_name, rep_id, annual_quota, capacity, home
    pins: pd.DataFrame  # account_id, territory_id + per-account measures

    @classmethod
    def load(cls, cur, plan: Plan, cube: MetricCube) -> PlanInputs:
        assign = assignment(cur, plan)
        terr = territories(cur, plan)
        caps = cur.execute(
            "SELECT t.territory_id, r.capacity_hours AS rep_capacity, "
            "r.rep_id IS NOT NULL AS has_rep FROM territories t "
            "LEFT JOIN reps r ON r.rep_id = t.rep_id WHERE t.plan_id = ?", [plan.plan_id]
        ).df()
        terr = terr.merge(caps, on="territory_id", how="left")
        ensure_plan_travel(cur, cube, assign, terr)
        # pins change rarely: their per-account measures are kept in the cube, keyed by
        # the plan's current pins, so a paint stroke does not query the accounts again
        current = tuple(cur.execute(
            "SELECT account_id, territory_id FROM account_overrides WHERE plan_id = ? "
            "ORDER BY account_id", [plan.plan_id]).fetchall())
        kept = cube.__dict__.setdefault("_pins", {})
        key = (plan.plan_id, current)
        if key not in kept:
            kept.clear()
            kept[key] = _pins(cur, plan, cube)
        return cls(assign, terr, kept[key])


def ensure_plan_travel(cur, cube: MetricCube, assign: pd.DataFrame,
                       terr: pd.DataFrame) -> None:
    """Have the cube hold the travel of every assigned unit to its territory's rep."""
    rep_of = terr.dropna(subset=["rep_id"]).set_index("territory_id")["rep_id"]
    reps = assign["territory_id"].map(rep_of)
    pos = cube.unit_index().get_indexer(assign["unit_id"].to_numpy(dtype=object))
    wanted = {}
    for rep, rows in pd.Series(np.arange(len(assign))).groupby(reps.to_numpy()).indices.items():
        if isinstance(rep, str):
            wanted[rep] = pos[rows]
    cube.ensure_travel(cur, wanted)


def _pins(cur, plan: Plan, cube: MetricCube) -> pd.DataFrame:
    pairs = cur.execute("SELECT account_id, territory_id FROM account_overrides "
                        "WHERE plan_id = ?", [plan.plan_id]).df()
    return pin_rows(cur, cube, pairs)


def unit_ids_of_stored(cur, unit: UnitType, values: list) -> list:
    """Unit ids of stored unit-column values (None stays None), by the same SQL that
    names units everywhere (`UnitType.unit_id_sql`)."""
    known = [v for v in values if v is not None]
    ids = dict(cur.execute(
        f"SELECT a.{unit.column}, {unit.unit_id_sql('a')} "
        f"FROM (SELECT unnest(?) AS {unit.column}) a", [known]).fetchall()) if known else {}
    return [ids.get(v) if v is not None else None for v in values]


def pin_rows(cur, cube: MetricCube, pairs: pd.DataFrame) -> pd.DataFrame:
    """Per-account measures of accounts pinned, or about to be pinned, to territories
    (`pairs`: account_id, territory_id), in the shape of `PlanInputs.pins`. The optimiser
    uses it to keep named accounts with their rep before any pin is stored."""
    acc_cte, acc_params = cube.accounts_cte()
    sale_where, sale_params = cube.flt.sales_sql()
    touch_from = catalog.touch_from(cube.as_of, cube.settings.touch_days)
    # the deals of the pinned accounts only (a correlated sum per account made DuckDB sum
    # every account's deals: 0.5 s at 10M deals, pins or not)
    sql = f"""
        WITH {acc_cte},
        p AS (SELECT o.territory_id, a.* FROM pin_pairs o JOIN a ON a.account_id = o.account_id),
        d AS (SELECT s.account_id,
                     sum(s.amount) FILTER (WHERE s.stage = 'won') AS won,
                     sum(s.amount) FILTER (WHERE s.stage = 'open') AS open_pipeline
              FROM sales s
              WHERE s.account_id IN (SELECT account_id FROM p)
                AND s.close_date BETWEEN ? AND ? AND {sale_where}
              GROUP BY s.account_id)
        SELECT p.territory_id, p.account_id, p.unit_id, p.lat, p.lon, 1 AS accounts,
               p.potential, p.visits, p.visits * p.minutes AS visit_minutes,
               coalesce(d.won, 0) AS won,
               coalesce(d.open_pipeline, 0) AS open_pipeline,
               CASE WHEN p.last_activity_date BETWEEN ? AND ? THEN 1 ELSE 0 END AS touched,
               CASE WHEN p.last_activity_date IS NOT NULL THEN 1 ELSE 0 END AS has_activity
        FROM p LEFT JOIN d ON d.account_id = p.account_id
        ORDER BY p.account_id"""
    params = [*acc_params, cube.period.start, cube.period.end, *sale_params,
              touch_from, cube.as_of]
    cur.register("pin_pairs", pairs[["account_id", "territory_id"]].astype(str))
    try:
        return cur.execute(sql, params).df()
    finally:
        cur.unregister("pin_pairs")


def _travel_of(accounts: pd.DataFrame, homes: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    """Per-account travel measures to the home of the given rep (NaN rows: no home)."""
    km = haversine_km(accounts["lat"].to_numpy(float), accounts["lon"].to_numpy(float),
                      homes["home_lat"].to_numpy(float), homes["home_lon"].to_numpy(float))
    ok = ~np.isnan(km)
    return pd.DataFrame({
        "travel_sum": np.where(ok, km, 0.0),
        "visits_travel": np.where(ok, accounts["visits"].to_numpy(float) * km, 0.0),
        "reach": np.where(ok & (km <= settings.max_travel_km), 1, 0),
        "travelled": ok.astype(int),
    }, index=accounts.index)


def territory_metrics(
    cube: MetricCube,
    plan_in: PlanInputs,
    *,
    shapes_cache: dict | None = None,
    baseline: pd.DataFrame | None = None,
    unions: dict | None = None,
) -> tuple[pd.DataFrame, dict]:
    """(one row per territory with TERRITORY_COLUMNS, the whole-plan dict).

    `unions`: a dict that receives each territory's union (its units as a sorted tuple ->
    shape) as compactness computes it, for a caller that draws them next (the exports);
    the long-lived `shapes_cache` keeps only numbers."""
    s = cube.settings
    days = cube.period.days
    elapsed = cube.period.elapsed(cube.as_of)
    terr = plan_in.terr.copy()
    terr["has_rep"] = terr["has_rep"].fillna(False).astype(bool)
    rep_of = dict(zip(terr["territory_id"], terr["rep_id"].where(terr["has_rep"]),
                      strict=True))
    ids = terr["territory_id"].tolist()

    # 1. additive measures from the unit cube and the assignment (array indexing: a stroke
    #    recomputes this in milliseconds, no join of string keys)
    index = cube.unit_index()
    base = cube.base_array()
    unit_ids = plan_in.assign["unit_id"].to_numpy(dtype=object)
    terr_ids = plan_in.assign["territory_id"].to_numpy(dtype=object)
    pos = index.get_indexer(unit_ids)
    tpos = pd.Index(ids, dtype=object).get_indexer(terr_ids)
    tix = np.full(len(index), -1, dtype=np.int64)  # territory position of each cube unit
    ok = (pos >= 0) & (tpos >= 0)
    tix[pos[ok]] = tpos[ok]
    if len(index):
        tix[pd.isna(index.to_numpy())] = -1  # accounts with no unit: never assigned
    assigned = tix >= 0
    sums = np.zeros((len(ids), len(BASE)))
    np.add.at(sums, tix[assigned], base[assigned])
    by_t = pd.DataFrame(sums, index=pd.Index(ids, name="territory_id"), columns=BASE)
    unassigned = pd.Series(base[~assigned].sum(axis=0), index=BASE)

    # 2. travel sums: each unit's accounts to the home of its territory's rep
    tvl_arr = np.zeros((len(ids), len(TRAVEL)))
    for k, t in enumerate(ids):
        rep = rep_of.get(t)
        if rep is None or (isinstance(rep, float) and np.isnan(rep)):
            continue
        mask = tix == k
        if mask.any():
            own = cube.rep_travel(rep)[mask]
            if np.isnan(own).any():  # a caller that built its own PlanInputs forgot
                raise RuntimeError(f"travel sums of territory {t} to rep {rep} missing: "
                                   "call MetricCube.ensure_travel (PlanInputs.load does)")
            tvl_arr[k] = own.sum(axis=0)
    tvl = pd.DataFrame(tvl_arr, index=pd.Index(ids, name="territory_id"), columns=TRAVEL)

    # 3. pinned accounts: out of the territory their unit gives, into the pinned one
    pins = plan_in.pins
    if len(pins):
        unit_terr = dict(zip(plan_in.assign["unit_id"], plan_in.assign["territory_id"],
                             strict=True))
        natural = pins["unit_id"].map(unit_terr)
        homes = terr.set_index("territory_id")[["home_lat", "home_lon"]]
        for sign, target in ((-1.0, natural), (1.0, pins["territory_id"])):
            vals = pins[BASE].astype(float)
            has_home = target.map(lambda t: t in homes.index and rep_of.get(t) is not None)
            h = pd.DataFrame({
                "home_lat": [homes.loc[t, "home_lat"] if ok else np.nan
                             for t, ok in zip(target, has_home, strict=True)],
                "home_lon": [homes.loc[t, "home_lon"] if ok else np.nan
                             for t, ok in zip(target, has_home, strict=True)],
            }, index=pins.index)
            tv = _travel_of(pins, h, s)
            for i in pins.index:
                t = target.loc[i]
                if pd.isna(t) or t not in by_t.index:  # no territory (or not in the plan)
                    unassigned = unassigned + sign * vals.loc[i]
                    continue
                by_t.loc[t] = by_t.loc[t] + sign * vals.loc[i]
                tvl.loc[t] = tvl.loc[t] + sign * tv.loc[i]

    # 4. derived columns, docs/metrics.md formulas (numpy columns, one frame at the end)
    sums, tvl_arr = by_t[BASE].to_numpy(float), tvl[TRAVEL].to_numpy(float)
    out: dict[str, object] = {"territory_id": np.asarray(ids, dtype=object),
                              "territory_name": terr["territory_name"].to_numpy(),
                              "rep_id": terr["rep_id"].to_numpy()}
    has_rep = terr["has_rep"].to_numpy()
    acc = np.round(sums[:, BASE.index("accounts")]).astype("int64")
    out["accounts"] = acc
    for k in ("potential", "won", "open_pipeline"):
        out[k] = sums[:, BASE.index(k)]
    annual = terr["annual_quota"].fillna(0).to_numpy(float)
    out["quota"] = annual * days / 365
    catalog.derive(out, catalog.RATIOS, days=days, elapsed=elapsed)
    travel_ok = has_rep & (tvl_arr[:, TRAVEL.index("travelled")] > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["travel_km"] = np.where(travel_ok & (acc > 0),
                                    tvl_arr[:, TRAVEL.index("travel_sum")]
                                    / np.maximum(acc, 1), np.nan)
    out["workload_hours"] = catalog.workload_hours(
        sums[:, BASE.index("visit_minutes")],
        np.where(has_rep, tvl_arr[:, TRAVEL.index("visits_travel")], 0.0), s)
    cap = terr["rep_capacity"].astype(float).fillna(s.capacity_hours).to_numpy()
    out["capacity_hours"] = np.where(has_rep, cap, 0.0)
    out["utilization"] = catalog.utilization(out["workload_hours"], out["capacity_hours"])
    out["status"] = catalog.status(out["utilization"], has_rep, s)
    out["reach_pct"] = np.where(travel_ok & (acc > 0),
                                tvl_arr[:, TRAVEL.index("reach")] / np.maximum(acc, 1), np.nan)
    has_act = sums[:, BASE.index("has_activity")]
    out["touched_pct"] = np.where((has_act > 0) & (acc > 0),
                                  sums[:, BASE.index("touched")] / np.maximum(acc, 1), np.nan)
    groups = _unit_groups(plan_in.assign, ids, tpos)
    out["units"] = np.array([len(groups[t]) for t in ids], dtype="int64")
    comps = _components(cube.unit, groups, ids, shapes_cache)
    out["components"] = np.array([comps[t] for t in ids], dtype="int64")
    out["contiguous"] = out["components"] == 1
    out["polsby_popper"] = np.array(_polsby_popper(cube.unit, groups, ids, shapes_cache,
                                                   unions), dtype=float)
    for m in BALANCE_METRICS:
        out[f"deviation_{m}"] = catalog.deviation(out[m], has_rep)
    market_sums = _market_sums(cube.unit, unit_ids, tpos, len(ids))
    out["market_population"], out["market_establishments"] = market_sums.T
    catalog.derive(out, market.SHARES, days=days, elapsed=elapsed)
    out = pd.DataFrame(out)

    # 5. the whole plan
    plan = _plan_row(out, has_rep, by_t, unassigned, tvl, cube, elapsed, days)
    if baseline is not None:
        plan.update(disruption(baseline))
    return out[TERRITORY_COLUMNS], plan


def _market_sums(unit: UnitType, unit_ids, tpos: np.ndarray, n: int) -> np.ndarray:
    """(population, establishments) per territory: the sums over its units (int64)."""
    got = market.for_units(unit, unit_ids)[["market_population", "market_establishments"]]
    sums = np.zeros((n, 2), dtype=np.int64)
    ok = tpos >= 0
    np.add.at(sums, tpos[ok], got.to_numpy(np.int64)[ok])
    return sums


def _unit_groups(assign: pd.DataFrame, ids: list[str],
                 tpos: np.ndarray | None = None) -> dict[str, tuple[str, ...]]:
    """territory -> its units as a sorted tuple (the key of the per-territory caches)."""
    units = assign["unit_id"].to_numpy(dtype=object)
    if tpos is None:
        tpos = pd.Index(ids, dtype=object).get_indexer(
            assign["territory_id"].to_numpy(dtype=object))
    order = np.argsort(tpos, kind="stable")  # keeps each territory's units in unit order
    bounds = np.searchsorted(tpos[order], np.arange(len(ids) + 1))
    if len(units) > 1 and not (units[:-1] <= units[1:]).all():
        order = order[np.argsort(units[order], kind="stable")]
        order = order[np.argsort(tpos[order], kind="stable")]
    return {t: tuple(units[order[bounds[k]:bounds[k + 1]]]) for k, t in enumerate(ids)}


def _neighbours(unit: UnitType, units, cache: dict) -> dict[str, list[str]]:
    """unit -> touching units, computed once per unit type and kept (cells added lazily)."""
    key = ("neighbours", str(unit))
    nbrs = cache.setdefault(key, {})
    missing = [u for u in units if u not in nbrs]
    if not missing:
        return nbrs
    if unit.kind == "h3":
        for cell in missing:
            nbrs[cell] = list(h3.grid_ring(cell, 1))
        return nbrs
    if unit.kind in POLYGON_KINDS:  # every polygon of the kind at once
        from analytics import geography

        universe = geography.unit_polygons(unit.kind)[0]
        wanted = sorted(set(universe) | set(missing))
    else:
        wanted = sorted(set(missing))
    for u in wanted:
        nbrs.setdefault(u, [])
    for a, b in adjacency.unit_neighbours(unit, wanted):
        nbrs[a].append(b)
        nbrs[b].append(a)
    return nbrs


def _components(unit: UnitType, groups: dict[str, tuple[str, ...]], ids: list[str],
                cache: dict | None = None) -> dict[str, int]:
    """Connected pieces of each territory's units (touching units are connected).

    Cached per territory by its unit set: after a stroke only the two territories it
    changed are walked again.
    """
    cache = {} if cache is None else cache
    out = {}
    for t in ids:
        units = groups.get(t, ())
        key = ("components", str(unit), units)
        if key not in cache:
            nbrs = _neighbours(unit, units, cache)
            members, seen, pieces = set(units), set(), 0
            for start in units:
                if start in seen:
                    continue
                pieces += 1
                stack = [start]
                seen.add(start)
                while stack:
                    for n in nbrs.get(stack.pop(), ()):
                        if n in members and n not in seen:
                            seen.add(n)
                            stack.append(n)
            cache[key] = pieces
        out[t] = cache[key]
    return out


def _polsby_popper(unit: UnitType, groups: dict[str, tuple[str, ...]], ids: list[str],
                   cache: dict | None, unions: dict | None = None) -> list[float]:
    """4 pi area / perimeter^2 of each territory's union, geodesic on WGS84 (pyproj.Geod)."""
    from pyproj import Geod

    if unit.kind != "h3" and unit.kind not in POLYGON_KINDS:
        return [np.nan] * len(ids)
    geod = Geod(ellps="WGS84")
    cache = {} if cache is None else cache
    missing = [c for c in (groups.get(t, ()) for t in ids) if c and (str(unit), c) not in cache]
    shapes = {}
    if len(missing) > 4:  # a first load or an export: unions in threads (GEOS frees the GIL)
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
            shapes = dict(zip(missing, pool.map(
                lambda c: territory_shape(unit, list(c)), missing), strict=True))
    out = []
    for t in ids:
        cells = groups.get(t, ())
        if not cells:
            out.append(np.nan)
            continue
        key = (str(unit), cells)
        if key not in cache:
            geom = shapes[cells] if cells in shapes else territory_shape(unit, list(cells))
            if unions is not None:
                unions[cells] = geom
            if geom is None or geom.is_empty:
                cache[key] = np.nan
            else:
                area, _ = geod.geometry_area_perimeter(geom)  # its perimeter: exteriors only
                perim = geod.geometry_length(geom.boundary)  # holes included (docs/metrics.md)
                cache[key] = 4 * math.pi * abs(area) / perim**2 if perim else np.nan
        out.append(cache[key])
    return out


def territory_shape(unit: UnitType, unit_ids: list[str]):
    """The union of a territory's units as one shapely (multi)polygon."""
    import h3
    import shapely

    if unit.kind == "h3":
        shape = h3.cells_to_h3shape(unit_ids)
        return shapely.geometry.shape(shape.__geo_interface__)
    if unit.kind in POLYGON_KINDS:  # the shipped polygons, straight from their index
        from analytics import geography

        pos = geography.polygon_positions(unit.kind)
        geoms = geography.unit_polygons(unit.kind)[2]
        picked = [geoms[pos[u]] for u in dict.fromkeys(map(str, unit_ids)) if u in pos]
        return shapely.union_all(np.asarray(picked, dtype=object)) if picked else None
    shapes = unit_shapes(unit, unit_ids)
    if not len(shapes):
        return None
    return shapely.union_all(shapes.geometry.to_numpy())


def _plan_row(out, has_rep, by_t, unassigned, tvl, cube, elapsed, days) -> dict:
    s = cube.settings
    total = by_t[BASE].sum() + unassigned
    n_acc = float(total["accounts"])
    plan: dict[str, object] = {
        "territory_id": "__plan__", "territory_name": None, "rep_id": None,
        "accounts": round(n_acc), "potential": float(total["potential"]),
        "won": float(total["won"]), "open_pipeline": float(total["open_pipeline"]),
        "quota": float(out["quota"].sum()),
    }
    row = {k: np.array([plan[k]], dtype=float)
           for k in ("accounts", "potential", "won", "open_pipeline", "quota")}
    catalog.derive(row, catalog.RATIOS, days=days, elapsed=elapsed)
    for k in ("attainment", "pace", "pipeline_coverage", "penetration", "whitespace"):
        plan[k] = _clean(float(np.asarray(row[k])[0]))
    travelled = float(tvl["travelled"][has_rep].sum())  # accounts with a known distance
    plan["travel_km"] = (float(tvl["travel_sum"][has_rep].sum()) / travelled
                         if travelled else None)
    plan["workload_hours"] = float(catalog.workload_hours(
        total["visit_minutes"], tvl["visits_travel"][has_rep].sum(), s))
    plan["capacity_hours"] = float(out["capacity_hours"].sum())
    util = plan["workload_hours"] / plan["capacity_hours"] if plan["capacity_hours"] else None
    plan["utilization"] = util
    plan["status"] = None
    plan["reach_pct"] = (float(tvl["reach"][has_rep].sum()) / travelled
                         if travelled else None)
    plan["touched_pct"] = (float(total["touched"]) / n_acc
                           if n_acc and total["has_activity"] > 0 else None)
    plan["units"] = int(out["units"].sum())
    for k in ("components", "contiguous", "polsby_popper", "deviation_potential",
              "deviation_workload_hours", "deviation_accounts"):
        plan[k] = None
    covered = out[has_rep]
    plan["coverage_accounts_pct"] = float(covered["accounts"].sum()) / n_acc if n_acc else None
    pot = float(total["potential"])
    plan["coverage_potential_pct"] = float(covered["potential"].sum()) / pot if pot else None
    plan["unassigned_accounts"] = round(float(unassigned["accounts"]))
    for m in BALANCE_METRICS:
        plan[f"balance_cv_{m}"], plan[f"balance_max_dev_{m}"] = catalog.balance(
            covered[m].to_numpy(float))
    plan["disruption_accounts_pct"] = None
    plan["disruption_potential_pct"] = None
    # the market of the plan's territories, against their accounts and potential
    row = {"accounts": np.array([float(out["accounts"].sum())]),
           "potential": np.array([float(out["potential"].sum())]),
           "market_population": np.array([float(out["market_population"].sum())]),
           "market_establishments": np.array([float(out["market_establishments"].sum())])}
    catalog.derive(row, market.SHARES, days=days, elapsed=elapsed)
    plan["market_population"] = int(row["market_population"][0])
    plan["market_establishments"] = int(row["market_establishments"][0])
    for k in market.SHARES:
        plan[k] = _clean(float(np.asarray(row[k])[0]))
    return plan


def _clean(v):
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)


# --------------------------------------------------------------------------------------
# account-level resolution (disruption) and the one-call summary
# --------------------------------------------------------------------------------------
def disruption_frame(cur, plan: Plan, baseline: Plan,
                     flt: AccountFilter | None = None) -> pd.DataFrame:
    a = resolved_accounts(cur, plan, flt)
    b = resolved_accounts(cur, baseline, flt)[["account_id", "territory_id"]]
    return a.merge(b, on="account_id", suffixes=("", "_baseline"))


def disruption_frame_for(cur, baseline: Plan, assign: pd.DataFrame,
                         pins: pd.DataFrame) -> pd.DataFrame:
    """`disruption_frame` for a plan not stored yet (a proposal on `baseline`'s unit type):
    its unit assignment and pins against the baseline, account by account."""
    uid = baseline.unit.unit_id_sql("a")
    acc = cur.execute(f"SELECT a.account_id, a.potential, {uid} AS unit_id FROM accounts a"
                      ).df()
    by_unit = acc["unit_id"].map(dict(zip(assign["unit_id"], assign["territory_id"],
                                          strict=True)))
    pinned = acc["account_id"].map(dict(zip(pins["account_id"], pins["territory_id"],
                                            strict=True)))
    acc["territory_id"] = pinned.where(pinned.notna(), by_unit)
    base = resolved_accounts(cur, baseline)[["account_id", "territory_id"]]
    return acc[["account_id", "potential", "territory_id"]].merge(
        base, on="account_id", suffixes=("", "_baseline"))


def disruption(frame: pd.DataFrame) -> dict:
    """Share of accounts (and of potential) whose territory differs from the baseline's."""
    now = frame["territory_id"].fillna("\0")
    base = frame["territory_id_baseline"].fillna("\0")
    moved = now != base
    n = len(frame)
    pot = float(frame["potential"].sum())
    return {
        "disruption_accounts_pct": float(moved.sum()) / n if n else None,
        "disruption_potential_pct": (float(frame.loc[moved, "potential"].sum()) / pot
                                     if pot else None),
    }


def summary(
    cur: duckdb.DuckDBPyConnection,
    plan: Plan,
    period: Period,
    as_of: dt.date,
    settings: Settings,
    *,
    baseline: Plan | None = None,
    flt: AccountFilter | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Every docs/metrics.md column for a plan: (territory rows, whole-plan row)."""
    reps = set(territories(cur, plan)["rep_id"].dropna())
    cube = MetricCube.build(cur, plan.unit, period, as_of, settings, flt, reps)
    plan_in = PlanInputs.load(cur, plan, cube)
    base = disruption_frame(cur, plan, baseline, flt) if baseline is not None else None
    return territory_metrics(cube, plan_in, baseline=base)


BRIEF_COLUMNS = ["territory_id", "territory_name", "rep_id", "rep_name", "units", "accounts",
                 "potential", "won", "open_pipeline", "quota", "attainment"]
"""The `territories` command's columns: a subset of the summary, plus the rep's name."""


def territory_brief(
    cur: duckdb.DuckDBPyConnection,
    plan: Plan,
    period: Period,
    as_of: dt.date,
    settings: Settings,
    *,
    flt: AccountFilter | None = None,
) -> tuple[pd.DataFrame, dict]:
    """(BRIEF_COLUMNS per territory, the whole-plan row) from `summary`: one path."""
    rows, plan_row = summary(cur, plan, period, as_of, settings, flt=flt)
    names = territories(cur, plan)[["territory_id", "rep_name"]]
    return rows.merge(names, on="territory_id", how="left")[BRIEF_COLUMNS], plan_row


def summary_frame(rows: pd.DataFrame, plan_row: dict) -> pd.DataFrame:
    """The CSV shape: territory rows, then one `__plan__` row; every column named once."""
    frame = rows.copy()
    for c in PLAN_COLUMNS:
        frame[c] = None
    last = pd.DataFrame([{c: plan_row.get(c) for c in [*TERRITORY_COLUMNS, *PLAN_COLUMNS]}])
    return pd.concat([frame.astype(object), last.astype(object)], ignore_index=True)
