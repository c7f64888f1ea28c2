"""Automatic balancing: build or rebalance a plan that is even, contiguous, compact and close
to today's.

How it works:

1. **The unit graph** (`analytics.unit_graph`): the plan's units, the units holding accounts
   and, on H3, the empty cells filling the counties / departements the accounts lie in.
2. **Per-unit loads** from the metric cube (`metrics.MetricCube`): accounts, potential, won,
   open pipeline, and workload per (unit, territory): the unit's visit hours plus its travel
   hours to that territory's rep home, so a move changes workload exactly as the metric does.
   Pinned accounts are taken out of their units and count, fixed, in their pinned territory.
3. **A start** (`analytics.partition`): the free units cut into K contiguous parts of even
   primary load by recursive bisection of random spanning trees (in rebalance the trees
   follow today's territories, so cuts fall on today's borders where balance allows; cuts
   leaving a rep's home on each part are preferred); reps living on a piece of the map apart
   from the mainland keep that piece; parts matched to territories by an optimal assignment
   (`scipy.optimize.linear_sum_assignment`: the part with the rep's home, then travel and
   kept accounts); territories in pieces repaired.
4. **The search** (`analytics.balance_search`, compiled): boundary moves of a unit or of the
   branch it would cut off, judged exactly on balance (the primary measure outside its band
   weighs 100,000 times a secondary), the isoperimetric ratio (1 / Polsby-Popper) and
   disruption, never splitting a territory, moving a locked or home unit, or entering a
   locked territory.
5. **The result** is measured by the metrics engine itself (`metrics.territory_metrics`),
   not by the optimiser's own sums, and saved as one undoable edit or one new plan.

Targets that cannot be met are reported in words with the numbers (a unit heavier than a
territory's share, a locked territory, more territories than units), with the way out.

Over 500 lines because the steps of a run share one set-up (loads per unit and territory,
anchors, targets, locks) that splitting would have to hand around; what stands alone is
apart: the graph (`unit_graph`), the start (`partition`), the compiled search
(`balance_search`).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pandas as pd

from analytics import catalog, metrics, partition, plans
from analytics.errors import InputError
from analytics.metrics import TRAVEL, MetricCube, PlanInputs, haversine_km
from analytics.period import Period
from analytics.plans import Plan
from analytics.resolution import resolved_cte
from analytics.settings import Settings
from analytics.unit_graph import UnitGraph

MEASURES = ("potential", "workload_hours", "accounts", "won", "open_pipeline")
"""What a plan can be balanced on from our own data."""
MARKET_MEASURES = ("market_population", "market_establishments")
"""The market under the map (analytics/market.py) as balancing measures; and any
`overlay:<name>:<column>` the manager imported (analytics/overlays.py)."""


def is_measure(name: str) -> bool:
    return name in MEASURES or name in MARKET_MEASURES or (
        name.startswith("overlay:") and name.count(":") >= 2)


def unit_measure(cur, unit, ids, name: str) -> np.ndarray:
    """A market or overlay measure per unit of `ids` (0 where nothing is known); the
    account measures come from the cube instead."""
    if name in MARKET_MEASURES:
        from analytics import market

        return market.for_units(unit, list(ids))[name].to_numpy(float)
    from analytics import overlays

    _, overlay, column = name.split(":", 2)
    return overlays.unit_values(cur, overlay, column, unit).reindex(list(ids)).fillna(
        0.0).to_numpy(float)
DEFAULT_TOLERANCE = {"primary": 0.02, "secondary": 0.05}
SPREAD_STARTS = 5
"""Seeded starts of the Lloyd rounds that pick which reps a build with fewer territories
than reps uses."""
HOMES_START_MAX_TERRITORIES = 24
HOMES_START_MAX_UNITS = 10_000
"""A build also searches from territories grown around the homes up to these sizes."""
MODES = ("build", "rebalance")


@dataclass(frozen=True)
class Target:
    measure: str
    weight: float = 1.0
    tolerance: float = 0.02


@dataclass
class BalanceOptions:
    """What the manager asks for (defaults: docs/balance.md)."""

    mode: str = "rebalance"
    targets: tuple[Target, ...] = (Target("potential", 1.0, 0.02),)
    territories: int | None = None  # build: K (default: the plan's territories with a rep)
    keep_current: float = 1.0  # weight of disruption (rebalance)
    compactness: float = 1.0
    max_travel_km: float | None = None
    locked: tuple[str, ...] = ()  # territories to keep as they are (besides stored locks)
    keep_accounts: tuple[str, ...] = ()  # named accounts that stay with their current rep
    keep_top: int = 0  # and the N accounts of highest potential
    seed: int = 0
    max_seconds: float = 20.0


def parse_targets(balance: str | None, tolerance: str | None) -> tuple[Target, ...]:
    """`potential=1,workload_hours=0.5` and `potential=0.02,...` -> targets (the first is the
    primary; at most two secondaries). Bad text raises InputError naming the part."""
    def pairs(text: str, what: str) -> dict[str, float]:
        out = {}
        for part in [p for p in (text or "").split(",") if p.strip()]:
            name, sep, value = part.partition("=")
            name = name.strip()
            if not is_measure(name):
                raise InputError(f"{what} {part.strip()!r}: unknown measure {name!r}; "
                                 f"measures: {', '.join((*MEASURES, *MARKET_MEASURES))} "
                                 "or overlay:<name>:<column>")
            try:
                number = float(value) if sep else 1.0
            except ValueError:
                raise InputError(f"{what} {part.strip()!r}: {value!r} is not a number") from None
            if not math.isfinite(number) or number < 0:
                raise InputError(f"{what} {part.strip()!r}: must be a number >= 0")
            out[name] = number
        return out

    weights = pairs(balance, "--balance") if balance else {"potential": 1.0}
    if not weights:
        raise InputError("--balance: name at least one measure, e.g. potential=1")
    if len(weights) > 3:
        raise InputError("--balance: a primary measure and at most two secondary ones")
    if all(w == 0 for w in weights.values()):
        raise InputError("--balance: at least one weight must be above 0")
    tols = pairs(tolerance, "--tolerance") if tolerance else {}
    for name in tols:
        if name not in weights:
            raise InputError(f"--tolerance {name}: not a balanced measure (--balance)")
        if not 0 < tols[name] < 1:
            raise InputError(f"--tolerance {name}={tols[name]}: give a fraction, e.g. 0.02")
    out = []
    for k, (name, w) in enumerate(weights.items()):
        default = DEFAULT_TOLERANCE["primary" if k == 0 else "secondary"]
        out.append(Target(name, w, tols.get(name, default)))
    return tuple(out)


@dataclass
class BalanceResult:
    """A proposed plan: its assignment and territories, measured, and the optimiser's report."""

    source: Plan
    mode: str
    assignment: pd.DataFrame  # unit_id, territory_id (every unit of the graph)
    territories: pd.DataFrame  # territory_id, territory_name, rep_id
    before: tuple[pd.DataFrame, dict]
    after: tuple[pd.DataFrame, dict]
    moved_units: list[str]
    report: dict = field(default_factory=dict)
    new_pins: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["account_id", "territory_id"]))  # named accounts kept by a pin

    def comparison(self) -> pd.DataFrame:
        """Per territory: deviations, Polsby-Popper, pieces before and after, accounts moved."""
        cols = ["accounts", "potential", "workload_hours", "deviation_potential",
                "deviation_workload_hours", "deviation_accounts", "polsby_popper",
                "components"]
        b = self.before[0][["territory_id", *cols]]
        a = self.after[0][["territory_id", "territory_name", "rep_id", *cols]]
        return a.merge(b, on="territory_id", how="outer", suffixes=("", "_before"))


