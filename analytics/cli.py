"""`python -m analytics`: every number of the app from the command line.

Exit status: 0 on success, 2 on bad input (the message on stderr names the file, row and
column), 1 on an internal error.

Over 500 lines because it holds one argument parser and one handler per command; each handler
only parses, calls the engine and prints (no rule lives here).
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from analytics import (
    __version__,
    coverage,
    cube,
    demo,
    edits,
    ingest,
    jsonable,
    metrics,
    performance,
    plans,
    rules,
)
from analytics import overlays as overlays_mod
from analytics.errors import InputError
from analytics.exports.cells import csv_text
from analytics.period import resolve
from analytics.settings import load_settings
from analytics.store import DatabaseBusy, Store, default_db_path
from analytics.terminal import safe_terminal
from analytics.units import UnitType

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT = 0, 1, 2


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db", type=Path, default=None,
        help=f"database file (default: $TERRITORY_ATLAS_DB or {default_db_path()})",
    )


def _period_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--period", help="START:END (ISO dates, both included) or a year; "
                   "default: the calendar year of the as-of date")
    p.add_argument("--as-of", dest="as_of", help="YYYY-MM-DD; default: the dataset's "
                   "as-of date, else today")


def _scope_args(p: argparse.ArgumentParser) -> None:
    for name, text in (("segment", "account segment"), ("industry", "account industry"),
                       ("product", "deal product"), ("rep", "rep id of the territory"),
                       ("territory", "territory id"), ("region", "region of the rep")):
        p.add_argument(f"--{name}", action="append", default=[], metavar="VALUE",
                       help=f"keep only this {text} (repeatable)")
    p.add_argument("--min-accounts", dest="min_accounts", type=int, default=0,
                   help="leave out areas with fewer accounts (rankings)")
    p.add_argument("--min-establishments", dest="min_establishments", type=int, default=0,
                   help="leave out areas with fewer business establishments (rankings; "
                   "docs/metrics.md, the market under the map)")


def _scope(args) -> performance.Scope:
    return performance.Scope(
        cube.AccountFilter(tuple(args.segment), tuple(args.industry), tuple(args.product)),
        tuple(args.rep), tuple(args.territory), tuple(args.region), args.min_accounts,
        args.min_establishments)


def _format_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=["csv", "json"], default="csv")
    p.add_argument("--out", type=Path, help="write to this file instead of standard output")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m analytics",
        description="Territory Atlas: territory design and analysis on DuckDB.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--as", dest="as_user", metavar="USER",
                        help="act as this user of the database, with their role "
                        "(docs/security.md); default: the local admin")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="build the default dataset and its starting plan")
    _db_arg(p)
    p.add_argument("--force", action="store_true",
                   help="replace the data of a database that is not empty")

    p = sub.add_parser("load", help="import accounts, sales (deals) and reps files")
    _db_arg(p)
    p.add_argument("--accounts", type=Path, help="CSV, Excel or Parquet file of accounts")
    p.add_argument("--sales", type=Path, help="file of opportunities / deals")
    p.add_argument("--reps", type=Path, help="file of sales reps")
    p.add_argument("--stage-history", type=Path,
                   help="file of deals' stage changes (Salesforce OpportunityHistory: "
                   "OpportunityId, StageName, CreatedDate)")
    p.add_argument("--map", action="append", default=[], metavar="TABLE.FIELD=COLUMN",
                   help="take a field from a named column, e.g. accounts.lat=Latitude_Y "
                   "(repeatable); overrides the automatic matching")
    p.add_argument("--replace", action="store_true",
                   help="replace each loaded table whole (only if its file has no bad row)")
    p.add_argument("--allow-empty", action="store_true",
                   help="with --replace: let a file with no rows empty its table")
    p.add_argument("--all-or-nothing", action="store_true",
                   help="store nothing if any row is rejected")
    p.add_argument("--report", type=Path, help="write the rejected rows to this CSV file")
    p.add_argument("--wait", type=float, default=120.0, metavar="SECONDS",
                   help="when the app holds the database: hand the import to it and wait "
                   "this long for it to start (default 120; 0: fail at once)")

    p = sub.add_parser("units", help="one row per spatial unit: accounts, potential, won, "
                       "open pipeline")
    _db_arg(p)
    p.add_argument("--unit", required=True, help="h3:3..h3:8, zip3, zip5, county, state, "
                   "fr_dept or fr_commune")
    _period_args(p)
    _format_arg(p)

    p = sub.add_parser("market", help="the market under the map: population, "
                       "establishments, employees, payroll and unemployment with our "
                       "accounts and potential, per territory of a plan or per unit")
    _db_arg(p)
    p.add_argument("--plan", help="plan name (default: the active plan)")
    p.add_argument("--unit", help="one row per unit of this type instead (h3:3..h3:8, zip3, "
                   "zip5, county, state, fr_dept or fr_commune): every unit the market or "
                   "our accounts reach")
    _period_args(p)
    _format_arg(p)

    p = sub.add_parser("territories", help="one row per territory of a plan")
    _db_arg(p)
    p.add_argument("--plan", help="plan name (default: the active plan)")
    _period_args(p)
    _format_arg(p)

    p = sub.add_parser("summary", help="every docs/metrics.md column per territory, then the "
                       "whole plan")
    _db_arg(p)
    p.add_argument("--plan", help="plan name (default: the active plan)")
    p.add_argument("--baseline", help="plan to measure disruption against (default: the "
                   "active plan)")
    _period_args(p)
    p.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                   help="override a setting for this run, e.g. speed_kmh=50 or "
                   "visits_per_year.Clinic=6 (repeatable)")
    _format_arg(p)

    p = sub.add_parser("balance", help="build or rebalance a plan: even on the chosen "
                       "measures, contiguous, compact, close to today's (docs/balance.md)")
    _db_arg(p)
    p.add_argument("--plan", help="the plan to balance (default: the active plan)")
    p.add_argument("--mode", choices=["build", "rebalance"], default="rebalance")
    p.add_argument("--territories", type=int, metavar="K",
                   help="build: how many territories, one per rep (default: the plan's)")
    p.add_argument("--balance", metavar="M=W,...", help="measures and weights, the first "
                   "the primary: potential, workload_hours, accounts, won, open_pipeline, "
                   "market_population, market_establishments or overlay:NAME:COLUMN "
                   "(default: potential=1)")
    p.add_argument("--tolerance", metavar="M=T,...", help="allowed deviation from the mean "
                   "per measure (default: 0.02 for the primary, 0.05 for the others)")
    p.add_argument("--keep-current", dest="keep_current", type=float, default=1.0,
                   metavar="W", help="how strongly to keep accounts where they are (0: no "
                   "preference; default 1)")
    p.add_argument("--lock", action="append", default=[], metavar="TERRITORY",
                   help="keep this territory as it is (repeatable; stored locks always hold)")
    p.add_argument("--keep-accounts", dest="keep_accounts", action="append", default=[],
                   metavar="ID,...", help="named accounts that stay with their current rep "
                   "(pinned where their unit moves; repeatable)")
    p.add_argument("--keep-top", dest="keep_top", type=int, default=0, metavar="N",
                   help="also keep the N accounts of highest potential with their rep")
    p.add_argument("--max-travel-km", dest="max_travel_km", type=float,
                   help="no unit farther than this from its territory's rep home")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-seconds", dest="max_seconds", type=float, default=20.0)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--into", metavar="NAME", help="save the result as a new plan")
    g.add_argument("--apply", action="store_true",
                   help="change the plan itself (one undoable edit)")
    _period_args(p)
    p.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE")
    _format_arg(p)

    p = sub.add_parser("plan", help="territory plans")
    psub = p.add_subparsers(dest="plan_command", required=True)
    q = psub.add_parser("import", help="create a plan from unit_id,territory_id[,"
                        "territory_name,rep_id]")
    _db_arg(q)
    q.add_argument("--name", required=True)
    q.add_argument("--unit", required=True, help="the plan's base unit (h3:R, zip3, ...)")
    q.add_argument("--state", choices=["planning", "active", "archived"],
                   help="default: active for the first plan, else planning")
    q.add_argument("--note")
    q.add_argument("file", type=Path)
    q = psub.add_parser("list", help="the plans in the database")
    _db_arg(q)
    _format_arg(q)
    q = psub.add_parser("convert", help="a new plan on another unit type: each new unit "
                        "goes to the territory holding most of its potential")
    _db_arg(q)
    q.add_argument("--plan", help="the plan to convert (default: the active plan)")
    q.add_argument("--unit", required=True, help="the new plan's unit (h3:R, zip3, ...)")
    q.add_argument("--name", required=True, help="the new plan's name")
    q.add_argument("--state", choices=["planning", "active", "archived"],
                   default="planning")
    q = psub.add_parser("assign", help="put units in a territory (one undoable edit); "
                        "with --erase, take them out of any territory")
    _db_arg(q)
    q.add_argument("--plan", help="default: the active plan")
    who = q.add_mutually_exclusive_group(required=True)
    who.add_argument("--territory", help="the territory id to assign the units to")
    who.add_argument("--erase", action="store_true", help="unassign the units")
    q.add_argument("units", nargs="+", help="unit ids (as `units` prints them)")
    q = psub.add_parser("territory", help="create or change a territory (one undoable edit)")
    _db_arg(q)
    q.add_argument("--plan", help="default: the active plan")
    q.add_argument("territory_id")
    q.add_argument("--create", action="store_true", help="create it (needs --name)")
    q.add_argument("--name")
    q.add_argument("--color", help="#rrggbb")
    q.add_argument("--rep", help="rep id ('' for no rep)")
    q.add_argument("--lock", action="store_true")
    q.add_argument("--unlock", action="store_true")
    q.add_argument("--parent", help="parent territory id for the hierarchy ('' for none)")
    q.add_argument("--merge-into", dest="merge_into", help="merge it into this territory")
    q.add_argument("--delete", action="store_true", help="delete it (units unassigned)")
    q = psub.add_parser("pin", help="pin an account to a territory whatever its unit "
                        "(--territory '' removes the pin)")
    _db_arg(q)
    q.add_argument("--plan", help="default: the active plan")
    q.add_argument("account_id")
    q.add_argument("--territory", required=True)
    for verb, text in (("undo", "take back the plan's latest edit"),
                       ("redo", "make again the edit undo took back")):
        q = psub.add_parser(verb, help=text)
        _db_arg(q)
        q.add_argument("--plan", help="default: the active plan")
    q = psub.add_parser("create", help="an empty plan on a unit type")
    _db_arg(q)
    q.add_argument("--name", required=True)
    q.add_argument("--unit", required=True, help="h3:R, zip3, zip5, county, state, ...")
    q.add_argument("--state", choices=["planning", "active", "archived"], default="planning")
    q.add_argument("--note")
    q = psub.add_parser("clone", help="copy a plan (territories, units, pins, types, rules)")
    _db_arg(q)
    q.add_argument("--plan", help="the plan to copy (default: the active plan)")
    q.add_argument("--name", required=True, help="the copy's name")
    q = psub.add_parser("rename", help="rename a plan")
    _db_arg(q)
    q.add_argument("--plan", help="default: the active plan")
    q.add_argument("--name", required=True, help="the new name")
    q = psub.add_parser("state", help="set a plan planning / active / archived (exactly one "
                        "plan is active)")
    _db_arg(q)
    q.add_argument("--plan", required=True)
    q.add_argument("state", choices=["planning", "active", "archived"])
    q = psub.add_parser("delete", help="delete a plan (not the active one)")
    _db_arg(q)
    q.add_argument("--plan", required=True)
    q = psub.add_parser("snapshot", help="freeze a plan with its metrics, a note and the time")
    _db_arg(q)
    q.add_argument("--plan", help="default: the active plan")
    q.add_argument("--note")
    q.add_argument("--name", help="default: '<plan> @ <date time>'")
    _period_args(q)
    q.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE")
    q = psub.add_parser("snapshots", help="the snapshots, newest first")
    _db_arg(q)
    q.add_argument("--plan", help="only the snapshots of this plan")
    _format_arg(q)
    q = psub.add_parser("restore", help="restore a snapshot as a new plan (planning)")
    _db_arg(q)
    q.add_argument("--snapshot", required=True)
    q.add_argument("--name", required=True)
    q = psub.add_parser("compare", help="two plans or snapshots side by side")
    _db_arg(q)
    q.add_argument("--plan", help="default: the active plan")
    q.add_argument("--baseline", required=True, help="the plan or snapshot to compare with")
    q.add_argument("--what", choices=["territories", "units", "accounts", "summary"],
                   default="summary", help="summary: disruption and counts (JSON); "
                   "territories: metric deltas; units / accounts: what moved")
    _period_args(q)
    q.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE")
    _format_arg(q)
    q = psub.add_parser("rollup", help="the territory hierarchy's numbers (region > ...)")
    _db_arg(q)
    q.add_argument("--plan", help="default: the active plan")
    _period_args(q)
    q.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE")
    _format_arg(q)
    q = psub.add_parser("history", help="the plan's edits, newest first")
    _db_arg(q)
    q.add_argument("--plan", help="default: the active plan")
    _format_arg(q)

    p = sub.add_parser("rank", help="high and low performers: areas ranked by a metric")
    _db_arg(p)
    p.add_argument("--plan", help="the plan whose territories count (default: active)")
    p.add_argument("--metric", required=True, choices=list(performance.RANK_METRICS))
    p.add_argument("--level", required=True,
                   help="unit:<unit type> (unit:h3:6, unit:county, ...), territory or rep")
    cut = p.add_mutually_exclusive_group()
    cut.add_argument("--top", type=int, metavar="N")
    cut.add_argument("--bottom", type=int, metavar="N")
    cut.add_argument("--percentile", type=float, metavar="P",
                     help="P >= 50: areas at or above the P-th percentile; P < 50: at or "
                     "below it")
    _scope_args(p)
    _period_args(p)
    _format_arg(p)

    p = sub.add_parser("coverage", help="accounts out of reach or not touched, and what "
                       "it would take to bring each under-served territory into the band")
    _db_arg(p)
    p.add_argument("--plan", help="default: the active plan")
    p.add_argument("--what", choices=["territories", "accounts"], default="territories",
                   help="territories: the 'what would it take' lines; accounts: every "
                   "account with distance, reach, touched and workload")
    p.add_argument("--only", choices=["out-of-reach", "not-touched", "unassigned"],
                   help="with --what accounts: keep only these accounts")
    _scope_args(p)
    _period_args(p)
    p.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE")
    _format_arg(p)

    from analytics.exports import FORMATS as EXPORT_FORMATS

    p = sub.add_parser("export", help="the meeting pack of a plan: slides, PDF, workbook, "
                       "GIS file, map image or Salesforce Data Loader files (offline)")
    _db_arg(p)
    p.add_argument("--plan", help="default: the active plan")
    p.add_argument("--format", required=True, choices=list(EXPORT_FORMATS))
    p.add_argument("--out", type=Path, required=True,
                   help="the file to write (salesforce: a .zip); a folder: a file named "
                   "after the plan in it")
    p.add_argument("--baseline", help="add a comparison with this plan (slides, PDF, Excel)")
    p.add_argument("--week", action="append", default=[], metavar="TERRITORY",
                   help="the meeting pack for this territory's rep (slides, PDF): only its "
                   "pages, then its rep's week of routes (`routes`: 5 working days after "
                   "the as-of date); repeatable")
    p.add_argument("--review", action="append", default=[], metavar="TERRITORY",
                   help="the meeting pack with this territory's review (slides, PDF): its "
                   "pages, then its SWOT and funnel (`review`); repeatable, and with --week")
    _period_args(p)
    p.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                   help="override a setting for this export (repeatable)")

    p = sub.add_parser("routes", help="the rep's week: the due visits of a territory (or a "
                       "rep) in day routes from the rep's home, with what routing saves "
                       "against the nearest-neighbour order")
    _db_arg(p)
    p.add_argument("--plan", help="default: the active plan")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--territory", help="territory id")
    who.add_argument("--rep", help="rep id: all the rep's territories of the plan")
    p.add_argument("--days", type=int, default=5, help="working days (Monday to Friday), "
                   "1 to 10; default 5")
    p.add_argument("--start", help="first day YYYY-MM-DD (a weekend moves to Monday); "
                   "default: the working day after the as-of date")
    p.add_argument("--day", type=int, help="only this day of the plan (1 = the first): CSV "
                   "and GPX")
    p.add_argument("--as-of", dest="as_of", help="YYYY-MM-DD; default: the dataset's "
                   "as-of date, else today")
    p.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                   help="override a setting, e.g. day_hours=9 or visit_minutes=30")
    p.add_argument("--format", choices=["csv", "json", "gpx"], default="csv",
                   help="csv: one row per stop; json: the week's numbers, days, stops and "
                   "the due accounts left out; gpx: one route per day")
    p.add_argument("--out", type=Path, help="write to this file instead of standard output")

    p = sub.add_parser("strengths", help="where each rep wins against the team: win rate "
                       "with its 95% Wilson interval and average deal per rep and segment, "
                       "product or industry (the territory review)")
    _db_arg(p)
    p.add_argument("--plan", help="default: the active plan (the rep of a deal without "
                   "one: its account's territory's)")
    p.add_argument("--by", choices=["segment", "product", "industry"], default="segment")
    p.add_argument("--min-closed", dest="min_closed", type=int, default=10,
                   help="closed deals a rep needs before a strength or weakness is called "
                   "(default 10)")
    p.add_argument("--territory", action="append", default=[], metavar="ID",
                   help="only the deals of this territory's accounts, against the team "
                   "there (repeatable)")
    _period_args(p)
    _format_arg(p)

    p = sub.add_parser("pairs", help="products bought together by the same accounts: "
                       "support, confidence and lift of each pair (the territory review)")
    _db_arg(p)
    p.add_argument("--plan", help="default: the active plan")
    p.add_argument("--territory", action="append", default=[], metavar="ID",
                   help="only this territory's accounts (repeatable)")
    p.add_argument("--min-accounts", dest="min_accounts", type=int, default=1,
                   help="leave out pairs held by fewer accounts")
    _period_args(p)
    _format_arg(p)

    p = sub.add_parser("review", help="a territory's review: its SWOT from the data, each "
                       "line with its number and a link to the evidence, and its funnel")
    _db_arg(p)
    p.add_argument("--plan", help="default: the active plan")
    p.add_argument("--territory", required=True, metavar="ID")
    p.add_argument("--setting", action="append", default=[], metavar="NAME=VALUE",
                   help="override a setting, e.g. overload_tolerance=0.2")
    _period_args(p)
    p.add_argument("--format", choices=["md", "json"], default="md")
    p.add_argument("--base-url", dest="base_url", default="",
                   help="put before each evidence link, e.g. http://atlas.example.com/")
    p.add_argument("--out", type=Path, help="write to this file instead of standard output")

    p = sub.add_parser("segments", help="win rate, deal size, sales cycle, revenue and "
                       "growth by segment, industry, product or lead source")
    _db_arg(p)
    p.add_argument("--plan", help="default: the active plan")
    p.add_argument("--by", choices=["segment", "industry", "product", "lead_source"],
                   default="segment")
    _scope_args(p)
    _period_args(p)
    _format_arg(p)

    p = sub.add_parser("funnel", help="the pipeline funnel of the deals closed in the "
                       "period: conversion per stage, days in stage, where deals are lost")
    _db_arg(p)
    p.add_argument("--plan", help="default: the active plan")
    _scope_args(p)
    _period_args(p)
    _format_arg(p)

    p = sub.add_parser("profile", help="the top accounts by won amount against the rest: "
                       "segments, industries, potential, products")
    _db_arg(p)
    p.add_argument("--plan", help="default: the active plan")
    p.add_argument("--top", type=int, default=20, help="how many top accounts (default 20)")
    _scope_args(p)
    _period_args(p)
    _format_arg(p)

    p = sub.add_parser("repfit", help="which rep fits which territory: the assignment of "
                       "reps to territories with the highest expected won amount, keeping "
                       "relationships (docs/metrics.md, rep fit); --apply makes it one edit")
    _db_arg(p)
    p.add_argument("--plan", help="default: the active plan")
    p.add_argument("--handover-loss", dest="handover_loss", type=float, default=0.10,
                   help="share of a handed-over account's won amount counted as lost "
                   "(default 0.10; 1 keeps every relationship)")
    p.add_argument("--shrink", type=int, default=10,
                   help="pull each rep's win rate towards the team's by this many deals")
    p.add_argument("--apply", action="store_true",
                   help="give the territories their suggested reps, as one undoable edit")
    _period_args(p)
    _format_arg(p)

    p = sub.add_parser("overlay", help="your own map layers: a table keyed by ZIP5, ZIP3, "
                       "county, state, departement or H3 cell with numeric columns")
    osub = p.add_subparsers(dest="overlay_command", required=True)
    q = osub.add_parser("import", help="store a file as an overlay (all rows or none)")
    _db_arg(q)
    q.add_argument("file", type=Path)
    q.add_argument("--name", required=True, help="the overlay's name (replaces one of that "
                   "name)")
    q.add_argument("--key", required=True, choices=list(overlays_mod.KEY_KINDS),
                   help="what the key column holds")
    q.add_argument("--key-column", help="the key column (default: the one named like the "
                   "key, else the first)")
    q.add_argument("--report", type=Path, help="write the rejected rows to this CSV file")
    q = osub.add_parser("list", help="the stored overlays")
    _db_arg(q)
    _format_arg(q)
    q = osub.add_parser("delete", help="delete an overlay")
    _db_arg(q)
    q.add_argument("name")

    p = sub.add_parser("user", help="people who sign in to the app, and their roles")
    usub = p.add_subparsers(dest="user_command", required=True)
    q = usub.add_parser("add", help="add a user (the first one must be an admin)")
    _db_arg(q)
    q.add_argument("username")
    q.add_argument("--role", required=True, choices=["admin", "manager", "rep", "viewer"])
    q.add_argument("--rep", dest="rep_id", help="rep users: the rep whose territories they see")
    q.add_argument("--territory", dest="territories", action="append", default=[],
                   metavar="ID", help="managers: a territory they may edit (repeatable; "
                   "none: every territory)")
    q.add_argument("--sso", action="store_true",
                   help="no password: the user signs in through the identity provider "
                   "(OIDC, .streamlit/secrets.toml); the user name is their e-mail address")
    q.add_argument("--password-stdin", action="store_true",
                   help="read the password from standard input (else it is asked for)")
    q = usub.add_parser("list", help="the users and their roles (never their passwords)")
    _db_arg(q)
    _format_arg(q)
    q = usub.add_parser("remove", help="remove a user")
    _db_arg(q)
    q.add_argument("username")
    q = usub.add_parser("set-role", help="change a user's role (and a manager's territories)")
    _db_arg(q)
    q.add_argument("username")
    q.add_argument("--role", required=True, choices=["admin", "manager", "rep", "viewer"])
    q.add_argument("--rep", dest="rep_id")
    q.add_argument("--territory", dest="territories", action="append", default=[],
                   metavar="ID")

    p = sub.add_parser("info", help="what the database holds")
    _db_arg(p)

    p = sub.add_parser("attach", help="a database on the Spark job's output "
                       "(python -m analytics.spark.job): accounts and reps stored, the "
                       "deals read in place from its Parquet files (docs/scale-out.md)")
    _db_arg(p)
    p.add_argument("--from", dest="folder", required=True, type=Path, metavar="DIR",
                   help="the job's --out folder")
    p.add_argument("--report", type=Path, metavar="CSV",
                   help="write the rows the job rejected here (file, row, column, value, "
                   "reason)")
    _rules_parser(sub)
    return parser


def _emit(frame: pd.DataFrame | dict | list, args: argparse.Namespace) -> None:
    if isinstance(frame, pd.DataFrame):
        if args.format == "json":
            text = frame.to_json(orient="records", date_format="iso", indent=1) + "\n"
        else:
            text = csv_text(frame)
    else:
        text = json.dumps(frame, indent=1, default=str) + "\n"
    if getattr(args, "out", None):
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def _cmd_demo(args) -> int:
    with Store(args.db) as store:
        info = demo.build_demo(store, force=args.force)
        print(info["report"].summary())
        print(f"plan {info['plan']!r} ({info['plan_unit']}) is active; as-of date "
              f"{info['as_of']}; database {store.path}")
    return EXIT_OK


def _cmd_load(args) -> int:
    mapping = ingest.parse_mapping(args.map)
    options = {"mapping": mapping, "replace": args.replace,
               "all_or_nothing": args.all_or_nothing, "allow_empty": args.allow_empty}
    try:
        try:
            with Store(args.db) as store:
                report = ingest.load(store, accounts=args.accounts, sales=args.sales,
                                     reps=args.reps, stage_history=args.stage_history,
                                     **options)
        except DatabaseBusy:
            if args.wait <= 0:
                raise
            report = _hand_over(args, options)
    except ingest.ImportRejected as exc:
        _print_rejections(exc.report, args.report)
        print(exc.report.summary(), file=sys.stderr)
        raise
    print(report.summary())
    if not report.clean:
        _print_rejections(report, args.report)
        print(f"{len(report.rejections)} problems: the rows above were not stored; the "
              "others were", file=sys.stderr)
        return EXIT_INPUT
    return EXIT_OK


def _hand_over(args, options: dict) -> ingest.ImportReport:
    """The app holds the database: it runs the import (analytics/handover.py)."""
    import getpass

    from analytics import handover

    files = {t: getattr(args, t) for t in ("accounts", "sales", "reps", "stage_history")}
    for table, path in files.items():  # the app reads them: they must exist now
        if path is not None and not Path(path).is_file():
            raise InputError(f"--{table.replace('_', '-')}: no such file", file=str(path))
    print(f"the database is open in another process (the app?): handing the import to it "
          f"(waiting up to {args.wait:g} s for it to start)", file=sys.stderr)
    try:
        os_user = getpass.getuser()
    except (KeyError, OSError):
        os_user = None
    request = {**{t: str(Path(p).resolve()) if p is not None else None
                  for t, p in files.items()},
               "labels": {t: str(p) for t, p in files.items() if p is not None},
               "as_user": args.as_user, "os_user": os_user, **options}
    return handover.submit(Path(args.db or default_db_path()), request, wait=args.wait)


def _print_rejections(report: ingest.ImportReport, path: Path | None, limit: int = 50) -> None:
    rej = report.rejections
    for r in rej[:limit]:
        print(f"rejected: {r}", file=sys.stderr)
    if len(rej) > limit:
        print(f"... and {len(rej) - limit} more", file=sys.stderr)
    if path is not None:
        path.write_bytes(csv_text(report.frame()).encode("utf-8"))
        print(f"rejection report written to {path}", file=sys.stderr)


def _cmd_units(args) -> int:
    unit = UnitType.parse(args.unit)
    with Store(args.db, read_only=True) as store:
        period, _ = resolve(store.get_meta("as_of"), args.period, args.as_of)
        cur = store.cursor()
        frame = cube.unit_cube(cur, unit, period)
        missing = cube.accounts_without_unit(cur, unit)
    if missing:
        print(f"note: {missing} accounts have no {unit} unit (for example outside the "
              "area that unit covers) and are not listed", file=sys.stderr)
    _emit(frame, args)
    return EXIT_OK


def _cmd_market(args) -> int:
    from analytics import market

    with Store(args.db, read_only=True) as store:
        period, as_of = resolve(store.get_meta("as_of"), args.period, args.as_of)
        cur = store.cursor()
        if args.unit:
            unit = UnitType.parse(args.unit)
            ours = cube.unit_cube(cur, unit, period)[["unit_id", "accounts", "potential"]]
            frame = market.unit_market(unit)[["unit_id", *market.COLUMNS]].merge(
                ours, on="unit_id", how="outer").sort_values("unit_id")
            frame[["accounts", "potential"]] = frame[["accounts", "potential"]].fillna(0)
            frame[list(market.SUMS)] = frame[list(market.SUMS)].fillna(0).astype("int64")
            frame = frame[["unit_id", "accounts", "potential", *market.COLUMNS]]
        else:
            plan = plans.get_plan(cur, args.plan)
            brief, _ = metrics.territory_brief(cur, plan, period, as_of,
                                               load_settings(store))
            frame = brief[["territory_id", "territory_name", "rep_name", "accounts",
                           "potential"]].merge(
                market.territory_market(plan.unit, plans.assignment(cur, plan)),
                on="territory_id", how="left")
    _emit(market.share_columns(frame), args)
    return EXIT_OK


def _cmd_territories(args) -> int:
    with Store(args.db, read_only=True) as store:
        period, as_of = resolve(store.get_meta("as_of"), args.period, args.as_of)
        cur = store.cursor()
        plan = plans.get_plan(cur, args.plan)
        table, _ = metrics.territory_brief(cur, plan, period, as_of,
                                           load_settings(store))
    _emit(table, args)
    return EXIT_OK


def _cmd_summary(args) -> int:
    with Store(args.db, read_only=True) as store:
        settings = load_settings(store).with_overrides(args.setting)
        period, as_of = resolve(store.get_meta("as_of"), args.period, args.as_of)
        cur = store.cursor()
        plan = plans.get_plan(cur, args.plan)
        try:
            baseline = plans.get_plan(cur, args.baseline)
        except InputError:
            if args.baseline is not None:
                raise
            baseline = None  # no active plan to compare with: disruption stays empty
        rows, plan_row = metrics.summary(cur, plan, period, as_of, settings,
                                         baseline=baseline)
    if args.format == "json":
        _emit({"territories": jsonable.records(rows), "plan": jsonable.plain(plan_row)}, args)
    else:
        _emit(metrics.summary_frame(rows, plan_row), args)
    return EXIT_OK


def _cmd_balance(args) -> int:
    from analytics import balance

    targets = balance.parse_targets(args.balance, args.tolerance)
    if args.keep_current < 0:
        raise InputError("--keep-current must be 0 or more")
    if args.max_seconds <= 0:
        raise InputError("--max-seconds must be above 0")
    if args.keep_top < 0:
        raise InputError("--keep-top must be 0 or more")
    if args.max_travel_km is not None and args.max_travel_km <= 0:
        raise InputError("--max-travel-km must be above 0")
    options = balance.BalanceOptions(
        mode=args.mode, targets=targets, territories=args.territories,
        keep_current=args.keep_current, max_travel_km=args.max_travel_km,
        locked=tuple(args.lock), seed=args.seed, max_seconds=args.max_seconds,
        keep_accounts=tuple(a for text in args.keep_accounts for a in text.split(",")),
        keep_top=args.keep_top)
    writes = bool(args.into or args.apply)
    with Store(args.db, read_only=not writes) as store:
        settings = load_settings(store).with_overrides(args.setting)
        period, as_of = resolve(store.get_meta("as_of"), args.period, args.as_of)
        cur = store.cursor()
        plan = plans.get_plan(cur, args.plan)
        if args.into and cur.execute("SELECT 1 FROM plans WHERE name = ?",
                                     [args.into.strip()]).fetchone():
            raise InputError(f"--into: a plan named {args.into.strip()!r} already exists: "
                             "choose another name")
        if args.apply:
            edits.writable(plan)
        result = balance.balance(cur, plan, period, as_of, settings, options)
        saved = None
        if args.into:
            saved = balance.save_result(store, result, args.into).name
        elif args.apply:
            balance.apply_result(store, plan, result)
            saved = plan.name
    rows, whole = result.after
    report = {**result.report, "moved_units": len(result.moved_units), "saved_as": saved,
              "plan": jsonable.plain(whole)}
    if args.format == "json":
        _emit({**report, "territories": jsonable.records(rows)}, args)
    else:
        frame = metrics.summary_frame(rows, whole)
        _emit(frame, args)
        for line in ([*result.report["cannot_meet"], *result.report["missed"],
                      *result.report["pieces"], *result.report["beyond_travel_limit"],
                      *result.report["far_from_home"],
                      *result.report["notes"]]):
            print(f"note: {line}", file=sys.stderr)
        print(f"balanced in {result.report['seconds']} s ({result.report['rounds']} rounds, "
              f"{result.report['moves']} moves); {len(result.moved_units)} units change "
              "territory; " + (f"saved as {saved!r}" if saved else
                               "nothing saved (--into NAME or --apply to keep it)"),
              file=sys.stderr)
    return EXIT_OK




def _cmd_plan(args) -> int:
    if args.plan_command == "list":
        with Store(args.db, read_only=True) as store:
            _emit(plans.list_plans(store.cursor()), args)
        return EXIT_OK
    if args.plan_command in LIFECYCLE:
        return LIFECYCLE[args.plan_command](args)
    if args.plan_command == "history":
        with Store(args.db, read_only=True) as store:
            plan = plans.get_plan(store.cursor(), args.plan)
            _emit(edits.history(store.cursor(), plan, limit=10_000), args)
        return EXIT_OK
    if args.plan_command in EDIT_COMMANDS:
        with Store(args.db) as store:
            plan = plans.get_plan(store.cursor(), args.plan)
            result = EDIT_COMMANDS[args.plan_command](store, plan, args)
        print(result if result is not None else f"nothing to {args.plan_command}")
        return EXIT_OK
    unit = UnitType.parse(args.unit)
    with Store(args.db) as store:
        try:
            plan, report = plans.import_plan(
                store, args.name, unit, args.file, state=args.state, note=args.note
            )
        except ingest.ImportRejected as exc:
            _print_rejections(exc.report, None)
            raise
    print(f"plan {plan.name!r} created ({unit}, {plan.state}): "
          f"{report.tables[0].inserted} units")
    return EXIT_OK


def _plan_create(args) -> int:
    with Store(args.db) as store:
        plan = plans.create_plan(store, args.name, UnitType.parse(args.unit), state=args.state,
                                 note=args.note)
    print(f"plan {plan.name!r} created ({plan.unit}, {plan.state}), empty")
    return EXIT_OK


def _plan_clone(args) -> int:
    with Store(args.db) as store:
        new = plans.clone_plan(store, plans.get_plan(store.cursor(), args.plan), args.name)
    print(f"plan {new.name!r} created ({new.unit}, {new.state})")
    return EXIT_OK


def _plan_rename(args) -> int:
    with Store(args.db) as store:
        old = plans.get_plan(store.cursor(), args.plan)
        new = plans.rename_plan(store, old, args.name)
    print(f"plan {old.name!r} renamed {new.name!r}")
    return EXIT_OK


def _plan_state(args) -> int:
    with Store(args.db) as store:
        plan = plans.set_state(store, plans.get_plan(store.cursor(), args.plan), args.state)
    print(f"plan {plan.name!r} is now {plan.state}")
    return EXIT_OK


def _plan_delete(args) -> int:
    with Store(args.db) as store:
        plans.delete_plan(store, plans.get_plan(store.cursor(), args.plan))
    print(f"plan {args.plan!r} deleted")
    return EXIT_OK


def _plan_snapshot(args) -> int:
    from analytics import snapshots

    with Store(args.db) as store:
        period, as_of = resolve(store.get_meta("as_of"), args.period, args.as_of)
        settings = load_settings(store).with_overrides(args.setting)
        snap = snapshots.take_snapshot(store, plans.get_plan(store.cursor(), args.plan),
                                       note=args.note, name=args.name, period=period,
                                       as_of=as_of, settings=settings)
    print(f"snapshot {snap.name!r} taken")
    return EXIT_OK


def _plan_snapshots(args) -> int:
    from analytics import snapshots

    with Store(args.db, read_only=True) as store:
        cur = store.cursor()
        plan = plans.get_plan(cur, args.plan) if args.plan else None
        _emit(snapshots.list_snapshots(cur, plan), args)
    return EXIT_OK


def _plan_restore(args) -> int:
    from analytics import snapshots

    with Store(args.db) as store:
        new = snapshots.restore_snapshot(store, plans.get_plan(store.cursor(), args.snapshot),
                                         args.name)
    print(f"plan {new.name!r} restored from snapshot {args.snapshot!r} ({new.state})")
    return EXIT_OK


def _plan_compare(args) -> int:
    from analytics import compare

    with Store(args.db, read_only=True) as store:
        period, as_of = resolve(store.get_meta("as_of"), args.period, args.as_of)
        settings = load_settings(store).with_overrides(args.setting)
        cur = store.cursor()
        result = compare.compare_plans(cur, plans.get_plan(cur, args.plan),
                                       plans.get_plan(cur, args.baseline), period, as_of,
                                       settings)
    if args.what == "territories":
        _emit(result.territories, args)
    elif args.what == "units":
        _emit(result.moved_units, args)
    elif args.what == "accounts":
        _emit(result.moved_accounts, args)
    else:
        _emit({"plan": result.plan.name, "baseline": result.baseline.name,
               **result.disruption, "accounts_moved": len(result.moved_accounts),
               "units_moved": len(result.moved_units) if result.same_units else None}, args)
    return EXIT_OK


def _plan_rollup(args) -> int:
    from analytics import hierarchy

    with Store(args.db, read_only=True) as store:
        period, as_of = resolve(store.get_meta("as_of"), args.period, args.as_of)
        settings = load_settings(store).with_overrides(args.setting)
        cur = store.cursor()
        plan = plans.get_plan(cur, args.plan)
        rows, _ = metrics.summary(cur, plan, period, as_of, settings)
        _emit(hierarchy.rollup(rows, plans.territories(cur, plan), period, as_of), args)
    return EXIT_OK


LIFECYCLE = {
    "create": _plan_create, "clone": _plan_clone, "rename": _plan_rename,
    "state": _plan_state, "delete": _plan_delete, "snapshot": _plan_snapshot,
    "snapshots": _plan_snapshots, "restore": _plan_restore, "compare": _plan_compare,
    "rollup": _plan_rollup,
}


def _edit_territory(store, plan, args):
    tid = args.territory_id
    if args.create:
        return edits.create_territory(store, plan, args.name or "", territory_id=tid,
                                      rep_id=args.rep or None, color=args.color)
    if args.delete:
        return edits.delete_territory(store, plan, tid)
    if args.merge_into:
        return edits.merge_territories(store, plan, [tid], args.merge_into)
    if args.lock and args.unlock:
        raise InputError("--lock and --unlock together: choose one")
    fields = {k: v for k, v in (("name", args.name), ("color", args.color)) if v is not None}
    if args.rep is not None:
        fields["rep_id"] = args.rep or None
    if args.parent is not None:
        fields["parent_id"] = args.parent or None
    if args.lock or args.unlock:
        fields["locked"] = bool(args.lock)
    if not fields:
        raise InputError("nothing to change: give --name, --color, --rep, --parent, "
                         "--lock/--unlock, --merge-into, --delete or --create")
    return edits.update_territory(store, plan, tid, **fields)


def _convert(store, plan, args):
    new, n = edits.convert_plan(store, plan, UnitType.parse(args.unit), args.name,
                                state=args.state)
    return f"plan {new.name!r} created ({new.unit}, {new.state}): {n} units assigned"


EDIT_COMMANDS = {
    "convert": _convert,
    "assign": lambda store, plan, a: edits.assign(
        store, plan, plan.unit.normalize_ids(a.units), None if a.erase else a.territory),
    "territory": _edit_territory,
    "pin": lambda store, plan, a: edits.pin_account(store, plan, a.account_id,
                                                    a.territory or None),
    "undo": lambda store, plan, a: edits.undo(store, plan),
    "redo": lambda store, plan, a: edits.redo(store, plan),
}


def _cmd_rank(args) -> int:
    level = performance.Level.parse(args.level)
    with Store(args.db, read_only=True) as store:
        period, as_of = resolve(store.get_meta("as_of"), args.period, args.as_of)
        cur = store.cursor()
        plan = plans.get_plan(cur, args.plan)
        scope = _scope(args)
        if args.metric == "attainment" and level.kind == "unit":
            raise InputError("attainment needs a quota: rank territories or reps "
                             "(--level territory or rep), or units by another metric")
        table = performance.area_table(cur, plan, period, as_of, level, scope)
        ranked = performance.rank(table, args.metric, top=args.top, bottom=args.bottom,
                                  percentile=args.percentile, min_accounts=args.min_accounts,
                                  min_establishments=args.min_establishments)
    _emit(ranked, args)
    return EXIT_OK


def _cmd_coverage(args) -> int:
    with Store(args.db, read_only=True) as store:
        period, as_of = resolve(store.get_meta("as_of"), args.period, args.as_of)
        settings = load_settings(store).with_overrides(args.setting)
        cur = store.cursor()
        plan = plans.get_plan(cur, args.plan)
        accounts = coverage.account_coverage(cur, plan, as_of, settings, _scope(args))
        if args.what == "accounts":
            if args.only == "out-of-reach":
                accounts = accounts[accounts["out_of_reach"]]
            elif args.only == "not-touched":
                accounts = accounts[~accounts["touched"]]
            elif args.only == "unassigned":
                accounts = accounts[accounts["territory_id"].isna()]
            _emit(accounts, args)
            return EXIT_OK
        rows, _ = metrics.summary(cur, plan, period, as_of, settings)
        # a territory's workload counts all its accounts: only territory filters apply
        whole = coverage.account_coverage(cur, plan, as_of, settings,
                                          coverage.territory_scope(_scope(args)))
        rows = rows[rows["territory_id"].isin(set(whole["territory_id"].dropna()))]
    _emit(coverage.what_it_takes(rows, whole, settings), args)
    return EXIT_OK


def _cmd_routes(args) -> int:
    import datetime as dt

    from analytics import routes

    with Store(args.db, read_only=True) as store:
        _, as_of = resolve(store.get_meta("as_of"), None, args.as_of)
        settings = load_settings(store).with_overrides(args.setting)
        if args.start:
            try:
                start = dt.date.fromisoformat(args.start)
            except ValueError as exc:
                raise InputError(f"--start {args.start!r}: expected YYYY-MM-DD") from exc
        else:
            start = routes.default_start(as_of)
        cur = store.cursor()
        plan = plans.get_plan(cur, args.plan)
        week = routes.plan_week(cur, plan, territory=args.territory, rep=args.rep,
                                start=start, days=args.days, settings=settings)
    if args.day is not None and not 1 <= args.day <= len(week.dates):
        raise InputError(f"--day {args.day}: the plan has days 1 to {len(week.dates)}")
    if args.day is not None and args.format == "json":
        raise InputError("--day: only with --format csv or gpx (json holds the whole week)")
    text = routes.week_file(week, args.format, args.day)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    h = week.headline()
    saving = h["saving_vs_nearest_neighbour"]
    print(f"{h['visits']} visits of {h['due_accounts']} due over {h['days']} days "
          f"({h['first_day']} to {h['last_day']}): {h['km']:.0f} km, {h['hours']:.1f} h; "
          f"nearest-neighbour order {h['nearest_neighbour_km']:.0f} km"
          + (f" ({saving:.1%} saved)" if saving is not None else ""),
          file=sys.stderr)
    return EXIT_OK


def _review_table(args, build) -> int:
    """A territory-review table: `build(cur, plan, period, territories)` on the plan and
    period of the arguments, after checking the territories are the plan's."""
    with Store(args.db, read_only=True) as store:
        period, _ = resolve(store.get_meta("as_of"), args.period, args.as_of)
        cur = store.cursor()
        plan = plans.get_plan(cur, args.plan)
        _known_territories(cur, plan, args.territory)
        frame = build(cur, plan, period, tuple(args.territory))
    _emit(frame, args)
    return EXIT_OK


