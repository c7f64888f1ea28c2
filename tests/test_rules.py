"""Territory types and assignment rules (analytics/rules.py) and the `rules` CLI.

The rules world (built once per module, each test works on a copy), plan "Base" on H3
resolution 5, each account alone in the cell of its position:

    account  name                                   state  segment   potential  last activity
    A1       O'Brien; DROP TABLE accounts; --       CA     Hospital  100        2025-01-15
    A2       "quoted" Care                          OR     Clinic    200        2025-06-30
    A3       %_ Wild Labs                           WA     Lab       300        2025-12-31
    A4       Back\\slash Medical                     CA     Hospital  400        (none)
    A5       Plain Hospital                         ID     Hospital  500        2024-12-31
    A6       percent 100% sure                      OR     Clinic    600        2025-03-01
    A7       Copy; drop table ACCOUNTS; -- too      CA     Clinic    700        2025-01-01
    A8       quoted without marks                   CO     (blank)   800        2025-07-01

    territory  cells of       accounts (by unit)
    W1 West    A1 A4 A7       A1 A4 A7
    W2 North   A2 A3 A6       A2 A3 A6
    W3 Inland  A5             A5
    (none)     A8             A8 unassigned

Every expected account list below is read off this table by hand.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import h3
import pytest
from conftest import write_csv

from analytics import edits, ingest, metrics, plans, rules
from analytics.cli import main
from analytics.errors import InputError
from analytics.period import Period
from analytics.settings import Settings
from analytics.store import Store
from analytics.units import UnitType

RES = 5
HOSTILE = "O'Brien; DROP TABLE accounts; --"
ACCOUNTS = [  # id, name, lat, lon, segment, potential, last_activity_date
    ("A1", HOSTILE, 34.05, -118.25, "Hospital", 100, "2025-01-15"),         # Los Angeles
    ("A2", '"quoted" Care', 45.52, -122.68, "Clinic", 200, "2025-06-30"),   # Portland
    ("A3", "%_ Wild Labs", 47.61, -122.33, "Lab", 300, "2025-12-31"),        # Seattle
    ("A4", "Back\\slash Medical", 38.58, -121.49, "Hospital", 400, None),   # Sacramento
    ("A5", "Plain Hospital", 43.62, -116.20, "Hospital", 500, "2024-12-31"),  # Boise
    ("A6", "percent 100% sure", 44.94, -123.03, "Clinic", 600, "2025-03-01"),  # Salem
    ("A7", "Copy; drop table ACCOUNTS; -- too", 33.77, -118.19, "Clinic", 700,
     "2025-01-01"),                                                          # Long Beach
    ("A8", "quoted without marks", 39.74, -104.99, None, 800, "2025-07-01"),  # Denver
]
TERRITORIES = {"W1": ("West", ["A1", "A4", "A7"]), "W2": ("North", ["A2", "A3", "A6"]),
               "W3": ("Inland", ["A5"])}
BY_UNIT = {a: t for t, (_, accs) in TERRITORIES.items() for a in accs}  # A8: none
ALL = {a[0] for a in ACCOUNTS}
PERIOD = Period(dt.date(2025, 1, 1), dt.date(2025, 12, 31))
AS_OF = dt.date(2025, 12, 31)


def cell(account_id: str) -> str:
    a = next(a for a in ACCOUNTS if a[0] == account_id)
    return h3.latlng_to_cell(a[2], a[3], RES)


def build_world(folder: Path) -> Path:
    acc = write_csv(folder / "accounts.csv", [
        ["account_id", "name", "lat", "lon", "segment", "potential", "last_activity_date"],
        *[list(a) for a in ACCOUNTS],
    ])
    plan_file = write_csv(folder / "plan.csv", [
        ["unit_id", "territory_id", "territory_name"],
        *[[cell(a), t, name] for t, (name, accs) in TERRITORIES.items() for a in accs],
    ])
    path = folder / "rules.duckdb"
    with Store(path) as s:
        assert ingest.load(s, accounts=acc).clean
        plans.import_plan(s, "Base", UnitType.parse(f"h3:{RES}"), plan_file)
    return path


@pytest.fixture(scope="module")
def world_db(tmp_path_factory) -> Path:
    return build_world(tmp_path_factory.mktemp("rules"))


@pytest.fixture
def world_path(world_db: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "world.duckdb"
    shutil.copyfile(world_db, dst)
    return dst


@pytest.fixture
def world(world_path: Path):
    with Store(world_path) as s:
        yield s


@pytest.fixture(scope="module")
def shared(world_db: Path):
    """The module's world opened read-only, for tests that must change nothing."""
    with Store(world_db, read_only=True) as s:
        yield s


def base(store: Store) -> plans.Plan:
    return plans.get_plan(store.cursor(), "Base")


