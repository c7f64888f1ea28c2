"""Synthetic accounts, deals and reps on real US geography, for the benchmarks.

Accounts sit at real ZIP points (`data/reference/us_zip.parquet`) drawn in proportion to
population, moved by a small seeded jitter (about 1 km); each account belongs to the rep
whose home is nearest to its ZIP, so owners form geographic territories. Deals go to
accounts in proportion to a per-account weight (bigger segments buy more), close over two
calendar years, and are won / lost in the past and mostly open in the future.

Everything is vectorised numpy / Arrow and seeded: the same arguments write the same files.
The columns are the importer's canonical names (see `analytics/schema.py`), so
`python -m analytics load --accounts ... --sales ... --reps ...` needs no mapping.

    python benchmarks/generate.py --accounts 1000000 --deals 10000000 --out benchmarks/out/1m
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
US_ZIP_FILE = ROOT / "data" / "reference" / "us_zip.parquet"

FIRST_DAY = dt.date(2025, 1, 1)
LAST_DAY = dt.date(2026, 12, 31)
AS_OF = dt.date(2026, 6, 30)
"""Deals closing on or before this day are mostly won or lost, later ones mostly open."""

KM_PER_DEGREE = 111.2
JITTER_KM = 1.0

SEGMENTS = ["Enterprise", "Mid-Market", "SMB", "Public Sector"]
SEGMENT_SHARE = [0.08, 0.22, 0.62, 0.08]
SEGMENT_POTENTIAL = [2_500_000.0, 600_000.0, 90_000.0, 900_000.0]  # median potential
SEGMENT_DEAL = [85_000.0, 28_000.0, 6_000.0, 35_000.0]  # median deal amount
SEGMENT_DEAL_WEIGHT = [6.0, 3.0, 1.0, 2.5]  # relative number of deals per account
SEGMENT_VISITS = [24.0, 12.0, 4.0, 8.0]

INDUSTRIES = [
    "Healthcare", "Manufacturing", "Retail", "Financial Services", "Education",
    "Government", "Technology", "Construction", "Hospitality", "Transportation",
    "Energy", "Agriculture",
]
PRODUCTS = ["Core Platform", "Analytics Add-on", "Field Service", "Support Plan",
            "Training", "Hardware Kit"]
PRODUCT_SHARE = [0.34, 0.18, 0.14, 0.16, 0.08, 0.10]

NAME_FIRST = [
    "Summit", "Pioneer", "Harbor", "Cedar", "Granite", "Prairie", "Liberty", "Evergreen",
    "Northstar", "Bluewater", "Redwood", "Silverline", "Ironbridge", "Maple", "Keystone",
    "Lakeside", "Frontier", "Golden", "Heritage", "Riverbend", "Sunrise", "Canyon",
    "Atlas", "Beacon", "Crescent", "Delta", "Eagle", "Falcon", "Highland", "Juniper",
    "Magnolia", "Meridian", "Oakridge", "Pinnacle", "Quarry", "Sierra", "Tidewater",
    "Union", "Valley", "Westfield",
]
NAME_SECOND = [
    "Medical", "Foods", "Logistics", "Systems", "Supply", "Holdings", "Partners",
    "Industries", "Health", "Labs", "Works", "Group", "Services", "Solutions", "Energy",
    "Builders", "Bank", "Academy", "Motors", "Farms",
]
NAME_SUFFIX = ["Inc", "LLC", "Co", "Corp", "Ltd", "Group", "Associates", "& Sons"]

REP_FIRST = ["Avery", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Quinn",
             "Drew", "Parker", "Reese", "Skyler", "Harper", "Rowan", "Emerson", "Logan"]
REP_LAST = ["Nguyen", "Lopez", "Moore", "Smith", "Patel", "Garcia", "Kim", "Brown",
            "Johnson", "Davis", "Martinez", "Clark", "Lewis", "Walker", "Young", "Hall"]

CENSUS_REGION = {
    **dict.fromkeys(["CT", "ME", "MA", "NH", "RI", "VT", "NJ", "NY", "PA"], "Northeast"),
    **dict.fromkeys(["IL", "IN", "MI", "OH", "WI", "IA", "KS", "MN", "MO", "NE", "ND", "SD"],
                    "Midwest"),
    **dict.fromkeys(["DE", "DC", "FL", "GA", "MD", "NC", "SC", "VA", "WV", "AL", "KY", "MS",
                     "TN", "AR", "LA", "OK", "TX", "PR"], "South"),
}
"""State -> Census region; states not listed are West."""


# --------------------------------------------------------------------------------------
# fast Arrow string columns
# --------------------------------------------------------------------------------------
def id_strings(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """`prefix` + zero-padded `numbers` as an Arrow string array, built byte by byte."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if len(numbers) and (int(numbers.min()) < 0 or int(numbers.max()) >= 10**width):
        raise ValueError(f"ids must be 0..{10**width - 1}")
    head = prefix.encode("ascii")
    step = len(head) + width
    if len(numbers) * step >= 2**31:
        raise ValueError("too many ids for one Arrow string array")
    rest = numbers.astype(np.uint32 if width <= 9 else np.uint64)  # uint32 divides faster
    digits = []
    for _ in range(width):
        q = rest // 10
        digits.append((rest - q * 10).astype(np.uint8) + 48)
        rest = q
    fixed = [np.broadcast_to(np.uint8(c), len(numbers)) for c in head]
    buf = np.stack(fixed + digits[::-1], axis=1)
    offsets = np.arange(0, (len(numbers) + 1) * step, step, dtype=np.int32)
    return pa.StringArray.from_buffers(
        len(numbers), pa.py_buffer(offsets), pa.py_buffer(buf.reshape(-1))
    )


