"""Parts around homes (`partition.anchored_partition`, `partition.grow`) on the 6 x 6 grid
of tests/test_balance.py, checked with the h3 library and plain counts."""

from __future__ import annotations

import h3
import numpy as np
from test_balance import CORNERS, GRID, pieces

from analytics import partition
from analytics.unit_graph import UnitGraph
from analytics.units import UnitType


def grid_graph() -> UnitGraph:
    return UnitGraph.build(UnitType.parse("h3:6"), list(GRID.values()), [])


def homes(graph: UnitGraph):
    index = {c: i for i, c in enumerate(graph.ids)}
    cells = [GRID[ij] for ij in CORNERS.values()]
    lat = np.array([h3.cell_to_latlng(c)[0] for c in cells])
    lon = np.array([h3.cell_to_latlng(c)[1] for c in cells])
    return lat, lon, np.array([index[c] for c in cells])


def test_four_even_parts_each_around_its_home():
    g = grid_graph()
    lat, lon, units = homes(g)
    parts = partition.anchored_partition(g, np.ones(len(g)), lat, lon,
                                         np.ones(len(g), dtype=bool), 0.02, home_units=units)
    assert sorted(np.bincount(parts).tolist()) == [9, 9, 9, 9]  # 9 cells each, exactly
    for k, u in enumerate(units):
        assert parts[u] == k  # each rep's home cell in the rep's own part
        assert pieces([g.ids[i] for i in np.flatnonzero(parts == k)]) == 1
    # each cell is nearer its own part's home than any home of a part it could swap into:
    # no two cells of different parts would both gain by swapping (the least squared
    # distance solution)
    d = np.array([[h3.grid_distance(g.ids[i], g.ids[u]) for u in units] for i in range(len(g))])
    for i in range(len(g)):
        for j in range(len(g)):
            a, b = parts[i], parts[j]
            if a != b:
                now = d[i, a] ** 2 + d[j, b] ** 2
                assert now <= d[i, b] ** 2 + d[j, a] ** 2 + 2  # (grid vs km: small slack)


def test_empty_cells_are_grown_over_and_heavy_ones_reported_by_their_load():
    g = grid_graph()
    lat, lon, units = homes(g)
    load = np.zeros(len(g))
    load[units] = 1.0  # only the homes hold load: everything else is grown over
    parts = partition.anchored_partition(g, load, lat, lon, np.ones(len(g), dtype=bool),
                                         0.02, home_units=units)
    assert (parts[units] == np.arange(4)).all()
    assert (parts >= 0).sum() == 4
    partition.grow(g, parts, np.ones(len(g), dtype=bool))
    assert (parts >= 0).all()
    for k in range(4):
        assert pieces([g.ids[i] for i in np.flatnonzero(parts == k)]) == 1


def test_the_travel_limit_keeps_units_out_when_balance_allows():
    g = grid_graph()
    lat, lon, units = homes(g)
    avoid = np.zeros((len(g), 4), dtype=bool)
    index = {c: i for i, c in enumerate(g.ids)}
    everywhere, next_door = index[GRID[(3, 3)]], index[GRID[(0, 1)]]
    free = np.ones(len(g), dtype=bool)
    plain = partition.anchored_partition(g, np.ones(len(g)), lat, lon, free, 0.02,
                                         home_units=units)
    assert plain[next_door] == 0  # beside home 0, it goes to part 0 ...
    avoid[everywhere, :] = True  # (a cell every part avoids must still go somewhere)
    avoid[next_door, 0] = True
    parts = partition.anchored_partition(g, np.ones(len(g)), lat, lon, free, 0.02, avoid,
                                         units)
    assert parts[everywhere] >= 0
    assert parts[next_door] != 0  # ... unless it lies beyond that rep's limit
    assert sorted(np.bincount(parts).tolist()) == [9, 9, 9, 9]
