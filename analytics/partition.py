"""Contiguous parts of even load on a unit graph: the optimiser's start.

Recursive bisection of random spanning trees (the method of GerryChain's
`recursive_tree_part`, written over scipy's sparse graph routines and a compiled subtree
sum); parts grown around fixed homes (a transportation problem solved with HiGHS); a repair
that makes every territory one piece where the map allows, and the joining of small pieces of
the map no part reached. Kept apart from `analytics.balance` because it
knows nothing of plans, reps or metrics: only a graph and a load per unit.
"""

from __future__ import annotations

import numpy as np

from analytics.metrics import haversine_km
from analytics.unit_graph import UnitGraph


def attach_rest(graph: UnitGraph, assign: np.ndarray, anchors_lat: np.ndarray,
                 anchors_lon: np.ndarray, blocked: np.ndarray,
                 free: np.ndarray | None = None) -> list[str]:
    """Units still free (small pieces of the map no part reached: islands, a shore cut off
    by water) join the part whose anchor is nearest their piece; returns one line saying
    how many pieces and units were joined that way."""
    free = (assign < 0) if free is None else (free & (assign < 0))
    if not free.any():
        return []
    comp = graph.components()
    ok = np.flatnonzero(~blocked & ~np.isnan(anchors_lat))
    pieces = np.unique(comp[free])
    for c in pieces:
        members = np.flatnonzero((comp == c) & free)
        lat, lon = float(graph.lat[members].mean()), float(graph.lon[members].mean())
        if len(ok) == 0:
            k = 0
        else:
            d = haversine_km(lat, lon, anchors_lat[ok], anchors_lon[ok])
            k = int(ok[int(np.nanargmin(d))])
        assign[members] = k
    return [f"{len(pieces)} small pieces of the map that no territory touches (islands, "
            f"shores cut off by water; {int(free.sum())} units) joined the nearest territory "
            "as separate pieces"]


def tree_partition(graph: UnitGraph, load: np.ndarray, K: int, rng: np.random.Generator,
                    free: np.ndarray, prefer: np.ndarray | None = None,
                    homes: np.ndarray | None = None, eps: float = 0.01,
                    tries: int = 40, compact_tries: int = 1) -> np.ndarray:
    """K contiguous parts of even `load`, by recursive bisection of random spanning trees
    (GerryChain's recursive tree partition): cut the tree edge whose side holds the wanted
    share of the load, on the best of `tries` trees. Parts are numbered 0..K-1; units of
    pieces of the graph too small for a part are left -1 (joined later).

    With `prefer` (each unit's territory today) the trees join a territory's own units
    first (edges between territories weigh more), so cuts fall on today's borders where the
    balance allows: a rebalance keeps whole territories it does not need to change."""
    from scipy.sparse import coo_matrix, triu
    from scipy.sparse.csgraph import (
        breadth_first_order,
        connected_components,
        minimum_spanning_tree,
    )

    from analytics.balance_search import subtree_sums

    n = len(graph)
    homes = np.zeros(n, dtype=bool) if homes is None else homes
    rows = np.repeat(np.arange(n), np.diff(graph.ptr))
    keep = free[rows] & free[graph.nbr]
    adj = coo_matrix((np.ones(int(keep.sum())), (rows[keep], graph.nbr[keep])),
                     shape=(n, n)).tocsr()
    lengths = np.nan_to_num(graph.border_km, nan=1.0)[keep] + 1e-6
    border_adj = coo_matrix((lengths, (rows[keep], graph.nbr[keep])), shape=(n, n)).tocsr()
    out = np.full(n, -1, dtype=np.int64)
    _, labels = connected_components(adj, directed=False)
    sizes = np.bincount(labels[free], minlength=labels.max() + 1)
    rank = np.argsort(-sizes, kind="stable")
    comp = np.full(n, -1, dtype=np.int64)
    comp[free] = np.argsort(rank)[labels[free]]
    total = float(load.sum())
    # parts per piece of the graph, by its share of the load (the largest piece takes the rest)
    pieces = np.unique(comp[free])
    total = float(load[free].sum())
    share = np.array([load[comp == c].sum() for c in pieces]) / max(total, 1e-12)
    k_of = np.floor(share * K + 0.5).astype(int)
    k_of[0] += K - k_of.sum()
    next_id = [0]

    def split(units: np.ndarray, k: int) -> None:
        if k <= 0:
            return
        if k == 1 or len(units) <= 1:
            out[units] = next_id[0]
            next_id[0] += 1
            return
        sub = adj[units][:, units]
        lu = load[units]
        if lu.sum() <= 0:  # nothing to share here (e.g. every account kept by a pin):
            lu = np.ones(len(units))  # even by the number of units
        unit = lu.sum() / k  # one part's load
        hu = homes[units].astype(float)
        sub_border = border_adj[units][:, units]
        best = None
        n_good = 0
        for _ in range(tries):
            w = triu(sub, k=1).tocoo()
            weight = rng.random(len(w.data)) + 1e-3
            if prefer is not None:
                pu, pv = prefer[units[w.row]], prefer[units[w.col]]
                weight += 10.0 * (pu != pv)
            w = coo_matrix((weight, (w.row, w.col)), shape=sub.shape)
            tree = minimum_spanning_tree(w)
            tree = tree + tree.T
            root = int(rng.integers(len(units)))
            order, pred = breadth_first_order(tree, root, directed=False,
                                              return_predecessors=True)
            acc = subtree_sums(order, pred, lu)
            acc_h = subtree_sums(order, pred, hu)
            # the cut below v leaves m parts' worth on v's side, any m in 1..k-1; a side
            # holding as many reps' homes as it gets parts is preferred (homes inside)
            m = np.clip(np.round(acc / unit), 1, k - 1)
            err = np.abs(acc - m * unit) / unit
            homes_off = (acc_h != m) | (hu.sum() - acc_h != k - m)
            score = err + (0.02 if hu.sum() == k else 0.0) * homes_off \
                + 0.001 * np.abs(m - k / 2)
            score[root] = np.inf
            v = int(np.argmin(score))
            inside = np.zeros(len(units), dtype=bool)
            inside[v] = True
            for x in order:
                p = pred[x]
                if p >= 0 and inside[p]:
                    inside[x] = True
            # among cuts as even as asked, the shortest border: compact parts
            cut = float((sub_border @ (~inside).astype(float))[inside].sum())
            good = err[v] <= eps and not (hu.sum() == k and homes_off[v])
            key = (0 if good else 1, cut if good else score[v])
            if best is None or key < best[0]:
                best = (key, inside, int(m[v]))
            if good:
                n_good += 1
                if n_good >= compact_tries:
                    break
        _, inside, m = best
        split(units[inside], m)
        split(units[~inside], k - m)

    for c, k in zip(pieces, k_of, strict=True):
        split(np.flatnonzero(comp == c), int(k))
    return out