def _cmd_strengths(args) -> int:
    from analytics import review

    return _review_table(args, lambda cur, plan, period, terr: review.rep_strengths(
        cur, plan, period, by=args.by, min_closed=args.min_closed, territories=terr))


def _cmd_pairs(args) -> int:
    from analytics import review

    return _review_table(args, lambda cur, plan, period, terr: review.product_pairs(
        cur, plan, period, territories=terr, min_accounts=args.min_accounts))


def _cmd_review(args) -> int:
    from analytics import swot

    with Store(args.db, read_only=True) as store:
        period, as_of = resolve(store.get_meta("as_of"), args.period, args.as_of)
        settings = load_settings(store).with_overrides(args.setting)
        cur = store.cursor()
        plan = plans.get_plan(cur, args.plan)
        result = swot.territory_review(cur, plan, period, as_of, settings, args.territory)
    text = result.json() + "\n" if args.format == "json" else result.markdown(args.base_url)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _scoped_table(args, build) -> int:
    """A table over the explorer's filters: `build(cur, plan, period, scope)`."""
    with Store(args.db, read_only=True) as store:
        period, _ = resolve(store.get_meta("as_of"), args.period, args.as_of)
        cur = store.cursor()
        plan = plans.get_plan(cur, args.plan)
        _known_territories(cur, plan, args.territory)
        frame = build(cur, plan, period, _scope(args))
    _emit(frame, args)
    return EXIT_OK