def matched(store: Store, field: str, op: str, value) -> set[str]:
    """The accounts one criterion matches, run through the rule compiler."""
    c = rules.make_criterion(field, op, value)
    sql, params = rules.compile_rule([c], rules.parse_filter(None, 1))
    got = store.cursor().execute(f"SELECT account_id FROM accounts a WHERE {sql}",
                                 params).fetchall()
    return {r[0] for r in got}


def resolved(store: Store) -> dict[str, str | None]:
    frame = metrics.resolved_accounts(store.cursor(), base(store))
    return {r.account_id: (r.territory_id if isinstance(r.territory_id, str) else None)
            for r in frame.itertuples()}


def territory_accounts(store: Store) -> dict[str, int]:
    rows, _ = metrics.summary(store.cursor(), base(store), PERIOD, AS_OF, Settings())
    return {r.territory_id: int(r.accounts) for r in rows.itertuples()}


def test_world_is_as_documented(world):
    assert resolved(world) == {**BY_UNIT, "A8": None}
    states = dict(world.cursor().execute("SELECT account_id, state FROM accounts").fetchall())
    assert states == {"A1": "CA", "A2": "OR", "A3": "WA", "A4": "CA", "A5": "ID", "A6": "OR",
                      "A7": "CA", "A8": "CO"}
    assert territory_accounts(world) == {"W1": 3, "W2": 3, "W3": 1}


# --------------------------------------------------------------------------------------
# the boolean filter
# --------------------------------------------------------------------------------------
R1, R2, R3 = rules.Ref(1), rules.Ref(2), rules.Ref(3)


@pytest.mark.parametrize(("text", "tree"), [
    ("(1 AND 2) OR 3", rules.Or((rules.And((R1, R2)), R3))),
    ("1 AND 2 OR 3", rules.Or((rules.And((R1, R2)), R3))),          # AND before OR
    ("1 OR 2 AND 3", rules.Or((R1, rules.And((R2, R3))))),
    ("1 AND (2 OR 3)", rules.And((R1, rules.Or((R2, R3))))),
    ("NOT 1 AND 2 OR 3", rules.Or((rules.And((rules.Not(R1), R2)), R3))),  # NOT first
    ("NOT (1 OR 2) AND 3", rules.And((rules.Not(rules.Or((R1, R2))), R3))),
    ("not not 1 and 2 or 3", rules.Or((rules.And((rules.Not(rules.Not(R1)), R2)), R3))),
    ("((1)) AND 2 AND 3", rules.And((R1, R2, R3))),
    ("1 OR (2 OR 3)", rules.Or((R1, R2, R3))),
    ("", rules.And((R1, R2, R3))),                                      # default: all ANDed
    (None, rules.And((R1, R2, R3))),
])
def test_filter_parse_trees(text, tree):
    assert rules.parse_filter(text, 3) == tree


def test_filter_single_criterion_and_not():
    assert rules.parse_filter("NOT 1", 1) == rules.Not(R1)
    assert rules.parse_filter("1 AND NOT 2", 2) == rules.And((R1, rules.Not(R2)))
    assert rules.parse_filter(None, 1) == R1
    assert rules.parse_filter("  ", 1) == R1


@pytest.mark.parametrize("text", [
    "(1 AND 2) OR 3", "1 AND 2 OR 3", "1 OR 2 AND 3", "NOT 1 AND 2 OR 3", "NOT (1 OR 2) AND 3",
    "1 AND NOT (2 OR NOT 3)", "NOT NOT 1 OR 2 AND NOT 3", "(1 OR 2) AND (NOT 1 OR 3)",
])
def test_filter_sql_follows_precedence(text):
    """The compiled SQL agrees with Python (same precedence: NOT > AND > OR) on all 8 cases."""
    con = duckdb.connect()
    con.execute("CREATE TABLE accounts (account_id VARCHAR, segment VARCHAR, "
                "industry VARCHAR, country VARCHAR)")
    combos = [(i >> 2 & 1, i >> 1 & 1, i & 1) for i in range(8)]
    for i, (x, y, z) in enumerate(combos):
        con.execute("INSERT INTO accounts VALUES (?, ?, ?, ?)",
                    [str(i), "y" if x else "n", "y" if y else "n", "y" if z else "n"])
    crit = [rules.make_criterion(f, "equals", "Y") for f in ("segment", "industry", "country")]
    sql, params = rules.compile_rule(crit, rules.parse_filter(text, 3))
    got = {r[0] for r in con.execute(f"SELECT account_id FROM accounts a WHERE {sql}",
                                     params).fetchall()}
    expr = text.lower().replace("1", "x").replace("2", "y").replace("3", "z")
    want = {str(i) for i, (x, y, z) in enumerate(combos)
            if eval(expr, {}, {"x": bool(x), "y": bool(y), "z": bool(z)})}
    assert got == want
    # the canonical text parses back to the same tree
    tree = rules.parse_filter(text, 3)
    assert rules.parse_filter(rules.render_filter(tree), 3) == tree


