"""`kill -9` at random points during every kind of write: the database reopens exactly as
before the command or exactly as after it, every time.

Each write (an import, a replacing import, an edit, a plan import, a snapshot) runs as a
real `python -m analytics` process on a copy of the demo database and is killed with
SIGKILL after a random delay within its own running time (the seed is printed, so a failure
can be replayed with CRASH_SEED). The database is then opened as the app opens it and every
table compared with the state before the command and the state after the same command run
to the end. Timestamps (when an edit was made), the data version (a fresh random id per
import) and a snapshot's frozen metrics (float sums in parallel order) are left out of the
comparison: they differ between two complete runs too.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import DEMO_DIR, REPO

from analytics.store import Store

KILLS_PER_WRITE = int(os.environ.get("CRASH_KILLS", "6"))
SEED = int(os.environ.get("CRASH_SEED", str(random.SystemRandom().randrange(1 << 30))))
VOLATILE_COLUMNS = {("snapshots", "summary")}
"""The metrics frozen in a snapshot: sums of floats in DuckDB's parallel order, which can
differ in the last bit between two complete runs; checked to be whole JSON instead."""


def fingerprint(db: Path) -> dict[str, tuple]:
    """Per table: row count and an order-free hash of every row (without timestamps)."""
    with Store(db) as store:  # opened as the app opens it (replays the WAL if any)
        cur = store.con.cursor()
        tables = [r[0] for r in cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "AND table_type = 'BASE TABLE' ORDER BY 1").fetchall()]
        out = {}
        for t in tables:
            cols = [r[0] for r in cur.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                "AND data_type NOT LIKE 'TIMESTAMP%' ORDER BY ordinal_position",
                [t]).fetchall() if (t, r[0]) not in VOLATILE_COLUMNS]
            where = "WHERE key NOT IN ('data_version')" if t == "meta" else ""
            sel = ", ".join(f'"{c}"' for c in cols)
            out[t] = cur.execute(f'SELECT count(*), sum(hash(x))::HUGEINT FROM '
                                 f'(SELECT {sel} FROM "{t}" {where}) x').fetchone()
        for (summary,) in cur.execute("SELECT summary FROM snapshots").fetchall():
            json.loads(summary)  # never half a document
        return out


def _files(tmp: Path) -> dict[str, Path]:
    """The inputs of the writes: changed accounts and deals, a plan file."""
    acc = pd.read_parquet(DEMO_DIR / "accounts.parquet")
    acc["potential"] = acc["potential"] * 1.5
    acc.to_parquet(tmp / "accounts.parquet")
    deals = pd.read_parquet(DEMO_DIR / "sales.parquet")
    deals["amount"] = deals["amount"] + 1
    deals.to_parquet(tmp / "sales.parquet")
    with Store(tmp / "base.duckdb") as s:
        units = s.con.cursor().execute(
            "SELECT unit_id, territory_id FROM plan_units WHERE plan_id = 1").df()
    units["territory_id"] = units["territory_id"].str.replace("T0", "N0")
    units.to_csv(tmp / "plan.csv", index=False)
    return {"accounts": tmp / "accounts.parquet", "sales": tmp / "sales.parquet",
            "plan": tmp / "plan.csv", "units": units["unit_id"].head(400).tolist()}


def writes(f: dict) -> dict[str, list[str]]:
    return {
        "import (update)": ["load", "--accounts", str(f["accounts"]), "--sales",
                            str(f["sales"])],
        "import (replace)": ["load", "--replace", "--accounts", str(f["accounts"])],
        "edit": ["plan", "assign", "--territory", "T01", *f["units"]],
        "plan import": ["plan", "import", "--name", "Crash plan", "--unit", "county",
                        str(f["plan"])],
        "snapshot": ["plan", "snapshot", "--name", "Crash snapshot", "--note", "before the crash"],
    }


def run(db: Path, argv: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "analytics", *argv[:2], "--db", str(db), *argv[2:]] \
        if argv[0] == "plan" else [sys.executable, "-m", "analytics", argv[0], "--db",
                                   str(db), *argv[1:]]
    return subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@pytest.fixture(scope="module")
def world(demo_db, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("crash")
    shutil.copy(demo_db, tmp / "base.duckdb")
    files = _files(tmp)
    before = fingerprint(tmp / "base.duckdb")
    return tmp, files, before


@pytest.mark.parametrize("name", ["import (update)", "import (replace)", "edit",
                                  "plan import", "snapshot"])
def test_kill_9_leaves_the_database_before_or_after(world, name, capsys):
    tmp, files, before = world
    argv = writes(files)[name]
    # the state after: the same command run to its end
    done_db = tmp / f"done-{name}.duckdb".replace(" ", "_")
    shutil.copy(tmp / "base.duckdb", done_db)
    start = time.monotonic()
    proc = run(done_db, argv)
    _, err = proc.communicate(timeout=600)
    took = time.monotonic() - start
    assert proc.returncode == 0, err.decode()
    after = fingerprint(done_db)
    assert after != before, "the write changed nothing: the test would prove nothing"

    rng = random.Random(f"{SEED}-{name}")
    outcomes = []
    for k in range(KILLS_PER_WRITE):
        db = tmp / f"killed-{k}.duckdb"
        shutil.copy(tmp / "base.duckdb", db)
        Path(f"{db}.wal").unlink(missing_ok=True)
        delay = rng.uniform(0.4 * took, took)  # the first part is Python starting up
        proc = run(db, argv)
        time.sleep(delay)
        finished = proc.poll() is not None
        if not finished:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        state = fingerprint(db)
        outcome = "before" if state == before else "after" if state == after else "MIXED"
        outcomes.append(f"{delay:.2f}s:{outcome}{'' if not finished else '(done)'}")
        assert outcome != "MIXED", (
            f"{name}: killed after {delay:.2f} s, the database is neither as before nor as "
            f"after (seed {SEED}): " + ", ".join(
                t for t in before if state.get(t) not in (before[t], after.get(t))))
        db.unlink()
        Path(f"{db}.wal").unlink(missing_ok=True)
    with capsys.disabled():
        print(f"\n{name}: run {took:.1f} s, seed {SEED}, kills: {', '.join(outcomes)}")