def _cmd_segments(args) -> int:
    from analytics import review

    return _scoped_table(args, lambda cur, plan, period, scope: review.segment_analysis(
        cur, plan, period, args.by, scope))


def _cmd_funnel(args) -> int:
    from analytics import funnel

    return _scoped_table(args, lambda cur, plan, period, scope: funnel.funnel(
        cur, plan, period, scope))


def _cmd_profile(args) -> int:
    from analytics import review

    if args.top < 1:
        raise InputError("--top: at least 1")
    return _scoped_table(args, lambda cur, plan, period, scope: review.top_accounts_profile(
        cur, plan, period, scope, args.top))


def _cmd_repfit(args) -> int:
    from analytics import rep_fit

    with Store(args.db, read_only=not args.apply) as store:
        period, _ = resolve(store.get_meta("as_of"), args.period, args.as_of)
        cur = store.cursor()
        plan = plans.get_plan(cur, args.plan)
        fit = rep_fit.rep_fit(cur, plan, period, handover_loss=args.handover_loss,
                              shrink=args.shrink)
        h = fit.headline()
        print(f"{h['changes']} of {h['territories']} territories would change rep: expected "
              f"won {h['expected_current']:,.0f} -> {h['expected_suggested']:,.0f} "
              f"({h['gain']:+,.0f}; handover loss {args.handover_loss:g})", file=sys.stderr)
        if args.apply:
            print(rep_fit.apply_rep_fit(store, plan, fit), file=sys.stderr)
    _emit(fit.table, args)
    return EXIT_OK