@pytest.mark.parametrize(("text", "n", "message"), [
    ("1 AND", 3, "position 6: expected a criterion number, NOT or '(', found the end"),
    ("(1 OR 2", 3, "position 8: missing ')' to close the '(' at position 1"),
    ("4", 3, "position 1: criterion 4 does not exist (the rule has 3 criteria: 1-3)"),
    ("1 AND 2 OR 4", 3, "position 12: criterion 4 does not exist"),
    ("0 OR 1", 1, "position 1: criterion 0 does not exist"),
    ("1 ; DROP TABLE accounts", 3, "position 3: unexpected ';'"),
    ("1 OR 2 --", 3, "position 8: unexpected '-'"),
    ("1 OR 2'", 2, "position 7: unexpected \"'\""),
    ("1 2", 2, "position 3: expected AND or OR, found '2'"),
    ("1 AND 2) OR 3", 3, "position 8: expected AND or OR, found ')' without a matching '('"),
    ("()", 1, "position 2: expected a criterion number, NOT or '(', found ')'"),
    ("1 AND NOT", 1, "position 10: expected a criterion number"),
    ("1 ANDNOT 2", 2, "position 3: unexpected 'A'"),
    ("1 AND 2", 3, "criterion 3 not used"),
    ("1", 3, "criteria 2, 3 not used"),
    ("(" * 60 + "1" + ")" * 60, 1, "nested more than 50 levels deep"),
])
def test_filter_errors_name_the_position(text, n, message):
    with pytest.raises(InputError) as exc:
        rules.parse_filter(text, n)
    assert message in str(exc.value)
    assert repr(text) in str(exc.value) or len(text) > 100


# --------------------------------------------------------------------------------------
# criteria: validation and compiling
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("field", "op", "value", "message"), [
    ("lat", "equals", "1", "field 'lat' cannot be used in a rule"),
    ("name; DROP TABLE accounts", "equals", "x", "cannot be used in a rule"),
    ("a.name", "equals", "x", "cannot be used in a rule"),
    ('name" OR 1=1 --', "equals", "x", "cannot be used in a rule"),
    ("name", "like", "x", "operator 'like' is not known"),
    ("name", "equals; --", "x", "is not known"),
    ("potential", "contains", "1", "potential is a number: `contains` works on text"),
    ("last_activity_date", "starts with", "2025", "works on text fields only"),
    ("potential", "equals", "lots", "'lots' is not a number"),
    ("potential", "equals", "nan", "not a finite number"),
    ("potential", "equals", True, "expected a number"),
    ("last_activity_date", "equals", "31/12/2025", "is not a date (YYYY-MM-DD)"),
    ("name", "equals", "", "the value is empty"),
    ("name", "equals", ["a"], "expected one value, not a list"),
    ("name", "equals", {"x": 1}, "expected text"),
    ("segment", "in", "Hospital", "expected a list of values"),
    ("segment", "in", [], "the list is empty"),
    ("potential", "between", [5, 1], "the low value 5 is above the high value 1"),
    ("potential", "between", [1], "expected two values"),
    ("potential", "between", "1..5", "expected two values"),
])
def test_criterion_validation(field, op, value, message):
    with pytest.raises(InputError, match=None) as exc:
        rules.make_criterion(field, op, value)
    assert message in str(exc.value)


def test_criterion_normalisation():
    c = rules.make_criterion(" Last Activity Date ", "Greater_Than", "2025-01-01")
    assert (c.field, c.op, c.value) == ("last_activity_date", "greater than", dt.date(2025, 1, 1))
    assert rules.make_criterion("potential", ">", "1e3").value == 1000
    assert rules.make_criterion("state", "in", ["CA", "OR", "CA"]).value == ("CA", "OR")
    assert rules.make_criterion("zip5", "equals", 94110).value == "94110"
    assert rules.make_criterion("name", "!=", " x ").value == " x "  # text kept literally
    c = rules.make_criterion("potential", "between", ["1.5", 7])
    assert c.to_json() == {"field": "potential", "op": "between", "value": [1.5, 7]}
    assert str(c) == "potential between 1.5..7"


@pytest.mark.parametrize(("text", "field", "op", "value"), [
    ("segment equals Hospital", "segment", "equals", "Hospital"),
    ("state in CA,OR", "state", "in", ("CA", "OR")),
    ("state in CA, OR ,", "state", "in", ("CA", "OR")),
    ("potential between 100..500", "potential", "between", (100, 500)),
    ("last_activity_date between 2025-01-01..2025-06-30", "last_activity_date", "between",
     (dt.date(2025, 1, 1), dt.date(2025, 6, 30))),
    ("name starts with %", "name", "starts with", "%"),
    ("name STARTS   WITH  O'Brien", "name", "starts with", "O'Brien"),
    ("name contains ; DROP TABLE accounts; --", "name", "contains",
     "; DROP TABLE accounts; --"),
    ('name contains "quoted"', "name", "contains", '"quoted"'),
    ("name not equals x y", "name", "not equals", "x y"),
    ("visits_per_year greater than 4", "visits_per_year", "greater than", 4),
])
def test_criterion_text(text, field, op, value):
    c = rules.parse_criterion_text(text)
    assert (c.field, c.op, c.value) == (field, op, value)
    assert rules.parse_criterion_text(str(c)) == c