def repair(graph: UnitGraph, assign: np.ndarray, load: np.ndarray,
            locked: np.ndarray) -> None:
    """Make every territory one piece where the graph allows: a territory keeps its piece
    with the most load and each other piece goes to the touching territory it shares most
    border (or most neighbours) with; a piece touching no other territory (an island of the
    map) stays. In place."""
    n = len(graph)
    border = np.nan_to_num(graph.border_km, nan=1.0) + 1e-6
    for _ in range(20):
        changed = False
        piece = np.full(n, -1, dtype=np.int64)
        pieces: list[tuple[int, np.ndarray]] = []
        for s in range(n):
            if piece[s] >= 0:
                continue
            k = assign[s]
            stack, members = [s], [s]
            piece[s] = len(pieces)
            while stack:
                i = stack.pop()
                for j in graph.nbr[graph.ptr[i]:graph.ptr[i + 1]]:
                    if piece[j] < 0 and assign[j] == k:
                        piece[j] = len(pieces)
                        stack.append(j)
                        members.append(j)
            pieces.append((k, np.asarray(members)))
        by_terr: dict[int, list[int]] = {}
        for idx, (k, _) in enumerate(pieces):
            by_terr.setdefault(k, []).append(idx)
        for k, idxs in by_terr.items():
            if len(idxs) < 2 or locked[k]:
                continue
            keep = max(idxs, key=lambda i: (load[pieces[i][1]].sum(), len(pieces[i][1])))
            for i in idxs:
                if i == keep:
                    continue
                members = pieces[i][1]
                score: dict[int, float] = {}
                for u in members:
                    for e in range(graph.ptr[u], graph.ptr[u + 1]):
                        t = assign[graph.nbr[e]]
                        if t != k and not locked[t]:
                            score[t] = score.get(t, 0.0) + border[e]
                if score:  # else: an island of the graph itself, left as it is
                    assign[members] = max(score, key=score.get)
                    changed = True
        if not changed:
            return


