"""The embedded default dataset: US hospitals and clinics of a medical-device sales team.

Built by `data/build/build_data.py` from public data (see `data/SOURCES.md`) and shipped in
`data/demo/`; loading it goes through the same importer as a user's files.
"""

from __future__ import annotations

import json

from analytics import geography, ingest, plans
from analytics.errors import InputError
from analytics.settings import Settings, save_settings
from analytics.store import Store
from analytics.units import UnitType

DEMO_DIR = geography.DATA_DIR / "demo"


def dataset_info() -> dict:
    return json.loads((DEMO_DIR / "dataset.json").read_text())


def build_demo(store: Store, *, force: bool = False) -> dict:
    """Load the demo accounts, deals, reps and its starting plan (the active plan)."""
    info = dataset_info()
    counts = store.counts()
    if any(counts.values()) and not force:
        raise InputError(
            "the database already holds data "
            f"({counts['accounts']} accounts, {counts['plans']} plans); use --force to "
            "replace it with the demo dataset",
            file=str(store.path),
        )
    if force:
        from analytics import users

        users.require("replace all data with the demo dataset")
        with store.transaction() as cur:
            for table in ("account_overrides", "plan_units", "territories", "plans"):
                cur.execute(f"DELETE FROM {table}")
    report = ingest.load(
        store,
        reps=DEMO_DIR / "reps.parquet",
        accounts=DEMO_DIR / "accounts.parquet",
        sales=DEMO_DIR / "sales.parquet",
        stage_history=DEMO_DIR / "stage_history.parquet",
        replace=True,
    )
    if not report.clean:  # the shipped files are clean; anything else is a packaging bug
        raise RuntimeError("demo dataset did not import cleanly:\n" + report.summary())
    plans.import_plan(
        store, info["plan"], UnitType.parse(info["plan_unit"]),
        DEMO_DIR / "plan_current_alignment.csv", state="active",
        note="Hospital Referral Regions grouped into 40 territories, one rep each",
    )
    save_settings(store, Settings(**info.get("settings", {})))
    store.set_meta("as_of", info["as_of"])
    store.set_meta("dataset", info["name"])
    return {**info, "report": report}