@pytest.mark.parametrize(("text", "message"), [
    ("segment Hospital", "expected FIELD OP VALUE"),
    ("segment equals", "the value is missing"),
    ("potential between 100", "between takes LOW..HIGH"),
    ("potential between ..5", "between takes LOW..HIGH"),
    ("nope equals 1", "field 'nope' cannot be used"),
])
def test_criterion_text_errors(text, message):
    with pytest.raises(InputError, match=None) as exc:
        rules.parse_criterion_text(text)
    assert message in str(exc.value)


HOSTILE_VALUES = [HOSTILE, '"quoted"', "%_", "\\", "x') OR 1=1 --", "'; DELETE FROM plans; --"]


@pytest.mark.parametrize("value", HOSTILE_VALUES)
def test_compiled_sql_holds_no_value(value):
    crit = [rules.make_criterion("name", op, value)
            for op in ("equals", "not equals", "starts with", "contains")]
    crit += [rules.make_criterion("segment", "in", [value, "Lab"]),
             rules.make_criterion("county", "between", [value, value + "z"])]
    sql, params = rules.compile_rule(crit, rules.parse_filter("(1 OR 2) AND NOT 3 OR 4 AND 5 "
                                                              "OR 6", 6))
    for bad in ("'", '"', ";", "--", "%", "\\", "DROP", "DELETE", "quoted"):
        assert bad not in sql
    assert sql.count("?") == len(params) == 7
    assert params[:4] == [value] * 4
    assert params[4] == [value, "Lab"]


# --------------------------------------------------------------------------------------
# matching: hostile values literally, case, blanks, numbers, dates, lists
# --------------------------------------------------------------------------------------
def test_hostile_values_match_literally(shared):
    before = shared.cursor().execute("SELECT * FROM accounts ORDER BY account_id").fetchall()
    assert matched(shared, "name", "contains", "; DROP TABLE accounts; --") == {"A1", "A7"}
    assert matched(shared, "name", "equals", HOSTILE) == {"A1"}
    assert matched(shared, "name", "equals", HOSTILE.upper()) == {"A1"}  # case-insensitive
    assert matched(shared, "name", "starts with", "o'brien;") == {"A1"}
    assert matched(shared, "name", "contains", '"quoted"') == {"A2"}     # not A8
    assert matched(shared, "name", "contains", "quoted") == {"A2", "A8"}
    assert matched(shared, "name", "starts with", "%") == {"A3"}         # not A6, not all
    assert matched(shared, "name", "contains", "%") == {"A3", "A6"}
    assert matched(shared, "name", "contains", "_") == {"A3"}            # not a wildcard
    assert matched(shared, "name", "contains", "%_") == {"A3"}
    assert matched(shared, "name", "contains", "\\") == {"A4"}
    assert matched(shared, "name", "contains", "\\s") == {"A4"}
    assert matched(shared, "name", "equals", "x') OR 1=1 --") == set()
    assert matched(shared, "segment", "in", ["x') OR 1=1 --", "Lab"]) == {"A3"}
    assert matched(shared, "name", "starts with", "' OR ''='") == set()
    after = shared.cursor().execute("SELECT * FROM accounts ORDER BY account_id").fetchall()
    assert after == before
    assert len(after) == 8


def test_text_case_blanks_and_lists(shared):
    assert matched(shared, "segment", "equals", "HOSPITAL") == {"A1", "A4", "A5"}
    # a blank field matches nothing but `not equals` (exactly the complement of equals)
    assert matched(shared, "segment", "not equals", "hospital") == {"A2", "A3", "A6", "A7", "A8"}
    assert matched(shared, "segment", "in", ["hospital", "LAB"]) == {"A1", "A3", "A4", "A5"}
    assert matched(shared, "segment", "contains", "i") == {"A1", "A2", "A4", "A5", "A6", "A7"}
    assert matched(shared, "state", "in", ["ca", "Or"]) == {"A1", "A2", "A4", "A6", "A7"}
    assert matched(shared, "state", "between", ["C", "CO"]) == {"A1", "A4", "A7", "A8"}
    assert matched(shared, "state", "greater than", "or") == {"A3"}      # WA
    assert matched(shared, "industry", "not equals", "x") == ALL         # all blank


