"""The exports' maps, drawn offline with matplotlib's Agg renderer (no pyplot state, no tiles).

Maps: the territory colours are the app's (`analytics.palette`: touching territories differ, a
colour the manager chose wins), state (or departement) outlines give context, and there are
no tiles. The overview is clipped to the bulk of the units, so that Alaska, Hawaii or the
overseas departements do not shrink the lower 48 or metropolitan France to a corner: the box
of the 5th to 95th percentiles of the unit centres, widened by half its size on each side,
keeps the unit parts (islands, pieces across the antimeridian) whose centre lies in it, and
the view is their extent. Territories left outside are named under the map and have their
own slides; each territory's map applies the same rule to its own units.

Maps are PNG bytes (a 256-colour palette: maps are a few flat colours), drawn once per
`PlanPack` and shared by the slides, the PDF pages and the PNG export.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from functools import cache
from typing import TYPE_CHECKING

import numpy as np
import shapely

from analytics import geography
from analytics.exports.labels import is_missing, shorten, territory_title
from analytics.palette import UNASSIGNED

if TYPE_CHECKING:
    from analytics.exports.pack import PlanPack

TERRITORY_MAP_SIZE = (7.4, 5.8)
"""Inches of a territory's map on its slide (and, scaled, on its PDF page)."""
DRAW_TOLERANCE_DEG = 0.005
"""Simplification of territory outlines for drawing only (exports keep the exact union)."""


def view_extent(geoms) -> tuple[float, float, float, float] | None:
    """(x0, x1, y0, y1) around the bulk of these unit geometries (see the module doc): the
    box of the 5th to 95th percentiles of the unit centres, widened by half its size on
    each side, keeps the unit parts (an island, a piece across the antimeridian) whose
    centre lies in it; the view is their extent."""
    geoms = np.asarray([g for g in geoms if g is not None and not g.is_empty], dtype=object)
    if not len(geoms):
        return None
    centres = shapely.point_on_surface(geoms)
    parts = shapely.get_parts(geoms)
    part_centres = shapely.point_on_surface(parts)
    keep = np.ones(len(parts), dtype=bool)
    for unit_v, part_v in ((shapely.get_x(centres), shapely.get_x(part_centres)),
                           (shapely.get_y(centres), shapely.get_y(part_centres))):
        lo, hi = np.percentile(unit_v, [5, 95])
        half = max(hi - lo, 0.5) / 2
        keep &= (part_v >= lo - half) & (part_v <= hi + half)
    x0, y0, x1, y1 = shapely.total_bounds(parts[keep] if keep.any() else parts)
    pad_x, pad_y = max((x1 - x0) * 0.03, 0.05), max((y1 - y0) * 0.03, 0.05)
    return x0 - pad_x, x1 + pad_x, y0 - pad_y, y1 + pad_y


def _path(geom):
    """A shapely (multi)polygon as one matplotlib compound path (holes kept)."""
    from matplotlib.path import Path as MplPath

    verts, codes = [], []
    for poly in shapely.get_parts(geom):
        if shapely.get_type_id(poly) != 3:
            continue
        for ring in (poly.exterior, *poly.interiors):
            c = np.asarray(ring.coords)[:, :2]
            if len(c) < 4:
                continue
            k = np.full(len(c), MplPath.LINETO, dtype=np.uint8)
            k[0], k[-1] = MplPath.MOVETO, MplPath.CLOSEPOLY
            verts.append(c)
            codes.append(k)
    return MplPath(np.concatenate(verts), np.concatenate(codes)) if verts else None


def _rings(geoms) -> list[np.ndarray]:
    """The rings of these polygons, simplified for drawing, as coordinate arrays."""
    simple = shapely.simplify(np.asarray(geoms, dtype=object), DRAW_TOLERANCE_DEG / 2)
    rings = shapely.get_rings(shapely.get_parts(simple))
    coords, index = shapely.get_coordinates(rings, return_index=True)
    return np.split(coords, np.flatnonzero(np.diff(index)) + 1) if len(coords) else []


@cache
def _context_paths(kind: str) -> tuple:
    """Simplified outlines of the states (or departements) drawn under the territories."""
    _, _, geoms = geography.unit_polygons(kind)
    simple = shapely.simplify(np.asarray(geoms, dtype=object), 0.02, preserve_topology=True)
    return tuple(p for p in (_path(g) for g in simple) if p is not None)


