"""Territory colours: a colour-blind-safe palette, neighbours never sharing a colour."""

from __future__ import annotations

from collections import defaultdict

# Paul Tol's "muted" scheme (colour-blind safe) plus two of his "light" colours.
PALETTE = (
    "#88CCEE", "#CC6677", "#DDCC77", "#117733", "#332288", "#AA4499",
    "#44AA99", "#999933", "#882255", "#EE8866", "#BBCC33",
)
UNASSIGNED = "#E6E6E6"


def territory_colors(
    territory_ids: list[str],
    touching: list[tuple[str, str]],
    fixed: dict[str, str] | None = None,
) -> dict[str, str]:
    """Greedy graph colouring: each territory takes a palette colour no neighbour has.

    `fixed` colours (chosen by the manager) are kept as they are. Territories are coloured
    most-connected first, which keeps a planar map within the palette.
    """
    fixed = {k: v for k, v in (fixed or {}).items() if v}
    nbrs: dict[str, set[str]] = defaultdict(set)
    for a, b in touching:
        if a != b:
            nbrs[a].add(b)
            nbrs[b].add(a)
    colors = dict(fixed)
    order = sorted(territory_ids, key=lambda t: (-len(nbrs[t]), t))
    for t in order:
        if t in colors:
            continue
        used = {colors.get(n) for n in nbrs[t]}
        free = [c for c in PALETTE if c not in used]
        if free:  # the least used free colour, so the whole palette shows on the map
            counts = dict.fromkeys(PALETTE, 0)
            for c in colors.values():
                counts[c] = counts.get(c, 0) + 1
            colors[t] = min(free, key=lambda c: (counts[c], PALETTE.index(c)))
        else:
            colors[t] = PALETTE[sum(map(ord, t)) % len(PALETTE)]
    return {t: colors[t] for t in territory_ids}
