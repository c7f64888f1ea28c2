"""Map editing benchmark: a click or a drawn rectangle on the Territory map, server and browser.

    python benchmarks/bench_map_edit.py                     # 1M accounts, 10M deals (cached)
    python benchmarks/bench_map_edit.py --accounts 100000   # a quick run (1M deals)
    python benchmarks/bench_map_edit.py --skip-browser      # the server-side part only

Targets (the map-editing issue), with 20,000 units in the plan:
- a click that assigns a unit shows the updated metrics in <= 0.5 s, a drawn rectangle in
  <= 1.0 s, in a real headless Chromium;
- under 200 KB sent to the browser a rerun;
- the server-side metric recompute after a stroke (`PlanInputs.load` + `territory_metrics`)
  in <= 50 ms at 1M accounts;
- the view (centre, zoom) kept across edits; postal units (county polygons) the same.

What it does:
1. Data: benchmarks/generate.py's accounts / deals / reps (shared with bench_import.py under
   benchmarks/out/<size>/), imported with `ingest.load` into benchmarks/out/map_edit_<size>/
   atlas.duckdb, plus an active H3 plan: the resolution whose occupied cells are closest to
   20,000 (h3:5 at 1M accounts), cells grouped into territories by a seeded weighted k-means
   on their centres, each territory given the rep living nearest its centre. Cached; the
   demo database (county plan, 3,141 counties) is built with `python -m analytics demo`.
2. Server side, on a copy: strokes of one unit (a click) and of ~200 units (a rectangle),
   each moving units to a neighbouring territory: `edits.assign`, then the recompute
   (`PlanInputs.load` + `territory_metrics`, shapes cache warmed once), then the other
   engine calls the page makes each rerun. Baseline in the same run: `metrics.summary` from
   scratch (rebuilds the cube, i.e. rescans accounts and deals) for the same plan state,
   with its answer checked against the incremental one; then one more stroke's recompute
   under cProfile. The same for the plan converted to counties (`edits.convert_plan`) at
   the same account count (`--server-convert county zip3` adds ZIP3).
3. Browser: `streamlit run app.py` on a copy of the database (engine and page functions
   timed from outside by a wrapper, nothing in the app edited), headless Chromium, the
   Territory map at zoom 7 over the densest part of the plan, then clicks in Paint mode and
   rectangles with leaflet.draw. Times are taken inside the page (pointer up in the map
   iframe -> `#atlas-status` data-version change -> Streamlit's script state back to
   notRunning), bytes are the websocket frames the page received for the rerun (decoded
   to name the elements they carried). The view and the iframe are checked after the edits.
4. The same browser measurements on the demo database's county plan (zoom 6, where a
   square of 200 counties fits).

Server log and per-function timings of the browser runs: benchmarks/out/logs/.

Speed is printed and compared with the baseline, never asserted. Results: a table on stdout
and benchmarks/out/bench_map_edit_<size>.{txt,json}.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
for _p in (str(ROOT), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from bench_import import (  # noqa: E402 - the shared data cache and machine description
    _busy_cpu_seconds,
    _ensure_data,
    _label,
    _machine,
    _wait_quiet,
)

TARGET_CLICK_S = 0.5
TARGET_RECT_S = 1.0
TARGET_BYTES = 200_000
TARGET_RECOMPUTE_S = 0.050
PLAN_UNITS = 20_000
AS_OF = "2026-06-30"  # benchmarks/generate.py AS_OF: half the year elapsed, deals both sides
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
IFRAME = 'iframe[title="streamlit_folium.st_folium"]'
try:
    from playwright.sync_api import Error as PlaywrightError
except ImportError:  # the server-side part needs no browser
    PlaywrightError = RuntimeError
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


# ======================================================================================
# small helpers
# ======================================================================================
def _stats(values: list[float]) -> dict:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"n": 0, "median": None, "p90": None, "min": None, "max": None, "all": []}
    return {"n": len(vals), "median": statistics.median(vals),
            "p90": float(np.percentile(vals, 90)), "min": min(vals), "max": max(vals),
            "all": vals}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _copy_db(src: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / "atlas.duckdb"
    shutil.copy(src, dst)
    if Path(f"{src}.wal").exists():
        shutil.copy(f"{src}.wal", f"{dst}.wal")
    return dst


def _git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "analytics", "ui", "pages",
                                "static/atlas"], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout.strip()
        return head + (" + uncommitted changes in analytics/ui/pages/static" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "?"


class CpuWatch:
    """How much of the machine other programs used while a phase ran (a shared machine)."""

    def __enter__(self):
        self.busy0 = _busy_cpu_seconds()
        self.own0 = self._own()
        self.t0 = time.perf_counter()
        return self

    @staticmethod
    def _own() -> float:
        import resource

        s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
            resource.RUSAGE_CHILDREN)
        return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime

    def __exit__(self, *exc):
        wall = time.perf_counter() - self.t0
        busy1 = _busy_cpu_seconds()
        self.wall = wall
        self.other_cores = None
        if self.busy0 is not None and busy1 is not None:
            self.other_cores = max(0.0, busy1 - self.busy0 - (self._own() - self.own0)) / max(
                wall, 1e-9)


# ======================================================================================
# 1. the database: generated data, imported, with an H3 plan of about 20,000 units
# ======================================================================================
def _kmeans(x: np.ndarray, w: np.ndarray, k: int, seed: int, iters: int = 40) -> np.ndarray:
    """Weighted k-means (k-means++ start, Lloyd steps), seeded: the same labels every run."""
    rng = np.random.default_rng(seed)
    p = w / w.sum()
    centres = [x[rng.choice(len(x), p=p)]]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for _ in range(1, k):
        q = w * d2
        c = x[rng.choice(len(x), p=q / q.sum())]
        centres.append(c)
        d2 = np.minimum(d2, ((x - c) ** 2).sum(1))
    cen = np.array(centres)
    lab = np.zeros(len(x), dtype=int)
    for _ in range(iters):
        dist = ((x[:, None, :] - cen[None, :, :]) ** 2).sum(2)
        new = dist.argmin(1)
        for j in range(k):
            m = new == j
            if m.any():
                cen[j] = np.average(x[m], axis=0, weights=w[m])
        if (new == lab).all():
            break
        lab = new
    return lab


def _occupied_cells(cur, unit) -> list[tuple[str, int]]:
    return cur.execute(
        f"SELECT {unit.unit_id_sql('a')} AS u, count(*) FROM accounts a "
        f"WHERE a.{unit.column} IS NOT NULL GROUP BY 1 ORDER BY 1").fetchall()


def _choose_unit(cur, wanted: str) -> str:
    if wanted != "auto":
        return wanted
    from analytics.units import UnitType

    counts = {r: len(_occupied_cells(cur, UnitType.parse(f"h3:{r}"))) for r in (5, 6, 7)}
    best = min(counts, key=lambda r: abs(counts[r] - PLAN_UNITS))
    return f"h3:{best}"


def _make_plan_csv(cur, unit, n_terr: int, seed: int, path: Path) -> dict:
    """unit_id, territory_id, territory_name, rep_id: every occupied cell, k-means regions."""
    import h3

    rows = _occupied_cells(cur, unit)
    ids = [r[0] for r in rows]
    w = np.array([r[1] for r in rows], float)
    ll = np.array([h3.cell_to_latlng(c) for c in ids])
    coslat = np.cos(np.radians(38.0))
    x = np.column_stack([ll[:, 0], ll[:, 1] * coslat])
    lab = _kmeans(x, w, n_terr, seed)
    # territories numbered west to east, each with the rep living nearest its centre
    cen = np.array([np.average(ll[lab == j], axis=0, weights=w[lab == j])
                    if (lab == j).any() else [np.nan, np.nan] for j in range(n_terr)])
    order = [j for j in np.argsort(cen[:, 1]) if not np.isnan(cen[j, 1])]
    reps = cur.execute("SELECT rep_id, name, home_lat, home_lon FROM reps WHERE home_lat IS "
                       "NOT NULL AND home_lon IS NOT NULL ORDER BY rep_id").fetchall()
    used: set[int] = set()
    rep_of: dict[int, tuple] = {}
    for j in sorted(order, key=lambda j: -w[lab == j].sum()):  # big regions choose first
        d = [((r[2] - cen[j, 0]) ** 2 + ((r[3] - cen[j, 1]) * coslat) ** 2)
             if i not in used else np.inf for i, r in enumerate(reps)]
        if not reps or np.isinf(min(d)):
            continue
        i = int(np.argmin(d))
        used.add(i)
        rep_of[j] = reps[i]
    tid = {j: f"T{n + 1:02d}" for n, j in enumerate(order)}
    lines = ["unit_id,territory_id,territory_name,rep_id"]
    for cell, j in zip(ids, lab, strict=True):
        rep = rep_of.get(j)
        name = f"Region {tid[j][1:]}" + (f" ({rep[1]})" if rep and rep[1] else "")
        lines.append(f"{cell},{tid[j]},{name.replace(',', ' ')},{rep[0] if rep else ''}")
    path.write_text("\n".join(lines) + "\n")
    return {"units": len(ids), "territories": len(order), "with_rep": len(rep_of)}


def ensure_bench_db(args) -> tuple[Path, dict]:
    """The generated database with its H3 plan (cached under benchmarks/out/map_edit_*)."""
    from analytics import ingest, plans
    from analytics.schema import SCHEMA_VERSION
    from analytics.store import Store
    from analytics.units import UnitType

    label = _label(args.accounts, args.deals)
    data = OUT / label
    folder = OUT / f"map_edit_{label}"
    db = folder / "atlas.duckdb"
    info_path = folder / "build.json"
    want_data = {"accounts": args.accounts, "deals": args.deals, "reps": args.reps,
                 "seed": args.seed}
    info = json.loads(info_path.read_text()) if info_path.exists() and db.exists() else {}
    if args.rebuild or info.get("data") != want_data:
        _ensure_data(data, args.accounts, args.deals, args.reps, args.seed)
        print(f"importing {args.accounts:,} accounts / {args.deals:,} deals into {db} ...",
              flush=True)
        folder.mkdir(parents=True, exist_ok=True)
        for suffix in ("", ".wal"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        t = time.perf_counter()
        with Store(db) as store:
            report = ingest.load(store, reps=data / "reps.parquet",
                                 accounts=data / "accounts.parquet",
                                 sales=data / "sales.parquet")
            store.set_meta("as_of", AS_OF)
            store.set_meta("dataset", f"benchmark {label} (benchmarks/generate.py)")
        info = {"data": want_data, "schema": SCHEMA_VERSION,
                "import_seconds": round(time.perf_counter() - t, 1),
                "rows": {tr.table: tr.rows for tr in report.tables},
                "engine": _git_commit()}
        info_path.write_text(json.dumps(info, indent=1) + "\n")
    with Store(db):  # a newer engine upgrades the cached file (schema migrations)
        pass
    want_plan = {"unit": args.unit, "territories": args.territories, "seed": args.seed}
    if info.get("plan_request") != want_plan:
        with Store(db) as store:
            cur = store.cursor()
            unit = _choose_unit(cur, args.unit)
            with store.transaction() as tx:
                for table in ("plan_edit_changes", "plan_edits", "account_overrides",
                              "plan_units", "territories", "plans"):
                    with contextlib.suppress(Exception):
                        tx.execute(f"DELETE FROM {table}")
            csv = folder / "plan.csv"
            made = _make_plan_csv(cur, UnitType.parse(unit), args.territories, args.seed, csv)
            plans.import_plan(store, f"Benchmark {unit}", UnitType.parse(unit), csv,
                              state="active", note="bench_map_edit.py: k-means regions")
        info["plan_request"] = want_plan
        info["plan"] = {"unit": unit, **made}
        info_path.write_text(json.dumps(info, indent=1) + "\n")
    return db, info


def ensure_demo_db() -> Path:
    """The default demo database (county plan), built with `python -m analytics demo`."""
    folder = OUT / "map_edit_demo"
    db = folder / "atlas.duckdb"
    if not db.exists():
        folder.mkdir(parents=True, exist_ok=True)
        print(f"building the demo database {db} ...", flush=True)
        subprocess.run([sys.executable, "-m", "analytics", "demo", "--db", str(db)],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    from analytics.store import Store

    with Store(db):  # a newer engine upgrades the cached file (schema migrations)
        pass
    return db


# ======================================================================================
# 2. server side: strokes, the recompute, and the naive baseline
# ======================================================================================
def _context(store, plan):
    from analytics.period import Period
    from analytics.settings import load_settings

    fixed = store.get_meta("as_of")
    as_of = dt.date.fromisoformat(fixed) if fixed else dt.date.today()
    return Period.year(as_of.year), as_of, load_settings(store)


class StrokePicker:
    """Seeded strokes that move units across a border: one unit, or a rectangle of ~N."""

    def __init__(self, index, assign: dict[str, str], seed: int):
        self.index, self.assign = index, assign
        self.rng = np.random.default_rng(seed)
        self.lat, self.lon = index.lat, index.lon
        self.cos = np.cos(np.radians(np.nanmean(index.lat))) if len(index) else 1.0

    def _terr(self) -> np.ndarray:
        return np.array([self.assign.get(u) or "" for u in self.index.ids], dtype=object)

    def _nearest_other(self, i: int, terr: np.ndarray, exclude: set[str]) -> str | None:
        d = (self.lat - self.lat[i]) ** 2 + ((self.lon - self.lon[i]) * self.cos) ** 2
        bad = np.isin(terr, list(exclude | {""}))
        d = np.where(bad, np.inf, d)
        j = int(np.argmin(d))
        return None if np.isinf(d[j]) else terr[j]

    def click(self) -> tuple[float, float, str]:
        terr = self._terr()
        for _ in range(1000):
            i = int(self.rng.integers(len(self.index)))
            if not terr[i]:
                continue
            target = self._nearest_other(i, terr, {terr[i]})
            if target:
                return float(self.lat[i]), float(self.lon[i]), target
        raise RuntimeError("no unit next to another territory")

    def rectangle(self, n: int) -> tuple[dict, str]:
        terr = self._terr()
        i = int(self.rng.integers(len(self.index)))
        cheb = np.maximum(np.abs(self.lat - self.lat[i]),
                          np.abs(self.lon - self.lon[i]) * self.cos)
        h = float(np.sort(cheb)[min(n, len(cheb)) - 1]) * 1.0001 + 1e-6
        dlon = h / self.cos
        la, lo = float(self.lat[i]), float(self.lon[i])
        ring = [[lo - dlon, la - h], [lo + dlon, la - h], [lo + dlon, la + h],
                [lo - dlon, la + h], [lo - dlon, la - h]]
        geom = {"type": "Polygon", "coordinates": [ring]}
        inside = np.array([terr[self.index.position()[u]] for u in self.index.inside(geom)],
                          dtype=object)
        names, counts = np.unique(inside[inside != ""], return_counts=True)
        if len(names) >= 2:  # the second territory takes the rectangle: a border moves
            target = names[np.argsort(-counts)[1]]
        else:
            target = self._nearest_other(i, terr, set(names.tolist()))
        return geom, target

    def applied(self, units: list[str], target: str) -> None:
        for u in units:
            self.assign[u] = target


def server_side(db_src: Path, args, workdir: Path) -> dict:
    """Stroke timings on the generated plan, and on it converted to county and ZIP3."""
    from analytics import edits, metrics, plans
    from analytics.store import Store
    from analytics.unit_index import UnitIndex
    from analytics.units import UnitType

    db = _copy_db(db_src, workdir / "server")
    store = Store(db)
    cur = store.cursor()
    active = plans.get_plan(cur, plans.list_plans(cur)["name"].iloc[0])
    out = {"accounts": store.counts().get("accounts"), "plans": []}
    todo = [("generated plan", active)]
    for unit in args.server_convert:
        t = time.perf_counter()
        try:
            plan, _ = edits.convert_plan(store, active, UnitType.parse(unit),
                                         f"Benchmark converted to {unit}")
        except Exception as exc:  # noqa: BLE001 - report it, time the rest
            out.setdefault("errors", []).append(f"convert_plan to {unit}: {exc}")
            continue
        todo.append((f"converted to {unit}", plan))
        out.setdefault("convert_seconds", {})[unit] = time.perf_counter() - t
    for what, plan in todo:
        print(f"  server side: {what} ({plan.unit}) ...", flush=True)
        try:
            with CpuWatch() as cw:
                res = _server_plan(store, plan, args, UnitIndex, edits, metrics, plans)
        except Exception as exc:  # noqa: BLE001 - report it, time the rest
            out.setdefault("errors", []).append(f"{what}: {type(exc).__name__}: {exc}")
            continue
        res["what"] = what
        res["other_cores"] = cw.other_cores
        out["plans"].append(res)
    store.close()
    return out


def _page_extras(cur, plan, index, rows, whole, plans, metrics):
    """The other engine calls pages/map.py makes every rerun (outside Streamlit)."""
    from analytics import edits

    times = {}
    t = time.perf_counter()
    terr = plans.territories(cur, plan)
    times["plans.territories"] = time.perf_counter() - t
    t = time.perf_counter()
    edits.next_labels(cur, plan)
    times["edits.next_labels"] = time.perf_counter() - t
    t = time.perf_counter()
    assign = plans.assignment(cur, plan)
    times["plans.assignment"] = time.perf_counter() - t
    try:
        from ui.map import unit_codes

        t = time.perf_counter()
        unit_codes(index, assign, terr["territory_id"].tolist())
        times["ui.map.unit_codes"] = time.perf_counter() - t
    except Exception as exc:  # noqa: BLE001 - the UI may be mid-edit: time the rest
        times["ui.map.unit_codes"] = None
        print(f"    (ui.map.unit_codes not timed: {exc})", flush=True)
    t = time.perf_counter()
    metrics.summary_frame(rows, whole).to_csv(index=False)
    times["summary_frame.to_csv (download)"] = time.perf_counter() - t
    return times


def _same_answer(a, b) -> bool:
    import pandas as pd

    ra, rb = a[0].sort_values("territory_id").reset_index(drop=True), b[0].sort_values(
        "territory_id").reset_index(drop=True)
    if list(ra.columns) != list(rb.columns) or len(ra) != len(rb):
        return False
    for c in ra.columns:
        x, y = ra[c], rb[c]
        if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
            if not np.allclose(x.to_numpy(float), y.to_numpy(float), rtol=1e-9, atol=1e-6,
                               equal_nan=True):
                return False
        elif not (x.astype(str) == y.astype(str)).all():
            return False
    for k, v in a[1].items():
        w = b[1].get(k)
        if isinstance(v, (int, float)) and isinstance(w, (int, float)):
            if not np.isclose(v, w, rtol=1e-9, atol=1e-6):
                return False
        elif v != w:
            return False
    return True


def _server_plan(store, plan, args, UnitIndex, edits, metrics, plans) -> dict:
    cur = store.cursor()
    period, as_of, settings = _context(store, plan)
    res = {"unit": str(plan.unit), "plan": plan.name}
    t = time.perf_counter()
    index = UnitIndex.build(cur, plan)
    res["index_seconds"] = time.perf_counter() - t
    assign = dict(plans.assignment(cur, plan).itertuples(index=False, name=None))
    res["units_on_map"] = len(index)
    res["units_in_plan"] = len(assign)
    terr = plans.territories(cur, plan)
    res["territories"] = len(terr)
    reps = set(terr["rep_id"].dropna())
    t = time.perf_counter()  # in two steps, as build() does: base measures, then travel
    cube = metrics.MetricCube.build(cur, plan.unit, period, as_of, settings, None, set())
    t1 = time.perf_counter()
    cube.add_reps(cur, reps)
    res["cube_base_seconds"] = t1 - t
    res["cube_travel_seconds"] = time.perf_counter() - t1
    res["cube_seconds"] = time.perf_counter() - t
    res["reps"] = len(reps)
    cache: dict = {}
    t = time.perf_counter()
    metrics.territory_metrics(cube, metrics.PlanInputs.load(cur, plan, cube),
                              shapes_cache=cache)
    res["first_metrics_seconds"] = time.perf_counter() - t  # warms the shapes cache
    picker = StrokePicker(index, assign, args.seed)
    for kind in ("click", "rectangle"):
        rec = {k: [] for k in ("hit", "assign", "load", "metrics", "recompute", "edit_total",
                               "changed", "units", "baseline", "extras")}
        same = []
        for k in range(args.strokes):
            if kind == "click":
                lat, lon, target = picker.click()
                t = time.perf_counter()
                u = index.at(lat, lon)
                units = [u] if u else []
            else:
                geom, target = picker.rectangle(args.rect_units)
                t = time.perf_counter()
                units = index.inside(geom)
            rec["hit"].append(time.perf_counter() - t)
            t = time.perf_counter()
            done = edits.assign(store, plan, units, target)
            rec["assign"].append(time.perf_counter() - t)
            picker.applied(units, target)
            t = time.perf_counter()
            pin = metrics.PlanInputs.load(cur, plan, cube)
            t1 = time.perf_counter()
            rows, whole = metrics.territory_metrics(cube, pin, shapes_cache=cache)
            t2 = time.perf_counter()
            rec["load"].append(t1 - t)
            rec["metrics"].append(t2 - t1)
            rec["recompute"].append(t2 - t)
            rec["edit_total"].append(rec["assign"][-1] + t2 - t)
            rec["changed"].append(done.changed)
            rec["units"].append(len(units))
            rec["extras"].append(_page_extras(cur, plan, index, rows, whole, plans, metrics))
            if k < args.baseline_repeat:
                t = time.perf_counter()
                naive = metrics.summary(cur, plan, period, as_of, settings)
                rec["baseline"].append(time.perf_counter() - t)
                same.append(_same_answer((rows, whole), naive))
        extras = {}
        for name in rec["extras"][0]:
            extras[name] = _stats([e[name] for e in rec["extras"] if e[name] is not None])
        res[kind] = {k: _stats(v) for k, v in rec.items() if k != "extras"}
        res[kind]["extras"] = extras
        res[kind]["baseline_equal"] = all(same) if same else None
    res["recompute_profile"] = _profile_recompute(store, plan, cube, cache, picker, index,
                                                  edits, metrics, cur)
    return res


def _profile_recompute(store, plan, cube, cache, picker, index, edits, metrics, cur):
    """One more click stroke, its recompute under cProfile: where the time goes."""
    import cProfile
    import pstats

    lat, lon, target = picker.click()
    unit = index.at(lat, lon)
    edits.assign(store, plan, [unit] if unit else [], target)
    prof = cProfile.Profile()
    prof.enable()
    metrics.territory_metrics(cube, metrics.PlanInputs.load(cur, plan, cube),
                              shapes_cache=cache)
    prof.disable()
    stats = pstats.Stats(prof)
    total = sum(v[2] for v in stats.stats.values())  # own time of every function
    rows = []
    for (path, line, name), (_cc, _nc, tt, ct, _callers) in stats.stats.items():
        short = f"{Path(path).parent.name}/{Path(path).name}:{line} {name}" if line else name
        rows.append((short, tt, ct))
    own = sorted(rows, key=lambda r: -r[1])[:8]
    ours = sorted((r for r in rows if "/analytics/" in r[0] or r[0].startswith("analytics/")),
                  key=lambda r: -r[2])[:8]
    return {"total": total, "own": own, "cumulative_analytics": ours}


# ======================================================================================
# 3. the browser: a Streamlit server with timed engine / page functions, headless Chromium
# ======================================================================================
PROFILE_TARGETS = [
    # (module, attribute, label): wrapped from outside, nothing in the app is edited
    ("ui.context", "sidebar_context", "sidebar_context"),
    ("ui.map_editor", "on_map_change", "on_map_change (the edit)"),
    ("analytics.edits", "assign", "  edits.assign"),
    ("ui.map_spec", "unit_index", "unit_index (cached)"),
    ("ui.map_spec", "territory_palette", "territory_palette (cached)"),
    ("analytics.plans", "territories", "plans.territories (each call)"),
    ("analytics.edits", "next_labels", "edits.next_labels"),
    ("ui.plan_metrics", "plan_metrics", "plan_metrics"),
    ("analytics.metrics", "territory_metrics", "  territory_metrics"),
    ("ui.map_spec", "map_spec", "map_spec"),
    ("ui.map_spec", "unit_codes", "  unit_codes"),
    ("ui.map", "territory_map", "territory_map (folium + st_folium)"),
    ("ui.map", "base_map", "  base_map"),
    ("ui.map", "st_folium", "  st_folium"),
    ("ui.widgets", "kpi_row", "kpi_row (each call)"),
    ("ui.widgets", "balance_chart", "balance_chart"),
    ("ui.widgets", "territory_table", "territory_table"),
    ("analytics.metrics", "summary_frame", "summary_frame (download)"),
    ("ui.territory_tools", "manage", "territory_tools.manage"),
    ("ui.territory_tools", "inspector", "territory_tools.inspector"),
    ("ui.territory_tools", "unit_switch", "territory_tools.unit_switch"),
    ("ui.territory_tools", "edit_history", "territory_tools.edit_history"),
]


def _serve(log_path: str, port: int, profile: bool) -> None:
    """Child: `streamlit run app.py` with `make run`'s warm-up (ui/serve.py), and
    PROFILE_TARGETS timed into a JSON-lines file."""
    os.chdir(ROOT)
    if profile:
        import functools
        import importlib

        lock = threading.Lock()
        sink = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the server

        def log(label, t0, dur):
            with lock:
                sink.write(json.dumps({"name": label, "t0": t0, "dur": dur}) + "\n")

        def timed(fn, label):
            @functools.wraps(fn)
            def run(*a, **kw):
                t0, p0 = time.time(), time.perf_counter()
                try:
                    return fn(*a, **kw)
                finally:
                    log(label, t0, time.perf_counter() - p0)
            return run

        def install():
            # imported inside the Streamlit runtime: streamlit-folium declares its
            # component at import time, and a component declared before the runtime
            # exists is never served (the map iframe stays blank)
            for mod_name, attr, label in PROFILE_TARGETS:
                try:
                    mod = importlib.import_module(mod_name)
                    setattr(mod, attr, timed(getattr(mod, attr), label))
                except Exception as exc:  # noqa: BLE001 - renamed: time the rest
                    log(f"(not timed: {mod_name}.{attr}: {exc})", time.time(), 0.0)
            try:
                from analytics import metrics

                load = metrics.PlanInputs.load
                metrics.PlanInputs.load = classmethod(
                    lambda cls, *a, **kw: timed(load, "  PlanInputs.load")(*a, **kw))
            except Exception:  # noqa: BLE001 - not there: not timed
                pass
            try:
                from streamlit.navigation import page as st_page

                st_page.Page.run = timed(st_page.Page.run, "page script (pages/map.py)")
            except Exception:  # noqa: BLE001 - Streamlit internals moved: not timed
                pass

        installed = []
        try:
            from streamlit.runtime.scriptrunner import script_runner

            runner = script_runner.ScriptRunner._run_script
            timed_runner = timed(runner, "RERUN (whole run)")

            @functools.wraps(runner)
            def first_installs(*a, **kw):
                with lock:
                    if not installed:
                        installed.append(True)
                        install()
                return timed_runner(*a, **kw)

            script_runner.ScriptRunner._run_script = first_installs
        except Exception as exc:  # noqa: BLE001 - Streamlit internals moved: not timed
            log(f"(not timed: ScriptRunner._run_script: {exc})", time.time(), 0.0)
    try:  # as `make run`: the libraries imported while the server waits
        from ui import serve
    except ImportError:  # an engine from before ui/serve.py (a before/after comparison)
        serve = None
    if serve is not None:
        threading.Thread(target=serve.import_when_ready, daemon=True).start()
    sys.argv = ["streamlit", "run", "app.py", "--server.port", str(port),
                "--server.address", "127.0.0.1", "--server.headless", "true",
                "--server.fileWatcherType", "none", "--server.runOnSave", "false",
                "--browser.gatherUsageStats", "false"]
    from streamlit.web import cli

    sys.exit(cli.main())


INIT_JS = r"""
(() => {
  // an iframe's initial about:blank document hands its window to the real one: observe
  // the document that is there now, once per document
  if (window.__bench && window.__bench.doc === document) { return; }
  const now = () => performance.timeOrigin + performance.now();
  const B = window.__bench = {ups: [], versions: [], msgs: [], states: [], renders: [],
                               long: [], drawn: [], firsts: [], doc: document};
  if (window.top === window) {
    try {  // main-thread tasks over 50 ms (the component iframe shares this thread)
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) {
          B.long.push([performance.timeOrigin + e.startTime, e.duration]);
        }
      }).observe({type: "longtask"});
    } catch (err) { /* no long task timing here */ }
    window.addEventListener("message", (e) => {
      const d = e.data;
      if (d && d.type === "streamlit:setComponentValue") { B.msgs.push(now()); }
    }, true);
    new MutationObserver((recs) => {
      const t = now();
      for (const r of recs) {
        B.states.push({state: r.target.getAttribute("data-test-script-state"), t: t});
      }
    }).observe(document, {attributes: true, subtree: true,
                             attributeFilter: ["data-test-script-state"]});
    B.idleAfter = (t0) => {
      // the first return to notRunning after a run that started after t0
      let started = null;
      for (const s of B.states) {
        if (s.t < t0) { continue; }
        if (s.state === "running" && started === null) { started = s.t; }
        if (s.state === "notRunning" && started !== null) {
          return {started: started, idle: s.t};
        }
      }
      return null;
    };
  } else {
    window.addEventListener("pointerup", () => { B.ups.push(now()); }, true);
    new MutationObserver((recs) => {
      const t = now();
      for (const r of recs) {
        const el = r.target;
        if (el.id !== "atlas-status") { continue; }
        const rec = {v: Number(el.getAttribute("data-version")), t: t,
                     restyled: Number(el.getAttribute("data-restyled")), painted: null};
        B.versions.push(rec);
        requestAnimationFrame(() => requestAnimationFrame(() => { rec.painted = now(); }));
      }
    }).observe(document, {attributes: true, subtree: true,
                             attributeFilter: ["data-version"]});
    new MutationObserver(() => {  // the map recoloured a click before the server answered
      const rec = {t: now(), painted: null};
      B.firsts.push(rec);
      requestAnimationFrame(() => requestAnimationFrame(() => { rec.painted = now(); }));
    }).observe(document, {attributes: true, subtree: true,
                             attributeFilter: ["data-answered-first", "data-answered-under"]});
  }
})();
"""

WRAP_UPDATE_JS = r"""
() => {
  // time each spec the map applies: from the call (the rerun's arguments have reached the
  // iframe and been evaluated) to the end of its synchronous part (restyle, outlines)
  const B = window.__bench, units = window.atlasUnits;
  if (!units || units.__timed) { return !!units; }
  const update = units.update;
  units.update = function () {
    const t0 = performance.timeOrigin + performance.now();
    try { return update.apply(this, arguments); } finally {
      B.renders.push([t0, performance.timeOrigin + performance.now()]);
    }
  };
  units.__timed = true;
  window.map.on("draw:created", (e) => {  // what the rectangle tool really drew
    const b = e.layer.getBounds();
    B.drawn.push([b.getSouth(), b.getWest(), b.getNorth(), b.getEast()]);
  });
  return true;
}
"""


def _mercator(lat, lon, z):
    s = 256 * 2 ** z
    x = (np.asarray(lon) + 180) / 360 * s
    siny = np.clip(np.sin(np.radians(lat)), -0.9999, 0.9999)
    y = (0.5 - np.log((1 + siny) / (1 - siny)) / (4 * np.pi)) * s
    return x, y


def _densest_centre(index, zoom: int, w: float, h: float, seed: int) -> tuple[float, float]:
    """The unit centre around which a w x h pixel window at `zoom` holds the most units."""
    x, y = _mercator(index.lat, index.lon, zoom)
    rng = np.random.default_rng(seed)
    cand = rng.choice(len(x), size=min(len(x), 1500), replace=False)
    best, best_n = cand[0], -1
    for i in cand:
        n = int(((np.abs(x - x[i]) < w * 0.4) & (np.abs(y - y[i]) < h * 0.4)).sum())
        if n > best_n:
            best, best_n = i, n
    return float(index.lat[best]), float(index.lon[best])


class Wire:
    """Websocket frames and HTTP responses the page received, counted per window; frames
    decoded (Streamlit's ForwardMsg) to say which elements the bytes were."""

    def __init__(self, page):
        self.ws_in = self.ws_out = self.frames_in = 0
        self.requests: list = []
        self.by_kind: dict[str, int] = {}
        self.component_args: dict[str, int] = {}
        try:
            from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

            self.decode = ForwardMsg.FromString
        except ImportError:
            self.decode = None
        page.on("websocket", self._ws)
        page.on("requestfinished", lambda r: self.requests.append(r))

    def _ws(self, ws):
        ws.on("framereceived", self._in)
        ws.on("framesent", self._out)

    def _kind(self, payload) -> str:
        if self.decode is None or not isinstance(payload, bytes):
            return "text"
        try:
            msg = self.decode(payload)
        except Exception:  # noqa: BLE001 - protobuf's DecodeError, or a newer protocol
            return "undecoded"
        kind = msg.WhichOneof("type") or "?"
        if kind != "delta":
            return kind
        kind = msg.delta.WhichOneof("type") or "?"
        if kind != "new_element":
            return kind
        el = msg.delta.new_element
        kind = el.WhichOneof("type") or "?"
        if kind == "component_instance":
            with contextlib.suppress(ValueError):
                args = json.loads(el.component_instance.json_args or "{}")
                self.component_args = {k: len(json.dumps(v)) for k, v in args.items()}
            kind += f" {el.component_instance.component_name}"
        return kind

    def _in(self, payload):
        self.ws_in += len(payload)
        self.frames_in += 1
        kind = self._kind(payload)
        self.by_kind[kind] = self.by_kind.get(kind, 0) + len(payload)

    def _out(self, payload):
        self.ws_out += len(payload)

    def reset(self):
        self.ws_in = self.ws_out = self.frames_in = 0
        self.requests = []
        self.by_kind = {}
        self.component_args = {}

    def http(self) -> tuple[int, int, list[str]]:
        total, urls = 0, []
        for r in self.requests:
            if r.url.startswith("data:"):
                continue
            urls.append(r.url.split("?")[0].rsplit("/", 2)[-1])
            with contextlib.suppress(Exception):
                total += r.sizes()["responseBodySize"]
        return len(urls), total, urls


def _read_profile(path: Path, t0_ms: float, t1_ms: float):
    """Seconds per timed function whose call started inside [t0, t1] (epoch ms), and the
    (start, seconds) of each whole run there."""
    out: dict[str, float] = {}
    runs = []
    if not path.exists():
        return out, runs
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            r = json.loads(line)
            if t0_ms <= r["t0"] * 1000 <= t1_ms:
                out[r["name"]] = out.get(r["name"], 0.0) + r["dur"]
                if r["name"] == "RERUN (whole run)":
                    runs.append((r["t0"], r["dur"]))
    return out, sorted(runs)


def browser_side(db_src: Path, label: str, args, workdir: Path, zoom: int) -> dict:
    """Clicks and rectangles on the Territory map of a copy of `db_src`, in Chromium."""
    from playwright.sync_api import sync_playwright

    from analytics import plans
    from analytics.store import Store
    from analytics.unit_index import UnitIndex

    # what the page will show: the active plan, its index, the brush (first territory)
    with Store(db_src, read_only=True) as store:
        cur = store.cursor()
        plan = plans.get_plan(cur, plans.list_plans(cur)["name"].iloc[0])
        index = UnitIndex.build(cur, plan)
        assign = dict(plans.assignment(cur, plan).itertuples(index=False, name=None))
        tids = plans.territories(cur, plan)["territory_id"].tolist()
    brush = tids[0]
    res = {"label": label, "plan": plan.name, "unit": str(plan.unit),
           "units_on_map": len(index), "units_in_plan": len(assign), "territories": len(tids),
           "brush": brush}

    run_dir = workdir / f"browser-{label}"
    db = _copy_db(db_src, run_dir)
    port = _free_port()
    log_path = OUT / "logs" / f"streamlit_{label}.log"
    prof_path = OUT / "logs" / f"profile_{label}.jsonl"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    prof_path.unlink(missing_ok=True)
    log = open(log_path, "w")  # noqa: SIM115 - closed in finally
    env = {**os.environ, "TERRITORY_ATLAS_DB": str(db),
           "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [
               os.environ.get("PYTHONPATH")])])}
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--child-serve", str(prof_path),
         "--port", str(port), *([] if args.profile else ["--no-profile"])],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    res["server_log"] = str(log_path)
    try:
        url = f"http://127.0.0.1:{port}"
        t = time.perf_counter()
        deadline = time.time() + 90
        while time.time() < deadline:
            with contextlib.suppress(OSError), urllib.request.urlopen(
                    f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
            if proc.poll() is not None:
                raise RuntimeError("streamlit exited: " + log_path.read_text()[-3000:])
            time.sleep(0.3)
        else:
            raise RuntimeError("streamlit did not start: " + log_path.read_text()[-3000:])
        res["server_start_seconds"] = time.perf_counter() - t
        with sync_playwright() as p:
            exe = shutil.which("chromium") or shutil.which("chromium-browser")
            if exe is None:
                raise RuntimeError("Debian's chromium is not installed: apt-get install "
                                   "chromium (or `make chromium`)")
            browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(viewport={"width": 1400, "height": 1000})
                context.add_init_script(INIT_JS)
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on("console", lambda m: errors.append(m.text)
                        if m.type == "error" else None)
                wire = Wire(page)
                res.update(_drive(page, wire, url, index, assign, brush, args, prof_path,
                                  zoom))
                res["console_errors"] = errors[:10]
            finally:
                browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    tail = [ln for ln in log_path.read_text().splitlines()
            if "Traceback" in ln or "Error" in ln or "Warning" in ln]
    res["server_log_problems"] = tail[:10]
    return res


def _frame(page):
    el = page.wait_for_selector(IFRAME, state="attached", timeout=180_000)
    return el, el.content_frame()


def _drive(page, wire, url, index, assign, brush, args, prof_path, zoom) -> dict:
    res: dict = {}
    # -- first load ------------------------------------------------------------------------
    t, t_epoch = time.perf_counter(), time.time()
    page.goto(url)  # the default page is the Territory map (app.py runs st.navigation)
    el, frame = _frame(page)
    frame.wait_for_selector("#atlas-status", state="attached", timeout=300_000)
    # seen by Playwright: its polling runs on the page's main thread, which the page's
    # other elements keep busy, so it can see the map up to a second after it was drawn
    res["first_map_seen_seconds"] = time.perf_counter() - t
    page.wait_for_selector(IDLE, timeout=300_000)
    res["first_idle_seconds"] = time.perf_counter() - t
    # on screen: two frames after the map drew its first spec, by the page's own clock
    # (the same machine's clock as time.time())
    painted = frame.wait_for_selector("#atlas-status[data-first-painted]", state="attached",
                                      timeout=60_000).get_attribute("data-first-painted")
    res["first_map_seconds"] = float(painted) / 1000 - t_epoch
    time.sleep(1.0)
    page.wait_for_selector(IDLE, timeout=300_000)
    # the hooks: an init script does not reach the component's document (its iframe swaps
    # the initial about:blank document for the real one), so install them now as well
    page.evaluate(INIT_JS)
    frame.evaluate(INIT_JS)
    res["update_timed"] = frame.evaluate(WRAP_UPDATE_JS)
    n, size, _ = wire.http()
    res["first_load"] = {"ws_bytes": wire.ws_in, "http_requests": n, "http_bytes": size}
    # -- the view: zoom 7 over the densest part of the plan -------------------------------
    el.scroll_into_view_if_needed()
    w, h = frame.evaluate("() => { const s = window.map.getSize(); return [s.x, s.y]; }")
    centre = _densest_centre(index, zoom, w, h, args.seed)
    res["zoom"] = zoom
    rect_units = args.rect_units
    v_before = frame.evaluate("() => Number(document.getElementById('atlas-status')"
                              ".dataset.version)")
    frame.evaluate("([c, z]) => { window.map.setView(c, z, {animate: false}); }",
                   [list(centre), zoom])
    frame.evaluate("() => { window.__mark = 1; }")
    time.sleep(1.5)  # streamlit-folium debounces moves (250 ms); a rerun would show here
    page.wait_for_selector(IDLE)
    res["pan_zoom_reran"] = frame.evaluate(
        "() => Number(document.getElementById('atlas-status').dataset.version)") != v_before
    view0 = _view(frame)
    res["view_before"] = view0

    rng = np.random.default_rng(args.seed)
    edits = []
    state = {"pts": None, "view": None}

    def points():
        view = _view(frame)
        if state["view"] != view:
            state["pts"] = np.array(frame.evaluate(
                "pts => pts.map(p => { const c = window.map.latLngToContainerPoint(p); "
                "return [c.x, c.y]; })", np.column_stack([index.lat, index.lon]).tolist()))
            state["view"] = view
        return state["pts"]

    def offset():
        box = el.bounding_box()
        r = frame.evaluate("() => { const r = window.map.getContainer()"
                           ".getBoundingClientRect(); return [r.left, r.top]; }")
        return box["x"] + r[0], box["y"] + r[1]

    safe_x, safe_y = (70, w - 25), (25, h - 45)  # clear of the zoom / draw / scale controls
    ids = np.array(index.ids, dtype=object)

    def free_mask(pts):
        terr = np.array([assign.get(u) for u in index.ids], dtype=object)
        inside = ((pts[:, 0] > safe_x[0]) & (pts[:, 0] < safe_x[1])
                  & (pts[:, 1] > safe_y[0]) & (pts[:, 1] < safe_y[1]))
        # not under a panel (the stroke panel, a legend: a click there is not a map click)
        for x0, y0, x1, y1 in frame.evaluate(
                """() => { const m = window.map.getContainer().getBoundingClientRect();
                   return Array.from(document.querySelectorAll('.leaflet-control')).map(
                     c => { const r = c.getBoundingClientRect();
                            return [r.left - m.left - 8, r.top - m.top - 8,
                                    r.right - m.left + 8, r.bottom - m.top + 8]; }); }"""):
            inside &= ~((pts[:, 0] > x0) & (pts[:, 0] < x1)
                        & (pts[:, 1] > y0) & (pts[:, 1] < y1))
        return inside, terr != brush

    # -- clicks in Paint mode --------------------------------------------------------------
    for _ in range(args.clicks):
        pts = points()
        inside, other = free_mask(pts)
        cand = np.flatnonzero(inside & other)
        if not len(cand):
            break
        i = int(rng.choice(cand))
        ox, oy = offset()
        x, y = float(ox + pts[i, 0]), float(oy + pts[i, 1])

        def act(x=x, y=y):
            page.mouse.click(x, y)

        rec = _measure(page, frame, wire, act, prof_path)
        rec["kind"], rec["unit"] = "click", ids[i]
        assign[ids[i]] = brush
        edits.append(rec)
    # -- rectangles with leaflet.draw -------------------------------------------------------
    previous: list[tuple[float, float, float]] = []
    for _ in range(args.rects):
        pts = points()
        inside, other = free_mask(pts)
        pick = _pick_rectangle(pts, inside, other, rect_units, safe_x, safe_y, rng, previous)
        if pick is None:
            res["rectangles_note"] = "no unpainted square of that size left in the view"
            break
        (x0, y0, x1, y1), members = [float(v) for v in pick[0]], pick[1]
        previous.append(((x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2))
        n_drawn = frame.evaluate("() => window.__bench.drawn.length")

        def act(x0=x0, y0=y0, x1=x1, y1=y1):
            frame.locator(".leaflet-draw-draw-rectangle").click()
            ox, oy = offset()  # after the click: the page may have scrolled
            page.mouse.move(ox + x0, oy + y0)
            page.mouse.down()
            page.mouse.move(ox + (x0 + x1) / 2, oy + (y0 + y1) / 2, steps=4)
            page.mouse.move(ox + x1, oy + y1, steps=4)
            # a hand comes to rest before letting go. Moves are delivered with animation
            # frames, a button release at once: on a busy page the release can overtake the
            # last move and a smaller shape is drawn. Let two frames pass, twice.
            for _ in range(2):
                frame.evaluate("() => new Promise(r => requestAnimationFrame("
                               "() => requestAnimationFrame(r)))")
                page.mouse.move(ox + x1, oy + y1)
            page.mouse.up()

        rec = _measure(page, frame, wire, act, prof_path)
        rec["kind"], rec["units_in_rect"] = "rectangle", len(members)
        rec["units_not_brush"] = int(other[members].sum())
        drawn = frame.evaluate("n => window.__bench.drawn.slice(n)", n_drawn)
        rec["aimed"] = frame.evaluate(
            "([a, b]) => { const p = window.map.containerPointToLatLng(a), "
            "q = window.map.containerPointToLatLng(b); return [q.lat, p.lng, p.lat, q.lng]; }",
            [[x0, y0], [x1, y1]])
        rec["drawn"] = drawn[-1] if drawn else None
        if drawn:  # the units the server takes: centres inside what was really drawn
            south, west, north, east = drawn[-1]
            got = index.inside({"type": "Polygon", "coordinates": [[
                [west, south], [east, south], [east, north], [west, north], [west, south]]]})
            rec["units_drawn"] = len(got)
            for u in got:
                assign[u] = brush
        edits.append(rec)
    # -- drags of the brush ("Drag paints, 1 unit"): a stroke across ~drag_units units ---
    if args.drags:
        box = page.get_by_role("combobox", name="Drag")
        box.click()
        box.fill("Drag paints, 1 unit")
        page.get_by_role("option", name="Drag paints, 1 unit").click()
        frame.wait_for_function("() => window.atlasUnits.state.spec.drag === 0",
                                timeout=60_000)
        time.sleep(0.6)
        page.wait_for_selector(IDLE, timeout=120_000)
    for _ in range(args.drags):
        pts = points()
        inside, other = free_mask(pts)
        vis = np.flatnonzero(inside)
        if len(vis) < 2:
            break
        sample = pts[vis[:2000]]
        gap = np.sort(np.hypot(*(sample[:, None, :] - sample[None, :, :]).T), axis=0)[1]
        length = min(args.drag_units * float(np.median(gap)), safe_x[1] - safe_x[0] - 10)
        cand = np.flatnonzero(inside & other & (pts[:, 0] + length < safe_x[1]))
        if not len(cand):
            res["drags_note"] = "no unpainted row of that length left in the view"
            break
        i = int(rng.choice(cand))
        x0, y = float(pts[i, 0]), float(pts[i, 1])

        def act(x0=x0, y=y, length=length):
            ox, oy = offset()
            page.mouse.move(ox + x0, oy + y)
            page.mouse.down()
            page.mouse.move(ox + x0 + length, oy + y, steps=max(10, int(length / 8)))
            page.mouse.up()

        rec = _measure(page, frame, wire, act, prof_path)
        painted = frame.evaluate("() => document.getElementById('atlas-status')"
                                 ".dataset.answeredFirst || ''").split(",")
        rec["kind"], rec["drag_px"], rec["units_painted"] = "drag", length, len(painted)
        for u in painted:
            assign[u] = brush
        edits.append(rec)
    # -- layer switches ("Colour units by"): the market overlays, with an account layer and
    # the territories in the same run as the baseline -----------------------------------
    res["layer_switches"] = _layer_switches(page, frame, args.layer_rounds)
    # -- after: the view, the iframe --------------------------------------------------------
    el2, frame2 = _frame(page)
    res["iframe_same_element"] = el2 == el or el2.evaluate("(a, b) => a === b", el)
    try:
        res["iframe_mark_kept"] = frame2.evaluate("() => window.__mark === 1")
    except PlaywrightError:
        res["iframe_mark_kept"] = False
    view1 = _view(frame2)
    res["view_after"] = view1
    res["view_kept"] = (view0["zoom"] == view1["zoom"]
                        and abs(view0["lat"] - view1["lat"]) < 1e-9
                        and abs(view0["lng"] - view1["lng"]) < 1e-9)
    res["view_changed_during"] = sum(1 for e in edits if not e.get("view_same", True))
    res["edits"] = edits
    return res


BASELINE_LAYERS = ["Whitespace (unit)", "Territory"]


def _market_layers() -> list[str]:
    """The map's market layers, by their labels in this engine (none in older ones)."""
    try:
        from ui.map import MARKET_NUMBERS
        from ui.map_spec import LAYERS
    except ImportError:
        return []
    return [label for label, (_, metric, _) in LAYERS.items() if metric in MARKET_NUMBERS]


def _layer_switches(page, frame, rounds: int) -> list[dict]:
    """Pick each layer `rounds` times. With the map's own picker (this engine): option
    chosen -> the map shows the layer (its status element's `data-layer`; `browser_ms`: the
    restyle's own time in the page); in an older engine, the page's "Colour units by" box:
    option click -> the map has applied the new spec (a rerun) and -> the page is idle."""
    import re

    market = _market_layers()
    out = []
    picker = frame.locator("select.atlas-layer-picker")
    for _ in range(rounds):
        for label in [*market, *BASELINE_LAYERS]:
            if picker.count():
                t = time.perf_counter()
                picker.select_option(label=label)
                frame.wait_for_function(
                    "l => document.getElementById('atlas-status').dataset.layer === l",
                    arg=label, timeout=60_000, polling=10)
                t_map = time.perf_counter() - t
                ms = frame.evaluate("() => Number(document.getElementById('atlas-status')"
                                    ".dataset.layerMs)")
                out.append({"layer": label, "market": label in market, "map_s": t_map,
                            "idle_s": t_map, "browser_ms": ms, "in_map": True})
                time.sleep(0.3)
                continue
            v0 = frame.evaluate("() => Number(document.getElementById('atlas-status')"
                                ".dataset.version)")
            box = page.get_by_role("combobox", name="Colour units by")
            box.click()
            box.fill(label)
            option = page.get_by_role("option").filter(
                has_text=re.compile("^" + re.escape(label))).first
            t = time.perf_counter()
            option.click()
            frame.wait_for_function(
                "v => Number(document.getElementById('atlas-status').dataset.version) > v",
                arg=v0, timeout=60_000, polling=10)
            t_map = time.perf_counter() - t
            page.wait_for_selector(IDLE, timeout=120_000)
            out.append({"layer": label, "market": label in market, "map_s": t_map,
                        "idle_s": time.perf_counter() - t})
            time.sleep(0.3)
    return out


def _view(frame) -> dict:
    return frame.evaluate("() => { const c = window.map.getCenter(); "
                          "return {lat: c.lat, lng: c.lng, zoom: window.map.getZoom()}; }")


def _pick_rectangle(pts, inside, other, n, safe_x, safe_y, rng, previous):
    """A pixel square holding ~n unit centres, most of them not in the brush territory,
    centred away from the squares drawn before (`previous`: (x, y, half side))."""
    cand = np.flatnonzero(inside)
    if not len(cand):
        return None
    best = None
    for i in rng.choice(cand, size=min(len(cand), 200), replace=False):
        cheb = np.maximum(np.abs(pts[:, 0] - pts[i, 0]), np.abs(pts[:, 1] - pts[i, 1]))
        s = float(np.sort(cheb)[min(n, len(cheb)) - 1]) + 1.0
        x0, y0, x1, y1 = pts[i, 0] - s, pts[i, 1] - s, pts[i, 0] + s, pts[i, 1] + s
        if x0 < safe_x[0] or y0 < safe_y[0] or x1 > safe_x[1] or y1 > safe_y[1]:
            continue
        if any(max(abs(px - pts[i, 0]), abs(py - pts[i, 1])) < max(ps, s)
               for px, py, ps in previous):
            continue
        members = np.flatnonzero((pts[:, 0] > x0) & (pts[:, 0] < x1)
                                 & (pts[:, 1] > y0) & (pts[:, 1] < y1))
        score = int(other[members].sum())
        if best is None or score > best[0]:
            best = (score, (x0, y0, x1, y1), members)
    if best is None:  # nothing of that size fits: the biggest square that does
        i = cand[np.argmin(np.hypot(pts[cand, 0] - np.mean(safe_x),
                                    pts[cand, 1] - np.mean(safe_y)))]
        s = min(pts[i, 0] - safe_x[0], safe_x[1] - pts[i, 0], pts[i, 1] - safe_y[0],
                safe_y[1] - pts[i, 1]) - 1
        x0, y0, x1, y1 = pts[i, 0] - s, pts[i, 1] - s, pts[i, 0] + s, pts[i, 1] + s
        members = np.flatnonzero((pts[:, 0] > x0) & (pts[:, 0] < x1)
                                 & (pts[:, 1] > y0) & (pts[:, 1] < y1))
        best = (int(other[members].sum()), (x0, y0, x1, y1), members)
    if best[0] == 0:  # everything in view is painted already
        return None
    return best[1], best[2]


def _measure(page, frame, wire, act, prof_path) -> dict:
    """One edit: act, then wait for the map update and for the page to be idle again."""
    view = _view(frame)
    v0 = frame.evaluate("() => Number(document.getElementById('atlas-status').dataset.version)")
    metrics_before = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
    n_ups = frame.evaluate("() => window.__bench.ups.length")
    wire.reset()
    t_py = time.time() * 1000
    act()
    t_act = time.time() * 1000
    rec: dict = {"v0": v0}
    try:
        frame.wait_for_function(
            "v => { const e = document.getElementById('atlas-status'); "
            "return e && Number(e.dataset.version) > v; }", arg=v0, timeout=30_000,
            polling=20)
        up = frame.evaluate("n => window.__bench.ups[window.__bench.ups.length - 1]", n_ups)
        page.wait_for_function("t => window.__bench.idleAfter(t) !== null", arg=up,
                               timeout=120_000, polling=20)
    except PlaywrightError as exc:  # no rerun came: note it and go on
        rec["error"] = str(exc).splitlines()[0]
        return rec
    time.sleep(0.6)  # a second rerun (if any) shows up here
    page.wait_for_selector(IDLE, timeout=120_000)
    b = frame.evaluate("v => ({ups: window.__bench.ups, versions: window.__bench.versions"
                       ".filter(r => r.v > v), renders: window.__bench.renders, "
                       "firsts: window.__bench.firsts})", v0)
    pg = page.evaluate("t => ({msgs: window.__bench.msgs.filter(m => m >= t), "
                       "run: window.__bench.idleAfter(t), long: window.__bench.long, "
                       "runs: window.__bench.states.filter(s => s.t >= t && "
                       "s.state === 'running').length})", t_py)
    t_up = b["ups"][-1]
    first = b["versions"][0]
    t_idle = pg["run"]["idle"]
    renders = [r for r in b["renders"] if t_up <= r[0] <= first["t"]]
    # main-thread time in tasks over 50 ms, pointer up to idle (clipped to the window)
    busy = sum(max(0.0, min(t0 + d, t_idle) - max(t0, t_up)) for t0, d in pg["long"])
    rec["long_tasks_s"] = busy / 1000
    rec["args_at_map_s"] = (renders[-1][0] - t_up) / 1000 if renders else None
    rec["map_apply_s"] = (renders[-1][1] - renders[-1][0]) / 1000 if renders else None
    firsts = [f for f in b["firsts"] if f["t"] >= t_up]
    rec["answered_first_s"] = (((firsts[0]["painted"] or firsts[0]["t"]) - t_up) / 1000
                               if firsts else None)
    rec.update({
        "map_s": (first["t"] - t_up) / 1000,
        "painted_s": ((first["painted"] or first["t"]) - t_up) / 1000,
        "idle_s": (pg["run"]["idle"] - t_up) / 1000,
        "value_sent_s": ((pg["msgs"][0] - t_up) / 1000) if pg["msgs"] else None,
        "run_start_s": (pg["run"]["started"] - t_up) / 1000,
        "client_run_s": (pg["run"]["idle"] - pg["run"]["started"]) / 1000,
        "restyled": first["restyled"],
        "map_versions": len(b["versions"]),
        "reruns": pg["runs"],
        "action_s": (t_act - t_py) / 1000,
    })
    n, size, urls = wire.http()
    rec.update({"ws_bytes": wire.ws_in, "ws_frames": wire.frames_in, "ws_sent": wire.ws_out,
                "http_requests": n, "http_bytes": size, "http_urls": urls[:5],
                "ws_by_kind": dict(wire.by_kind), "map_args": dict(wire.component_args)})
    rec["profile"], runs = _read_profile(prof_path, t_py - 50, time.time() * 1000)
    if runs:  # the server's own run of this edit, on the same clock
        t0, dur = runs[0]
        rec["server_start_s"] = (t0 * 1000 - t_up) / 1000
        rec["server_run_s"] = dur
        rec["server_end_to_idle_s"] = (t_idle - (t0 + dur) * 1000) / 1000
        rec["server_end_to_map_s"] = (first["t"] - (t0 + dur) * 1000) / 1000
    metrics_after = page.locator('[data-testid="stMetricValue"]').all_inner_texts()
    rec["metrics_changed"] = metrics_after != metrics_before
    alerts = page.locator('[data-testid="stAlert"]').all_inner_texts()
    rec["message"] = next((a for a in alerts if "changed" in a or "nothing" in a.lower()),
                          alerts[0] if alerts else "")[:120]
    rec["view_same"] = _view(frame) == view
    return rec


# ======================================================================================
# the report
# ======================================================================================
def _ms(x):
    return "–" if x is None else f"{x * 1000:.0f} ms" if x < 10 else f"{x:.1f} s"


def _kb(x):
    return "–" if x is None else f"{x / 1000:.0f} KB"


def report(res: dict) -> str:
    lines = []
    m = res["machine"]
    lines.append(f"Territory Atlas map-editing benchmark, {res['date']}")
    lines.append(f"command: {res['command']}")
    lines.append(f"machine: {m['cores']} cores, {m['cpu']}, {m['ram_gb']} GB RAM; Python "
                 f"{m['python']}, duckdb {m['duckdb']}; engine {res['engine']}")
    d = res["data"]
    lines.append(f"data: {d['accounts']:,} accounts, {d['deals']:,} deals, {d['reps']} reps "
                 f"(seed {d['seed']}); plan {d['plan']['unit']}: {d['plan']['units']:,} units, "
                 f"{d['plan']['territories']} territories, {d['plan']['with_rep']} with a rep")
    if d.get("note"):
        lines.append(f"NOTE: {d['note']}")
    w = 60
    head = f"{'measure':<{w}} {'median':>9} {'p90':>9}   target"
    rule = "-" * (w + 40)

    def row(label, med, p90="", target="", ok=None):
        mark = "" if ok is None else ("  met" if ok else "  MISSED")
        lines.append(f"{label:<{w}} {med:>9} {p90:>9}   {target}{mark}")

    srv = res.get("server")
    if srv:
        lines.append("")
        lines.append(f"SERVER SIDE ({srv['accounts']:,} accounts; a copy of the database; "
                     f"{res['args']['strokes']} strokes of each kind)")
        lines.append(rule)
        lines.append(head)
        lines.append(rule)
        for err in srv.get("errors", []):
            lines.append(f"FAILED: {err[:200]}")
        for unit, sec in srv.get("convert_seconds", {}).items():
            row(f"edits.convert_plan to {unit} (once)", _ms(sec))
        for p in srv["plans"]:
            lines.append(f"[{p['what']}: {p['unit']}, {p['units_in_plan']:,} units in the "
                         f"plan, {p['units_on_map']:,} on the map, {p['territories']} "
                         f"territories; other programs used {p['other_cores'] or 0:.2f} "
                         "cores]")
            row("  UnitIndex.build (once per plan)", _ms(p["index_seconds"]))
            row("  MetricCube.build (once per data/period/settings)", _ms(p["cube_seconds"]))
            if "cube_base_seconds" in p:
                row("    accounts + deals scan per unit", _ms(p["cube_base_seconds"]))
                row(f"    travel sums to {p['reps']} rep homes (add_reps)",
                    _ms(p["cube_travel_seconds"]))
            row("  first territory_metrics (warms the shapes cache)",
                _ms(p["first_metrics_seconds"]))
            for kind, what in (("click", "1 unit"), ("rectangle", "rectangle")):
                s = p[kind]
                units = s["units"]["median"]
                changed = s["changed"]["median"]
                lines.append(f"  {kind} strokes ({what}: median {units:.0f} units hit, "
                             f"{changed:.0f} changed)")
                row("    hit test (index.at / index.inside)", _ms(s["hit"]["median"]),
                    _ms(s["hit"]["p90"]))
                row("    edits.assign (transaction + edit log)", _ms(s["assign"]["median"]),
                    _ms(s["assign"]["p90"]))
                row("    PlanInputs.load", _ms(s["load"]["median"]), _ms(s["load"]["p90"]))
                row("    territory_metrics (shared shapes cache)",
                    _ms(s["metrics"]["median"]), _ms(s["metrics"]["p90"]))
                rc = s["recompute"]
                row("    RECOMPUTE = load + territory_metrics", _ms(rc["median"]),
                    _ms(rc["p90"]), f"<= {TARGET_RECOMPUTE_S * 1000:.0f} ms",
                    rc["median"] <= TARGET_RECOMPUTE_S and rc["p90"] <= TARGET_RECOMPUTE_S)
                row("    assign + recompute", _ms(s["edit_total"]["median"]),
                    _ms(s["edit_total"]["p90"]))
                for name, st_ in s["extras"].items():
                    row(f"    page also calls {name}", _ms(st_["median"]), _ms(st_["p90"]))
                b = s["baseline"]
                if b["n"]:
                    eq = s["baseline_equal"]
                    row(f"    baseline metrics.summary from scratch ({b['n']} runs)",
                        _ms(b["median"]), _ms(b["p90"]))
                    row("    speed-up of the recompute over the baseline",
                        f"{b['median'] / max(rc['median'], 1e-9):.0f} x")
                    row("    baseline answer equals the incremental one",
                        "yes" if eq else "NO")
            rp = p.get("recompute_profile")
            if rp:
                lines.append(f"  one more click's recompute under cProfile ({_ms(rp['total'])} "
                             "with the profiler's overhead): analytics functions, inclusive")
                for name, _tt, ct in rp["cumulative_analytics"]:
                    row(f"    {name[:56]}", _ms(ct))
                lines.append("    functions with the most own time:")
                for name, tt, _ct in rp["own"][:5]:
                    row(f"    {name[:56]}", _ms(tt))
    for br in res.get("browser", []):
        lines.append("")
        if "error" in br:
            lines.append(f"BROWSER, {br['label']}: FAILED: {br['error']}")
            continue
        lines.append(f"BROWSER, {br['label']} (plan {br['plan']!r}, {br['unit']}: "
                     f"{br['units_in_plan']:,} units in the plan, {br['units_on_map']:,} on "
                     f"the map, {br['territories']} territories; brush {br['brush']}; zoom "
                     f"{br.get('zoom')}; other programs used {br.get('other_cores') or 0:.2f}"
                     " cores)")
        lines.append(rule)
        lines.append(head)
        lines.append(rule)
        row("first load: page open -> map drawn (on screen)", _ms(br["first_map_seconds"]))
        if br.get("first_map_seen_seconds") is not None:
            row("first load: page open -> map seen by Playwright",
                _ms(br["first_map_seen_seconds"]))
        row("first load: page open -> page idle", _ms(br["first_idle_seconds"]))
        fl = br["first_load"]
        row("first load: websocket + HTTP bytes",
            _kb(fl["ws_bytes"] + fl["http_bytes"]), f"{fl['http_requests']} req")
        edits = [e for e in br["edits"] if "error" not in e]
        failed = [e for e in br["edits"] if "error" in e]
        for kind, target in (("click", TARGET_CLICK_S), ("rectangle", TARGET_RECT_S),
                             ("drag", TARGET_RECT_S)):
            es = [e for e in edits if e["kind"] == kind]
            if not es:
                lines.append(f"{kind}: no edit measured")
                continue
            extra = ""
            if kind == "rectangle":
                drawn = [e["units_drawn"] for e in es if "units_drawn" in e]
                extra = (f", median {statistics.median(e['units_in_rect'] for e in es):.0f} "
                         "units in the square aimed at"
                         + (f", {statistics.median(drawn):.0f} in the shape drawn"
                            if drawn else ""))
            if kind == "drag":
                extra = (f", median {statistics.median(e['units_painted'] for e in es):.0f} "
                         f"units painted over {statistics.median(e['drag_px'] for e in es):.0f}"
                         " px")
            lines.append(f"{kind}s: {len(es)} measured{extra}; restyled units median "
                         f"{statistics.median(e['restyled'] for e in es):.0f}; metrics text "
                         f"changed in {sum(e['metrics_changed'] for e in es)}/{len(es)}; "
                         f"extra reruns {sum(max(0, e['reruns'] - 1) for e in es)}")

            def st_(key, es=es):
                return _stats([e.get(key) for e in es])

            for key, label in (("map_s", "pointer up -> map updated (#atlas-status)"),
                               ("idle_s", "pointer up -> page idle (metrics shown)")):
                s = st_(key)
                row(f"  {label}", _ms(s["median"]), _ms(s["p90"]),
                    f"<= {target:g} s", s["median"] <= target and s["p90"] <= target)
            for key, label in (
                    ("answered_first_s", "  pointer up -> map recoloured before the server"
                                         " (clicks, drags)"),
                    ("painted_s", "  pointer up -> map painted (2 frames later)"),
                    ("value_sent_s", "  where the time goes: up -> value sent (debounce)"),
                    ("server_start_s", "    pointer up -> server run starts"),
                    ("server_run_s", "    server run (ScriptRunner._run_script)"),
                    ("server_end_to_map_s", "    server run end -> map updated"),
                    ("server_end_to_idle_s", "    server run end -> page idle"),
                    ("args_at_map_s", "    pointer up -> the new spec reaches the map"),
                    ("map_apply_s", "    unit_layer.js update (restyle + outlines)"),
                    ("long_tasks_s", "    main thread in tasks > 50 ms, up -> idle"),
                    ("run_start_s", "    pointer up -> page shows 'running'"),
                    ("client_run_s", "    page 'running' -> idle")):
                s = st_(key)
                row(label, _ms(s["median"]), _ms(s["p90"]))
            s = st_("ws_bytes")
            row("  bytes received a rerun (websocket)", _kb(s["median"]), _kb(s["max"]),
                f"< {TARGET_BYTES / 1000:.0f} KB", s["max"] < TARGET_BYTES)
            by: dict[str, list[int]] = {}
            for e in es:
                for k, v in e.get("ws_by_kind", {}).items():
                    by.setdefault(k, []).append(v)
            top = sorted(by, key=lambda k: -statistics.median(by[k]))[:6]
            for k in top:
                row(f"    of which {k}", _kb(statistics.median(by[k])), _kb(max(by[k])))
            margs = es[-1].get("map_args") or {}
            big = sorted(margs, key=lambda k: -margs[k])[:4]
            if big:
                lines.append("      the map component's arguments (last edit, JSON chars): "
                             + ", ".join(f"{k} {margs[k] / 1000:.0f}k" for k in big))
            s = st_("http_bytes")
            row("  HTTP bytes during the edit", _kb(s["median"]), _kb(s["max"]))
            urls = sorted({u.rsplit(".", 1)[-1] for e in es for u in e.get("http_urls", [])})
            if urls:
                lines.append(f"      fetched each edit: .{', .'.join(urls)} files")
            prof: dict[str, list[float]] = {}
            for e in es:
                for name, sec in e.get("profile", {}).items():
                    prof.setdefault(name, []).append(sec)
            if prof:
                lines.append("  server time per rerun (timed from outside; nested rows "
                             "indented; median, p90):")
                names = ["RERUN (whole run)", "page script (pages/map.py)"]
                for _mod, _attr, label in PROFILE_TARGETS:
                    names.append(label)
                    if label == "plan_metrics":
                        names.append("  PlanInputs.load")
                for name in names:
                    if name in prof:
                        vals = prof[name] + [0.0] * (len(es) - len(prof[name]))
                        s = _stats(vals)
                        row(f"    {name}", _ms(s["median"]), _ms(s["p90"]))
        if br.get("rectangles_note"):
            lines.append(f"rectangles stopped early: {br['rectangles_note']}")
        if failed:
            lines.append(f"edits with no rerun / failed: {len(failed)} "
                         f"({failed[0]['error'][:80]})")
        switches = br.get("layer_switches") or []
        for market, name in ((True, "market layers"), (False, "baseline: Whitespace / "
                                                             "Territory")):
            sw = [x for x in switches if x["market"] is market]
            if sw:
                lines.append(f"layer switch, {name} ({len(sw)} switches):")
                m, i = _stats([x["map_s"] for x in sw]), _stats([x["idle_s"] for x in sw])
                row("  option picked -> map updated", _ms(m["median"]), _ms(m["p90"]),
                    "<= 0.3 s" if market else "", m["median"] <= 0.3 if market else None)
                row("  option picked -> page idle", _ms(i["median"]), _ms(i["p90"]))
                if all(x.get("in_map") for x in sw):
                    b = _stats([x["browser_ms"] / 1000 for x in sw])
                    row("  the restyle in the page (map's own picker)", _ms(b["median"]),
                        _ms(b["p90"]))
        row("view (centre, zoom) kept across the edits", "yes" if br["view_kept"] else "NO",
            "", "kept", br["view_kept"])
        row("map iframe kept (not remounted)", "yes" if br["iframe_mark_kept"] else "NO",
            "", "kept", br["iframe_mark_kept"])
        row("a pan/zoom reran the script", "yes" if br["pan_zoom_reran"] else "no")
        if br.get("console_errors"):
            lines.append(f"browser console errors: {br['console_errors'][:3]}")
        if br.get("server_log_problems"):
            lines.append(f"server log ({br['server_log']}): {br['server_log_problems'][:3]}")
    return "\n".join(lines)


# ======================================================================================
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--accounts", type=int, default=1_000_000)
    p.add_argument("--deals", type=int, help="default: 10 per account")
    p.add_argument("--reps", type=int, default=200)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--unit", default="auto",
                   help="the plan's unit; auto: the H3 resolution with about 20,000 "
                   "occupied cells")
    p.add_argument("--territories", type=int, default=45)
    p.add_argument("--strokes", type=int, default=15, help="server-side strokes of each kind")
    p.add_argument("--rect-units", type=int, default=200, help="units in a rectangle")
    p.add_argument("--baseline-repeat", type=int, default=1,
                   help="strokes of each kind also timed with metrics.summary from scratch")
    p.add_argument("--server-convert", nargs="*", default=["county"],
                   help="also time strokes on the plan converted to these units")
    p.add_argument("--clicks", type=int, default=10)
    p.add_argument("--rects", type=int, default=5)
    p.add_argument("--drags", type=int, default=5, help="drags of the brush")
    p.add_argument("--drag-units", type=int, default=50, help="units a drag crosses, about")
    p.add_argument("--layer-rounds", type=int, default=2,
                   help="times each map layer is picked (the market overlays and two "
                   "baseline layers)")
    p.add_argument("--zoom", type=int, default=7, help="map zoom for the browser edits")
    p.add_argument("--county-zoom", type=int, default=6,
                   help="map zoom for the county plan (a 200-county square fits at 6)")
    p.add_argument("--skip-server", action="store_true")
    p.add_argument("--skip-browser", action="store_true")
    p.add_argument("--skip-demo", action="store_true",
                   help="no browser run on the demo county plan")
    p.add_argument("--skip-generated-browser", action="store_true",
                   help="no browser run on the generated H3 plan")
    p.add_argument("--no-profile", dest="profile", action="store_false",
                   help="run Streamlit without timing page and engine functions")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                   help="before each phase, wait up to this long until other programs use "
                   "less than a quarter of a core (on a shared machine)")
    p.add_argument("--rebuild", action="store_true", help="re-import the cached database")
    p.add_argument("--child-serve", metavar="PROFILE_LOG", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child_serve:
        _serve(args.child_serve, args.port, args.profile)
        return 0
    if args.deals is None:
        args.deals = 10 * args.accounts

    started = time.perf_counter()
    res: dict = {"date": dt.datetime.now().isoformat(timespec="seconds"),
                 "command": " ".join([Path(sys.executable).name, *sys.argv]),
                 "args": vars(args), "machine": _machine(), "engine": _git_commit()}
    db, info = ensure_bench_db(args)
    res["data"] = {"accounts": args.accounts, "deals": args.deals, "reps": args.reps,
                   "seed": args.seed, "db": str(db), "plan": info["plan"],
                   "import_seconds": info.get("import_seconds")}
    if args.accounts < 1_000_000:
        res["data"]["note"] = (f"scaled down to {args.accounts:,} accounts (--accounts): the "
                               "50 ms recompute target is for 1M")
    work = Path(tempfile.mkdtemp(prefix="bench_map_edit_"))
    try:
        if not args.skip_server:
            _wait_quiet(args.wait_quiet)
            print("server side ...", flush=True)
            res["server"] = server_side(db, args, work)
        if not args.skip_browser:
            runs = []
            if not args.skip_generated_browser:
                runs.append(("generated " + info["plan"]["unit"], db, args.zoom))
            if not args.skip_demo:
                runs.append(("demo county", ensure_demo_db(), args.county_zoom))
            res["browser"] = []
            for label, src, zoom in runs:
                _wait_quiet(args.wait_quiet)
                print(f"browser: {label} ...", flush=True)
                tag = label.replace(" ", "_").replace(":", "")
                try:
                    with CpuWatch() as cw:
                        br = browser_side(src, tag, args, work, zoom)
                    br["other_cores"] = cw.other_cores
                    br["label"] = label
                except Exception as exc:  # noqa: BLE001 - report it, keep the other numbers
                    import traceback

                    traceback.print_exc()
                    br = {"label": label, "error": f"{type(exc).__name__}: {exc}"[:2000]}
                res["browser"].append(br)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res["total_seconds"] = time.perf_counter() - started
    text = report(res) + f"\n\n(total {res['total_seconds']:.0f} s)"
    print()
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    name = f"bench_map_edit_{_label(args.accounts, args.deals)}"
    (OUT / f"{name}.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    (OUT / f"{name}.txt").write_text(text + "\n")
    print(f"\nresults: {OUT / name}.txt (.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