def anchored_partition(graph: UnitGraph, load: np.ndarray, home_lat: np.ndarray,
                       home_lon: np.ndarray, free: np.ndarray, tolerance: float,
                       avoid: np.ndarray | None = None, home_units: np.ndarray | None = None,
                       nearest: int = 10) -> np.ndarray:
    """Parts of even load, each around its own home: part k holds the units closest to home
    k that balance allows (the districting model of Hess et al., 1965: the transportation
    problem "assign each unit's load to a centre, each centre within ±tolerance of the
    share, least load-weighted squared distance", solved with HiGHS through
    `scipy.optimize.linprog`, then rounded: a basic solution splits at most a few units).
    Each unit may go to its `nearest` homes; a rep's home unit (`home_units`, -1 none) goes
    to that rep's part. `avoid` (units x parts, True: beyond the rep's travel limit) keeps a
    unit out of a part unless balance needs it there. Free units without load are left at
    -1 (`grow` spreads the parts over them); units not `free` are -1 too.
    """
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    P = len(home_lat)
    out = np.full(len(graph), -1, dtype=np.int64)
    units = np.flatnonzero(free & (load > 0))
    if P == 0 or len(units) == 0:
        return out
    lu = load[units]
    dist = np.stack([haversine_km(graph.lat[units], graph.lon[units], home_lat[k],
                                  home_lon[k]) for k in range(P)], axis=1)
    if P == 1:
        out[units] = 0
        return out
    between = np.array([np.sort(haversine_km(home_lat[k], home_lon[k], home_lat, home_lon))[1]
                        for k in range(P)])
    scale = float(np.median(between)) or 1.0  # a typical distance between next homes
    cost = (lu / lu.mean())[:, None] * (dist / scale) ** 2
    if avoid is not None:
        cost += avoid[units] * 100.0 * (float(cost.max()) + 1.0)
    m = min(nearest, P)
    cand = np.argpartition(dist, m - 1, axis=1)[:, :m]
    rows = np.repeat(np.arange(len(units)), m)
    cols = cand.ravel()
    pos = np.full(len(graph), -1, dtype=np.int64)
    pos[units] = np.arange(len(units))
    home_of = np.full(len(units), -1, dtype=np.int64)
    for k in range(P - 1, -1, -1):  # where two homes share a unit, the first rep's
        if home_units is not None and home_units[k] >= 0 and pos[home_units[k]] >= 0:
            home_of[pos[home_units[k]]] = k
    mine = (home_of[rows] < 0) | (home_of[rows] == cols)
    rows = np.concatenate([rows[mine], np.flatnonzero(home_of >= 0)])
    cols = np.concatenate([cols[mine], home_of[home_of >= 0]])
    pairs = np.unique(rows * P + cols)
    rows, cols = pairs // P, pairs % P
    nv = len(pairs)
    share = lu.sum() / P
    big = 1e3 * float(cost[rows, cols].max() + 1.0) / max(share, 1e-12)
    # variables: x (nv), then per part an excess and a shortfall (soft bounds: a unit
    # heavier than the band, or few candidates, never makes the problem infeasible);
    # row k: load of k - excess_k <= hi; row P + k: -load of k - shortfall_k <= -lo
    c = np.concatenate([cost[rows, cols], np.full(2 * P, big)])
    a_eq = coo_matrix((np.ones(nv), (rows, np.arange(nv))), shape=(len(units), nv + 2 * P))
    lo, hi = share * (1 - tolerance), share * (1 + tolerance)
    r_ub = np.concatenate([cols, P + cols, np.arange(P), P + np.arange(P)])
    c_ub = np.concatenate([np.arange(nv), np.arange(nv), nv + np.arange(P),
                           nv + P + np.arange(P)])
    v_ub = np.concatenate([lu[rows], -lu[rows], -np.ones(P), -np.ones(P)])
    a_ub = coo_matrix((v_ub, (r_ub, c_ub)), shape=(2 * P, nv + 2 * P))
    b_ub = np.concatenate([np.full(P, hi), np.full(P, -lo)])
    res = linprog(c, A_ub=a_ub.tocsr(), b_ub=b_ub, A_eq=a_eq.tocsr(),
                  b_eq=np.ones(len(units)), bounds=(0, None), method="highs")
    if res.status != 0 or res.x is None:  # not expected with soft bounds: nearest home
        out[units] = np.argmin(dist, axis=1)
        return out
    x = res.x[:nv]
    # rounding: a unit wholly in one part goes there; the few split between parts go,
    # heaviest first, to the part among theirs that is furthest below the share
    whole = x > 1 - 1e-6
    part = np.full(len(units), -1, dtype=np.int64)
    part[rows[whole]] = cols[whole]
    loads = np.bincount(part[part >= 0], weights=lu[part >= 0], minlength=P)
    split = np.flatnonzero(part < 0)
    for r in split[np.argsort(-lu[split], kind="stable")]:
        share_of = (rows == r) & (x > 1e-6)
        ks = cols[share_of] if share_of.any() else np.array([int(np.argmin(dist[r]))])
        k = int(ks[np.argmin(loads[ks] + lu[r] - share)])
        part[r] = k
        loads[k] += lu[r]
    out[units] = part
    for k in range(P):  # homes without load start their part too
        if home_units is not None and home_units[k] >= 0 and out[home_units[k]] < 0 \
                and free[home_units[k]]:
            out[home_units[k]] = k
    return out


def grow(graph: UnitGraph, assign: np.ndarray, free: np.ndarray) -> None:
    """Free units still at -1 join the part of the nearest assigned unit along the graph
    (a breadth-first flood from every assigned unit at once), so empty land between
    accounts fills as whole areas. Units the flood cannot reach stay -1. In place."""
    from collections import deque

    queue = deque(int(u) for u in np.flatnonzero(assign >= 0))
    while queue:
        u = queue.popleft()
        for v in graph.nbr[graph.ptr[u]:graph.ptr[u + 1]]:
            if assign[v] < 0 and free[v]:
                assign[v] = assign[u]
                queue.append(int(v))