def test_numbers_and_dates(shared):
    assert matched(shared, "potential", "between", [200, 400]) == {"A2", "A3", "A4"}
    assert matched(shared, "potential", "between", ["199.5", "200"]) == {"A2"}
    assert matched(shared, "potential", "greater than", 600) == {"A7", "A8"}
    assert matched(shared, "potential", "less than", "200") == {"A1"}
    assert matched(shared, "potential", "in", [100, "500", 9]) == {"A1", "A5"}
    assert matched(shared, "potential", "not equals", 100) == ALL - {"A1"}
    d = "last_activity_date"
    assert matched(shared, d, "between", ["2025-01-01", "2025-06-30"]) == {"A1", "A2", "A6", "A7"}
    assert matched(shared, d, "between", [dt.date(2025, 6, 30), "2025-07-01"]) == {"A2", "A8"}
    assert matched(shared, d, "less than", "2025-01-01") == {"A5"}       # A4 blank: no
    assert matched(shared, d, "equals", "2025-12-31") == {"A3"}
    assert matched(shared, d, "in", ["2025-12-31", "2024-12-31"]) == {"A3", "A5"}
    assert matched(shared, d, "not equals", "2025-12-31") == ALL - {"A3"}  # A4 blank: yes


# --------------------------------------------------------------------------------------
# storing rules, types
# --------------------------------------------------------------------------------------
def test_add_list_delete_rule(world):
    plan = base(world)
    rid = rules.add_rule(world, plan, "W3", [
        {"field": "segment", "op": "equals", "value": "Hospital"},
        {"field": "state", "op": "in", "value": ["CA", "OR"]},
        {"field": "name", "op": "contains", "value": "; DROP TABLE accounts; --"},
    ], "1 and (2 or 3)", name="Big CA")
    assert rid == 1
    stored = world.cursor().execute("SELECT territory_id, name, criteria, boolean_filter FROM "
                                    "assignment_rules WHERE plan_id = ?",
                                    [plan.plan_id]).fetchone()
    assert stored[:2] == ("W3", "Big CA")
    assert json.loads(stored[2])[2] == {"field": "name", "op": "contains",
                                        "value": "; DROP TABLE accounts; --"}
    assert stored[3] == "1 AND (2 OR 3)"
    rid2 = rules.add_rule(world, plan, "W1", [{"field": "potential", "op": "greater than",
                                               "value": 650}])
    assert rid2 == 2
    table = rules.list_rules(world.cursor(), plan)
    assert table["rule_id"].tolist() == [1, 2]
    assert table["matches"].tolist() == [2, 2]                  # A1 A4; A7 A8
    assert table["boolean_filter"].tolist() == ["1 AND (2 OR 3)", "1"]
    assert table.loc[0, "criteria"] == ("1: segment equals Hospital; 2: state in CA,OR; "
                                        "3: name contains ; DROP TABLE accounts; --")
    events = plans.plan_history(world.cursor(), plan)["what"].tolist()
    assert events.count("rule added") == 2
    rules.delete_rule(world, plan, 1)
    assert rules.list_rules(world.cursor(), plan)["rule_id"].tolist() == [2]
    with pytest.raises(InputError, match="has no rule 1"):
        rules.delete_rule(world, plan, 1)


@pytest.mark.parametrize(("territory", "criteria", "flt", "message"), [
    ("W9", [{"field": "name", "op": "equals", "value": "x"}], None, "no territory 'W9'"),
    ("W1", [], None, "at least one criterion"),
    ("W1", "name equals x", None, "expected a list"),
    ("W1", [{"field": "name", "op": "equals"}], None, "criterion 1: expected exactly the keys"),
    ("W1", [{"field": "name", "op": "equals", "value": "x", "sql": "1=1"}], None,
     "unknown sql"),
    ("W1", [{"field": "name", "op": "equals", "value": "x"},
            {"field": "lat", "op": "equals", "value": 1}], None, "criterion 2: field 'lat'"),
    ("W1", [{"field": "name", "op": "equals", "value": "x"}], "1 OR 2", "criterion 2 does not"),
    ("W1", [{"field": "name", "op": "equals", "value": "x"}], "1; DROP TABLE accounts",
     "unexpected ';'"),
])
def test_add_rule_refuses_bad_rules(shared, territory, criteria, flt, message):
    """Refused before anything is written (the store is read-only: a write would fail)."""
    with pytest.raises(InputError) as exc:
        rules.add_rule(shared, base(shared), territory, criteria, flt)
    assert message in str(exc.value)


def test_a_tampered_stored_rule_is_refused_not_run(world):
    plan = base(world)
    world.cursor().execute(
        "INSERT INTO assignment_rules VALUES (?, 7, 'W1', NULL, ?, NULL)",
        [plan.plan_id, json.dumps([{"field": "1=1 OR name", "op": "equals", "value": "x"}])])
    with pytest.raises(InputError, match=r"rule 7 .* is not valid"):
        rules.preview(world.cursor(), plan)


