"""The optimiser's inner loop: single-unit boundary moves judged by their exact effect.

Compiled with numba (the loop visits every boundary unit many times; in Python it would be a
hundred times slower). Each move of unit u from territory a to a touching territory b changes:

- the loads of a and b on every balanced measure, exactly: the unit's sums, and for
  `workload_hours` its visit hours plus its travel hours to the home of the receiving
  territory's rep (the per-(unit, territory) matrix `W`), so workload is the real metric;
- the perimeters and areas of a and b (shared border lengths), so the isoperimetric ratio
  P^2 / (4 pi A), the inverse of Polsby-Popper, changes exactly; point units, which have no
  shapes, use the distance to the territory's anchor (its rep's home) instead;
- disruption: the unit's share of accounts and potential, when it leaves (or returns to) its
  territory in the plan being rebalanced.

A move is made when it lowers the objective (or, early on, by simulated annealing with a
seeded generator), never when it would split territory a (the unit's neighbours in a must
stay connected without it), empty a, move a fixed unit (locked territory, a rep's home
unit) or enter a locked territory or one whose rep lives beyond the travel limit.
"""

from __future__ import annotations

import numpy as np
from numba import njit

BAND = 0.9
"""Aim inside this fraction of a tolerance, so rounding never leaves a territory just out."""
OUTSIDE = 100.0
"""Weight of being outside the band, against 1 for the other terms: balance comes first."""
INSIDE = 0.05
"""Weight of the deviation inside the band (keeps a gentle pull towards the mean)."""


@njit(cache=True)
def penalty(load, target, tol, weight):
    """`weight` packs two weights: outside the band (integer part / 1000) is lexicographic
    for the primary measure, inside the band (the rest) pulls gently to the mean."""
    if target <= 0:
        return 0.0
    d = (load - target) / target
    ad = abs(d)
    band = BAND * tol
    over = ad - band if ad > band else 0.0
    w_out = np.floor(weight) / 1000.0
    w_in = weight - np.floor(weight)
    return OUTSIDE * w_out * (over / tol) ** 2 + w_in * (d / tol) ** 2


@njit(cache=True)
def territory_cost(k, loads, targets, tols, weights):
    c = 0.0
    for j in range(targets.shape[0]):
        c += penalty(loads[k, j], targets[j], tols[j], weights[j])
    return c


@njit(cache=True)
def iso(perim, area):
    """P^2 / (4 pi A): 1 for a circle (1 / Polsby-Popper)."""
    if area <= 0:
        return 0.0
    return perim * perim / (4.0 * np.pi * area)


@njit(cache=True)
def unit_load(u, k, j, X, W, is_workload):
    return W[u, k] if is_workload[j] else X[u, j]


@njit(cache=True)
def move_delta(u, a, b, assign, loads, A, P, X, W, is_workload, targets, tols, weights,
               ptr, nbr, border, area, perim, use_shape, D, comp_w, original, dw):
    J = targets.shape[0]
    before = 0.0
    after = 0.0
    for j in range(J):
        la = loads[a, j]
        lb = loads[b, j]
        before += penalty(la, targets[j], tols[j], weights[j])
        before += penalty(lb, targets[j], tols[j], weights[j])
        after += penalty(la - unit_load(u, a, j, X, W, is_workload), targets[j], tols[j],
                         weights[j])
        after += penalty(lb + unit_load(u, b, j, X, W, is_workload), targets[j], tols[j],
                         weights[j])
    delta = after - before
    if comp_w > 0:
        if use_shape:
            sa = 0.0
            sb = 0.0
            for e in range(ptr[u], ptr[u + 1]):
                t = assign[nbr[e]]
                if t == a:
                    sa += border[e]
                elif t == b:
                    sb += border[e]
            pa = P[a] - perim[u] + 2.0 * sa
            pb = P[b] + perim[u] - 2.0 * sb
            delta += comp_w * (iso(pa, A[a] - area[u]) + iso(pb, A[b] + area[u])
                               - iso(P[a], A[a]) - iso(P[b], A[b]))
        else:
            delta += comp_w * (D[u, b] - D[u, a])
    o = original[u]
    if o >= 0:
        delta += dw[u] * ((1.0 if b != o else 0.0) - (1.0 if a != o else 0.0))
    return delta


