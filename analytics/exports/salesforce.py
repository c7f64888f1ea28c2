"""The Salesforce export: a zip of Data Loader CSV files that rebuild the plan as an
Enterprise Territory Management model (`Territory2`, `ObjectTerritory2Association`,
`UserTerritory2Association`) and a README on the order to load them and the ids to fill in.

It needs no metrics or geometry: only the plan's territories, reps and resolved accounts.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path

from analytics import metrics
from analytics.exports.cells import safe_rows
from analytics.exports.labels import is_missing
from analytics.exports.pack import PlanPack

SALESFORCE_FILES = {
    "Territory2.csv": ["Name", "DeveloperName", "Territory2ModelId", "Territory2TypeId",
                       "Description"],
    "Territory2_parents.csv": ["Id", "ParentTerritory2Id"],
    "ObjectTerritory2Association.csv": ["ObjectId", "Territory2Id", "AssociationCause"],
    "UserTerritory2Association.csv": ["UserId", "Territory2Id", "RoleInTerritory2"],
}
"""The bundle's CSV files and their header rows (Salesforce field API names)."""
MODEL_PLACEHOLDER = "<Territory2ModelId>"
TYPE_PLACEHOLDER = "<Territory2TypeId>"
ROLE_IN_TERRITORY = "Owner"
_SF_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


def developer_names(territory_ids) -> dict[str, str]:
    """territory id -> a Salesforce DeveloperName: letters, digits and single underscores,
    starting with a letter, at most 80 characters, unique (case-insensitively)."""
    out, used = {}, set()
    for t in territory_ids:
        base = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9]+", "_", str(t))).strip("_")
        if not base or not base[0].isalpha():
            base = f"T_{base}" if base else "T"
        base = base[:80].rstrip("_")
        name, k = base, 2
        while name.lower() in used:
            suffix = f"_{k}"
            name = base[: 80 - len(suffix)].rstrip("_") + suffix
            k += 1
        used.add(name.lower())
        out[t] = name
    return out


def _csv(header: list[str], rows: list[list]) -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf)
    writer.writerow(safe_rows([header])[0])
    writer.writerows(safe_rows([["" if is_missing(v) else v for v in r] for r in rows]))
    return buf.getvalue().encode("utf-8")


def salesforce_tables(pack: PlanPack) -> dict[str, list[list]]:
    """The rows of each SALESFORCE_FILES file (no header)."""
    terr = pack.terr
    names = developer_names(terr["territory_id"])
    parent = dict(zip(terr["territory_id"], terr["parent_id"], strict=True))

    def depth(t, seen=()):
        p = parent.get(t)
        return 0 if not isinstance(p, str) or p not in names or p in seen else 1 + depth(
            p, (*seen, t))

    order = sorted(terr.index, key=lambda i: (depth(terr.at[i, "territory_id"]),
                                              terr.at[i, "territory_id"]))
    territory_rows, parent_rows, user_rows = [], [], []
    for i in order:
        r = terr.loc[i]
        t, rep = r["territory_id"], r["rep_id"]
        label = r["territory_name"] if isinstance(r["territory_name"], str) else t
        desc = f"Territory Atlas plan {pack.plan.name!r}, territory {t}"
        if isinstance(rep, str) and rep:
            desc += f"; rep {pack.rep_names.get(t, rep)} ({rep})"
        kind = r["territory_type"]
        type_id = f"<Territory2TypeId:{kind}>" if isinstance(kind, str) and kind else (
            TYPE_PLACEHOLDER)
        territory_rows.append([label[:80], names[t], MODEL_PLACEHOLDER, type_id, desc[:1000]])
        if isinstance(parent.get(t), str) and parent[t] in names:
            parent_rows.append([names[t], names[parent[t]]])
        if isinstance(rep, str) and rep:
            user_rows.append([rep, names[t], ROLE_IN_TERRITORY])
    acc = metrics.resolved_accounts(pack.cur, pack.plan)
    acc = acc[acc["territory_id"].isin(names.keys())].sort_values("account_id")
    object_rows = [[a, names[t], "Territory2Manual"]
                   for a, t in zip(acc["account_id"], acc["territory_id"], strict=True)]
    return {"Territory2.csv": territory_rows, "Territory2_parents.csv": parent_rows,
            "ObjectTerritory2Association.csv": object_rows,
            "UserTerritory2Association.csv": user_rows}


def _looks_like(ids, prefix: str) -> bool:
    ids = [str(i) for i in ids]
    return bool(ids) and all(_SF_ID.fullmatch(i) and i.startswith(prefix) for i in ids)


def _wrap(text: str) -> str:
    import textwrap

    return textwrap.fill(text, width=90, initial_indent="  ", subsequent_indent="  ")