# --------------------------------------------------------------------------------------
# problem set-up
# --------------------------------------------------------------------------------------
@dataclass
class _Problem:
    graph: UnitGraph
    terr: pd.DataFrame  # the territories balanced over (with has_rep, home, locked)
    X: np.ndarray  # (n, J) unit loads for measures other than workload
    W: np.ndarray  # (n, K) workload of unit u in territory k
    fixed_load: np.ndarray  # (K, J) pins
    is_workload: np.ndarray
    targets: tuple[Target, ...]
    acc: np.ndarray  # accounts per unit (pins out)
    pot: np.ndarray  # potential per unit (pins out)


def _reps(cur) -> pd.DataFrame:
    return cur.execute("SELECT rep_id, name, home_lat, home_lon FROM reps ORDER BY rep_id").df()


def _unit_loads(cube: MetricCube, graph: UnitGraph, pins: pd.DataFrame) -> pd.DataFrame:
    """Per graph unit: BASE measures of the cube minus the pinned accounts in it."""
    units = cube.units.dropna(subset=["unit_id"]).set_index("unit_id")[metrics.BASE]
    frame = units.reindex(graph.ids).fillna(0.0)
    if len(pins):
        sub = pins.groupby("unit_id")[metrics.BASE].sum()
        sub = sub.reindex(graph.ids).fillna(0.0)
        frame = frame - sub
    return frame


def _setup(cur, plan: Plan, cube: MetricCube, graph: UnitGraph, terr: pd.DataFrame,
           pins: pd.DataFrame, targets: tuple[Target, ...], settings: Settings) -> _Problem:
    loads = _unit_loads(cube, graph, pins)
    n, K = len(graph), len(terr)
    J = len(targets)
    X = np.zeros((n, J))
    for j, t in enumerate(targets):
        if t.measure in loads:
            X[:, j] = loads[t.measure].to_numpy(float)
        elif t.measure != "workload_hours":  # the market or an overlay: not the accounts'
            X[:, j] = unit_measure(cur, graph.unit, graph.ids, t.measure)
    visit = catalog.visit_hours(loads["visit_minutes"].to_numpy(float))
    W = np.repeat(visit[:, None], K, axis=1)
    idx = pd.Index(graph.ids)
    for k, rep in enumerate(terr["rep_id"]):
        if not isinstance(rep, str) or not terr["has_home"].iloc[k]:
            continue
        cube.add_reps(cur, {rep})
        pos = cube.unit_index().get_indexer(idx)  # each graph unit's row in the cube
        vt = np.zeros(n)
        ok = pos >= 0
        vt[ok] = cube.rep_travel(rep)[pos[ok], TRAVEL.index("visits_travel")]
        W[:, k] += catalog.travel_hours(vt, settings)
    if len(pins):  # pinned accounts leave their unit: their travel too
        for k, rep in enumerate(terr["rep_id"]):
            if not isinstance(rep, str) or not terr["has_home"].iloc[k]:
                continue
            home = terr.iloc[k]
            km = haversine_km(pins["lat"].to_numpy(float), pins["lon"].to_numpy(float),
                              home["home_lat"], home["home_lon"])
            vt = pd.Series(np.nan_to_num(km) * pins["visits"].to_numpy(float),
                           index=pins["unit_id"]).groupby(level=0).sum()
            pos = idx.get_indexer(vt.index.astype(object))
            ok = pos >= 0
            W[pos[ok], k] -= catalog.travel_hours(vt.to_numpy()[ok], settings)
    fixed = np.zeros((K, J))
    pos_t = {t: k for k, t in enumerate(terr["territory_id"])}
    for _, p in pins.iterrows():
        k = pos_t.get(p["territory_id"])
        if k is None:
            continue
        for j, t in enumerate(targets):
            if t.measure == "workload_hours":
                row = terr.iloc[k]
                km = 0.0
                if row["has_home"]:
                    km = float(haversine_km(p["lat"], p["lon"], row["home_lat"],
                                            row["home_lon"]))
                fixed[k, j] += float(catalog.workload_hours(p["visit_minutes"],
                                                            p["visits"] * km, settings))
            elif t.measure in p:  # a pinned account carries no market of its own
                fixed[k, j] += float(p[t.measure])
    return _Problem(graph, terr, X, W, fixed,
                    np.array([t.measure == "workload_hours" for t in targets]), targets,
                    loads["accounts"].to_numpy(float), loads["potential"].to_numpy(float))