@njit(cache=True)
def stays_connected(u, a, assign, ptr, nbr, stamp, mark, queue):
    """Would territory a stay in as many pieces without unit u? (u's neighbours in a must
    still reach each other.) `mark` is new for each call, so `stamp` is never cleared."""
    first = -1
    wanted = 0
    for e in range(ptr[u], ptr[u + 1]):
        v = nbr[e]
        if assign[v] == a:
            wanted += 1
            if first < 0:
                first = v
    if wanted <= 1:
        return True
    for e in range(ptr[u], ptr[u + 1]):
        v = nbr[e]
        if assign[v] == a:
            stamp[v] = -mark  # a neighbour still to be reached
    found = 1
    stamp[first] = mark
    head = 0
    tail = 0
    queue[tail] = first
    tail += 1
    while head < tail:
        x = queue[head]
        head += 1
        for e in range(ptr[x], ptr[x + 1]):
            y = nbr[e]
            if y == u or assign[y] != a or stamp[y] == mark:
                continue
            if stamp[y] == -mark:
                found += 1
                if found == wanted:
                    return True
            stamp[y] = mark
            queue[tail] = y
            tail += 1
    return False


@njit(cache=True)
def branch(u, a, anchor_a, assign, ptr, nbr, stamp, mark, queue, out, limit):
    """The units that removing u would cut off from territory a (the pieces of a without u
    that hold neither a's anchor nor, when it has none, the largest piece), with u itself
    first: written to `out`, their number returned (0: more than `limit`)."""
    n_pieces = 0
    best_piece = -1
    best_size = -1
    keep_piece = -1
    tail = 0
    starts = 0
    for e in range(ptr[u], ptr[u + 1]):
        v = nbr[e]
        if assign[v] != a or stamp[v] >= mark:
            continue
        piece = n_pieces
        n_pieces += 1
        stamp[v] = mark + piece
        head = tail
        queue[tail] = v
        tail += 1
        size = 0
        while head < tail:
            x = queue[head]
            head += 1
            size += 1
            if x == anchor_a:
                keep_piece = piece
            for f in range(ptr[x], ptr[x + 1]):
                y = nbr[f]
                if y == u or assign[y] != a or stamp[y] >= mark:
                    continue
                stamp[y] = mark + piece
                queue[tail] = y
                tail += 1
        if size > best_size:
            best_size = size
            best_piece = piece
        starts += 1
    if keep_piece < 0:
        keep_piece = best_piece
    count = 1
    out[0] = u
    for i in range(tail):
        x = queue[i]
        if stamp[x] - mark != keep_piece:
            if count >= limit:
                return 0
            out[count] = x
            count += 1
    return count


@njit(cache=True)
def set_shape(members, count, a, b, assign, P, ptr, nbr, border, area, perim, inset, tag):
    """(perimeter of a, perimeter of b, area moved) once units members[:count] (marked
    `tag` in `inset`) go from a to b: each loses or gains the units' own perimeters, and the
    borders they share with a become a's edge, those with b b's inside."""
    per = 0.0
    ar = 0.0
    inner = 0.0
    to_a = 0.0
    to_b = 0.0
    for i in range(count):
        x = members[i]
        per += perim[x]
        ar += area[x]
        for e in range(ptr[x], ptr[x + 1]):
            y = nbr[e]
            if inset[y] == tag:
                inner += border[e]
            elif assign[y] == a:
                to_a += border[e]
            elif assign[y] == b:
                to_b += border[e]
    inner *= 0.5
    return (P[a] - per + 2.0 * inner + 2.0 * to_a, P[b] + per - 2.0 * inner - 2.0 * to_b, ar)


@njit(cache=True)
def set_delta(members, count, a, b, assign, loads, A, P, X, W, is_workload, targets, tols,
              weights, ptr, nbr, border, area, perim, use_shape, D, comp_w, original, dw,
              inset, tag):
    """The objective change of moving units members[:count] from a to b (`inset` marks them
    with `tag`)."""
    J = targets.shape[0]
    delta = 0.0
    for j in range(J):
        sa = 0.0
        sb = 0.0
        for i in range(count):
            x = members[i]
            sa += unit_load(x, a, j, X, W, is_workload)
            sb += unit_load(x, b, j, X, W, is_workload)
        delta += (penalty(loads[a, j] - sa, targets[j], tols[j], weights[j])
                  + penalty(loads[b, j] + sb, targets[j], tols[j], weights[j])
                  - penalty(loads[a, j], targets[j], tols[j], weights[j])
                  - penalty(loads[b, j], targets[j], tols[j], weights[j]))
    if comp_w > 0:
        if use_shape:
            pa, pb, ar = set_shape(members, count, a, b, assign, P, ptr, nbr, border,
                                   area, perim, inset, tag)
            delta += comp_w * (iso(pa, A[a] - ar) + iso(pb, A[b] + ar)
                               - iso(P[a], A[a]) - iso(P[b], A[b]))
        else:
            for i in range(count):
                x = members[i]
                delta += comp_w * (D[x, b] - D[x, a])
    for i in range(count):
        x = members[i]
        o = original[x]
        if o >= 0:
            delta += dw[x] * ((1.0 if b != o else 0.0) - (1.0 if a != o else 0.0))
    return delta


