"""A small messy dataset for the heavy path: part of the default data with bad rows in it.

Accounts, deals and reps as Parquet, text columns where a real export has text (so a bad
number or a day-first date can be there), each bad row of a kind `load` rejects or fixes:
NaN, blank and out-of-range coordinates, the empty geocode 0,0, postal-only accounts (US
and French), ids on two rows, deals of unknown or rejected accounts, unknown stages,
created after closed, day-first dates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DEMO = Path(__file__).resolve().parent.parent / "data" / "demo"
NAN = float("nan")

BAD_ACCOUNTS = [
    # account_id, lat, lon, postal_code, country, potential, last_activity_date
    ("X-NAN-ZIP", NAN, NAN, "10001", "US", "1000", "2026-01-05"),     # NaN: placed by ZIP
    ("X-BLANK-ZIP", None, None, "60601", "USA", "2,500.50", None),    # blank: placed by ZIP
    ("X-ZIP3", None, None, "2134", "US", "10", None),                 # 4-digit ZIP, padded
    ("X-FR-CP", None, None, "75008", "France", "300", None),         # French postal code
    ("X-FR-XY", 48.85, 2.35, None, "FR", "300", None),               # French, no code
    ("X-ZERO", 0.0, 0.0, "30301", "US", "5", "31/01/2026"),           # empty geocode
    ("X-LAT-95", 95.0, -80.0, None, "US", "1", None),                 # out of range
    ("X-LON-200", 40.0, 200.0, "10001", "US", "1", None),             # out of range
    ("X-LAT-ONLY", 40.7, None, None, "US", "1", None),                # lat without lon
    ("X-NOWHERE", None, None, None, None, "1", None),                 # no coordinates at all
    ("X-DE", None, None, "10115", "DE", "1", None),                   # no placement abroad
    ("X-BAD-ZIP", None, None, "00000", "US", "1", None),              # ZIP not in reference
    ("X-BAD-POT", 40.7, -74.0, "10001", "US", "abc", None),           # not a number
    ("X-NEG-POT", 40.7, -74.0, "10001", "US", "-5", None),            # negative
    ("X-BAD-DATE", 40.7, -74.0, "10001", "US", "1", "13/13/2026"),    # not a date
    ("X-DUP", 41.0, -87.6, "60601", "US", "1", None),                 # twice, and the
    ("X-DUP", None, None, "00000", "US", "1", None),                  # second unplaceable
    (None, 41.0, -87.6, None, "US", "1", None),                       # no id
    ("  X-TRIM  ", 41.5, -87.5, None, "US", "7", "15/02/2026"),       # spaces trimmed
]

BAD_DEALS = [
    # opportunity_id, account_id, amount, close_date, stage, created_date
    ("D-UNKNOWN", "NO-SUCH-ACCOUNT", "100", "2026-02-01", "won", None),
    ("D-DUP-ACC", "X-DUP", "100", "2026-02-01", "won", None),     # its account rejected
    ("D-TWICE", "{a}", "100", "2026-02-01", "won", None),
    ("D-TWICE", "{a}", "200", "2026-02-02", "lost", None),
    ("D-AMOUNT", "{a}", "12abc", "2026-02-01", "won", None),
    ("D-NEG", "{a}", "-1", "2026-02-01", "won", None),
    ("D-NO-AMOUNT", "{a}", None, "2026-02-01", "won", None),
    ("D-STAGE", "{a}", "100", "2026-02-01", "Maybe", None),
    ("D-CREATED", "{a}", "100", "2026-02-01", "won", "2026-03-01"),
    ("D-DMY", "{a}", "1 234,50", "28/02/2026", "Closed Won", "01/02/2026"),
    ("D-BAD-DATE", "{a}", "100", "2026-02-30", "won", None),
    ("D-ZIP-ACC", "X-NAN-ZIP", "777", "2026-03-01", "won", None),
    ("D-FR-ACC", "X-FR-CP", "888", "2026-03-01", "open", None),
    ("D-TRIM", "X-TRIM", "999", "2026-03-01", "won", None),
    (None, "{a}", "100", "2026-02-01", "won", None),
]


def _text(values) -> list:
    return [None if v is None else str(v) for v in values]


def write_messy_inputs(folder: Path, n_accounts: int = 1500, seed: int = 16) -> dict[str, Path]:
    """accounts.parquet, sales.parquet and reps.parquet in `folder`: `n_accounts` of the
    default data's accounts (and all their deals) with the bad rows above mixed in."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    accounts = pq.read_table(DEMO / "accounts.parquet").to_pylist()
    keep = sorted(rng.choice(len(accounts), size=n_accounts, replace=False))
    accounts = [accounts[i] for i in keep]
    ids = {a["account_id"] for a in accounts}
    good = accounts[0]["account_id"]
    rows = [
        {"account_id": a["account_id"], "name": a["name"], "lat": a["lat"], "lon": a["lon"],
         "postal_code": a["postal_code"], "country": a["country"], "segment": a["segment"],
         "industry": a["industry"], "potential": a["potential"],
         "visits_per_year": a["visits_per_year"], "owner_rep_id": a["owner_rep_id"],
         "last_activity_date": a["last_activity_date"]} for a in accounts
    ]
    for aid, lat, lon, pc, country, pot, last in BAD_ACCOUNTS:
        at = int(rng.integers(0, len(rows) + 1))
        rows.insert(at, {"account_id": aid, "name": f"Bad {aid}", "lat": lat, "lon": lon,
                         "postal_code": pc, "country": country, "segment": "Clinic",
                         "industry": "Primary Care", "potential": pot,
                         "visits_per_year": 2.0, "owner_rep_id": "R001",
                         "last_activity_date": last})
    account_table = pa.table({
        "Account ID": _text(r["account_id"] for r in rows),
        "Account Name": _text(r["name"] for r in rows),
        "Latitude": pa.array([r["lat"] for r in rows], pa.float64()),
        "Longitude": pa.array([r["lon"] for r in rows], pa.float64()),
        "BillingPostalCode": _text(r["postal_code"] for r in rows),
        "BillingCountry": _text(r["country"] for r in rows),
        "Type": _text(r["segment"] for r in rows),
        "Industry": _text(r["industry"] for r in rows),
        "AnnualRevenue": _text(r["potential"] for r in rows),
        "visits_per_year": pa.array([r["visits_per_year"] for r in rows], pa.float64()),
        "OwnerId": _text(r["owner_rep_id"] for r in rows),
        "LastActivityDate": _text(r["last_activity_date"] for r in rows),
    })
    deals = [d for d in pq.read_table(DEMO / "sales.parquet").to_pylist()
             if d["account_id"] in ids]
    deal_rows = [
        {"Id": d["opportunity_id"], "AccountId": d["account_id"], "Amount": d["amount"],
         "CloseDate": d["close_date"].isoformat(),
         "StageName": {"won": "Closed Won", "lost": "Closed Lost"}.get(d["stage"],
                                                                       "Negotiation"),
         "Product": d["product"], "OwnerId": d["rep_id"],
         "CreatedDate": d["created_date"].isoformat() if d["created_date"] else None,
         "LeadSource": d["lead_source"], "Competitor__c": d["lost_to"],
         "Loss_Reason__c": d["loss_reason"]} for d in deals
    ]
    for oid, aid, amount, close, stage, created in BAD_DEALS:
        at = int(rng.integers(0, len(deal_rows) + 1))
        deal_rows.insert(at, {"Id": oid, "AccountId": aid.format(a=good) if aid else aid,
                              "Amount": amount, "CloseDate": close, "StageName": stage,
                              "Product": "Infusion pumps", "OwnerId": "R001",
                              "CreatedDate": created, "LeadSource": "Referral",
                              "Competitor__c": None, "Loss_Reason__c": None})
    deal_table = pa.table({k: _text(r[k] for r in deal_rows) for k in deal_rows[0]})
    reps = pq.read_table(DEMO / "reps.parquet").to_pylist()
    reps += [{**reps[0], "rep_id": "R-TWICE"}] * 2   # a rep on two rows
    reps.append({**reps[1], "rep_id": "R-BAD", "annual_quota": None})
    rep_table = pa.table({
        "rep_id": _text(r["rep_id"] for r in reps),
        "name": _text(r["name"] for r in reps),
        "home_lat": pa.array([r["home_lat"] for r in reps], pa.float64()),
        "home_lon": pa.array([r["home_lon"] for r in reps], pa.float64()),
        "annual_quota": _text(r["annual_quota"] if r["rep_id"] != "R-BAD" else "lots"
                              for r in reps),
        "capacity_hours": pa.array([r["capacity_hours"] for r in reps], pa.float64()),
        "region": _text(r["region"] for r in reps),
        "manager_id": _text(r["manager_id"] for r in reps),
    })
    paths = {"accounts": folder / "accounts.parquet", "sales": folder / "sales.parquet",
             "reps": folder / "reps.parquet"}
    pq.write_table(account_table, paths["accounts"])
    pq.write_table(deal_table, paths["sales"])
    pq.write_table(rep_table, paths["reps"])
    return paths