def _known_territories(cur, plan, ids: list[str]) -> None:
    """Refuse a territory id the plan does not have (a typo would give an empty table)."""
    known = set(plans.territories(cur, plan)["territory_id"])
    for t in ids:
        if t not in known:
            raise InputError(f"--territory {t!r} is not in plan {plan.name!r}")

def _cmd_attach(args) -> int:
    from analytics import attach

    attach.check_output(args.folder.resolve())  # before the database file is made
    with Store(args.db, check_attached=False) as store:
        info = attach.attach(store, args.folder)
    rejected = attach.rejected_frame(args.folder)
    for row in rejected.head(50).itertuples(index=False):
        print("rejected: {}, row {}, column {!r}: {!r}: {}".format(*row), file=sys.stderr)
    if len(rejected) > 50:
        print(f"... and {len(rejected) - 50} more", file=sys.stderr)
    if args.report is not None:
        args.report.write_bytes(csv_text(rejected).encode("utf-8"))
        print(f"rejection report written to {args.report}", file=sys.stderr)
    print(json.dumps(info, indent=1))
    return EXIT_OK


def _cmd_info(args) -> int:
    with Store(args.db, read_only=True) as store:
        info = {
            "database": str(store.path),
            "dataset": store.get_meta("dataset"),
            "attached_from": store.attached_from,
            "as_of": store.get_meta("as_of"),
            **store.counts(store.cursor()),
            "plans": plans.list_plans(store.cursor())[["name", "unit_type", "state"]]
            .to_dict(orient="records"),
        }
    print(json.dumps(info, indent=1, default=str))
    return EXIT_OK