def test_territory_types(world):
    plan = base(world)
    rules.set_territory_type(world, plan, "Named", 1, "named accounts")
    rules.set_territory_type(world, plan, "Geo", 5)
    rules.set_territory_type(world, plan, "Geo", 3)             # change the priority
    assert rules.assign_type(world, plan, "W1", "Named").changed == 1
    types = rules.list_territory_types(world.cursor(), plan)
    assert types[["type_name", "priority", "territories"]].values.tolist() == [
        ["Named", 1, "W1"], ["Geo", 3, ""]]
    with pytest.raises(InputError, match="no territory type 'Nope'"):
        rules.assign_type(world, plan, "W2", "Nope")
    with pytest.raises(InputError, match="'Named' is used by W1"):
        rules.delete_territory_type(world, plan, "Named")
    rules.delete_territory_type(world, plan, "Geo")
    with pytest.raises(InputError, match="whole number"):
        rules.set_territory_type(world, plan, "X", "high")
    edits.undo(world, plan)                                      # the type of W1 is an edit
    assert rules.list_territory_types(world.cursor(), plan)["territories"].tolist() == [""]
    rules.delete_territory_type(world, plan, "Named")


# --------------------------------------------------------------------------------------
# preview, priority, apply, undo
# --------------------------------------------------------------------------------------
def _add(store, territory, *criteria, flt=None) -> int:
    return rules.add_rule(store, base(store), territory,
                          [rules.parse_criterion_text(c) for c in criteria], flt)


def test_preview_lists_the_moves(world):
    plan = base(world)
    edits.pin_account(world, plan, "A5", "W2")   # A5: pinned to W2 (its unit is W3)
    assert rules.preview(world.cursor(), plan).empty
    r1 = _add(world, "W3", "segment equals hospital", "state in CA")      # A1 A4
    r2 = _add(world, "W1", 'name contains "quoted"', "name starts with %",
              flt="1 OR 2")                                              # A2 A3
    r3 = _add(world, "W3", "name equals plain hospital")                 # A5 (pin W2)
    r4 = _add(world, "W2", "state equals co")                            # A8 (unassigned)
    r5 = _add(world, "W1", "potential equals 700")                       # A7: already W1
    frame = rules.preview(world.cursor(), plan)
    got = {r.account_id: (r.from_territory if isinstance(r.from_territory, str) else None,
                          r.to_territory, r.rule_id)
           for r in frame.itertuples()}
    assert got == {"A1": ("W1", "W3", r1), "A4": ("W1", "W3", r1), "A2": ("W2", "W1", r2),
                   "A3": ("W2", "W1", r2), "A5": ("W2", "W3", r3), "A8": (None, "W2", r4)}
    assert frame["account_id"].tolist() == ["A1", "A2", "A3", "A4", "A5", "A8"]
    assert frame.loc[frame["account_id"] == "A3", "name"].item() == "%_ Wild Labs"
    assert frame["potential"].tolist() == [100, 200, 300, 400, 500, 800]
    assert not frame["locked"].any()
    # only some rules
    only = rules.preview(world.cursor(), plan, [r2, r5])
    assert only["account_id"].tolist() == ["A2", "A3"]
    with pytest.raises(InputError, match="has no rule 99"):
        rules.preview(world.cursor(), plan, [99])
    # the winners, and every match
    wins = rules.rule_matches(world.cursor(), plan)
    assert dict(zip(wins["account_id"], wins["rule_id"], strict=True)) == {
        "A1": r1, "A2": r2, "A3": r2, "A4": r1, "A5": r3, "A7": r5, "A8": r4}


def test_priority_of_the_territory_type_decides(world):
    plan = base(world)
    geo = _add(world, "W3", "state equals CA")                      # A1 A4 A7, smaller id
    named = _add(world, "W1", "name starts with o'brien")           # A1
    loose = _add(world, "W2", "segment equals hospital")            # A1 A4 A5

    def winners():
        w = rules.rule_matches(world.cursor(), plan)
        return dict(zip(w["account_id"], w["territory_id"], strict=True))

    # no types: the smaller rule id wins
    assert winners() == {"A1": "W3", "A4": "W3", "A7": "W3", "A5": "W2"}
    rules.set_territory_type(world, plan, "Named", 1)
    rules.set_territory_type(world, plan, "Geo", 5)
    rules.assign_type(world, plan, "W1", "Named")
    rules.assign_type(world, plan, "W3", "Geo")
    # W1 (priority 1) beats W3 (5); W2 without a type comes last
    assert winners() == {"A1": "W1", "A4": "W3", "A7": "W3", "A5": "W2"}
    every = rules.rule_matches(world.cursor(), plan, all_matches=True)
    a1 = every[every["account_id"] == "A1"]
    assert a1["rule_id"].tolist() == [named, geo, loose]
    assert a1["wins"].tolist() == [True, False, False]
    assert rules.preview(world.cursor(), plan).set_index("account_id")["to_territory"].to_dict() \
        == {"A4": "W3", "A7": "W3", "A5": "W2"}                      # A1 already in W1
    rules.set_territory_type(world, plan, "Geo", 0)                  # now Geo ranks first
    assert winners() == {"A1": "W3", "A4": "W3", "A7": "W3", "A5": "W2"}
    # a type the plan does not define counts as no type
    edits.update_territory(world, plan, "W3", territory_type="Undefined")
    assert winners()["A1"] == "W1"
    table = rules.list_rules(world.cursor(), plan).set_index("rule_id")
    assert table.loc[named, "priority"] == 1
    assert table.loc[geo, "territory_type"] == "Undefined"