# --------------------------------------------------------------------------------------
# feasibility: what cannot be met, said before searching
# --------------------------------------------------------------------------------------
def feasibility(problem: _Problem, locked: np.ndarray, assign0: np.ndarray,
                island: np.ndarray | None = None) -> list[str]:
    """Plain-language reasons a target cannot be met, with the numbers and a way out.

    `locked` includes the `island` territories (a rep living on a piece of the map apart
    from the mainland keeps that piece, whatever its share)."""
    g, K = problem.graph, len(problem.terr)
    island = np.zeros(K, dtype=bool) if island is None else island
    out = []
    ids = problem.terr["territory_id"].to_numpy()
    free = int((~locked).sum())
    if free == 0:
        return ["every territory is locked: there is nothing to balance"]
    label = g.unit.label.lower()
    for j, t in enumerate(problem.targets):
        col = problem.W.min(axis=1) if t.measure == "workload_hours" else problem.X[:, j]
        total = float(col.sum() + problem.fixed_load[:, j].sum())
        if total <= 0:
            continue
        share = total / K
        u = int(np.argmax(col))
        top = float(col[u])
        if top > share * (1 + t.tolerance):
            most = int(total * (1 + t.tolerance) // top) if top > 0 else K
            out.append(
                f"{g.unit.label} {g.ids[u]} alone holds {top / total:.1%} of all "
                f"{catalog.label(t.measure).lower()} while each of the {K} territories' share "
                f"is {1 / K:.1%} (within ±{t.tolerance:.0%}): the {t.measure} target cannot be "
                f"met with {label} units. Use finer units (ZIP3 or H3) for this plan, or at "
                f"most {max(most, 1)} territories.")
        for k in np.flatnonzero(island):
            held = float(col[assign0 == k].sum()) + float(problem.fixed_load[k, j])
            out.append(
                f"territory {ids[k]}'s rep lives on a piece of the map no other territory "
                f"touches ({int((assign0 == k).sum())} units): it keeps that piece, which "
                f"holds {held / total:.1%} of {t.measure} against a share of {1 / K:.1%}")
        if locked.any():
            lk = np.flatnonzero(locked)
            fixed = sum(float(col[assign0 == k].sum()) for k in lk) + float(
                problem.fixed_load[lk, j].sum())
            left = (total - fixed) / free
            if abs(left - share) > share * t.tolerance:
                names = ", ".join(ids[lk])
                out.append(
                    f"the locked or island territories ({names}) hold {fixed / total:.1%} of "
                    f"{t.measure}: the other {free} territories share the rest at "
                    f"{left / share - 1:+.1%} from the mean of all territories, so they can be "
                    "balanced among themselves but not to the mean"
                    + ("; unlock some to do better" if (locked & ~island).any() else ""))
    return out


# --------------------------------------------------------------------------------------
# starts
# --------------------------------------------------------------------------------------
def _home_units(graph: UnitGraph, terr: pd.DataFrame, comp: np.ndarray) -> np.ndarray:
    """Each territory's anchor unit: the unit nearest its rep's home (-1: no home), in the
    largest piece of the graph that is within 1.5 x the nearest distance."""
    out = np.full(len(terr), -1, dtype=np.int64)
    taken: set[int] = set()
    for k in range(len(terr)):
        row = terr.iloc[k]
        if not row["has_home"]:
            continue
        d = haversine_km(graph.lat, graph.lon, row["home_lat"], row["home_lon"])
        for u in np.argsort(d, kind="stable"):
            if int(u) not in taken:
                out[k] = int(u)
                taken.add(int(u))
                break
    return out


# --------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------
def balance(
    cur: duckdb.DuckDBPyConnection,
    plan: Plan,
    period: Period,
    as_of: dt.date,
    settings: Settings,
    options: BalanceOptions | None = None,
    *,
    progress: Callable[[float, float], bool] | None = None,
) -> BalanceResult:
    """Balance `plan` (nothing is written: see `apply_result` and `save_result`).

    `progress(fraction_of_time, best_max_deviation)` is called between rounds; returning
    False stops the search and keeps the best plan so far.
    """
    from analytics.balance_search import sweeps

    opts = options or BalanceOptions()
    if opts.mode not in MODES:
        raise InputError(f"mode {opts.mode!r}: expected build or rebalance")
    if opts.keep_current < 0 or opts.compactness < 0:
        raise InputError("--keep-current and compactness must be 0 or more")
    started = time.perf_counter()
    source_terr = plans.territories(cur, plan)
    unknown = set(opts.locked) - set(source_terr["territory_id"])
    if unknown:
        raise InputError(f"locked territories not in {plan.name!r}: "
                         + ", ".join(sorted(unknown)))

    # 1. territories balanced over
    terr = _territories(cur, plan, source_terr, opts)
    K = len(terr)
    locked = terr["locked"].to_numpy(bool)

    # 2. graph and loads
    reps = {r for r in terr["rep_id"] if isinstance(r, str)}
    cube = MetricCube.build(cur, plan.unit, period, as_of, settings, None,
                            reps | set(source_terr["rep_id"].dropna()))
    uid = plan.unit.unit_id_sql("a")
    held = [r[0] for r in cur.execute(
        f"SELECT DISTINCT {uid} FROM accounts a WHERE {uid} IS NOT NULL").fetchall()]
    current = plans.assignment(cur, plan)
    fill = [r[0] for r in cur.execute(
        "SELECT DISTINCT county FROM accounts WHERE county IS NOT NULL UNION "
        "SELECT DISTINCT fr_dept FROM accounts WHERE fr_dept IS NOT NULL").fetchall()] \
        if plan.unit.kind == "h3" else []
    graph = UnitGraph.build(plan.unit, held, current["unit_id"].tolist(), fill_areas=fill)
    n = len(graph)
    if K > n:  # noqa: SIM300 (K: the number of territories)
        raise InputError(f"{K} territories but only {n} {plan.unit.label} units: choose at "
                         "most as many territories as units, or finer units")
    plan_in = PlanInputs.load(cur, plan, cube)
    kept, keep_notes = _incumbents(cur, plan, source_terr, terr, opts)
    pins = plan_in.pins
    if len(kept):  # kept accounts count as pinned from the start: their units move freely
        pins = pd.concat([pins, metrics.pin_rows(cur, cube, kept)], ignore_index=True)
    problem = _setup(cur, plan, cube, graph, terr, pins, opts.targets, settings)
    index = graph.index()
    tpos = {t: k for k, t in enumerate(terr["territory_id"])}
    original = np.full(n, -1, dtype=np.int64)
    for u, t in zip(current["unit_id"], current["territory_id"], strict=True):
        if u in index and t in tpos:
            original[index[u]] = tpos[t]
    weights = np.array([t.weight for t in opts.targets], dtype=float)
    # the search's packed weights (balance_search.penalty): outside the band the primary
    # measure counts 1e5 times a secondary of the same weight (primary first), inside the
    # band each pulls to the mean by its weight
    rel = weights / max(weights[0], 1e-12)
    w_out = np.where(np.arange(len(rel)) == 0, 1e5, 1.0) * rel
    packed = np.floor(w_out * 1000.0) + np.minimum(0.05 * rel, 0.999)
    tols = np.array([t.tolerance for t in opts.targets], dtype=float)
    totals = np.array([
        (problem.W.min(axis=1).sum() if problem.is_workload[j] else problem.X[:, j].sum())
        + problem.fixed_load[:, j].sum() for j in range(len(opts.targets))])
    notes: list[str] = []
    comp = graph.components()
    anchors = _home_units(graph, terr, comp)
    anchor_lat = np.array([graph.lat[a] if a >= 0 else np.nan for a in anchors])
    anchor_lon = np.array([graph.lon[a] if a >= 0 else np.nan for a in anchors])
    # a piece of the map apart from the mainland (Hawaii, Alaska) where a rep lives is that
    # rep's territory: any other choice would give someone a territory across the sea
    island = np.zeros(K, dtype=bool)
    island_start = np.full(n, -1, dtype=np.int64)
    for k, a in enumerate(anchors):
        if a >= 0 and comp[a] != 0 and not locked[k]:
            piece = (comp == comp[a]) & (island_start < 0)
            if piece.any():
                island_start[piece] = k
                island[k] = True
    if island.any():  # other pieces apart from the mainland go to the nearest island rep
        for c in np.unique(comp[(comp != 0) & (island_start < 0)]):
            if (anchors >= 0).any() and not (comp[anchors[anchors >= 0]] == c).any():
                members = np.flatnonzero(comp == c)
                d = haversine_km(float(graph.lat[members].mean()),
                                 float(graph.lon[members].mean()), anchor_lat, anchor_lon)
                k = int(np.nanargmin(np.where(locked, np.nan, d)))
                if island[k]:
                    island_start[members] = k
    user_locked = locked.copy()
    locked = locked | island

    # 3. start: locked territories as they are; the others a balanced power diagram around
    #    their reps' homes (rebalance: keeping today's units where it can), made contiguous
    start = np.where((original >= 0) & user_locked[np.maximum(original, 0)], original, -1)
    start = np.where(island_start >= 0, island_start, start)
    c_lat, c_lon = anchor_lat.copy(), anchor_lon.copy()
    for k in np.flatnonzero(np.isnan(c_lat)):  # no home: today's centre, else spread out
        mine = np.flatnonzero(original == k) if opts.mode == "rebalance" else np.array([])
        if len(mine):
            w = problem.pot[mine] + 1e-9
            c_lat[k] = float(np.average(graph.lat[mine], weights=w))
            c_lon[k] = float(np.average(graph.lon[mine], weights=w))
        else:
            have = np.flatnonzero(~np.isnan(c_lat))
            if len(have):
                d = np.min([haversine_km(graph.lat, graph.lon, c_lat[h], c_lon[h])
                            for h in have], axis=0)
                u = int(np.argmax(d))
            else:
                u = int(np.argmax(problem.pot))
            c_lat[k], c_lon[k] = graph.lat[u], graph.lon[u]
    anchor_lat, anchor_lon = c_lat, c_lon
    free = start < 0
    unit_load = np.zeros(n)
    share = np.where(totals > 0, totals / K, 1.0)
    for j in range(1):  # parts even on the primary measure; the search adds the others
        col = problem.W.min(axis=1) if problem.is_workload[j] else problem.X[:, j]
        unit_load += col / share[j]
    K_free = int((~locked).sum())
    rng0 = np.random.default_rng(opts.seed)
    home_units = np.zeros(n, dtype=bool)
    home_units[anchors[(anchors >= 0) & ~locked]] = True
    too_far = np.zeros((n, K), dtype=bool)
    if opts.max_travel_km:
        for k in range(K):
            if terr["has_home"].iloc[k]:
                too_far[:, k] = haversine_km(graph.lat, graph.lon, terr["home_lat"].iloc[k],
                                             terr["home_lon"].iloc[k]) > opts.max_travel_km
        too_far &= (problem.acc > 0)[:, None]  # only units holding accounts need the visit
    free_terr = np.flatnonzero(~locked)

    def start_from(kind: str) -> np.ndarray:
        """A contiguous start: `tree` (even parts cut from random spanning trees, then
        matched to reps) or `homes` (each territory grown around its own rep's home)."""
        if kind == "homes":
            local = np.full(K + 1, -1, dtype=np.int64)
            local[free_terr] = np.arange(K_free)
            parts = partition.anchored_partition(
                graph, unit_load, terr["home_lat"].to_numpy(float)[free_terr],
                terr["home_lon"].to_numpy(float)[free_terr], free,
                opts.targets[0].tolerance,
                too_far[:, free_terr] if opts.max_travel_km else None, anchors[free_terr])
            partition.grow(graph, parts, free)
            order = free_terr
        else:
            parts = partition.tree_partition(graph, unit_load, K_free, rng0, free,
                                             original if opts.mode == "rebalance" else None,
                                             home_units)
            order = None
        start_notes = partition.attach_rest(graph, parts, anchor_lat[~locked],
                                            anchor_lon[~locked], np.zeros(K_free, dtype=bool),
                                            free)
        if kind == "tree":
            notes.extend(start_notes)
            homes_in = parts[anchors[free_terr][anchors[free_terr] >= 0]]
            homeless = K_free - len(np.unique(homes_in[homes_in >= 0]))
            if homeless:
                notes.append(
                    f"the even split leaves {homeless} of {K_free} parts with no rep's home "
                    "in them (the reps' homes are not spread like the balanced measure): "
                    "those parts go to reps living elsewhere; balancing on "
                    "workload_hours, or a looser tolerance, keeps reps nearer home")
        if order is None:
            order = _match_parts(problem, parts, free_terr, original,
                                 opts.keep_current if opts.mode == "rebalance" else 0.0,
                                 anchors, too_far)
        assign = start.copy()
        assign[free] = order[parts[free]]
        partition.repair(graph, assign, unit_load, locked)
        return assign

    # builds of few territories where every rep has a home also start from the homes, and
    # keep the better result: there the homes start wins (the default data, counties,
    # K = 12: workload CV 0.60 against 1.19, Polsby-Popper 0.21 against 0.16); on many
    # territories the tree start balances better and the linear program grows slow
    # (2.4 s at 5k units, 22 s at 37k), so it is not tried (docs/balance.md)
    kinds = ["tree"]
    if opts.mode == "build" and 1 < K_free <= HOMES_START_MAX_TERRITORIES and \
            int((free & (unit_load > 0)).sum()) <= HOMES_START_MAX_UNITS and \
            terr["has_home"].to_numpy(bool)[free_terr].all():
        kinds.append("homes")
    assign = start_from(kinds[0])
    reasons = feasibility(problem, locked, assign, island)

    # 4. search
    loads = np.zeros((K, len(opts.targets)))
    for j in range(len(opts.targets)):
        col = problem.W[np.arange(n), assign] if problem.is_workload[j] else problem.X[:, j]
        np.add.at(loads[:, j], assign, col)
    loads += problem.fixed_load
    target_vals = np.where(locked.all(), totals / K, np.array([
        (totals[j] - loads[locked, j].sum()) / max((~locked).sum(), 1)
        for j in range(len(opts.targets))]))
    use_shape = graph.has_shapes
    area = np.nan_to_num(graph.area_km2)
    perim = np.nan_to_num(graph.perim_km)
    border = np.nan_to_num(graph.border_km)
    D = np.zeros((n, K))
    if not use_shape:
        for k in range(K):
            if not np.isnan(anchor_lat[k]):
                D[:, k] = haversine_km(graph.lat, graph.lon, anchor_lat[k], anchor_lon[k])
        scale = float(np.nanmedian(D[D > 0])) if (D > 0).any() else 1.0
        D = D / (scale * max(n / K, 1.0))
    share = problem.acc.sum(), problem.pot.sum()
    dw = np.zeros(n)
    if opts.mode == "rebalance":
        dw = dw + opts.keep_current * K * 0.5 * (
            (problem.acc / share[0] if share[0] else 0) + (problem.pot / share[1]
                                                           if share[1] else 0))
    can_join = ~too_far
    budget = max(float(opts.max_seconds), 0.1)
    temp0 = 0.0  # greedy: annealing (tried at 0.02-0.5) lost balance and compactness

    def worst(ld):
        devs = np.abs(ld[~locked] / target_vals - 1) if (~locked).any() else np.zeros((0, 1))
        return float((devs / tols).max()) if devs.size else 0.0

    def search(assign: np.ndarray, until: float) -> dict:
        """Greedy sweeps from `assign` until no move helps or the clock reaches `until`
        (seconds since the start of the run); the best plan seen."""
        loads = np.zeros((K, len(opts.targets)))
        for j in range(len(opts.targets)):
            col = problem.W[np.arange(n), assign] if problem.is_workload[j] else \
                problem.X[:, j]
            np.add.at(loads[:, j], assign, col)
        loads += problem.fixed_load
        A = np.zeros(K)
        P = np.zeros(K)
        if use_shape:
            np.add.at(A, assign, area)
            for u in range(n):
                P[assign[u]] += perim[u]
                for e in range(graph.ptr[u], graph.ptr[u + 1]):
                    if assign[graph.nbr[e]] == assign[u]:
                        P[assign[u]] -= border[e]
        fixed_units = locked[assign].copy()
        for k, a in enumerate(anchors):
            if a >= 0 and assign[a] == k:
                fixed_units[a] = True
        size = np.bincount(assign, minlength=K).astype(np.int64)
        stamp = np.zeros(n, dtype=np.int64)
        queue = np.zeros(n, dtype=np.int64)
        members = np.zeros(n, dtype=np.int64)
        inset = np.zeros(n, dtype=np.int64)
        anchor_in = np.array([a if a >= 0 and assign[a] == k else -1
                              for k, a in enumerate(anchors)], dtype=np.int64)
        mark = 0
        rng = np.random.default_rng(opts.seed)
        best = (worst(loads), assign.copy(), loads.copy(), A.copy(), P.copy())
        rounds = moves_total = 0
        stopped = False
        while True:
            elapsed = time.perf_counter() - started
            if elapsed >= until:
                break
            frac = min(elapsed / budget, 1.0)
            temp = temp0 * max(0.0, 1 - frac / 0.6) ** 2
            moves, mark = sweeps(2, temp, int(rng.integers(2**31 - 1)), assign, loads, size,
                                 A, P, problem.X, problem.W, problem.is_workload, target_vals,
                                 tols, packed, fixed_units, locked, can_join, graph.ptr,
                                 graph.nbr, border, area, perim, use_shape, D,
                                 opts.compactness, original, dw, stamp, mark, queue,
                                 anchor_in, members, inset)
            rounds += 1
            moves_total += moves
            now = worst(loads)
            if now <= best[0] + 1e-12:
                best = (now, assign.copy(), loads.copy(), A.copy(), P.copy())
            if progress is not None and progress(frac, best[0]) is False:
                stopped = True
                break
            if moves == 0 and temp == 0:
                break
        return {"worst": best[0], "assign": best[1], "loads": best[2], "A": best[3],
                "P": best[4], "rounds": rounds, "moves": moves_total, "stopped": stopped}

    def rank(found: dict) -> tuple:
        """Better first: the primary within its band (or nearer it), then the secondaries,
        then compactness (mean Polsby-Popper)."""
        devs = np.abs(found["loads"][~locked] / target_vals - 1) / tols
        primary = max(float(devs[:, 0].max()) - 1.0, 0.0) if devs.size else 0.0
        rest = max(float(devs[:, 1:].max()) - 1.0, 0.0) if devs.shape[1] > 1 else 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            pp = np.nan_to_num(4 * np.pi * found["A"] / found["P"] ** 2)[~locked]
        return (round(primary, 2), round(rest, 2), -float(pp.mean()) if pp.size else 0.0)

    found = []
    for i, kind in enumerate(kinds):
        if i:  # the later starts share the time left
            if found[-1]["stopped"]:
                break
            assign = start_from(kind)
        left = budget - (time.perf_counter() - started)
        result = search(assign, time.perf_counter() - started + left / (len(kinds) - i))
        result["start"] = kind
        found.append(result)
    chosen = min(found, key=rank)
    assign = chosen["assign"]
    rounds = sum(f["rounds"] for f in found)
    moves_total = sum(f["moves"] for f in found)
    stopped = any(f["stopped"] for f in found)
    if len(found) > 1:
        notes.append("two starts searched (even parts cut from spanning trees; territories "
                     "grown around the reps' homes): kept the one "
                     + ("around the homes" if chosen["start"] == "homes" else "cut from trees"))

    # 5. the result, measured by the metrics engine
    ids = graph.ids
    new_assign = pd.DataFrame({"unit_id": ids.astype(object),
                               "territory_id": terr["territory_id"].to_numpy()[assign]})
    new_pins = kept.iloc[:0]
    if len(kept):  # a pin only where the account's unit went to another rep
        unit_of = pins.drop_duplicates("account_id", keep="last").set_index(
            "account_id")["unit_id"]
        goes = new_assign.set_index("unit_id")["territory_id"]
        lands = unit_of.reindex(kept["account_id"]).map(goes).to_numpy()
        new_pins = kept[lands != kept["territory_id"].to_numpy()].reset_index(drop=True)
        extra = pins.iloc[len(plan_in.pins):]
        pins = pd.concat([plan_in.pins, extra[extra["account_id"].isin(new_pins["account_id"])]],
                         ignore_index=True)
        keep_notes.append(f"{len(kept)} named accounts kept with their rep: "
                          f"{len(new_pins)} by a pin (their unit went to another territory), "
                          f"{len(kept) - len(new_pins)} with their unit")
    before = metrics.territory_metrics(cube, plan_in)
    after_in = PlanInputs(new_assign.sort_values("unit_id").reset_index(drop=True),
                          _plan_terr(cur, terr), pins)
    base = metrics.disruption_frame_for(cur, plan, new_assign, pins)
    after = metrics.territory_metrics(cube, after_in, baseline=base)
    moved = sorted(set(ids[(original >= 0) & (original != assign)]) |
                   set(ids[original < 0]))
    report = _report(opts, graph, terr, after, reasons, notes + keep_notes, rounds,
                     problem,
                     moves_total, time.perf_counter() - started, stopped, assign, anchors, comp)
    far = too_far[np.arange(n), assign]
    report["beyond_travel_limit"] = [
        f"{int(far.sum())} units holding accounts lie more than {opts.max_travel_km:g} km "
        f"from their territory's rep home (e.g. {', '.join(map(str, ids[far][:5]))}): the "
        "balance could not keep them closer"] if far.any() else []
    return BalanceResult(plan, opts.mode, new_assign,
                         terr[["territory_id", "territory_name", "rep_id"]].copy(),
                         before, after, moved, report, new_pins)


def _incumbents(cur, plan: Plan, source: pd.DataFrame, terr: pd.DataFrame,
                opts: BalanceOptions) -> tuple[pd.DataFrame, list[str]]:
    """The named accounts (and the top-N by potential) to keep with their current rep, as
    (account_id, territory_id in the result); the notes say which cannot be kept and why.
    Accounts already pinned are kept by their pin already."""
    names = list(dict.fromkeys(str(a).strip() for a in opts.keep_accounts if str(a).strip()))
    if opts.keep_top < 0:
        raise InputError("--keep-top must be 0 or more")
    empty = pd.DataFrame(columns=["account_id", "territory_id"])
    if not names and not opts.keep_top:
        return empty, []
    cte, params = resolved_cte(plan, "r")
    known = cur.execute(
        f"WITH {cte} SELECT account_id, territory_id, pinned_to FROM r "
        "WHERE account_id IN (SELECT unnest(?::VARCHAR[]))", [*params, names]).df()
    unknown = sorted(set(names) - set(known["account_id"]))
    if unknown:
        raise InputError(f"accounts to keep not found: {', '.join(unknown[:5])}"
                         + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
                         + " (give account ids as in the accounts file)")
    if opts.keep_top:
        top = cur.execute(
            f"WITH {cte} SELECT account_id, territory_id, pinned_to FROM r "
            "WHERE territory_id IS NOT NULL ORDER BY potential DESC NULLS LAST, account_id "
            "LIMIT ?", [*params, int(opts.keep_top)]).df()
        known = pd.concat([known, top]).drop_duplicates("account_id")
    notes = []
    rep_of = dict(zip(source["territory_id"], source["rep_id"], strict=True))
    terr_of_rep = {r: t for t, r, lk in zip(terr["territory_id"], terr["rep_id"],
                                             terr["locked"], strict=True)
                   if isinstance(r, str) and not lk}
    rows, no_rep, gone = [], [], []
    for a, t, pinned in known.itertuples(index=False):
        if isinstance(pinned, str) or not isinstance(t, str):
            if not isinstance(t, str):
                gone.append(a)
            continue  # pinned: kept already
        rep = rep_of.get(t)
        if not isinstance(rep, str):
            no_rep.append(a)
        elif rep in terr_of_rep:
            rows.append((a, terr_of_rep[rep]))
        # else: a locked territory (its units do not move) or a rep left out of a build
        elif rep not in set(terr["rep_id"]):
            no_rep.append(a)
    if gone:
        notes.append(f"{len(gone)} accounts to keep have no territory today "
                     f"(e.g. {', '.join(map(str, gone[:3]))}): nothing to keep")
    if no_rep:
        notes.append(f"{len(no_rep)} accounts to keep have no rep in the result "
                     f"(e.g. {', '.join(map(str, no_rep[:3]))}): balanced like the rest")
    return pd.DataFrame(rows, columns=["account_id", "territory_id"]), notes


def _territories(cur, plan: Plan, source: pd.DataFrame, opts: BalanceOptions) -> pd.DataFrame:
    """The territories to balance over, with has_rep, has_home and locked."""
    reps = _reps(cur)
    homes = reps.set_index("rep_id")
    if opts.mode == "rebalance" or opts.territories in (None, len(source)):
        terr = source.copy()
        if opts.mode == "build" and len(terr) == 0:
            raise InputError(f"{plan.name!r} has no territories: give --territories K")
    else:
        K = int(opts.territories)
        with_home = reps.dropna(subset=["home_lat", "home_lon"])
        pool = with_home if len(with_home) >= K else reps
        if K < 1:
            raise InputError("--territories must be at least 1")
        if K > len(reps):  # noqa: SIM300
            raise InputError(f"{K} territories but {len(reps)} reps: one territory per rep, "
                             "so at most as many territories as reps")
        chosen = _spread(cur, pool, K, opts.seed)
        terr = pd.DataFrame({
            "territory_id": [f"T{k + 1:02d}" for k in range(K)],
            "territory_name": [str(pool.loc[i, "name"]) for i in chosen],
            "rep_id": [pool.loc[i, "rep_id"] for i in chosen],
            "locked": False,
        })
        terr["home_lat"] = terr["rep_id"].map(homes["home_lat"])
        terr["home_lon"] = terr["rep_id"].map(homes["home_lon"])
    terr["locked"] = terr["locked"].fillna(False).astype(bool) | terr["territory_id"].isin(
        opts.locked)
    terr["has_rep"] = terr["rep_id"].map(lambda r: isinstance(r, str) and r in homes.index)
    terr["has_home"] = terr["has_rep"] & terr["home_lat"].notna() & terr["home_lon"].notna()
    # territories without a rep are not balanced: kept as they are
    terr["locked"] = terr["locked"] | ~terr["has_rep"]
    return terr.reset_index(drop=True)


def _spread(cur, reps: pd.DataFrame, K: int, seed: int) -> list:
    """K reps where the potential is: K centres of the accounts weighted by potential (Lloyd
    rounds from a seeded start), each matched to a distinct rep by an optimal assignment on
    distance."""
    from scipy.optimize import linear_sum_assignment

    idx = list(reps.index)
    if K >= len(idx):  # noqa: SIM300
        return idx[:K]
    homes = reps.dropna(subset=["home_lat", "home_lon"])
    if len(homes) < K:
        return idx[:K]
    # Lloyd rounds on the accounts binned to 0.25 degree (each bin's potential-weighted
    # centre and sum): the same centres to within a bin (~25 km, against territories
    # hundreds of km wide) at a cost that no longer grows with the number of accounts
    # (95 s -> 3 s at 1M accounts, K = 50)
    acc = cur.execute(
        "SELECT sum(lat * potential) / sum(potential) AS lat, "
        "sum(lon * potential) / sum(potential) AS lon, sum(potential) AS potential "
        "FROM accounts WHERE lat IS NOT NULL AND lon IS NOT NULL AND potential > 0 "
        "GROUP BY round(lat * 4), round(lon * 4) ORDER BY 1, 2").fetchnumpy()
    lat, lon, w = (np.asarray(acc[c], float) for c in ("lat", "lon", "potential"))
    if len(lat) < K:
        return list(homes.index[:K])
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(SPREAD_STARTS):
        # start from bins drawn by potential (not k-means++: its pull to far points would
        # give a centre to every remote island), then Lloyd rounds
        centres = rng.choice(len(lat), size=K, replace=False, p=w / w.sum())
        clat, clon = lat[centres].copy(), lon[centres].copy()
        for _ in range(15):
            d = np.stack([haversine_km(lat, lon, clat[k], clon[k]) for k in range(K)], axis=1)
            near = d.argmin(axis=1)
            for k in range(K):
                m = near == k
                if m.any():
                    clat[k] = np.average(lat[m], weights=w[m])
                    clon[k] = np.average(lon[m], weights=w[m])
        # keep the start whose smallest cluster holds the most potential (a centre on a
        # small island, Hawaii for 12 territories, would waste a rep), then the tightest
        small = np.bincount(near, weights=w, minlength=K).min()
        spread = float((w * d[np.arange(len(lat)), near] ** 2).sum())
        key = (-min(small / (w.sum() / K), 0.5), spread)
        if best is None or key < best[0]:
            best = (key, clat.copy(), clon.copy())
    clat, clon = best[1], best[2]
    cost = np.stack([haversine_km(homes["home_lat"].to_numpy(float),
                                  homes["home_lon"].to_numpy(float), clat[k], clon[k])
                     for k in range(K)], axis=0)
    _, cols = linear_sum_assignment(cost)
    return sorted(homes.index[cols])


def _match_parts(problem: _Problem, parts: np.ndarray, terr_idx: np.ndarray,
                 original: np.ndarray, keep_current: float, anchors: np.ndarray,
                 too_far: np.ndarray) -> np.ndarray:
    """Which territory each part becomes: an optimal assignment
    (`scipy.optimize.linear_sum_assignment`) that first gives each rep the part holding
    their home (where two homes share a part, one of them), then minimises the parts'
    travel hours to the rep's home, less (with keep_current) the accounts kept."""
    from scipy.optimize import linear_sum_assignment

    P = len(terr_idx)
    travel = problem.W - problem.W.min(axis=1, keepdims=True)
    cost = np.zeros((P, P))
    valid = parts >= 0
    for r in range(P):
        members = valid & (parts == r)
        cost[r] = travel[members][:, terr_idx].sum(axis=0)
        if keep_current:
            mine = members & (original >= 0)
            kept = np.bincount(original[mine], weights=problem.acc[mine] + 1e-9,
                               minlength=problem.W.shape[1])[terr_idx]
            scale = (cost[r].mean() + 1.0) / max(problem.acc.sum() / P, 1.0)
            cost[r] -= 4.0 * keep_current * kept * scale
    big = 10.0 * (np.abs(cost).sum() + 1.0)
    for r in range(P):  # units beyond the travel limit of the rep: avoided first
        cost[r] += big * too_far[valid & (parts == r)][:, terr_idx].sum(axis=0)
    for c, k in enumerate(terr_idx):
        a = anchors[k]
        if a >= 0 and parts[a] >= 0:
            cost[parts[a], c] -= big
    rows, cols = linear_sum_assignment(cost)
    order = np.empty(P, dtype=np.int64)
    order[rows] = terr_idx[cols]
    return order


def _plan_terr(cur, terr: pd.DataFrame) -> pd.DataFrame:
    """The territory frame `PlanInputs` wants, for the balanced territories."""
    reps = cur.execute("SELECT rep_id, annual_quota, capacity_hours AS rep_capacity, "
                       "home_lat, home_lon FROM reps").df().set_index("rep_id")
    out = terr[["territory_id", "territory_name", "rep_id"]].copy()
    quota = terr["annual_quota"] if "annual_quota" in terr else pd.Series(np.nan,
                                                                          index=terr.index)
    out["annual_quota"] = quota.fillna(out["rep_id"].map(reps["annual_quota"])).fillna(0)
    out["home_lat"] = out["rep_id"].map(reps["home_lat"])
    out["home_lon"] = out["rep_id"].map(reps["home_lon"])
    out["rep_capacity"] = out["rep_id"].map(reps["rep_capacity"])
    out["has_rep"] = out["rep_id"].isin(reps.index)
    return out


def _report(opts, graph, terr, after, reasons, notes, rounds, problem, moves, seconds,
            stopped, assign, anchors, comp) -> dict:
    rows, _ = after
    acc = problem.acc
    has_rep = terr["has_rep"].to_numpy()
    with_rep = rows[has_rep]
    missed = []
    for j, t in enumerate(opts.targets):
        dev = with_rep[f"deviation_{t.measure}"].abs().max() if \
            f"deviation_{t.measure}" in with_rep else None
        if dev is None and t.measure not in with_rep:  # an overlay: from the units' values
            own = assign >= 0
            sums = np.bincount(assign[own], weights=problem.X[own, j], minlength=len(terr))
            vals = pd.Series((sums + problem.fixed_load[:, j])[has_rep])
            mean = vals.mean()
            dev = float((vals / mean - 1).abs().max()) if mean else None
        elif dev is None:
            vals = with_rep[t.measure].astype(float)
            mean = vals.mean()
            dev = float((vals / mean - 1).abs().max()) if mean else None
        if dev is not None and dev > t.tolerance + 1e-9:
            missed.append(f"{t.measure}: largest deviation {dev:.1%}, above ±{t.tolerance:.0%}")
    pieces = []
    for k, row in rows.reset_index(drop=True).iterrows():
        if row["components"] and row["components"] > 1:
            members = assign == k
            graph_pieces = len(np.unique(comp[members]))
            why = ("the map itself is in pieces there: islands or land cut off by water"
                   if graph_pieces == row["components"] else "the search could not join them")
            pieces.append(f"{row['territory_id']}: {int(row['components'])} pieces ({why})")
    away = [terr["territory_id"].iloc[k] for k, a in enumerate(anchors)
            if a >= 0 and assign[a] != k]
    return {
        "mode": opts.mode, "seconds": round(seconds, 2), "rounds": rounds, "moves": moves,
        "stopped_by_user": stopped, "units": len(graph), "filled_units": int(graph.filled.sum()),
        "graph": graph.how, "targets": [t.__dict__ for t in opts.targets],
        "cannot_meet": reasons, "missed": missed, "pieces": pieces, "notes": notes,
        "homes_outside": away, "far_from_home": _far_from_home(graph, terr, assign, acc,
                                                               rows),
        "seed": opts.seed,
        "locked": list(terr.loc[terr["locked"], "territory_id"]),
    }


def _far_from_home(graph: UnitGraph, terr: pd.DataFrame, assign: np.ndarray,
                   acc: np.ndarray, rows: pd.DataFrame) -> list[str]:
    """Territories whose accounts lie far from their rep's home: the median account more
    than twice the plan's typical distance and over 300 km away, with the distance and
    the territory's workload, so a manager sees what the balance costs in travel."""
    median = {}
    for k in np.flatnonzero(terr["has_home"].to_numpy(bool) & ~terr["locked"].to_numpy(bool)):
        mine = np.flatnonzero((assign == k) & (acc > 0))
        if len(mine):
            d = haversine_km(graph.lat[mine], graph.lon[mine], terr["home_lat"].iloc[k],
                             terr["home_lon"].iloc[k])
            order = np.argsort(d)
            cum = np.cumsum(acc[mine][order])
            median[k] = float(d[order][np.searchsorted(cum, cum[-1] / 2)])
    if not median:
        return []
    typical = float(np.median(list(median.values())))
    work = rows.set_index("territory_id")["workload_hours"] if "workload_hours" in rows \
        else pd.Series(dtype=float)
    out = []
    for k, d in sorted(median.items(), key=lambda kv: -kv[1]):
        if d > max(2 * typical, 300.0):
            t = terr["territory_id"].iloc[k]
            hours = work.get(t)
            out.append(f"{t} (rep {terr['rep_id'].iloc[k]}): its median account lies "
                       f"{d:,.0f} km from the rep's home (typical here: {typical:,.0f} km)"
                       + (f"; workload {hours:,.0f} h" if isinstance(hours, float) and
                          hours == hours else ""))
    return out


# --------------------------------------------------------------------------------------
# saving a result
# --------------------------------------------------------------------------------------
def result_label(result: BalanceResult) -> str:
    whole = result.after[1]
    primary = result.report["targets"][0]["measure"]
    dev = whole.get(f"balance_max_dev_{primary}")
    dev_text = f", max deviation {dev:.1%}" if isinstance(dev, float) else ""
    return f"Balance ({result.mode}, {primary}{dev_text})"


def apply_result(store, plan: Plan, result: BalanceResult):
    """The result on `plan` itself, as one undoable edit (Undo takes it all back)."""
    from analytics import edits

    if plan.plan_id != result.source.plan_id:
        raise InputError("this result was computed for another plan")
    return edits.replace_assignment(store, plan, result.assignment, result.territories,
                                    result_label(result), result.new_pins)


def save_result(store, result: BalanceResult, name: str, *, state: str = "planning") -> Plan:
    """The result as a new plan (a copy of the source: pins, types and rules kept), in one
    transaction, with its assignment and territories."""
    name = (name or "").strip()
    if not name:
        raise InputError("the balanced plan needs a name (--into)")
    with store.transaction() as cur:
        plan_id = plans.copy_plan(cur, result.source, name, state=state,
                                  note=f"balanced from {result.source.name}", event="cloned")
        keep = {r.territory_id: r for r in result.territories.itertuples(index=False)}
        locked = {r[0] for r in cur.execute(
            "SELECT territory_id FROM territories WHERE plan_id = ? AND locked", [plan_id]
        ).fetchall()}
        for tid in [r[0] for r in cur.execute(
                "SELECT territory_id FROM territories WHERE plan_id = ?", [plan_id]).fetchall()]:
            if tid not in keep and tid not in locked:
                cur.execute("DELETE FROM territories WHERE plan_id = ? AND territory_id = ?",
                            [plan_id, tid])
        for tid, r in keep.items():
            if tid in locked:
                continue
            rep = r.rep_id if isinstance(r.rep_id, str) else None
            if cur.execute("SELECT 1 FROM territories WHERE plan_id = ? AND territory_id = ?",
                           [plan_id, tid]).fetchone():
                cur.execute("UPDATE territories SET name = ?, rep_id = ? WHERE plan_id = ? "
                            "AND territory_id = ?", [str(r.territory_name), rep, plan_id, tid])
            else:
                cur.execute("INSERT INTO territories (plan_id, territory_id, name, rep_id) "
                            "VALUES (?, ?, ?, ?)", [plan_id, tid, str(r.territory_name), rep])
        cur.execute("DELETE FROM plan_units WHERE plan_id = ? AND territory_id NOT IN (SELECT "
                    "territory_id FROM territories WHERE plan_id = ? AND locked)",
                    [plan_id, plan_id])
        rows = result.assignment[~result.assignment["territory_id"].isin(locked)].copy()
        rows.insert(0, "plan_id", plan_id)
        cur.register("balanced_units", rows)
        cur.execute("INSERT INTO plan_units SELECT plan_id, unit_id, territory_id "
                    "FROM balanced_units WHERE unit_id NOT IN (SELECT unit_id FROM plan_units "
                    "WHERE plan_id = ?)", [plan_id])
        cur.unregister("balanced_units")
        for a, t in zip(result.new_pins["account_id"], result.new_pins["territory_id"],
                        strict=True):  # named accounts kept with their rep
            cur.execute("INSERT OR REPLACE INTO account_overrides (plan_id, account_id, "
                        "territory_id) VALUES (?, ?, ?)", [plan_id, str(a), str(t)])
        plans.log_event(cur, plan_id, "balanced", result_label(result))
    return plans.get_plan(store.cursor(), name)
