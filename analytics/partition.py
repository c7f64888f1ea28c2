"""Contiguous parts of even load on a unit graph: the optimiser's start.

Recursive bisection of random spanning trees (the method of GerryChain's
`recursive_tree_part`, written over scipy's sparse graph routines and a compiled subtree
sum), a repair that makes every territory one piece where the map allows, and the joining of
small pieces of the map no part reached. Kept apart from `analytics.balance` because it
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
