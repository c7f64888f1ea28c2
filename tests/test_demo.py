"""The embedded demo dataset: built once per session (see conftest.demo_db)."""

from __future__ import annotations

import json

import h3
import numpy as np
import pandas as pd
import pytest
from conftest import DEMO_DIR, rows, scalar, territory_numbers

from analytics import demo, plans
from analytics.errors import InputError
from analytics.period import Period
from analytics.store import Store


@pytest.fixture(scope="module")
def demo_ro(demo_db):
    with Store(demo_db, read_only=True) as s:
        yield s


def test_counts_equal_the_files(demo_ro, demo_frames):
    counts = demo_ro.counts()
    assert counts["accounts"] == len(demo_frames["accounts"]) == 20564
    assert counts["sales"] == len(demo_frames["sales"]) == 72674
    assert counts["reps"] == len(demo_frames["reps"]) == 44
    assert counts["plans"] == 1
    info = json.loads((DEMO_DIR / "dataset.json").read_text())
    assert (info["accounts"], info["sales"], info["reps"]) == (
        counts["accounts"], counts["sales"], counts["reps"])


def test_values_equal_the_files(demo_ro, demo_frames):
    acc, sales, reps = demo_frames["accounts"], demo_frames["sales"], demo_frames["reps"]
    assert scalar(demo_ro, "SELECT sum(potential) FROM accounts") == pytest.approx(
        acc["potential"].sum(), rel=1e-12)
    by_stage = dict(rows(demo_ro, "SELECT stage, sum(amount) FROM sales GROUP BY 1"))
    expected = sales.groupby("stage")["amount"].sum()
    assert set(by_stage) == set(expected.index) == {"won", "open", "lost"}
    for stage, amount in expected.items():
        assert by_stage[stage] == pytest.approx(amount, rel=1e-12)
    assert scalar(demo_ro, "SELECT sum(annual_quota) FROM reps") == pytest.approx(
        reps["annual_quota"].sum())
    # accounts without coordinates (518 of them) were placed by their ZIP code
    no_coords = int(acc["lat"].isna().sum())
    assert no_coords == 518
    assert dict(rows(demo_ro, "SELECT placed_by, count(*) FROM accounts GROUP BY 1")) == {
        "file": len(acc) - no_coords, "postal_code": no_coords,
    }


def test_demo_h3_cells(demo_ro, demo_frames):
    acc = demo_frames["accounts"].dropna(subset=["lat", "lon"]).sample(2000, random_state=1)
    stored = dict(rows(demo_ro, "SELECT account_id, h3_r7 FROM accounts"))
    for rec in acc.itertuples(index=False):
        assert stored[rec.account_id] == h3.str_to_int(h3.latlng_to_cell(rec.lat, rec.lon, 7))


def test_active_plan(demo_ro):
    plan = plans.get_plan(demo_ro.cursor())
    assert (plan.name, str(plan.unit), plan.state) == ("Current alignment", "county", "active")
    assert scalar(demo_ro, "SELECT count(*) FROM territories WHERE plan_id = ?",
                  [plan.plan_id]) == 40
    plan_file = pd.read_csv(DEMO_DIR / "plan_current_alignment.csv", dtype=str)
    assert scalar(demo_ro, "SELECT count(*) FROM plan_units WHERE plan_id = ?",
                  [plan.plan_id]) == len(plan_file)
    assert demo_ro.get_meta("as_of") == "2026-09-30"
    assert demo_ro.get_meta("dataset") == "US hospitals and clinics (medical devices)"


def test_active_plan_numbers_add_up(demo_ro, demo_frames):
    plan = plans.get_plan(demo_ro.cursor())
    table, totals = territory_numbers(demo_ro.cursor(), plan, Period.year(2026))
    acc, sales = demo_frames["accounts"], demo_frames["sales"]
    assert len(table) == 40
    assert totals["accounts"] == len(acc)
    assert table["accounts"].sum() + totals["unassigned_accounts"] == len(acc)
    assert totals["unassigned_accounts"] < 0.01 * len(acc)
    close = pd.to_datetime(sales["close_date"])
    in_2026 = close.dt.year == 2026
    won = sales.loc[in_2026 & (sales["stage"] == "won"), "amount"].sum()
    assert totals["won"] == pytest.approx(won, rel=1e-12)
    assert table["potential"].sum() + totals["unassigned_potential"] == pytest.approx(
        acc["potential"].sum(), rel=1e-12)
    # every territory has a rep and a quota of the rep's annual quota for 365 days
    reps = demo_frames["reps"].set_index("rep_id")["annual_quota"]
    assert np.allclose(table["quota"], reps.loc[table["rep_id"]].to_numpy())


def test_build_again_needs_force(demo_copy):
    with Store(demo_copy) as s:
        cur = s.cursor()
        plan_id = cur.execute("SELECT plan_id FROM plans").fetchone()[0]
        cur.execute("INSERT INTO account_overrides VALUES (?, 'H100001', 'T01')", [plan_id])
        cur.execute("INSERT INTO plans VALUES (99, 'Draft', 'state', 'planning', now(), now(), "
                    "NULL)")
        with pytest.raises(InputError, match="already holds data") as exc:
            demo.build_demo(s)
        assert "--force" in str(exc.value)
        assert exc.value.file == str(demo_copy)
        assert s.counts()["plans"] == 2  # unchanged
        info = demo.build_demo(s, force=True)
        assert info["report"].clean
        assert s.counts() == {"accounts": 20564, "sales": 72674, "reps": 44, "plans": 1}
        assert rows(s, "SELECT name, state FROM plans") == [("Current alignment", "active")]
        assert scalar(s, "SELECT count(*) FROM account_overrides") == 0
        assert scalar(s, "SELECT count(*) FROM territories") == 40