# --------------------------------------------------------------------------------------
# rules: assignment rules and territory types (analytics/rules.py)
# --------------------------------------------------------------------------------------
RULES_EPILOG = """\
criteria (--criterion "FIELD OP VALUE", repeatable; numbered 1, 2, ... in order):
  FIELD  account_id, name, postal_code, country, segment, industry, owner_rep_id,
         state, county, zip5, zip3, fr_dept, fr_commune (text); potential,
         visits_per_year (numbers); last_activity_date (YYYY-MM-DD)
  OP     equals, not equals, in, starts with, contains (text only), between,
         greater than, less than
  VALUE  the rest of the text, taken literally (quotes are part of it; % and _ are
         plain characters); `in` takes comma-separated values: "state in CA,OR";
         `between` takes LOW..HIGH, both included: "potential between 1000..5000"
  Text is compared without regard to case. A blank field matches no criterion except
  `not equals`.
  For values with a comma, "..", or surrounding spaces, give --criteria-json instead:
  '[{"field": "name", "op": "contains", "value": "A, B"}]'

filter (--filter): criterion numbers with AND, OR, NOT and parentheses, e.g.
  "(1 AND 2) OR 3"; NOT binds tighter than AND, AND tighter than OR; every criterion
  must be used. Default: all criteria ANDed.

priority: an account matched by rules of several territories goes to the territory
whose type has the smallest priority number (territories without a type last), then
to the rule with the smaller id.
"""


