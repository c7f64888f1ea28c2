"""The PNG export: the plan's overview map with its legend, as the title slide shows it but
larger (12 x 8 inches at most, 150 dpi)."""

from __future__ import annotations

from pathlib import Path

from analytics.exports.pack import PlanPack


def write_png(pack: PlanPack, out: Path) -> Path:
    out.write_bytes(pack.maps.overview(width=12.0, max_height=8.0)[0])
    return out