_CONTEXT_BOXES = {"state": (-180.0, 17.0, -64.0, 72.0), "fr_dept": (-6.0, 41.0, 10.0, 52.0)}


class Maps:
    """The overview and per-territory maps of a pack, as PNG bytes."""

    def __init__(self, pack: PlanPack) -> None:
        self.pack = pack
        self.ids = [t for t in pack.terr["territory_id"] if pack.draw_shapes.get(t) is not None]
        self.paths = {t: _path(pack.draw_shapes[t]) for t in self.ids}
        self.ids = [t for t in self.ids if self.paths[t] is not None]
        all_units = [g for t in self.ids for g in pack.unit_geoms[t]]
        self.extent = view_extent(all_units) or (-125.0, -66.0, 24.0, 50.0)
        self.names = dict(zip(pack.terr["territory_id"], pack.terr["territory_name"],
                              strict=True))
        self._territory_pngs: dict[str, bytes] | None = None

    def _axes(self, fig, rect, extent):
        ax = fig.add_axes(rect)
        ax.set_axis_off()
        w, h = fig.get_size_inches()
        ax._atlas_box = (w * rect[2], h * rect[3])  # the axes' size in inches
        _fit_view(ax, extent)
        return ax

    def _context(self, ax, extent) -> None:
        from matplotlib.collections import PathCollection

        x0, x1, y0, y1 = extent
        for kind, (bx0, by0, bx1, by1) in _CONTEXT_BOXES.items():
            if x1 < bx0 or x0 > bx1 or y1 < by0 or y0 > by1:
                continue
            ax.add_collection(PathCollection(
                list(_context_paths(kind)), facecolors="none", edgecolors="#9A9A9A",
                linewidths=0.4, zorder=3))

    def _territories(self, ax, focus: str | None = None):
        from matplotlib.collections import PathCollection

        faces = [self.pack.colors.get(t, UNASSIGNED) if focus in (None, t) else "#E4E4E4"
                 for t in self.ids]
        coll = PathCollection([self.paths[t] for t in self.ids], facecolors=faces,
                              edgecolors="white", linewidths=0.3, zorder=2)
        ax.add_collection(coll)
        return coll

    def _outside(self, extent) -> list[str]:
        x0, x1, y0, y1 = extent
        view = shapely.box(x0, y0, x1, y1)
        return [t for t in self.ids if not self.pack.draw_shapes[t].intersects(view)]

    def overview(self, width: float = 11.0, max_height: float = 6.6, dpi: int = 150,
                 legend: bool = True) -> tuple[bytes, float, float]:
        """(PNG bytes, width, height in inches) of the plan's map with a legend of every
        territory, at most `width` x `max_height` inches, as tall as the view needs."""
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch

        terr = self.pack.terr
        n = len(terr)
        font = 6.5 if n > 24 else 8.0
        line = font / 72 * 1.75  # a legend row's height, inches
        col_w = font / 72 * 0.62 * 30 + 0.45  # a legend column's width, inches
        x0, x1, y0, y1 = self.extent
        ratio = (y1 - y0) / math.cos(math.radians((y0 + y1) / 2)) / (x1 - x0)

        def fit(map_w, map_h):  # the largest map of the view's shape within the room
            return (map_w, map_w * ratio) if map_w * ratio <= map_h else (map_h / ratio, map_h)

        options = []  # (map area, legend place, columns, map w, map h, legend w, legend h)
        if legend and n:
            for ncol in range(1, 5):  # legend on the right
                lw, lh = ncol * col_w, math.ceil(n / ncol) * line + 0.3
                if lh <= max_height and lw < width * 0.6:
                    mw, mh = fit(width - lw, max_height)
                    options.append((mw * mh, "right", ncol, mw, mh, lw, lh))
            ncol = max(1, int(width // col_w))  # legend below
            lh = math.ceil(n / ncol) * line + 0.3
            if lh < max_height * 0.6:
                mw, mh = fit(width, max_height - lh)
                options.append((mw * mh, "below", ncol, mw, mh, width, lh))
        if options:
            _, place, ncol, map_w, map_h, legend_w, legend_h = max(options, key=lambda o: o[0])
        else:
            place, ncol, legend_w, legend_h = None, 0, 0.0, 0.0
            map_w, map_h = fit(width, max_height)
        if place == "below":
            fig_w, fig_h = max(map_w, min(width, ncol * col_w)), map_h + legend_h
            rect = ((fig_w - map_w) / 2 / fig_w, legend_h / fig_h, map_w / fig_w, map_h / fig_h)
            anchor = {"loc": "upper center", "bbox_to_anchor": (0.5, legend_h / fig_h)}
        else:
            fig_w, fig_h = map_w + legend_w, max(map_h, legend_h)
            rect = (0.0, (fig_h - map_h) / 2 / fig_h, map_w / fig_w, map_h / fig_h)
            anchor = {"loc": "center left", "bbox_to_anchor": (map_w / fig_w, 0.5)}
        fig = Figure(figsize=(fig_w, fig_h), dpi=dpi)
        ax = self._axes(fig, rect, self.extent)
        self._territories(ax)
        self._context(ax, self.extent)
        outside = self._outside(self.extent)
        if outside:
            ax.text(0.0, 0.0, "Outside this view: " + ", ".join(outside[:8])
                    + (f" and {len(outside) - 8} more" if len(outside) > 8 else ""),
                    transform=ax.transAxes, fontsize=7, color="#444444")
        if ncol:
            handles = [Patch(facecolor=self.pack.colors.get(t, UNASSIGNED), edgecolor="#777777",
                             linewidth=0.3, label=shorten(territory_title(t, self.names.get(t)),
                                                          30))
                       for t in terr["territory_id"]]
            fig.legend(handles=handles, **anchor, ncol=ncol, frameon=False, fontsize=font,
                       handlelength=1.0, handleheight=1.0, borderaxespad=0.2, labelspacing=0.3,
                       columnspacing=0.8)
        return _png(fig), fig_w, fig_h

    def territory_maps(self) -> Iterator[tuple[str, bytes]]:
        """(territory id, PNG) for every territory of the plan, in the plan's order; drawn
        once per pack (slides and PDF pages share them)."""
        yield from self._territory_maps().items()

    def territory_png(self, territory_id: str) -> bytes:
        """One territory's map (TERRITORY_MAP_SIZE inches), from the maps `territory_maps`
        draws once per pack."""
        return self._territory_maps()[territory_id]

    def _territory_maps(self) -> dict[str, bytes]:
        if self._territory_pngs is None:
            self._territory_pngs = dict(self._draw_territory_maps())
        return self._territory_pngs

    def _draw_territory_maps(self, size: tuple[float, float] = TERRITORY_MAP_SIZE,
                             dpi: int = 110) -> Iterator[tuple[str, bytes]]:
        """One figure reused: only the highlight, the view and the territory's own layer
        change from one territory to the next."""
        from matplotlib.collections import LineCollection, PathCollection
        from matplotlib.colors import to_rgba
        from matplotlib.figure import Figure

        fig = Figure(figsize=size, dpi=dpi)
        ax = self._axes(fig, (0.0, 0.0, 1.0, 1.0), self.extent)
        coll = self._territories(ax, focus="")
        self._context(ax, self.extent)
        grey = np.array(coll.get_facecolors())
        homes = self.pack.terr.set_index("territory_id")[["home_lat", "home_lon"]]
        index = {t: k for k, t in enumerate(self.ids)}
        for t in self.pack.terr["territory_id"]:
            faces = grey.copy()
            extras = []
            if t in index:
                faces[index[t]] = to_rgba(self.pack.colors.get(t, UNASSIGNED))
                if len(self.pack.unit_geoms[t]) > 1:  # the unit borders inside it
                    extras.append(ax.add_collection(LineCollection(
                        _rings(self.pack.unit_geoms[t]), colors="white", linewidths=0.35,
                        zorder=2.5)))
                extras.append(ax.add_collection(PathCollection(
                    [self.paths[t]], facecolors="none", edgecolors="#222222",
                    linewidths=1.0, zorder=4)))
                extent = view_extent(self.pack.unit_geoms[t]) or self.extent
            else:
                extent = self.extent
            coll.set_facecolors(faces)
            _fit_view(ax, _widen(extent))
            lat, lon = homes.loc[t, "home_lat"], homes.loc[t, "home_lon"]
            if not is_missing(lat) and not is_missing(lon):
                extras += ax.plot([lon], [lat], marker="*", markersize=13, color="black",
                                  markeredgecolor="white", linestyle="none", zorder=5)
                extras.append(ax.text(0.01, 0.01, "\u2605 rep's home", transform=ax.transAxes,
                                      fontsize=9, color="#222222", zorder=6))
            if t not in index:
                extras.append(ax.text(0.5, 0.5, "no units in this territory",
                                      transform=ax.transAxes, ha="center", fontsize=11))
            yield t, _png(fig)
            for artist in extras:
                artist.remove()


    def week_png(self, week, size: tuple[float, float] = TERRITORY_MAP_SIZE,
                 dpi: int = 110) -> bytes:
        """A rep's week (analytics/routes.py) on the territory: one colour per day, the
        stops numbered in their day's order, the rep's home a star."""
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D

        from analytics.routes import day_color

        fig = Figure(figsize=size, dpi=dpi)
        stops = week.stops
        lon, lat = stops["lon"].to_numpy(float), stops["lat"].to_numpy(float)
        pad_x = max((lon.max() - lon.min()) * 0.08, 0.05)
        pad_y = max((lat.max() - lat.min()) * 0.08, 0.05)
        extent = (lon.min() - pad_x, lon.max() + pad_x, lat.min() - pad_y, lat.max() + pad_y)
        ax = self._axes(fig, (0.0, 0.0, 1.0, 1.0), extent)
        coll = self._territories(ax, focus="")
        faces = np.array(coll.get_facecolors())
        from matplotlib.colors import to_rgba

        for k, t in enumerate(self.ids):
            if t in week.territory_ids:
                faces[k] = to_rgba(self.pack.colors.get(t, UNASSIGNED), 0.35)
        coll.set_facecolors(faces)
        self._context(ax, extent)
        handles = []
        for d, date in enumerate(week.dates, start=1):
            day = stops[stops["day"] == d]
            if not (day["kind"] == "visit").any():
                continue
            color = day_color(d)
            ax.plot(day["lon"], day["lat"], color=color, linewidth=1.4, zorder=5)
            visits = day[day["kind"] == "visit"]
            ax.scatter(visits["lon"], visits["lat"], s=42, color=color, edgecolors="white",
                       linewidths=0.6, zorder=6)
            for v in visits.itertuples(index=False):
                ax.text(v.lon, v.lat, str(v.stop), fontsize=5, color="white", ha="center",
                        va="center", zorder=7)
            row = week.days.iloc[d - 1]
            handles.append(Line2D([], [], color=color, linewidth=2,
                                  label=f"{date:%a %d %b}: {int(row['visits'])} visits, "
                                        f"{row['hours']:.1f} h, {row['km']:.0f} km"))
        ax.plot([week.home[1]], [week.home[0]], marker="*", markersize=14, color="black",
                markeredgecolor="white", linestyle="none", zorder=8)
        if handles:
            ax.legend(handles=handles, loc="upper left", fontsize=7, frameon=True,
                      framealpha=0.85)
        return _png(fig)

def _widen(extent) -> tuple[float, float, float, float]:
    """A territory's view, at least 1.5 degrees across (a single county is not a blur)."""
    x0, x1, y0, y1 = extent
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half_x, half_y = max((x1 - x0) / 2, 0.75), max((y1 - y0) / 2, 0.6)
    return cx - half_x, cx + half_x, cy - half_y, cy + half_y


def _fit_view(ax, extent) -> None:
    """Show `extent` in the axes, widened to the axes' shape, with 1 degree of latitude
    1 / cos(latitude) times as long as 1 degree of longitude (no projection needed)."""
    x0, x1, y0, y1 = extent
    aspect = 1 / max(math.cos(math.radians((y0 + y1) / 2)), 0.2)
    box_w, box_h = ax._atlas_box
    w, h = max(x1 - x0, 1e-6), max(y1 - y0, 1e-6) * aspect
    if h / w < box_h / box_w:
        grow = (box_h / box_w * w / aspect - (y1 - y0)) / 2
        y0, y1 = y0 - grow, y1 + grow
    else:
        grow = (h * box_w / box_h - (x1 - x0)) / 2
        x0, x1 = x0 - grow, x1 + grow
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect(aspect, adjustable="box")


def _png(fig) -> bytes:
    """The figure as a 256-colour palette PNG: about a quarter of the RGBA one's size and
    quicker to write (maps are a few flat colours)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    canvas = FigureCanvasAgg(fig)
    fig.set_facecolor("white")
    canvas.draw()
    img = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(), "raw",
                           "RGBA", 0, 1).convert("RGB")
    buf = io.BytesIO()
    img.quantize(256, method=Image.Quantize.FASTOCTREE).save(
        buf, format="PNG", dpi=(fig.dpi, fig.dpi))
    return buf.getvalue()
