"""A team on one server: 10 managers painting and undoing on the same plan at once.

    python benchmarks/bench_team.py                 # 10 sessions for 60 s (after 1 for 20 s)
    python benchmarks/bench_team.py --sessions 4 --seconds 20

What it does: `python -m ui.serve` (as `make run`) on a copy of the demo database (county
plan) with an admin and one manager user per session; one headless Chromium (Debian's)
with a separate browser context per session, each signed in through the real sign-in form
as its own manager, on the Territory map zoomed to its own part of the country. Each session then
loops for the given time: a click that paints a county of its part into the brush
territory, and one time in three Undo instead. A stroke's time is from the click to the map
showing the server's answer and the script run having ended (as a manager sees it).

Checked after the run, from the database (the server stopped):
- no lost edit: the plan's final assignment equals the replay of its edit log (the initial
  assignment, then every edit not undone, in order), and equals what the browsers did (each
  session's paints not undone in the brush territory, the ones it undid back);
- none misattributed: each logged edit's author is the session that made it (its units are
  that session's), each person's count of edits not undone matches their session's;
- no error shown on any page (Streamlit exceptions or error alerts).

Baseline in the same run: one session alone for a third of the time. Speed is printed, never
asserted. Results: a table on stdout and benchmarks/out/bench_team.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

IFRAME = 'iframe[title="streamlit_folium.st_folium"]'
PASSWORD = "bench password 1"
NOT_RUNNING = '[data-testid="stApp"][data-test-script-state="notRunning"]'
ERRORS = '[data-testid="stException"], [data-testid="stAlertContentError"]'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _build(folder: Path, sessions: int) -> Path:
    """A copy of the demo database with an admin and a manager per session."""
    from analytics import users
    from analytics.store import Store

    cached = OUT / "team" / "demo.duckdb"
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "analytics", "demo", "--db", str(cached)],
                       cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                       stdout=subprocess.DEVNULL)
    db = folder / "atlas.duckdb"
    shutil.copy(cached, db)
    with Store(db) as s:
        users.add_user(s, "boss", "admin", PASSWORD)
        with users.acting_as(users.get_user(s.cursor(), "boss")):
            for k in range(sessions):
                users.add_user(s, f"m{k + 1:02d}", "manager", PASSWORD)
    return db


class Server:
    def __init__(self, db: Path, log: Path):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ui.serve", "--server.port", str(self.port),
             "--server.address", "127.0.0.1", "--server.headless", "true",
             "--server.fileWatcherType", "none"],
            cwd=ROOT, env={**os.environ, "TERRITORY_ATLAS_DB": str(db)},
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2):
                    return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"streamlit did not start: see {log}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _regions(sessions: int, seed: int) -> list[list[tuple[str, float, float]]]:
    """Each session's own counties: large lower-48 counties outside T01, split into
    `sessions` longitude bands, the 60 nearest the band's middle at latitude 39 (within one
    map view); a county is in one band only (no two sessions share one)."""
    import duckdb
    import numpy as np
    import shapely

    from analytics import geography

    ids, _, geoms = geography.unit_polygons("county")
    geoms = np.asarray(geoms, dtype=object)
    pt = shapely.point_on_surface(geoms)
    lat, lon, area = shapely.get_y(pt), shapely.get_x(pt), shapely.area(geoms)
    db = OUT / "team" / "demo.duckdb"
    with duckdb.connect(str(db), read_only=True) as con:
        t01 = {r[0] for r in con.execute("SELECT unit_id FROM plan_units WHERE plan_id = 1 "
                                         "AND territory_id = 'T01'").fetchall()}
    keep = [(u, la, lo) for u, la, lo, a in zip(ids, lat, lon, area, strict=True)
            if 30 < la < 47 and -120 < lo < -75 and a > 0.25 and u not in t01]
    keep.sort(key=lambda r: r[2])
    rng = random.Random(seed)
    out = []
    for k in range(sessions):  # a longitude band each; its counties nearest latitude 39
        band = keep[k * len(keep) // sessions:(k + 1) * len(keep) // sessions]
        mid = statistics.fmean(r[2] for r in band)
        part = sorted(band, key=lambda r: (r[1] - 39.0) ** 2 + (r[2] - mid) ** 2)[:60]
        rng.shuffle(part)
        out.append(part)
    return out


class Session:
    def __init__(self, name: str, counties, page):
        self.name, self.counties, self.page = name, counties, page
        self.frame = None
        self.latency: dict[str, list[float]] = {"paint": [], "undo": []}
        self.painted: set[str] = set()  # every unit it ever painted
        self.kept: list[str] = []  # painted and not undone: its undo stack
        self.saved_paints = 0
        self.saved_undos = 0
        self.errors: list[str] = []
        self.messages: list[str] = []

    async def sign_in(self, url: str) -> None:
        page = self.page
        await page.goto(url)
        await page.wait_for_selector(NOT_RUNNING, timeout=90_000)
        await page.get_by_label("User name").fill(self.name)
        await page.get_by_role("textbox", name="Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
        iframe = page.locator(IFRAME)
        await iframe.wait_for(timeout=120_000)
        self.frame = await (await iframe.element_handle()).content_frame()
        await self.frame.wait_for_selector("#atlas-status[data-version]", state="attached",
                                           timeout=120_000)
        await page.wait_for_selector(NOT_RUNNING, timeout=120_000)
        lat = statistics.fmean(c[1] for c in self.counties)
        lon = statistics.fmean(c[2] for c in self.counties)
        await self.frame.evaluate("([a, b]) => { window.map.setView([a, b], 6, "
                                  "{animate: false}); }", [lat, lon])

    async def _version(self) -> int:
        return int(await self.frame.get_attribute("#atlas-status", "data-version"))

    async def _answered(self, before: int) -> None:
        try:
            await self.frame.wait_for_function(
                "v => Number(document.getElementById('atlas-status').dataset.version) > v",
                arg=before, timeout=120_000)
            await self.page.wait_for_selector(NOT_RUNNING, timeout=120_000)
        except Exception:  # noqa: BLE001 - any failure to answer: show what the page showed
            shot = OUT / f"bench_team_{self.name}_timeout.png"
            await self.page.screenshot(path=str(shot), full_page=True)
            raise RuntimeError(f"{self.name}: no answer in 120 s; see {shot}") from None

    async def _pixel(self, lat: float, lon: float):
        await self.page.locator(IFRAME).scroll_into_view_if_needed()
        box = await self.page.locator(IFRAME).bounding_box()
        x, y, inside = await self.frame.evaluate(
            """([lat, lng]) => {
                 const p = window.map.latLngToContainerPoint([lat, lng]);
                 const s = window.map.getSize();
                 return [p.x, p.y, p.x > 20 && p.y > 20 && p.x < s.x - 20 && p.y < s.y - 20];
               }""", [lat, lon])
        return (box["x"] + x, box["y"] + y) if inside else None

    async def paint(self) -> bool:
        for unit, lat, lon in self.counties:
            if unit in self.painted:
                continue
            xy = await self._pixel(lat, lon)
            if xy is None:
                continue
            before = await self._version()
            t = time.perf_counter()
            await self.page.mouse.click(*xy)
            await self._answered(before)
            self.latency["paint"].append(time.perf_counter() - t)
            self.painted.add(unit)
            self.kept.append(unit)
            await self._note()
            return True
        return False

    async def undo(self) -> None:
        button = self.page.get_by_role("button", name="Undo", exact=True)
        if await button.is_disabled():
            return
        before = await self._version()
        t = time.perf_counter()
        await button.click()
        await self._answered(before)
        self.latency["undo"].append(time.perf_counter() - t)
        self.kept.pop()  # undo takes back this person's latest edit
        await self._note()

    async def _note(self) -> None:
        for el in await self.page.locator(ERRORS).all():
            self.errors.append(await el.inner_text())

    async def run(self, seconds: float, seed: int) -> None:
        rng = random.Random(seed)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if (self.latency["paint"] and rng.random() < 1 / 3) or not await self.paint():
                await self.undo()


async def _drive(url: str, regions, names: list[str], seconds: float, seed: int):
    from playwright.async_api import async_playwright

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=exe, args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        sessions = []
        for name, counties in zip(names, regions, strict=True):
            ctx = await browser.new_context(viewport={"width": 1800, "height": 1100})
            sessions.append(Session(name, counties, await ctx.new_page()))
        for s in sessions:  # one at a time: the first run of each session is the slow one
            await s.sign_in(url)
        t0 = time.monotonic()
        await asyncio.gather(*(s.run(seconds, seed + i) for i, s in enumerate(sessions)))
        wall = time.monotonic() - t0
        for s in sessions:
            await s._note()
        await browser.close()
    return sessions, wall


def _check(db: Path, initial: dict[str, str], sessions) -> dict:
    """Replay the edit log over the initial assignment; attribute every edit; and compare
    with what each browser session did (its paints not undone are in the brush territory
    T01, the ones it undid back where they were)."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        final = dict(con.execute("SELECT unit_id, territory_id FROM plan_units "
                                 "WHERE plan_id = 1").fetchall())
        log = con.execute("SELECT e.seq, e.author, e.undone, c.kind, c.item_id, c.after "
                          "FROM plan_edits e JOIN plan_edit_changes c USING (plan_id, seq) "
                          "WHERE e.plan_id = 1 ORDER BY e.seq, c.step").fetchall()
        kept = dict(con.execute("SELECT author, count(*) FROM plan_edits WHERE plan_id = 1 "
                                "AND NOT undone GROUP BY 1").fetchall())
    state = dict(initial)
    misattributed = 0
    by_name = {s.name: s for s in sessions}
    for _seq, author, undone, kind, item, after in log:
        if kind == "unit" and (author not in by_name or item not in by_name[author].painted):
            misattributed += 1
        if undone or kind != "unit":
            continue
        if after is None:
            state.pop(item, None)
        else:
            state[item] = after
    replay_diff = sum(1 for u in set(state) | set(final) if state.get(u) != final.get(u))
    # an undone edit leaves the log when its author edits again (their redo history ends):
    # what stays is each person's edits not undone, one per paint they did not undo
    mismatched = [s.name for s in sessions if kept.get(s.name, 0) != len(s.kept)]
    expected = dict(initial)
    for s in sessions:
        for unit in s.kept:
            expected[unit] = "T01"
    browser_diff = sum(1 for u in set(expected) | set(final)
                       if expected.get(u) != final.get(u))
    return {"edits_logged": len({r[0] for r in log}),
            "units_differing_from_replay": replay_diff,
            "units_differing_from_sessions": browser_diff,
            "misattributed_changes": misattributed,
            "sessions_whose_counts_differ": mismatched}


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def _round(sessions_n: int, seconds: float, seed: int, workdir: Path) -> dict:
    import duckdb

    folder = workdir / f"s{sessions_n}"
    folder.mkdir()
    db = _build(folder, sessions_n)
    with duckdb.connect(str(db), read_only=True) as con:
        initial = dict(con.execute("SELECT unit_id, territory_id FROM plan_units "
                                   "WHERE plan_id = 1").fetchall())
    names = [f"m{k + 1:02d}" for k in range(sessions_n)]
    regions = _regions(10, seed)[:sessions_n] if sessions_n <= 10 else _regions(sessions_n,
                                                                                 seed)
    (OUT / "team").mkdir(parents=True, exist_ok=True)
    server = Server(db, OUT / "team" / f"streamlit-{sessions_n}.log")
    try:
        sessions, wall = asyncio.run(_drive(server.url, regions, names, seconds, seed))
    finally:
        server.stop()
    paints = [x for s in sessions for x in s.latency["paint"]]
    undos = [x for s in sessions for x in s.latency["undo"]]
    both = paints + undos
    return {
        "sessions": sessions_n, "seconds": round(wall, 1),
        "edits": len(both), "edits_per_second": round(len(both) / wall, 2),
        "paint_p50": _pct(paints, 0.5), "paint_p95": _pct(paints, 0.95),
        "undo_p50": _pct(undos, 0.5), "undo_p95": _pct(undos, 0.95),
        "all_p95": _pct(both, 0.95),
        "errors_shown": [e for s in sessions for e in s.errors],
        **_check(db, initial, sessions),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, secs in ((1, max(10.0, args.seconds / 3)), (args.sessions, args.seconds)):
            print(f"{n} session(s) for {secs:g} s ...", flush=True)
            results.append(_round(n, secs, args.seed, Path(tmp)))
    print()
    head = ("sessions", "edits", "edits/s", "paint p50", "paint p95", "undo p50", "undo p95",
            "lost", "misattributed", "errors")
    print(" | ".join(head))
    for r in results:
        def s(v):
            return "-" if v is None else f"{v:.2f} s"
        print(" | ".join([str(r["sessions"]), str(r["edits"]), f"{r['edits_per_second']:.2f}",
                          s(r["paint_p50"]), s(r["paint_p95"]), s(r["undo_p50"]),
                          s(r["undo_p95"]),
                          str(r["units_differing_from_replay"]
                              + r["units_differing_from_sessions"]),
                          str(r["misattributed_changes"]
                              + len(r["sessions_whose_counts_differ"])),
                          str(len(r["errors_shown"]))]))
    OUT.mkdir(exist_ok=True)
    (OUT / "bench_team.json").write_text(json.dumps(results, indent=1))
    bad = [r for r in results if r["units_differing_from_replay"] or
           r["units_differing_from_sessions"] or
           r["misattributed_changes"] or r["sessions_whose_counts_differ"] or
           r["errors_shown"]]
    if bad:
        print("PROBLEMS:", json.dumps(bad, indent=1))
        sys.exit(1)


if __name__ == "__main__":
    main()