def test_apply_pins_in_one_undoable_edit(world):
    plan = base(world)
    before_pins = world.cursor().execute("SELECT * FROM account_overrides").fetchall()
    r1 = _add(world, "W3", "name contains ; DROP TABLE accounts; --")    # A1 A7 (W1)
    _add(world, "W1", "segment equals lab")                              # A3 (W2)
    _add(world, "W2", "state equals or")                                 # A2 A6: no move
    moves = rules.preview(world.cursor(), plan)
    assert moves["account_id"].tolist() == ["A1", "A3", "A7"]
    result = rules.apply_rules(world, plan)
    assert result.seq is not None
    assert result.skipped_locked == 0
    assert result.changed == 5                     # 3 moves + A2 A6 pinned where they are
    assert resolved(world) == {**BY_UNIT, "A1": "W3", "A7": "W3", "A3": "W1", "A8": None}
    pins = dict(world.cursor().execute("SELECT account_id, territory_id FROM "
                                       "account_overrides").fetchall())
    assert pins == {"A1": "W3", "A7": "W3", "A3": "W1", "A2": "W2", "A6": "W2"}
    assert territory_accounts(world) == {"W1": 2, "W2": 2, "W3": 3}
    assert world.cursor().execute("SELECT count(*) FROM accounts").fetchone()[0] == 8
    assert rules.preview(world.cursor(), plan).empty
    again = rules.apply_rules(world, plan)                         # already pinned: no change
    assert (again.changed, again.seq) == (0, None)
    history = edits.history(world.cursor(), plan)
    assert history["label"].tolist() == ["Apply assignment rules"]
    assert history["items"].tolist() == [5]
    undone = edits.undo(world, plan)                               # ONE undo takes all back
    assert undone.changed == 5
    assert world.cursor().execute("SELECT * FROM account_overrides").fetchall() == before_pins
    assert resolved(world) == {**BY_UNIT, "A8": None}
    assert territory_accounts(world) == {"W1": 3, "W2": 3, "W3": 1}
    edits.redo(world, plan)
    assert territory_accounts(world) == {"W1": 2, "W2": 2, "W3": 3}
    edits.undo(world, plan)
    one = rules.apply_rules(world, plan, [r1])                     # only rule r1
    assert (one.label, one.changed) == (f"Apply rule {r1}", 2)
    assert territory_accounts(world) == {"W1": 1, "W2": 3, "W3": 3}


def test_apply_skips_locked_territories_and_existing_pins(world):
    plan = base(world)
    edits.pin_account(world, plan, "A2", "W1")              # A2 pinned away to W1
    _add(world, "W3", "segment equals clinic")               # A2 A6 A7 -> W3
    edits.set_locked(world, plan, "W2", True)                 # A6 may not leave W2
    frame = rules.preview(world.cursor(), plan).set_index("account_id")
    assert frame["locked"].to_dict() == {"A2": False, "A6": True, "A7": False}
    assert frame.loc["A2", "from_territory"] == "W1"
    result = rules.apply_rules(world, plan)
    assert (result.changed, result.skipped_locked) == (2, 1)
    assert resolved(world)["A6"] == "W2"
    assert resolved(world)["A2"] == "W3"
    assert resolved(world)["A7"] == "W3"
    edits.undo(world, plan)
    assert resolved(world)["A2"] == "W1"                     # the earlier pin is back


def test_rules_of_a_deleted_territory_match_nothing(world):
    plan = base(world)
    _add(world, "W3", "segment equals hospital")
    edits.delete_territory(world, plan, "W3")
    assert rules.preview(world.cursor(), plan).empty
    assert rules.list_rules(world.cursor(), plan)["territory_exists"].tolist() == [False]
    assert rules.apply_rules(world, plan).changed == 0


def test_no_rules(world):
    plan = base(world)
    assert rules.preview(world.cursor(), plan).empty
    assert rules.rule_matches(world.cursor(), plan).empty
    assert rules.list_rules(world.cursor(), plan).empty
    assert rules.apply_rules(world, plan).changed == 0
    _add(world, "W3", "segment equals hospital")
    assert rules.preview(world.cursor(), plan, []).empty
    assert rules.apply_rules(world, plan, []).changed == 0


def test_a_snapshot_takes_no_rule(world):
    plan = base(world)
    _add(world, "W3", "segment equals hospital")
    world.cursor().execute("UPDATE plans SET state = 'snapshot' WHERE plan_id = ?",
                           [plan.plan_id])
    frozen = base(world)
    for change in (lambda: _add(world, "W3", "segment equals lab"),
                   lambda: rules.delete_rule(world, frozen, 1),
                   lambda: rules.apply_rules(world, frozen),
                   lambda: rules.set_territory_type(world, frozen, "Geo", 1)):
        with pytest.raises(InputError, match="is a snapshot"):
            change()
    assert len(rules.preview(world.cursor(), frozen)) == 2   # reading still works