def _rules_parser(sub) -> None:
    p = sub.add_parser(
        "rules", help="assignment rules (accounts assigned by their fields, whatever their "
        "unit) and territory types with a priority",
        description="Assignment rules: accounts matched by their fields are pinned to the "
        "rule's territory (rules apply) as one undoable edit.",
        epilog=RULES_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    rsub = p.add_subparsers(dest="rules_command", required=True)

    def common(q):
        _db_arg(q)
        q.add_argument("--plan", help="default: the active plan")

    q = rsub.add_parser("add", help="add a rule for a territory (validated first)",
                        epilog=RULES_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    common(q)
    q.add_argument("--territory", required=True, help="the territory the rule assigns to")
    q.add_argument("--criterion", action="append", default=[], metavar="'FIELD OP VALUE'",
                   help="e.g. 'segment equals Hospital' (repeatable; see below)")
    q.add_argument("--criteria-json", dest="criteria_json", metavar="JSON",
                   help='the criteria as a JSON list of {"field", "op", "value"} '
                   "(instead of --criterion)")
    q.add_argument("--filter", help="boolean filter, e.g. '(1 AND 2) OR 3' (default: all "
                   "criteria ANDed)")
    q.add_argument("--name", help="a name for the rule")
    q = rsub.add_parser("list", help="the plan's rules, with the accounts each matches")
    common(q)
    _format_arg(q)
    q = rsub.add_parser("preview", help="the accounts applying the rules would move, from "
                        "which territory to which")
    common(q)
    q.add_argument("--rule", action="append", type=int, default=[], metavar="ID",
                   help="only this rule (repeatable; default: all rules)")
    _format_arg(q)
    q = rsub.add_parser("apply", help="pin every matched account to its rule's territory "
                        "(one undoable edit: `plan undo` takes it back)")
    common(q)
    q.add_argument("--rule", action="append", type=int, default=[], metavar="ID",
                   help="only this rule (repeatable; default: all rules)")
    q = rsub.add_parser("delete", help="delete a rule (the pins it made stay)")
    common(q)
    q.add_argument("rule_id", type=int)
    q = rsub.add_parser("types", help="the plan's territory types, best priority first")
    common(q)
    _format_arg(q)
    q = rsub.add_parser("set-type", help="create a territory type or change its priority")
    common(q)
    q.add_argument("type_name")
    q.add_argument("--priority", type=int, required=True,
                   help="smaller number = higher priority")
    q.add_argument("--description")
    q = rsub.add_parser("delete-type", help="delete a territory type no territory uses")
    common(q)
    q.add_argument("type_name")
    q = rsub.add_parser("territory-type", help="give a territory a type ('' for none; one "
                        "undoable edit)")
    common(q)
    q.add_argument("territory_id")
    q.add_argument("type_name")


def _rule_criteria(args) -> list:
    if args.criteria_json and args.criterion:
        raise InputError("give the criteria either with --criterion or with --criteria-json, "
                         "not both")
    if args.criteria_json:
        try:
            return json.loads(args.criteria_json)
        except ValueError as exc:
            raise InputError(f"--criteria-json: not valid JSON ({exc})") from None
    if not args.criterion:
        raise InputError("a rule needs at least one --criterion 'FIELD OP VALUE'")
    return [rules.parse_criterion_text(c) for c in args.criterion]


def _cmd_rules(args) -> int:
    cmd = args.rules_command
    if cmd in ("list", "preview", "types"):
        with Store(args.db, read_only=True) as store:
            cur = store.cursor()
            plan = plans.get_plan(cur, args.plan)
            if cmd == "list":
                frame = rules.list_rules(cur, plan)
            elif cmd == "types":
                frame = rules.list_territory_types(cur, plan)
            else:
                frame = rules.preview(cur, plan, args.rule or None)
                skipped = int(frame["locked"].sum()) if len(frame) else 0
                print(f"{len(frame) - skipped} accounts would move"
                      + (f", {skipped} skipped (locked territory)" if skipped else ""),
                      file=sys.stderr)
        _emit(frame, args)
        return EXIT_OK
    with Store(args.db) as store:
        plan = plans.get_plan(store.cursor(), args.plan)
        if cmd == "add":
            rule_id = rules.add_rule(store, plan, args.territory, _rule_criteria(args),
                                     args.filter, args.name)
            row = rules.list_rules(store.cursor(), plan).set_index("rule_id").loc[rule_id]
            print(f"rule {rule_id} added for territory {args.territory}: {row['criteria']}; "
                  f"filter {row['boolean_filter']}; matches {row['matches']} accounts")
        elif cmd == "apply":
            print(rules.apply_rules(store, plan, args.rule or None))
        elif cmd == "delete":
            rules.delete_rule(store, plan, args.rule_id)
            print(f"rule {args.rule_id} deleted")
        elif cmd == "set-type":
            rules.set_territory_type(store, plan, args.type_name, args.priority,
                                     args.description)
            print(f"territory type {args.type_name.strip()!r}: priority {args.priority}")
        elif cmd == "delete-type":
            rules.delete_territory_type(store, plan, args.type_name)
            print(f"territory type {args.type_name!r} deleted")
        else:  # territory-type
            print(rules.assign_type(store, plan, args.territory_id, args.type_name or None))
    return EXIT_OK


def _cmd_export(args) -> int:
    import time

    from analytics import exports

    with Store(args.db, read_only=True) as store:
        settings = load_settings(store).with_overrides(args.setting)
        period, as_of = resolve(store.get_meta("as_of"), args.period, args.as_of)
        cur = store.cursor()
        plan = plans.get_plan(cur, args.plan)
        baseline = plans.get_plan(cur, args.baseline) if args.baseline else None
        start = time.perf_counter()
        pack = None
        if args.week or args.review:
            from analytics import routes, swot

            if args.format not in ("pdf", "pptx"):
                raise InputError("--week and --review: only with --format pdf or pptx")
            first = routes.default_start(as_of)
            weeks = tuple(routes.plan_week(cur, plan, territory=t, start=first,
                                           settings=settings) for t in args.week)
            team = swot.team_facts(cur, plan, period, as_of, settings) if args.review \
                else None
            reviews = tuple(swot.territory_review(cur, plan, period, as_of, settings, t,
                                                  team=team) for t in args.review)
            focus = tuple(dict.fromkeys([*args.week, *args.review]))
            pack = exports.PlanPack(cur, plan, period=period, as_of=as_of, settings=settings,
                                    baseline=baseline, weeks=weeks, focus=focus,
                                    reviews=reviews)
        path = exports.export_plan(cur, plan, args.format, args.out, period=period,
                                   as_of=as_of, settings=settings, baseline=baseline,
                                   pack=pack)
    against = f" compared with {baseline.name!r}" if baseline is not None else ""
    print(f"wrote {path} ({args.format}, {path.stat().st_size:,} bytes): plan {plan.name!r}"
          f"{against}, period {period}, as of {as_of.isoformat()}, "
          f"in {time.perf_counter() - start:.1f} s")
    return EXIT_OK


def _read_password(args) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise InputError("the two passwords differ")
    return first


def _cmd_user(args) -> int:
    from analytics import users

    with Store(args.db, read_only=args.user_command == "list") as store:
        if args.user_command == "add":
            password = None if args.sso else _read_password(args)
            user = users.add_user(store, args.username, args.role, password,
                                  rep_id=args.rep_id, territories=args.territories or None)
            print(f"user {user.username!r} added ({user.role})")
        elif args.user_command == "remove":
            users.remove_user(store, args.username)
            print(f"user {args.username!r} removed")
        elif args.user_command == "set-role":
            user = users.set_role(store, args.username, args.role,
                                  territories=args.territories or None, rep_id=args.rep_id)
            print(f"user {user.username!r} is now {user.role}")
        else:
            frame = pd.DataFrame([
                {"username": u.username, "role": u.role, "rep_id": u.rep_id,
                 "territories": ",".join(u.territories) if u.territories else ""}
                for u in users.list_users(store.cursor())],
                columns=["username", "role", "rep_id", "territories"])
            _emit(frame, args)
    return EXIT_OK


def _cmd_overlay(args) -> int:
    with Store(args.db, read_only=args.overlay_command == "list") as store:
        if args.overlay_command == "import":
            try:
                report = overlays_mod.import_overlay(store, args.file, args.name, args.key,
                                                     key_column=args.key_column)
            except ingest.ImportRejected as exc:
                _print_rejections(exc.report, args.report)
                raise
            print(f"overlay {args.name!r} ({args.key}): {report.rows} rows stored, columns "
                  + ", ".join(c for c, k in report.columns.items() if k == "value"))
        elif args.overlay_command == "delete":
            overlays_mod.delete_overlay(store, args.name)
            print(f"overlay {args.name!r} deleted")
        else:
            _emit(overlays_mod.list_overlays(store.cursor()), args)
    return EXIT_OK


COMMANDS = {
    "demo": _cmd_demo, "load": _cmd_load, "units": _cmd_units,
    "territories": _cmd_territories, "summary": _cmd_summary, "balance": _cmd_balance,
    "market": _cmd_market,
    "plan": _cmd_plan,
    "info": _cmd_info, "attach": _cmd_attach, "rank": _cmd_rank, "coverage": _cmd_coverage,
    "rules": _cmd_rules,
    "export": _cmd_export, "user": _cmd_user, "overlay": _cmd_overlay,
    "routes": _cmd_routes, "strengths": _cmd_strengths, "pairs": _cmd_pairs,
    "review": _cmd_review, "segments": _cmd_segments, "funnel": _cmd_funnel,
    "profile": _cmd_profile, "repfit": _cmd_repfit,
}



def main(argv: Sequence[str] | None = None) -> int:
    with safe_terminal():  # names print as text, never as terminal control
        return _main(argv)


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse an output path that cannot be written before any work is done (a missing
    folder, a folder where a file is wanted), so a command never fails after committing."""
    import os

    for option in ("out", "report"):
        path = getattr(args, option, None)
        if path is None:
            continue
        flag = f"--{option}"
        if path.is_dir():
            if args.command == "export" and option == "out":
                folder = path  # export writes a file named after the plan in it
            else:
                raise InputError(f"{flag} {path}: is a folder; give a file name in it")
        else:
            folder = path.parent if str(path.parent) else Path(".")
            if not folder.is_dir():
                raise InputError(f"{flag} {path}: the folder {folder} does not exist; "
                                 "create it first or choose another place")
        if not os.access(folder, os.W_OK):
            raise InputError(f"{flag} {path}: the folder {folder} cannot be written to")


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 on bad usage, 0 on --help
        return int(exc.code or 0)
    try:
        check_outputs(args)
        if args.as_user:
            from analytics import users

            try:
                with Store(args.db, read_only=True) as store:
                    who = users.get_user(store.cursor(), args.as_user)
            except DatabaseBusy:
                if args.command != "load":
                    raise
                return COMMANDS[args.command](args)  # the app acts as them (handover)
            with users.acting_as(who):
                return COMMANDS[args.command](args)
        return COMMANDS[args.command](args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        if args.debug:
            traceback.print_exc()
        print(f"internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
              file=sys.stderr)
        return EXIT_INTERNAL
