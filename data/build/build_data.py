"""Build the shipped reference geography and the default demo dataset.

Run once by a developer from a checkout that has the public datasets beside it:

    python data/build/build_data.py --shared PATH/TO/public-datasets

It writes `data/reference/`, `data/geo/` and `data/demo/`. The app and the tests only read
those outputs (a fresh clone has no source datasets). Every synthetic part is seeded, so running
it again gives the same files. See `data/SOURCES.md` for what comes from where.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT.parent))  # the analytics package (county cells, state codes)

from analytics.geography import STATE_FIPS  # noqa: E402

SEED = 20261127
AS_OF = "2026-09-30"

CENSUS_REGION = {
    **dict.fromkeys(["CT", "ME", "MA", "NH", "RI", "VT", "NJ", "NY", "PA"], "Northeast"),
    **dict.fromkeys(
        ["IL", "IN", "MI", "OH", "WI", "IA", "KS", "MN", "MO", "NE", "ND", "SD"], "Midwest"
    ),
    **dict.fromkeys(
        ["DE", "DC", "FL", "GA", "MD", "NC", "SC", "VA", "WV", "AL", "KY", "MS", "TN", "AR",
         "LA", "OK", "TX"],
        "South",
    ),
    **dict.fromkeys(
        ["AZ", "CO", "ID", "MT", "NV", "NM", "UT", "WY", "AK", "CA", "HI", "OR", "WA"], "West"
    ),
}
FIRST = ["Avery", "Jordan", "Taylor", "Morgan", "Casey", "Riley", "Jamie", "Quinn", "Dana",
         "Alex", "Robin", "Sam", "Drew", "Kendall", "Reese", "Cameron", "Logan", "Parker",
         "Hayden", "Rowan", "Elliot", "Skyler", "Blake", "Emerson"]
LAST = ["Nguyen", "Garcia", "Smith", "Johnson", "Patel", "Kim", "Brown", "Lopez", "Miller",
        "Davis", "Wilson", "Martinez", "Anderson", "Thomas", "Moore", "Jackson", "White",
        "Harris", "Clark", "Lewis", "Walker", "Hall", "Young", "King", "Wright", "Scott"]
PRODUCTS = ["Infusion pumps", "Patient monitors", "Surgical consumables", "Imaging service"]
CLINIC_SEGMENTS = [  # segment, share, potential median, visits/year (None = segment setting)
    ("Surgery Center", 0.15, 180_000.0, None),
    ("Clinic", 0.40, 60_000.0, None),
    ("Physician Practice", 0.45, 25_000.0, None),
]
# Field visits a year by segment (the demo's settings): one rep covers ~500 accounts, so
# practices are served by inside sales (0 visits) and clinics see a rep every few years.
DEMO_SETTINGS = {"visits_by_segment": {"Surgery Center": 0.5, "Clinic": 0.15,
                                       "Physician Practice": 0.0}}
INDUSTRIES = ["Cardiology", "Orthopedics", "Oncology", "General Medicine", "Pediatrics"]
REVIEW_SEED = SEED + 15
"""The review fields' own generator: the deals' stages, amounts and dates stay as before."""
BUNDLES = [["Infusion pumps", "Patient monitors"], ["Surgical consumables", "Imaging service"]]
"""Products an account buys together (its basket: one bundle, a quarter of them both)."""
LEAD_SOURCES = ["Referral", "Trade show", "Web", "Outbound", "Partner"]
LEAD_SOURCE_BY_OUTCOME = {  # P(source | outcome): referrals win more, outbound less
    "won": [0.30, 0.20, 0.20, 0.15, 0.15],
    "lost": [0.12, 0.20, 0.22, 0.34, 0.12],
    "open": [0.20, 0.20, 0.22, 0.24, 0.14],
}
COMPETITORS = ["Halvard Medical", "Norcross Devices", "Pellucid Health", "(no decision)"]
COMPETITOR_BY_REGION = {  # who takes our lost deals, by the rep's region
    "West": [0.50, 0.15, 0.15, 0.20], "Midwest": [0.15, 0.50, 0.15, 0.20],
    "South": [0.20, 0.20, 0.40, 0.20], "Northeast": [0.30, 0.30, 0.20, 0.20],
}
LOSS_REASONS = {"Halvard Medical": ["Price", "Product fit"],
                "Norcross Devices": ["Price", "Relationship"],
                "Pellucid Health": ["Product fit", "Service"],
                "(no decision)": ["Timing", "Budget"]}
PIPELINE = ["Prospecting", "Qualification", "Needs Analysis", "Proposal/Price Quote",
            "Negotiation/Review"]
"""The open stages every deal passes in order (Salesforce's standard names)."""


def _reference(shared: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """US ZIP points and French postal codes, as small Parquet lookup tables."""
    ref = ROOT / "reference"
    ref.mkdir(parents=True, exist_ok=True)
    zcta = pd.read_csv(
        shared / "us-zcta-2020-derived/zcta_2020_population_points.csv", dtype={"zcta": str}
    ).dropna(subset=["lat", "lon"])
    geonames = pd.read_csv(shared / "us-zip-geonames/zipcodes.csv", dtype={"zip_code": str})
    zcta_rows = pd.DataFrame({
        "zip": zcta["zcta"], "lat": zcta["lat"], "lon": zcta["lon"],
        "state": zcta["geonames_state"], "population": zcta["population_2020"],
        "source": "census_zcta",
    })
    extra = geonames[~geonames["zip_code"].isin(zcta_rows["zip"])]
    gn_rows = pd.DataFrame({
        "zip": extra["zip_code"], "lat": extra["latitude"], "lon": extra["longitude"],
        "state": extra["state"], "population": 0, "source": "geonames",
    }).dropna(subset=["lat", "lon"])
    us_zip = pd.concat([zcta_rows, gn_rows], ignore_index=True).sort_values("zip")
    state_of = dict(zip(geonames["zip_code"], geonames["state"], strict=True))
    us_zip["state"] = us_zip["state"].fillna(us_zip["zip"].map(state_of))
    us_zip.to_parquet(ref / "us_zip.parquet", index=False, compression="zstd")

    communes = pd.read_csv(
        shared / "france-communes/communes_cog2026_with_2018_points.csv",
        dtype={"code": str, "departement": str, "region": str, "commune": str},
    )
    postal = pd.read_csv(
        shared / "france-communes/codes_postaux_ban.csv",
        dtype={"codePostal": str, "codeCommune": str},
    )
    # Paris, Lyon and Marseille: the postal codes name municipal arrondissements (75101...),
    # which have no point of their own; use the city (75056, 69123, 13055) instead of
    # dropping 75001-75020, 69001-69009 and 13001-13016.
    arr = communes[communes["type"] == "arrondissement-municipal"]
    city_of = dict(zip(arr["code"], arr["commune"], strict=True))
    city_name = dict(zip(communes["code"], communes["nom"], strict=True))
    in_city = postal["codeCommune"].isin(city_of)
    postal.loc[in_city, "codeCommune"] = postal.loc[in_city, "codeCommune"].map(city_of)
    postal.loc[in_city, "nomCommune"] = postal.loc[in_city, "codeCommune"].map(city_name)
    fr = postal.merge(communes, left_on="codeCommune", right_on="code", how="inner")
    fr = fr.dropna(subset=["interior_lat", "interior_lon"])
    fr_postal = pd.DataFrame({
        "postal_code": fr["codePostal"], "commune": fr["codeCommune"],
        "commune_name": fr["nomCommune"], "departement": fr["departement"],
        "lat": fr["interior_lat"], "lon": fr["interior_lon"],
        "population": fr["population"].fillna(0).astype("int64"),
    }).drop_duplicates(["postal_code", "commune"]).sort_values(["postal_code", "commune"])
    fr_postal.to_parquet(ref / "fr_postal.parquet", index=False, compression="zstd")
    return us_zip, fr_postal


def _market(shared: Path) -> None:
    """The market overlays' source tables (analytics/market.py rolls them up to units):
    ZIP Code Business Patterns 2018 per ZIP, and per county the 2020 Census population
    and the 2016 unemployment rate."""
    ref = ROOT / "reference"
    zbp = pd.read_csv(shared / "us-zip-business-patterns-2018/zbp18totals.txt",
                      dtype={"zip": str}, encoding="utf-8")
    pd.DataFrame({
        "zip": zbp["zip"].str.zfill(5), "establishments": zbp["est"].astype("int64"),
        "employees": zbp["emp"].astype("int64"),
        "payroll": zbp["ap"].astype("int64") * 1000,  # annual payroll, $1,000 -> $
    }).sort_values("zip").to_parquet(ref / "us_zip_business.parquet", index=False,
                                     compression="zstd")
    pop = pd.read_csv(shared / "us-county-population-2020/CenPop2020_Mean_CO.txt",
                      dtype={"STATEFP": str, "COUNTYFP": str}, encoding="utf-8-sig")
    unemp = pd.read_csv(shared / "us-county-unemployment/fips-unemp-16.csv",
                        dtype={"fips": str})
    county = pd.DataFrame({"county": pop["STATEFP"].str.zfill(2) + pop["COUNTYFP"].str.zfill(3),
                           "population": pop["POPULATION"].astype("int64")})
    county = county.merge(pd.DataFrame({"county": unemp["fips"].str.zfill(5),
                                        "unemployment_rate": unemp["unemp"] / 100}),
                          on="county", how="left")
    county.sort_values("county").to_parquet(ref / "us_county_market.parquet", index=False,
                                            compression="zstd")
    sys.path.insert(0, str(ROOT.parent))  # the engine rolls them up to every unit type
    from analytics import market

    market.write_units_file(ref / "market_units.parquet")


def _geo(shared: Path) -> None:
    """Unit polygons for the map: US states and counties, French departements."""
    geo = ROOT / "geo"
    geo.mkdir(parents=True, exist_ok=True)
    for src, dst in [
        ("us-boundaries/us-states-10m.geojson", "us_states.geojson"),
        ("us-boundaries/us-counties-10m.geojson", "us_counties.geojson"),
        ("france-geojson/departements-version-simplifiee.geojson", "fr_departements.geojson"),
    ]:
        with open(shared / src, "rb") as f_in, open(geo / (dst + ".gz"), "wb") as raw, \
                gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f_out:
            shutil.copyfileobj(f_in, f_out)  # mtime=0: the same bytes on every rebuild


def _county_cells() -> None:
    """H3 cells lying wholly inside one county, compacted: a fast exact county lookup.

    Every res-8 cell fully inside a county polygon (the shipped one) is listed, then
    compacted. At import an account whose res-8 cell (or an ancestor of it) is listed is in
    that county for sure; only the others (near a border, ~4%) need point-in-polygon.
    """
    import h3

    from analytics import geography

    ids, _, geoms = geography.unit_polygons("county")
    cells, counties = [], []
    for cid, geom in zip(ids, geoms, strict=True):
        shape = h3.geo_to_h3shape(geom)
        inside = h3.compact_cells(h3.h3shape_to_cells_experimental(shape, 8, contain="full"))
        cells.extend(h3.str_to_int(c) for c in inside)
        counties.extend([cid] * len(inside))
    frame = pd.DataFrame({"cell": np.array(cells, dtype=np.uint64).view(np.int64),
                          "county": counties}).sort_values("cell")
    frame.to_parquet(ROOT / "reference" / "county_cells.parquet", index=False,
                     compression="zstd")


def _counties(shared: Path) -> pd.DataFrame:
    """County FIPS with a representative point (2020 population centre where known)."""
    with open(shared / "us-boundaries/us-counties-10m.geojson") as f:
        feats = json.load(f)["features"]
    rows = []
    for ft in feats:
        if ft["geometry"] is None:
            continue
        pt = shapely.geometry.shape(ft["geometry"]).representative_point()
        rows.append({"fips": ft["id"], "lat": pt.y, "lon": pt.x})
    counties = pd.DataFrame(rows)
    cenpop = pd.read_csv(
        shared / "us-county-population-2020/CenPop2020_Mean_CO.txt",
        dtype={"STATEFP": str, "COUNTYFP": str},
    )
    cenpop["fips"] = cenpop["STATEFP"] + cenpop["COUNTYFP"]
    cen = cenpop.set_index("fips")
    known = counties["fips"].isin(cen.index)
    counties.loc[known, "lat"] = counties.loc[known, "fips"].map(cen["LATITUDE"])
    counties.loc[known, "lon"] = counties.loc[known, "fips"].map(cen["LONGITUDE"])
    counties["state"] = counties["fips"].str[:2].map(STATE_FIPS)
    return counties[counties["state"].isin(CENSUS_REGION)].reset_index(drop=True)


def _kmeans(points: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator):
    """Weighted Lloyd's k-means with k-means++ seeding (deterministic given rng)."""
    centers = [points[rng.choice(len(points), p=weights / weights.sum())]]
    for _ in range(1, k):
        d2 = np.min(((points[:, None, :] - np.array(centers)[None]) ** 2).sum(-1), axis=1)
        p = d2 * weights
        centers.append(points[rng.choice(len(points), p=p / p.sum())])
    centers = np.array(centers)
    for _ in range(100):
        labels = np.argmin(((points[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)
        new = np.array([
            np.average(points[labels == j], axis=0, weights=weights[labels == j])
            if (labels == j).any() else centers[j]
            for j in range(k)
        ])
        if np.allclose(new, centers):
            break
        centers = new
    return labels


def _demo(shared: Path, us_zip: pd.DataFrame) -> None:
    rng = np.random.default_rng(SEED)
    demo = ROOT / "demo"
    demo.mkdir(parents=True, exist_ok=True)

    hosp = pd.read_csv(
        shared / "cms-inpatient-hospitals-fy2016/hospitals_fy2016.csv",
        dtype={"provider_id": str, "zip": str},
    )
    # --- territories: HRRs grouped into 40 territories --------------------------------
    hosp["pot"] = (hosp["total_payments"] * 0.02).round(2)
    hrr = hosp.groupby("hrr").apply(
        lambda g: pd.Series({
            "lat": np.average(g["lat"], weights=g["total_discharges"] + 1),
            "lon": np.average(g["lon"], weights=g["total_discharges"] + 1),
            "pot": g["pot"].sum(),
        }),
        include_groups=False,
    ).reset_index()
    pts = np.c_[hrr["lat"], hrr["lon"] * np.cos(np.radians(hrr["lat"]))]
    hrr["cluster"] = _kmeans(pts, np.sqrt(hrr["pot"].to_numpy()), 40, rng)
    # order territories west to east so ids read like a map
    order = hrr.groupby("cluster")["lon"].mean().sort_values().index
    tid = {c: f"T{i + 1:02d}" for i, c in enumerate(order)}
    hrr["territory_id"] = hrr["cluster"].map(tid)
    hosp = hosp.merge(hrr[["hrr", "territory_id"]], on="hrr")

    # territory name and rep home: the city of its busiest hospital
    top = hosp.sort_values("total_discharges", ascending=False).groupby("territory_id").head(1)
    top = top.set_index("territory_id").sort_index()
    names = [
        f"{c.title()} {s}" for c, s in zip(top["city"], top["state"], strict=True)
    ]
    reps = pd.DataFrame({
        "rep_id": [f"R{i + 1:03d}" for i in range(len(top))],
        "name": [
            f"{FIRST[i % len(FIRST)]} {LAST[(i * 7) % len(LAST)]}" for i in range(len(top))
        ],
        "home_lat": top["lat"].to_numpy(),
        "home_lon": top["lon"].to_numpy(),
        "annual_quota": 0.0,
        "capacity_hours": rng.choice([1100.0, 1200.0, 1200.0, 1300.0], len(top)),
        "region": top["state"].map(CENSUS_REGION).to_numpy(),
    })
    managers = {
        r: f"M{i + 1}" for i, r in enumerate(["West", "Midwest", "South", "Northeast"])
    }
    reps["manager_id"] = reps["region"].map(managers)
    territories = pd.DataFrame({
        "territory_id": top.index, "territory_name": names, "rep_id": reps["rep_id"],
    })

    # --- accounts: real hospitals + clinics at real ZIP points --------------------------
    hospitals = pd.DataFrame({
        "account_id": "H" + hosp["provider_id"],
        "name": hosp["provider_name"].str.title(),
        "lat": hosp["lat"], "lon": hosp["lon"], "postal_code": hosp["zip"],
        "country": "US", "segment": "Hospital",
        "industry": "Acute Care",
        "potential": hosp["pot"],
        "visits_per_year": np.where(hosp["total_discharges"] > 10000, 4.0, 1.0),
        "_territory": hosp["territory_id"],
    })
    zbp = pd.read_csv(
        shared / "us-zip-business-patterns-2018/zbp18totals.txt", dtype={"zip": str}
    )
    zbp = zbp.merge(us_zip[["zip", "lat", "lon", "state"]], on="zip")
    zbp = zbp[zbp["state"].isin(CENSUS_REGION) & (zbp["est"] > 0)].reset_index(drop=True)
    n_clinics = 17_500
    pick = rng.choice(len(zbp), n_clinics, p=zbp["est"] / zbp["est"].sum())
    z = zbp.iloc[pick].reset_index(drop=True)
    seg_idx = rng.choice(len(CLINIC_SEGMENTS), n_clinics, p=[s[1] for s in CLINIC_SEGMENTS])
    seg = [CLINIC_SEGMENTS[i] for i in seg_idx]
    medians = np.array([s[2] for s in seg])
    kinds = {"Surgery Center": "Surgery Center", "Clinic": "Medical Clinic",
             "Physician Practice": "Family Practice"}
    clinics = pd.DataFrame({
        "account_id": [f"C{i + 1:05d}" for i in range(n_clinics)],
        "name": [
            f"{str(c).title()} {kinds[s[0]]} {i + 1}"
            for i, (c, s) in enumerate(zip(z["city"], seg, strict=True))
        ],
        "lat": (z["lat"] + rng.normal(0, 0.01, n_clinics)).round(6),
        "lon": (z["lon"] + rng.normal(0, 0.01, n_clinics)).round(6),
        "postal_code": z["zip"], "country": "US",
        "segment": [s[0] for s in seg],
        "industry": rng.choice(INDUSTRIES, n_clinics),
        "potential": (medians * rng.lognormal(0, 0.6, n_clinics)).round(2),
        "visits_per_year": [s[3] for s in seg],
    })
    # 3% of clinics come without coordinates: the import places them by postal code
    no_xy = rng.random(n_clinics) < 0.03
    clinics.loc[no_xy, ["lat", "lon"]] = np.nan
    accounts = pd.concat([hospitals, clinics], ignore_index=True)

    # starting plan: every county goes to the HRR of its nearest hospital
    counties = _counties(shared)
    h_xyz = _xyz(hosp["lat"].to_numpy(), hosp["lon"].to_numpy())
    c_xyz = _xyz(counties["lat"].to_numpy(), counties["lon"].to_numpy())
    nearest = np.argmax(c_xyz @ h_xyz.T, axis=1)
    counties["territory_id"] = hosp["territory_id"].to_numpy()[nearest]
    plan = counties[["fips", "territory_id"]].rename(columns={"fips": "unit_id"})
    plan = plan.merge(territories, on="territory_id").sort_values("unit_id")
    plan.to_csv(demo / "plan_current_alignment.csv", index=False)

    # owner: the rep of the territory the account sits in (nearest hospital for clinics)
    a_xyz = _xyz(
        accounts["lat"].fillna(accounts["postal_code"].map(us_zip.set_index("zip")["lat"])),
        accounts["lon"].fillna(accounts["postal_code"].map(us_zip.set_index("zip")["lon"])),
    )
    near_h = np.argmax(a_xyz @ h_xyz.T, axis=1)
    terr = hosp["territory_id"].to_numpy()[near_h]
    rep_of = territories.set_index("territory_id")["rep_id"]
    accounts["owner_rep_id"] = pd.Series(terr).map(rep_of).to_numpy()
    as_of = pd.Timestamp(AS_OF)
    touched = rng.random(len(accounts)) < 0.7
    days_ago = rng.integers(0, 200, len(accounts))
    accounts["last_activity_date"] = [
        (as_of - pd.Timedelta(days=int(d))).date().isoformat() if t else None
        for d, t in zip(days_ago, touched, strict=True)
    ]
    accounts = accounts.drop(columns="_territory")

    # --- deals: two calendar years, stage decided against the fixed as-of date ---------
    skill = dict(zip(reps["rep_id"], rng.uniform(0.30, 0.62, len(reps)), strict=True))
    is_hosp = accounts["segment"].eq("Hospital").to_numpy()
    per_year = np.where(is_hosp, 5.0, 1.2)
    n_deals = rng.poisson(per_year * 2)
    idx = np.repeat(np.arange(len(accounts)), n_deals)
    n = len(idx)
    pot = accounts["potential"].to_numpy()[idx]
    share = np.where(is_hosp[idx], 0.07, 0.30)
    amount = (pot * share * rng.lognormal(0, 0.5, n)).round(2)
    start = pd.Timestamp("2025-01-01")
    close = start + pd.to_timedelta(rng.integers(0, 730, n), unit="D")
    owner = accounts["owner_rep_id"].to_numpy()[idx]
    closer = np.where(rng.random(n) < 0.9, owner, rng.choice(reps["rep_id"], n))
    p_win = np.array([skill[r] for r in owner])
    u = rng.random(n)
    closed = (close <= as_of) & (rng.random(n) > 0.04)
    stage = np.where(~closed, "open", np.where(u < p_win, "won", "lost"))
    sales = pd.DataFrame({
        "opportunity_id": [f"OPP-{i + 1:06d}" for i in range(n)],
        "account_id": accounts["account_id"].to_numpy()[idx],
        "amount": amount,
        "close_date": close.date,
        "stage": stage,
        "product": rng.choice(PRODUCTS, n),
        "rep_id": closer,
    })
    # quota: 105% of what the territory won last year, so attainment varies around 100%
    won25 = sales[(sales["stage"] == "won") & (sales["close_date"] < pd.Timestamp(
        "2026-01-01").date())]
    won_by_rep = won25.merge(
        accounts[["account_id", "owner_rep_id"]], on="account_id"
    ).groupby("owner_rep_id")["amount"].sum()
    reps["annual_quota"] = (reps["rep_id"].map(won_by_rep).fillna(0) * 1.05 / 1000).round(
    ) * 1000
    mgr = pd.DataFrame({
        "rep_id": list(managers.values()),
        "name": [f"{r} Regional Director" for r in managers],
        "home_lat": [37.77, 41.88, 33.75, 40.71], "home_lon": [-122.42, -87.63, -84.39, -74.01],
        "annual_quota": 0.0, "capacity_hours": 0.0, "region": list(managers),
        "manager_id": None,
    })
    reps = pd.concat([reps, mgr], ignore_index=True)

    sales, history = _review_fields(accounts, sales, reps)
    accounts.to_parquet(demo / "accounts.parquet", index=False, compression="zstd")
    sales.to_parquet(demo / "sales.parquet", index=False, compression="zstd")
    history.to_parquet(demo / "stage_history.parquet", index=False, compression="zstd")
    reps.to_parquet(demo / "reps.parquet", index=False, compression="zstd")
    (demo / "dataset.json").write_text(json.dumps({
        "name": "US hospitals and clinics (medical devices)",
        "as_of": AS_OF, "seed": SEED, "plan": "Current alignment", "plan_unit": "county",
        "settings": DEMO_SETTINGS,
        "accounts": len(accounts), "sales": len(sales), "reps": len(reps),
        "stage_changes": len(history),
        "territories": len(territories),
    }, indent=2) + "\n")
    print(f"accounts {len(accounts)}, deals {len(sales)}, reps {len(reps)}, "
          f"territories {len(territories)}, counties {len(plan)}")


def _review_fields(accounts: pd.DataFrame, sales: pd.DataFrame,
                   reps: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The territory review's optional fields, from a generator of their own: each deal's
    product from its account's basket, created date, lead source, the competitor and
    reason of a loss, and the stage history (where lost deals dropped out varies by rep)."""
    rng = np.random.default_rng(REVIEW_SEED)
    as_of = pd.Timestamp(AS_OF)
    n = len(sales)
    # baskets: a bundle per account, a quarter of accounts buy both
    acc = accounts["account_id"].to_numpy()
    first = rng.integers(0, 2, len(acc))
    both = rng.random(len(acc)) < 0.25
    pos = pd.Series(np.arange(len(acc)), index=acc).loc[sales["account_id"]].to_numpy()
    bundle = np.where(both[pos] & (rng.random(n) < 0.5), 1 - first[pos], first[pos])
    pick = rng.integers(0, 2, n)
    sales["product"] = [BUNDLES[b][k] for b, k in zip(bundle, pick, strict=True)]
    stage = sales["stage"].to_numpy()
    seg = accounts.set_index("account_id")["segment"].loc[sales["account_id"]].to_numpy()
    # created: a cycle before the close (hospitals longer, lost deals longer still)
    median = np.where(seg == "Hospital", 120.0, 45.0) * np.where(stage == "lost", 1.3, 1.0)
    cycle = np.maximum(7, np.round(median * rng.lognormal(0, 0.45, n))).astype(int)
    close = pd.to_datetime(sales["close_date"])
    created = close - pd.to_timedelta(cycle, unit="D")
    created = created.where(created <= as_of, as_of - pd.to_timedelta(
        rng.integers(1, 60, n), unit="D"))
    sales["created_date"] = created.dt.date
    source = np.empty(n, dtype=object)
    for outcome, p in LEAD_SOURCE_BY_OUTCOME.items():
        m = stage == outcome
        source[m] = rng.choice(LEAD_SOURCES, m.sum(), p=p)
    sales["lead_source"] = source
    region = reps.set_index("rep_id")["region"].reindex(sales["rep_id"]).to_numpy()
    lost_to = np.full(n, None, dtype=object)
    reason = np.full(n, None, dtype=object)
    for r, p in COMPETITOR_BY_REGION.items():
        m = (stage == "lost") & (region == r)
        lost_to[m] = rng.choice(COMPETITORS, m.sum(), p=p)
    for comp, reasons in LOSS_REASONS.items():
        m = lost_to == comp
        reason[m] = rng.choice(reasons, m.sum(), p=[0.6, 0.4])
    sales["lost_to"], sales["loss_reason"] = lost_to, reason
    # stage history: each deal passes the open stages in order from Prospecting; a lost
    # deal stops at a stage drawn from its rep's leak profile, an open one is still in one
    reps_ids = sorted(sales["rep_id"].dropna().unique())
    leak = {r: rng.dirichlet(np.where(np.arange(len(PIPELINE)) == i % len(PIPELINE), 6.0,
                                      1.5)) for i, r in enumerate(reps_ids)}
    last = np.empty(n, dtype=int)
    for r, p in leak.items():
        m = sales["rep_id"].to_numpy() == r
        last[m] = rng.choice(len(PIPELINE), m.sum(), p=p)
    last = np.where(stage == "won", len(PIPELINE) - 1, last)
    opp = sales["opportunity_id"].to_numpy()
    start = created.to_numpy()
    end = np.where(stage == "open", np.minimum(close.to_numpy(), np.datetime64(as_of)),
                   close.to_numpy())
    span = (end - start) / np.timedelta64(1, "D")
    rows_opp, rows_stage, rows_at = [], [], []
    for i in range(n):
        k = last[i] + 1
        cuts = np.sort(rng.random(k - 1)) if k > 1 else np.empty(0)
        days = np.concatenate([[0.0], np.floor(cuts * span[i])])
        for j in range(k):
            rows_opp.append(opp[i])
            rows_stage.append(PIPELINE[j])
            rows_at.append(start[i] + np.timedelta64(int(days[j]), "D"))
        if stage[i] != "open":
            rows_opp.append(opp[i])
            rows_stage.append("Closed Won" if stage[i] == "won" else "Closed Lost")
            rows_at.append(close.to_numpy()[i])
    history = pd.DataFrame({"OpportunityId": rows_opp, "StageName": rows_stage,
                            "CreatedDate": pd.to_datetime(rows_at).date})
    return sales, history


def _xyz(lat, lon) -> np.ndarray:
    la, lo = np.radians(np.asarray(lat, float)), np.radians(np.asarray(lon, float))
    return np.c_[np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--shared", type=Path, required=True,
        help="folder of the public source datasets (one sub-folder per dataset, each with "
        "its SOURCE.md); see data/SOURCES.md",
    )
    args = parser.parse_args()
    us_zip, _ = _reference(args.shared)
    _geo(args.shared)
    _county_cells()
    _market(args.shared)  # rolled up with the polygons and county cells above
    _demo(args.shared, us_zip)


if __name__ == "__main__":
    main()