def pick(words: list[str], idx: np.ndarray) -> pa.Array:
    """Plain (not dictionary) strings `words[idx]`, as a CRM export would hold them."""
    return pa.array(words, pa.string()).take(pa.array(idx.astype(np.int32)))


def dates(days_since_epoch: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    mask = None if valid is None else ~valid
    return pa.array(days_since_epoch.astype(np.int32), pa.int32(), mask=mask).cast(pa.date32())


def epoch_day(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


# --------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------
def _zip_points() -> dict[str, np.ndarray]:
    table = pq.read_table(US_ZIP_FILE, columns=["zip", "lat", "lon", "state", "population"])
    pop = table.column("population").to_numpy().astype(np.float64)
    keep = pop > 0
    return {
        "zip": np.asarray(table.column("zip").to_pylist(), dtype=object)[keep],
        "lat": table.column("lat").to_numpy()[keep],
        "lon": table.column("lon").to_numpy()[keep],
        "state": np.asarray(table.column("state").to_pylist(), dtype=object)[keep],
        "weight": pop[keep] / pop[keep].sum(),
    }


def _nearest(lat: np.ndarray, lon: np.ndarray, plat: np.ndarray, plon: np.ndarray,
             chunk: int = 8192) -> np.ndarray:
    """Index of the nearest of the points (plat, plon) for each (lat, lon), equirectangular."""
    out = np.empty(len(lat), dtype=np.int64)
    coslat = np.cos(np.radians(plat))
    for start in range(0, len(lat), chunk):
        la = lat[start:start + chunk, None]
        lo = lon[start:start + chunk, None]
        d = (la - plat[None, :]) ** 2 + ((lo - plon[None, :]) * coslat[None, :]) ** 2
        out[start:start + chunk] = d.argmin(axis=1)
    return out


def make_reps(rng: np.random.Generator, zips: dict, n_reps: int) -> tuple[pa.Table, dict]:
    home = rng.choice(len(zips["weight"]), size=n_reps, replace=False, p=zips["weight"])
    lat = np.round(zips["lat"][home], 4)
    lon = np.round(zips["lon"][home], 4)
    region = [CENSUS_REGION.get(s, "West") for s in zips["state"][home]]
    ids = id_strings("R", np.arange(1, n_reps + 1), 4)
    managers = id_strings("M", np.arange(n_reps) // 10 + 1, 3)
    first = rng.integers(0, len(REP_FIRST), n_reps)
    last = rng.integers(0, len(REP_LAST), n_reps)
    names = [f"{REP_FIRST[a]} {REP_LAST[b]}" for a, b in zip(first, last, strict=True)]
    table = pa.table({
        "rep_id": ids,
        "name": pa.array(names, pa.string()),
        "home_lat": lat,
        "home_lon": lon,
        "annual_quota": np.zeros(n_reps),  # filled in once the accounts are known
        "capacity_hours": np.full(n_reps, 1200.0),
        "manager_id": managers,
        "region": pa.array(region, pa.string()),
    })
    return table, {"lat": lat, "lon": lon}


def make_accounts(rng: np.random.Generator, zips: dict, reps_home: dict, n: int
                  ) -> tuple[pa.Table, dict]:
    z = rng.choice(len(zips["weight"]), size=n, p=zips["weight"])
    lat0, lon0 = zips["lat"][z], zips["lon"][z]
    sigma = JITTER_KM / KM_PER_DEGREE
    lat = np.round(lat0 + rng.normal(0.0, sigma, n), 6)
    lon = np.round(lon0 + rng.normal(0.0, sigma, n) / np.cos(np.radians(lat0)), 6)
    seg = rng.choice(len(SEGMENTS), size=n, p=SEGMENT_SHARE)
    potential = np.round(
        np.asarray(SEGMENT_POTENTIAL)[seg] * rng.lognormal(0.0, 0.8, n), 2
    )
    # owner: the rep whose home is nearest to the account's ZIP point
    zip_rep = _nearest(zips["lat"], zips["lon"], reps_home["lat"], reps_home["lon"])
    owner = zip_rep[z]
    activity = epoch_day(AS_OF) - rng.integers(0, 365, n)
    visits = np.maximum(
        0.0, np.round(np.asarray(SEGMENT_VISITS)[seg] * rng.lognormal(0.0, 0.4, n))
    )
    zip_idx = pa.array(z.astype(np.int32))
    name_idx = (rng.integers(0, len(NAME_FIRST), n) * len(NAME_SECOND)
                + rng.integers(0, len(NAME_SECOND), n)) * len(NAME_SUFFIX) + rng.integers(
                    0, len(NAME_SUFFIX), n)
    name_words = [f"{a} {b} {c}" for a in NAME_FIRST for b in NAME_SECOND for c in NAME_SUFFIX]
    table = pa.table({
        "account_id": id_strings("A", np.arange(1, n + 1), 8),
        "name": pick(name_words, name_idx),
        "lat": lat,
        "lon": lon,
        "postal_code": pa.array(list(zips["zip"]), pa.string()).take(zip_idx),
        "country": pick(["US"], np.zeros(n, dtype=np.int64)),
        "segment": pick(SEGMENTS, seg),
        "industry": pick(INDUSTRIES, rng.integers(0, len(INDUSTRIES), n)),
        "potential": potential,
        "owner_rep_id": id_strings("R", owner + 1, 4),
        "last_activity_date": dates(activity, valid=rng.random(n) > 0.1),
        "visits_per_year": visits,
    })
    return table, {"segment": seg, "owner": owner, "potential": potential}


def make_deals(rng: np.random.Generator, acc: dict, n_reps: int, m: int) -> pa.Table:
    n = len(acc["segment"])
    weight = np.asarray(SEGMENT_DEAL_WEIGHT)[acc["segment"]] * rng.lognormal(0.0, 0.5, n)
    # deals per account drawn at once, then shuffled (a searchsorted of 10M random draws
    # into a 1M-long cumulative sum is cache-bound and 20 times slower)
    counts = rng.multinomial(m, weight / weight.sum())
    who = rng.permutation(np.repeat(np.arange(n, dtype=np.int32), counts)).astype(np.int64)
    seg = acc["segment"][who]
    amount = np.round(np.asarray(SEGMENT_DEAL)[seg] * rng.lognormal(0.0, 0.9, m), 2)
    first, last = epoch_day(FIRST_DAY), epoch_day(LAST_DAY)
    close = rng.integers(first, last + 1, m)
    past = close <= epoch_day(AS_OF)
    u = rng.random(m)
    # past: 45% won, 45% lost, 10% still open (slipped); future: 85% open, 10% won, 5% lost
    stage = np.where(
        past,
        np.where(u < 0.45, 0, np.where(u < 0.90, 2, 1)),
        np.where(u < 0.85, 1, np.where(u < 0.95, 0, 2)),
    )
    rep = np.where(rng.random(m) < 0.92, acc["owner"][who], rng.integers(0, n_reps, m))
    return pa.table({
        "opportunity_id": id_strings("O", np.arange(1, m + 1), 9),
        "account_id": id_strings("A", who + 1, 8),
        "amount": amount,
        "close_date": dates(close),
        "stage": pick(["won", "open", "lost"], stage),
        "product": pick(PRODUCTS, rng.choice(len(PRODUCTS), size=m, p=PRODUCT_SHARE)),
        "rep_id": id_strings("R", rep + 1, 4),
    })


def generate(n_accounts: int, n_deals: int, out: Path, *, n_reps: int = 200, seed: int = 42,
             csv: bool = False) -> dict:
    """Write accounts / sales / reps (.parquet, and .csv with `csv`) to `out`."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    zips = _zip_points()
    reps, reps_home = make_reps(rng, zips, n_reps)
    accounts, acc = make_accounts(rng, zips, reps_home, n_accounts)
    # quota: 5% of the potential of the accounts a rep owns, rounded to thousands
    owned = np.bincount(acc["owner"], weights=acc["potential"], minlength=n_reps)
    reps = reps.set_column(reps.schema.get_field_index("annual_quota"), "annual_quota",
                           pa.array(np.round(owned * 0.05, -3)))
    sales = make_deals(rng, acc, n_reps, n_deals)
    t_gen = time.perf_counter() - t0

    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, table in (("reps", reps), ("accounts", accounts), ("sales", sales)):
        path = out / f"{name}.parquet"
        pq.write_table(table, path)
        files[name] = str(path)
        if csv:
            pacsv.write_csv(table, out / f"{name}.csv")
            files[f"{name}_csv"] = str(out / f"{name}.csv")
    manifest = {
        "accounts": n_accounts, "deals": n_deals, "reps": n_reps, "seed": seed,
        "first_day": FIRST_DAY.isoformat(), "last_day": LAST_DAY.isoformat(),
        "as_of": AS_OF.isoformat(), "files": files,
        "generate_seconds": round(t_gen, 3),
        "total_seconds": round(time.perf_counter() - t0, 3),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--accounts", type=int, default=1_000_000)
    p.add_argument("--deals", type=int, default=10_000_000)
    p.add_argument("--reps", type=int, default=200)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "1m")
    p.add_argument("--csv", action="store_true", help="also write CSV files")
    args = p.parse_args(argv)
    if args.reps < 1 or args.accounts < 1 or args.deals < 0:
        p.error("need at least one rep and one account")
    m = generate(args.accounts, args.deals, args.out, n_reps=args.reps, seed=args.seed,
                 csv=args.csv)
    print(f"{m['accounts']:,} accounts, {m['deals']:,} deals, {m['reps']} reps -> {args.out} "
          f"(generated in {m['generate_seconds']:.1f} s, written in "
          f"{m['total_seconds'] - m['generate_seconds']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
