"""One header matcher for every import: which column of a file feeds each field.

Each kind of file is a `TableSpec`: its fields, each with the header names it accepts
(aliases, Salesforce report and API names) and whether the import needs it. Accounts, deals
and reps are declared in `schema.py`; plan files, territory polygons and account lists below.
`match_columns` is the one matcher, with these rules:

1. Headers compare by `normalise_header`: case, a byte-order mark, surrounding spaces and
   every run of spaces, `_`, `-` and `.` are ignored, so `Account_ID`, `account-id` and
   `ACCOUNT ID` are one name. `AccountId` is another: Salesforce API names are aliases of
   their own (`accountid`, `billingpostalcode`).
2. An override (field -> column: `--map`, the Data page's pickers) wins: the column as
   written, else the header that normalises alike; a column the file lacks is an error.
3. Then every field's own name, before any alias, so an alias never takes a column named
   exactly like another field.
4. Then the aliases, field by field in declaration order, each field taking its first alias
   the file has. A column feeds one field only (overrides aside).
5. Of headers that normalise alike the first counts, or the last for a `FileSpec` declared
   with `duplicates="last"` (plan files, polygons and account lists always read them so).
6. A required field left without a column raises `InputError` with the message of that kind
   of file (`partial=True` returns what matched instead).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from analytics.errors import InputError
from analytics.schema import Field, TableSpec


def normalise_header(name) -> str:
    """A header as matching sees it: lower case, no BOM, `_ - .` and spaces as one space."""
    return re.sub(r"[\s_\-\.]+", " ", str(name).strip().lower().lstrip("\ufeff")).strip()


def _missing_table_columns(spec: TableSpec, missing: list[str], headers: list) -> str:
    """Accounts, deals, reps: each required field with its first aliases, and a --map hint."""
    expected = "; ".join(
        f"{f.name} (or {', '.join(f.aliases[:4])})" if f.aliases else f.name
        for f in spec.fields if f.required
    )
    return (
        f"missing required column(s) {', '.join(missing)} for {spec.name}. "
        f"Found columns: {', '.join(headers) or '(none)'}. Expected: {expected}. "
        f"Rename the column or map it, e.g. --map {spec.name}.{missing[0]}=YourColumn"
    )


def _missing_plan_columns(spec: TableSpec, missing: list[str], headers: list) -> str:
    required = ", ".join(f.name for f in spec.fields if f.required)
    optional = ", ".join(f.name for f in spec.fields if not f.required)
    return (
        f"missing required column(s) {', '.join(missing)}. Found columns: "
        f"{', '.join(headers)}. Expected: {required} and optionally {optional}"
    )


def _missing_territory_id(spec: TableSpec, missing: list[str], headers: list) -> str:
    tid = spec.field("territory_id")
    return (f"no territory id column: found {', '.join(headers) or 'none'}; "
            f"expected one of {', '.join((tid.name, *tid.aliases))}")


def _missing_account_list_columns(spec: TableSpec, missing: list[str], headers: list) -> str:
    return f"expected columns {' and '.join(spec.names)}; found {', '.join(headers)}"


@dataclass(frozen=True)
class FileSpec(TableSpec):
    """A kind of import file that is not a stored table: its own message and duplicates rule.

    `missing_message(spec, missing_fields, headers)` words the error for absent required
    columns; `duplicates` says which of several headers that normalise alike counts.
    """

    missing_message: Callable[[TableSpec, list[str], list], str] = _missing_table_columns
    duplicates: str = "first"  # first | last


PLAN_FILE = FileSpec(
    "plan",
    key="unit_id",
    fields=(
        Field("unit_id", "id", True,
              ("unit", "unit id", "unit_id", "zip", "zip code", "postal code", "county",
               "fips", "h3", "cell", "hex")),
        Field("territory_id", "id", True,
              ("territory", "territory id", "territory_id", "territory code")),
        Field("territory_name", "text", False, ("territory name", "territory_name", "name")),
        Field("rep_id", "id", False,
              ("rep", "rep id", "owner", "owner id", "ownerid", "user id")),
    ),
    missing_message=_missing_plan_columns,
    duplicates="last",
)
"""A plan file: `unit_id, territory_id[, territory_name, rep_id]` (`plans.import_plan`)."""

TERRITORY_POLYGONS = FileSpec(
    "territory polygons",
    key="territory_id",
    fields=(
        Field("territory_id", "id", True, ("territory", "territory id", "id", "code")),
        Field("territory_name", "text", False, ("name", "territory name", "label")),
        Field("rep_id", "id", False, ("rep", "owner", "owner id")),
    ),
    missing_message=_missing_territory_id,
    duplicates="last",
)
"""The properties of territory polygons, GeoJSON or GeoPackage (geometry aside)."""

ACCOUNT_LIST = FileSpec(
    "account assignments",
    key="account_id",
    fields=(
        Field("account_id", "id", True, ("account", "account id", "accountid", "objectid")),
        Field("territory_id", "id", True,
              ("territory", "territory id", "territory2id")),
    ),
    missing_message=_missing_account_list_columns,
    duplicates="last",
)
"""An account list: `account_id, territory_id` rows, each pinning an account."""


def match_columns(
    headers: Iterable,
    spec: TableSpec,
    overrides: Mapping[str, str] | None = None,
    *,
    partial: bool = False,
    file: str | None = None,
) -> dict[str, str]:
    """Which header feeds each field of `spec` (field -> header, as the file spells it).

    `overrides` (field -> column) win; then exact field names, then aliases (see the module
    docstring). Raises `InputError` (naming `file`) for an override the file lacks and,
    unless `partial`, for a required field without a column.
    """
    headers = list(headers)
    last = isinstance(spec, FileSpec) and spec.duplicates == "last"
    by_norm: dict[str, str] = {}
    for h in reversed(headers) if last else headers:
        by_norm.setdefault(normalise_header(h), h)
    chosen: dict[str, str] = {}
    used: set = set()
    for fname, source in (overrides or {}).items():
        if source not in headers:
            match = by_norm.get(normalise_header(source))
            if match is None:
                raise InputError(
                    f"--map {spec.name}.{fname}={source}: the file has no column {source!r}; "
                    f"its columns are: {', '.join(headers)}",
                    file=file,
                )
            source = match
        chosen[fname] = source
        used.add(source)
    for f in spec.fields:  # exact names first, so `id` cannot steal an exact `account_id`
        h = by_norm.get(normalise_header(f.name))
        if f.name not in chosen and h is not None and h not in used:
            chosen[f.name] = h
            used.add(h)
    for f in spec.fields:
        if f.name in chosen:
            continue
        for alias in f.aliases:
            h = by_norm.get(normalise_header(alias))
            if h is not None and h not in used:
                chosen[f.name] = h
                used.add(h)
                break
    missing = [f.name for f in spec.fields if f.required and f.name not in chosen]
    if missing and not partial:
        message = (spec.missing_message if isinstance(spec, FileSpec)
                   else _missing_table_columns)
        raise InputError(message(spec, missing, headers), file=file)
    return chosen
