"""Meeting-pack benchmark: PowerPoint and PDF (and the other formats) of the default data.

    python benchmarks/bench_exports.py               # the default dataset, 3 runs each
    python benchmarks/bench_exports.py --db PATH     # another database's active plan

Target (instant-painting issue): the PowerPoint and PDF packs of the default data in <= 3 s
each, from scratch (a new `PlanPack`: metrics, territory unions, maps, pages).

Each format is written from scratch in this process (imports done), median of `--runs`:
- from scratch: a new `PlanPack` per file;
- the baseline, in the same run: the PDF written after the PowerPoint from the same pack
  (what the Plans page does within a session: metrics, unions and maps computed once);
- the phases of one PowerPoint from scratch (metrics, unions, overview map, territory
  maps, writing);
- `python -m analytics export` in a fresh process (imports included), once.

Speed is printed, never asserted. Results: stdout and benchmarks/out/bench_exports.{txt,json}.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_S = 3.0


def _demo_db(folder: Path) -> Path:
    from analytics import demo
    from analytics.store import Store

    path = folder / "demo.duckdb"
    with Store(path) as store:
        demo.build_demo(store)
    return path


def _write(cur, plan, fmt, period, as_of, settings, folder: Path) -> float:
    from analytics import exports

    t = time.perf_counter()
    pack = exports.PlanPack(cur, plan, period=period, as_of=as_of, settings=settings)
    exports.export_plan(cur, plan, fmt, folder, period=period, as_of=as_of,
                        settings=settings, pack=pack)
    return time.perf_counter() - t


def _phases(cur, plan, period, as_of, settings, folder: Path) -> dict:
    from analytics import exports
    from analytics.exports import pptx

    pack = exports.PlanPack(cur, plan, period=period, as_of=as_of, settings=settings)
    out, t = {}, time.perf_counter()
    for name, step in (("metrics (cube, territory metrics, compactness unions)",
                        lambda: pack._metrics),
                       ("territory shapes for drawing", lambda: pack.draw_shapes),
                       ("overview map", lambda: pack.maps.overview()),
                       ("territory maps", lambda: pack.maps._territory_maps()),
                       ("pages and writing the .pptx",
                        lambda: pptx.write_pptx(pack, folder / "phases.pptx"))):
        step()
        now = time.perf_counter()
        out[name], t = now - t, now
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", type=Path, help="default: the demo data, built in a temp folder")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--formats", nargs="*", default=["pptx", "pdf"])
    args = p.parse_args(argv)

    import matplotlib.figure  # noqa: F401
    import pptx  # noqa: F401
    import reportlab.platypus  # noqa: F401

    import analytics.cli  # noqa: F401 - the imports, out of the timings
    from analytics import exports, plans
    from analytics.period import resolve
    from analytics.settings import load_settings
    from analytics.store import Store

    work = Path(tempfile.mkdtemp(prefix="bench_exports_"))
    db = args.db or _demo_db(work)
    res: dict = {"date": dt.datetime.now().isoformat(timespec="seconds"),
                 "command": " ".join([Path(sys.executable).name, *sys.argv]),
                 "cores": os.cpu_count(), "db": str(db), "formats": {}}
    lines = [f"Meeting-pack benchmark, {res['date']}: {os.cpu_count()} cores, database {db}"]
    with Store(db, read_only=True) as store:
        cur = store.cursor()
        plan = plans.get_plan(cur)
        period, as_of = resolve(store.get_meta("as_of"), None, None)
        settings = load_settings(store)
        n_terr = len(plans.territories(cur, plan))
        lines.append(f"plan {plan.name!r}: {plan.unit.label}, {n_terr} territories")
        lines.append(f"{'format':<8}{'from scratch (median)':>24}{'target':>16}")
        for fmt in args.formats:
            runs = [_write(cur, plan, fmt, period, as_of, settings, work)
                    for _ in range(args.runs)]
            med = statistics.median(runs)
            res["formats"][fmt] = {"seconds": runs}
            met = ("met" if med <= TARGET_S else "MISSED") if fmt in ("pptx", "pdf") else ""
            lines.append(f"{fmt:<8}{med:>22.2f} s{'<= 3 s ' + met:>16}")
        shared = []
        for _ in range(args.runs):
            pack = exports.PlanPack(cur, plan, period=period, as_of=as_of, settings=settings)
            exports.export_plan(cur, plan, "pptx", work, period=period, as_of=as_of,
                                settings=settings, pack=pack)
            t = time.perf_counter()
            exports.export_plan(cur, plan, "pdf", work, period=period, as_of=as_of,
                                settings=settings, pack=pack)
            shared.append(time.perf_counter() - t)
        res["pdf_after_pptx_shared_pack_seconds"] = shared
        lines.append(f"baseline: the PDF after the PowerPoint from the same pack (the Plans "
                     f"page within a session): {statistics.median(shared):.2f} s")
        phases = _phases(cur, plan, period, as_of, settings, work)
    res["pptx_phases"] = phases
    lines.append("one PowerPoint from scratch, by phase:")
    lines += [f"  {name:<58}{sec:>6.2f} s" for name, sec in phases.items()]
    for fmt in args.formats:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "analytics", "export", "--db", str(db),
                        "--format", fmt, "--out", str(work)], cwd=ROOT, check=True,
                       capture_output=True)
        res["formats"][fmt]["fresh_process_seconds"] = time.perf_counter() - t
        lines.append(f"`python -m analytics export --format {fmt}` in a fresh process "
                     f"(imports included): {time.perf_counter() - t:.2f} s")
    text = "\n".join(lines)
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_exports.txt").write_text(text + "\n")
    (OUT / "bench_exports.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