# --------------------------------------------------------------------------------------
# the CLI
# --------------------------------------------------------------------------------------
def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_rules(capsys, world_path):
    db = ("--db", world_path)
    code, out, err = run(capsys, "rules", "add", *db, "--territory", "W3",
                         "--criterion", "segment equals Hospital",
                         "--criterion", "state in CA,OR", "--filter", "1 AND 2",
                         "--name", "CA hospitals")
    assert code == 0, err
    assert "rule 1 added for territory W3" in out
    assert "matches 2 accounts" in out
    hostile = json.dumps([{"field": "name", "op": "contains",
                           "value": "; DROP TABLE accounts; --"}])
    code, out, err = run(capsys, "rules", "add", *db, "--territory", "W2",
                         "--criteria-json", hostile)
    assert code == 0, err
    code, out, _ = run(capsys, "rules", "list", *db, "--format", "json")
    listed = json.loads(out)
    assert [(r["rule_id"], r["territory_id"], r["matches"]) for r in listed] == [
        (1, "W3", 2), (2, "W2", 2)]
    assert listed[0]["criteria"] == "1: segment equals Hospital; 2: state in CA,OR"
    # rule 1 wins A1 (both match it: same priority, smaller rule id)
    code, out, err = run(capsys, "rules", "preview", *db)
    assert code == 0
    assert "3 accounts would move" in err
    lines = out.strip().splitlines()
    assert lines[0] == "account_id,name,potential,from_territory,to_territory,rule_id,locked"
    assert [ln.split(",")[0] for ln in lines[1:]] == ["A1", "A4", "A7"]
    code, out, _ = run(capsys, "rules", "preview", *db, "--rule", 2, "--format", "json")
    assert [r["account_id"] for r in json.loads(out)] == ["A1", "A7"]
    code, out, err = run(capsys, "rules", "apply", *db)
    assert code == 0, err
    assert out.strip() == "Apply assignment rules: 3 changed"
    code, out, _ = run(capsys, "rules", "preview", *db)
    assert out.strip().count("\n") == 0                         # header only
    code, out, _ = run(capsys, "plan", "undo", *db)
    assert code == 0
    assert "Undo: Apply assignment rules" in out
    code, out, _ = run(capsys, "rules", "delete", *db, 1)
    assert (code, out.strip()) == (0, "rule 1 deleted")
    code, out, _ = run(capsys, "rules", "list", *db)
    assert [ln.split(",")[0] for ln in out.strip().splitlines()[1:]] == ["2"]
    with Store(world_path) as s:
        assert s.cursor().execute("SELECT count(*) FROM accounts").fetchone()[0] == 8


def test_cli_types_and_priority(capsys, world_path):
    db = ("--db", world_path)
    assert run(capsys, "rules", "set-type", *db, "Named", "--priority", 1)[0] == 0
    assert run(capsys, "rules", "territory-type", *db, "W2", "Named")[0] == 0
    code, out, _ = run(capsys, "rules", "types", *db)
    assert out.splitlines()[1] == "Named,1,,W2"
    run(capsys, "rules", "add", *db, "--territory", "W3", "--criterion", "state equals CA")
    run(capsys, "rules", "add", *db, "--territory", "W2", "--criterion", "potential < 150")
    code, out, _ = run(capsys, "rules", "preview", *db, "--format", "json")
    assert {r["account_id"]: r["to_territory"] for r in json.loads(out)} == {
        "A1": "W2", "A4": "W3", "A7": "W3"}
    code, _, err = run(capsys, "rules", "delete-type", *db, "Named")
    assert code == 2
    assert "used by W2" in err
    assert run(capsys, "rules", "territory-type", *db, "W2", "")[0] == 0
    assert run(capsys, "rules", "delete-type", *db, "Named")[0] == 0


@pytest.mark.parametrize(("argv", "message"), [
    (["--criterion", "segment equals x", "--filter", "1 OR 2 --"], "position 8: unexpected"),
    (["--criterion", "lat equals 1"], "field 'lat' cannot be used"),
    (["--criterion", "segment is x"], "expected FIELD OP VALUE"),
    ([], "at least one --criterion"),
    (["--criteria-json", "[{"], "not valid JSON"),
    (["--criteria-json", "[]", "--criterion", "name equals x"], "not both"),
])
def test_cli_rules_add_errors_exit_2(capsys, world_path, argv, message):
    code, _, err = run(capsys, "rules", "add", "--db", world_path, "--territory", "W1", *argv)
    assert code == 2
    assert message in err


def test_cli_rules_help_documents_the_syntax(capsys):
    code, out, _ = run(capsys, "rules", "add", "--help")
    assert code == 0
    for text in ("FIELD OP VALUE", "comma-separated", "LOW..HIGH", "--criteria-json",
                 "(1 AND 2) OR 3", "smallest priority number"):
        assert text in out