@njit(cache=True)
def sweeps(n_sweeps, temp, seed, assign, loads, size, A, P, X, W, is_workload, targets,
           tols, weights, fixed, blocked, can_join, ptr, nbr, border, area, perim, use_shape,
           D, comp_w, original, dw, stamp, mark, queue, anchor, members, inset):
    """Run `n_sweeps` passes over the units in a random order; returns (moves, mark).

    A unit whose removal would split its territory may still move with the pieces it would
    cut off (a branch), when that lowers the objective and the branch is at most half the
    territory and holds no fixed unit: this is how a long, thin territory gives load away.
    """
    np.random.seed(seed)
    n = assign.shape[0]
    J = targets.shape[0]
    moves = 0
    tag = 0
    for _ in range(n_sweeps):
        order = np.random.permutation(n)
        for idx in range(n):
            u = order[idx]
            if fixed[u]:
                continue
            a = assign[u]
            if size[a] <= 1:
                continue
            best_b = -1
            best_d = 1e300
            for e in range(ptr[u], ptr[u + 1]):
                b = assign[nbr[e]]
                if b == a or blocked[b] or not can_join[u, b]:
                    continue
                seen = False
                for e2 in range(ptr[u], e):
                    if assign[nbr[e2]] == b:
                        seen = True
                        break
                if seen:
                    continue
                d = move_delta(u, a, b, assign, loads, A, P, X, W, is_workload, targets,
                               tols, weights, ptr, nbr, border, area, perim, use_shape, D,
                               comp_w, original, dw)
                if d < best_d:
                    best_d = d
                    best_b = b
            if best_b < 0:
                continue
            if not (best_d < -1e-12 or (temp > 0 and np.random.random() <
                                        np.exp(-best_d / temp))):
                continue
            mark += 1
            if not stays_connected(u, a, assign, ptr, nbr, stamp, mark, queue):
                mark += 1
                count = branch(u, a, anchor[a], assign, ptr, nbr, stamp, mark, queue,
                               members, max(size[a] // 2, 1))
                mark += n  # the branch used marks mark .. mark + pieces
                if count == 0:
                    continue
                ok = True
                for i in range(count):
                    if fixed[members[i]] or not can_join[members[i], best_b]:
                        ok = False
                        break
                if not ok:
                    continue
                tag += 1
                for i in range(count):
                    inset[members[i]] = tag
                d = set_delta(members, count, a, best_b, assign, loads, A, P, X, W,
                              is_workload, targets, tols, weights, ptr, nbr, border, area,
                              perim, use_shape, D, comp_w, original, dw, inset, tag)
                if not (d < -1e-12 or (temp > 0 and np.random.random() < np.exp(-d / temp))):
                    continue
                b = best_b
                if use_shape:
                    pa, pb, ar = set_shape(members, count, a, b, assign, P, ptr, nbr, border,
                                           area, perim, inset, tag)
                    P[a] = pa
                    P[b] = pb
                    A[a] -= ar
                    A[b] += ar
                for i in range(count):
                    x = members[i]
                    for j in range(J):
                        loads[a, j] -= unit_load(x, a, j, X, W, is_workload)
                        loads[b, j] += unit_load(x, b, j, X, W, is_workload)
                    assign[x] = b
                    inset[x] = 0
                size[a] -= count
                size[b] += count
                moves += 1
                continue
            b = best_b
            for j in range(J):
                loads[a, j] -= unit_load(u, a, j, X, W, is_workload)
                loads[b, j] += unit_load(u, b, j, X, W, is_workload)
            if use_shape:
                sa = 0.0
                sb = 0.0
                for e in range(ptr[u], ptr[u + 1]):
                    t = assign[nbr[e]]
                    if t == a:
                        sa += border[e]
                    elif t == b:
                        sb += border[e]
                P[a] = P[a] - perim[u] + 2.0 * sa
                P[b] = P[b] + perim[u] - 2.0 * sb
                A[a] -= area[u]
                A[b] += area[u]
            size[a] -= 1
            size[b] += 1
            assign[u] = b
            moves += 1
    return moves, mark


@njit(cache=True)
def subtree_sums(order, pred, values):
    """Each node's value plus its descendants' in a tree given by a breadth-first `order`
    and `pred` (the parent of each node; the root's is negative): children come after
    their parent, so one pass from the end adds every subtree into its parent."""
    acc = values.copy()
    for i in range(order.shape[0] - 1, 0, -1):
        v = order[i]
        acc[pred[v]] += acc[v]
    return acc