def salesforce_readme(pack: PlanPack, tables: dict[str, list[list]]) -> str:
    n = {k: len(v) for k, v in tables.items()}
    accounts_total = pack.cur.execute("SELECT count(*) FROM accounts").fetchone()[0]
    types = sorted({k for k in pack.terr["territory_type"] if isinstance(k, str) and k})
    acc_ids = [r[0] for r in tables["ObjectTerritory2Association.csv"]]
    user_ids = [r[0] for r in tables["UserTerritory2Association.csv"]]
    acc_note = ("These look like Salesforce Account Ids already (the accounts came from a "
                "Salesforce export): nothing to replace." if _looks_like(acc_ids, "001") else
                "They are this dataset's account ids: if they are not the org's Account Ids, "
                "replace each with the Account Id of the same account (for example by a "
                "lookup on an external id or account number in a spreadsheet).")
    user_note = ("These look like Salesforce User Ids already: nothing to replace."
                 if _looks_like(user_ids, "005") else
                 "They are this dataset's rep ids: if they are not the org's User Ids, replace "
                 "each with the User Id of that rep.")
    type_lines = ("\n".join(f"  <Territory2TypeId:{k}>  -> the Id of the territory type "
                            f"{k!r}" for k in types) + "\n") if types else ""
    return f"""Territory Atlas: Salesforce territory model load files
======================================================

Plan {pack.plan.name!r} ({pack.plan.unit.label}), exported {pack.created.isoformat(sep=' ')}.
{n['Territory2.csv']} territories, {n['Territory2_parents.csv']} parent links,
{n['ObjectTerritory2Association.csv']} account assignments (of {accounts_total} accounts;
the others resolve to no territory of the plan), {n['UserTerritory2Association.csv']} rep
assignments.

These files rebuild the plan in Salesforce Enterprise Territory Management (Sales
Territories) with Data Loader. They are UTF-8 CSV files whose header row holds the
Salesforce field API names, so Data Loader's "Auto-Match Fields to Columns" maps every
column (tick "Read all CSVs with UTF-8 encoding" in Data Loader's settings).

  Territory2.csv                   Name, DeveloperName, Territory2ModelId, Territory2TypeId,
                                   Description: one row per territory
  Territory2_parents.csv           Id, ParentTerritory2Id: the territory hierarchy
  ObjectTerritory2Association.csv  ObjectId, Territory2Id, AssociationCause: one row per
                                   account assigned to a territory (manual assignment)
  UserTerritory2Association.csv    UserId, Territory2Id, RoleInTerritory2: one row per
                                   territory with a rep

Placeholders to replace before loading
--------------------------------------
Lookup fields need the org's record Ids, which no export can know. They hold:
  {MODEL_PLACEHOLDER}   -> the Id of the territory model (Territory2Model) to load into
  {TYPE_PLACEHOLDER}    -> the Id of the territory type (Territory2Type) to use
{type_lines}  Territory2Id, Id and ParentTerritory2Id hold the territory's DeveloperName
                        -> the Id of the Territory2 record with that DeveloperName (step 3)
{_wrap("ObjectId holds the account id of this dataset. " + acc_note)}
{_wrap("UserId holds the rep id of this dataset. " + user_note)}
  RoleInTerritory2 is {ROLE_IN_TERRITORY!r}: it must be a value of the org's "Role in
  Territory" picklist; change it, or leave the column unmapped.

Load order
----------
1. In Setup, enable Sales Territories; create the territory type(s) and a territory model
   (a new model is in the Planning state), or choose existing ones. Note their Ids (from
   Setup, or a Data Loader export of Territory2Model and Territory2Type). Both must exist
   before any territory.
2. Territory2.csv: replace the model and type placeholders, then Data Loader > Insert >
   Territory2. Keep the success file: it lists each new record's Id with its DeveloperName.
3. Build the DeveloperName -> Id map from that success file (or a Data Loader export of
   SELECT Id, DeveloperName FROM Territory2 WHERE Territory2ModelId = '<the model Id>').
4. Territory2_parents.csv (skip it when it has no rows): replace the DeveloperNames in
   both columns by their Ids, then Data Loader > Update > Territory2. Parents are set once
   every territory exists, so parents always come before their children.
5. ObjectTerritory2Association.csv: replace the DeveloperNames in Territory2Id by their Ids
   (and ObjectId if needed, see above), then Data Loader > Insert >
   ObjectTerritory2Association. AssociationCause Territory2Manual is a manual assignment.
6. UserTerritory2Association.csv: the same for Territory2Id (and UserId if needed), then
   Data Loader > Insert > UserTerritory2Association.
7. Check the model in Setup > Territory Models, then activate it when it is ready.

Not in these files: assignment rules (the plan assigns accounts by geography, loaded here as
manual assignments), quotas and the plan's metrics (see the Excel export), and accounts that
resolve to no territory.
"""


def write_salesforce(pack: PlanPack, out: Path) -> Path:
    tables = salesforce_tables(pack)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, header in SALESFORCE_FILES.items():
            zf.writestr(name, _csv(header, tables[name]))
        zf.writestr("README.txt", salesforce_readme(pack, tables).encode("utf-8"))
    return out
