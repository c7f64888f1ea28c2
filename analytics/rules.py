"""Territory types and assignment rules: accounts assigned by their fields, whatever their unit.

A rule belongs to one territory of a plan and holds numbered criteria on account fields,
combined by a boolean filter such as `(1 AND 2) OR 3` (no filter: all criteria ANDed):

    {"field": "segment", "op": "equals", "value": "Hospital"}
    {"field": "state", "op": "in", "value": ["CA", "OR"]}
    {"field": "potential", "op": "between", "value": [100000, 500000]}

Safety: a rule is parsed into a structure (criteria + a boolean-filter tree) before it is
stored and again before it runs. The SQL column of a criterion comes from the allow-list
`FIELDS`, never from the user's text; every value travels as a SQL parameter (`?`), so a value
is always data and never SQL. `starts with` and `contains` use DuckDB's `starts_with` and
`contains` functions, which have no wildcard characters: `%`, `_` and `\\` match themselves.

Semantics chosen:

* Text comparisons are case-insensitive (as Salesforce assignment-rule criteria are): both
  sides go through DuckDB's `lower()`. Ordering operators on text (`between`, `greater
  than`, `less than`) compare lower-cased text character by character, which suits
  fixed-width codes such as ZIP codes (`zip5 between 90000..96199`).
* Numbers (potential, visits_per_year) and dates (last_activity_date) compare as numbers
  and dates; `between` includes both ends.
* Every criterion is true or false, never unknown: an account with a blank field matches no
  criterion on it, except `not equals`, which is exactly `NOT equals` (a blank segment
  "is not equal to" Hospital). `NOT n` in the filter is likewise the exact negation.
* Every criterion must appear in the filter (as Salesforce requires), so none is silently
  ignored.
* When an account matches rules of several territories, the territory whose type has the
  best priority wins: the smallest priority number first; territories without a type (or
  whose type is not defined in the plan) come last; ties go to the smaller rule id.
  Rules whose territory no longer exists match nothing.

Applying rules pins each matched account to its winning territory in one undoable edit
(`edits.undo` takes it all back). Pins that would move an account out of, or into, a locked
territory are skipped, as paint strokes skip locked units.

Over 500 lines because the rule language (criteria, the boolean-filter parser) and its one
SQL compiler belong together: the allow-list that keeps user text out of SQL is read by both.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from analytics import edits
from analytics.errors import InputError
from analytics.plans import Plan, log_event
from analytics.resolution import resolved_cte
from analytics.store import Store

# --------------------------------------------------------------------------------------
# the allow-list of fields and the operators
# --------------------------------------------------------------------------------------
TEXT, NUMBER, DATE = "text", "number", "date"

FIELDS: dict[str, tuple[str, str]] = {
    # field name: (kind, SQL column on the accounts table aliased `a`)
    "account_id": (TEXT, "a.account_id"),
    "name": (TEXT, "a.name"),
    "postal_code": (TEXT, "a.postal_code"),
    "country": (TEXT, "a.country"),
    "segment": (TEXT, "a.segment"),
    "industry": (TEXT, "a.industry"),
    "owner_rep_id": (TEXT, "a.owner_rep_id"),
    "potential": (NUMBER, "a.potential"),
    "visits_per_year": (NUMBER, "a.visits_per_year"),
    "last_activity_date": (DATE, "a.last_activity_date"),
    # derived at import from the account's position / postal code
    "state": (TEXT, "a.state"),
    "county": (TEXT, "a.county"),
    "zip5": (TEXT, "a.zip5"),
    "zip3": (TEXT, "a.zip3"),
    "fr_dept": (TEXT, "a.fr_dept"),
    "fr_commune": (TEXT, "a.fr_commune"),
}
"""The account fields a rule may test. The SQL column text is taken from here, only."""

OPS = ("equals", "not equals", "in", "starts with", "contains", "between", "greater than",
       "less than")
TEXT_ONLY_OPS = ("starts with", "contains")
OP_ALIASES = {"=": "equals", "==": "equals", "!=": "not equals", "<>": "not equals",
              ">": "greater than", "<": "less than"}

MAX_CRITERIA = 25
MAX_LIST = 1000
MAX_TEXT = 1000
MAX_FILTER = 1000
MAX_DEPTH = 50

_SQL_TYPE = {TEXT: "VARCHAR", NUMBER: "DOUBLE", DATE: "DATE"}

Value = str | float | int | dt.date


@dataclass(frozen=True)
class Criterion:
    """One validated test on one account field (values already of the field's kind)."""

    field: str
    op: str
    value: Any  # a Value; a tuple of Values for `in`; (low, high) for `between`

    @property
    def kind(self) -> str:
        return FIELDS[self.field][0]

    def to_json(self) -> dict:
        def plain(v):
            return v.isoformat() if isinstance(v, dt.date) else v

        value = ([plain(v) for v in self.value] if isinstance(self.value, tuple)
                 else plain(self.value))
        return {"field": self.field, "op": self.op, "value": value}

    def __str__(self) -> str:
        """The CLI's text form: `FIELD OP VALUE` (see `parse_criterion_text`)."""
        def txt(v):
            if isinstance(v, dt.date):
                return v.isoformat()
            if isinstance(v, float) and v.is_integer():
                return str(int(v))
            return str(v)

        if self.op == "in":
            value = ",".join(txt(v) for v in self.value)
        elif self.op == "between":
            value = f"{txt(self.value[0])}..{txt(self.value[1])}"
        else:
            value = txt(self.value)
        return f"{self.field} {self.op} {value}"


# --------------------------------------------------------------------------------------
# criteria: validation
# --------------------------------------------------------------------------------------
def _field(name: Any) -> str:
    key = re.sub(r"[\s\-]+", "_", str(name or "").strip().lower())
    if key not in FIELDS:
        raise InputError(f"field {str(name)[:80]!r} cannot be used in a rule; fields: "
                         f"{', '.join(FIELDS)}")
    return key


def _op(name: Any) -> str:
    key = re.sub(r"[\s_]+", " ", str(name or "").strip().lower())
    key = OP_ALIASES.get(key, key)
    if key not in OPS:
        raise InputError(f"operator {str(name)[:80]!r} is not known; operators: "
                         f"{', '.join(OPS)}")
    return key


def _scalar(field: str, kind: str, v: Any) -> Value:
    if kind == NUMBER:
        if isinstance(v, bool):
            raise InputError(f"{field}: expected a number, not {v!r}")
        if isinstance(v, (int, float)):
            num = float(v)
        elif isinstance(v, str):
            try:
                num = float(v.strip().replace("_", ""))
            except ValueError:
                raise InputError(f"{field}: {v[:80]!r} is not a number") from None
        else:
            raise InputError(f"{field}: expected a number, not {v!r}")
        if not math.isfinite(num):
            raise InputError(f"{field}: {v!r} is not a finite number")
        return int(num) if num.is_integer() and abs(num) < 2**53 else num
    if kind == DATE:
        if isinstance(v, dt.datetime):
            return v.date()
        if isinstance(v, dt.date):
            return v
        if isinstance(v, str):
            try:
                return dt.date.fromisoformat(v.strip())
            except ValueError:
                raise InputError(f"{field}: {v[:80]!r} is not a date (YYYY-MM-DD)") from None
        raise InputError(f"{field}: expected a date (YYYY-MM-DD), not {v!r}")
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise InputError(f"{field}: expected text, not {v!r}")
    text = str(v)  # taken literally: no trimming, no wildcard, no escape
    if text == "":
        raise InputError(f"{field}: the value is empty")
    if len(text) > MAX_TEXT:
        raise InputError(f"{field}: the value is longer than {MAX_TEXT} characters")
    return text


def _order_key(kind: str, v: Value):
    return v.lower() if kind == TEXT else v


def make_criterion(field: Any, op: Any, value: Any) -> Criterion:
    """Validate one criterion: the field against the allow-list, the operator, the value."""
    f, o = _field(field), _op(op)
    kind = FIELDS[f][0]
    if o in TEXT_ONLY_OPS and kind != TEXT:
        raise InputError(f"{f} is a {kind}: `{o}` works on text fields only; use equals, "
                         "in, between, greater than or less than")
    if o == "in":
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise InputError(f"{f} in: expected a list of values")
        if not value:
            raise InputError(f"{f} in: the list is empty")
        if len(value) > MAX_LIST:
            raise InputError(f"{f} in: more than {MAX_LIST} values")
        vals = tuple(dict.fromkeys(_scalar(f, kind, v) for v in value))
        return Criterion(f, o, vals)
    if o == "between":
        if isinstance(value, str) or not isinstance(value, (list, tuple)) or len(value) != 2:
            raise InputError(f"{f} between: expected two values, [low, high]")
        low, high = (_scalar(f, kind, v) for v in value)
        if _order_key(kind, low) > _order_key(kind, high):
            raise InputError(f"{f} between: the low value {low!s} is above the high value "
                             f"{high!s}")
        return Criterion(f, o, (low, high))
    if isinstance(value, (list, tuple)):
        raise InputError(f"{f} {o}: expected one value, not a list")
    return Criterion(f, o, _scalar(f, kind, value))


def parse_criteria(items: Any) -> list[Criterion]:
    """A list of criteria (dicts with field, op, value, or Criterion objects), validated."""
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise InputError("criteria: expected a list of {field, op, value} objects")
    if not items:
        raise InputError("a rule needs at least one criterion")
    if len(items) > MAX_CRITERIA:
        raise InputError(f"a rule has at most {MAX_CRITERIA} criteria")
    out = []
    for n, item in enumerate(items, start=1):
        try:
            if isinstance(item, Criterion):
                out.append(make_criterion(item.field, item.op, item.value))
                continue
            if not isinstance(item, dict):
                raise InputError("expected an object with field, op and value")
            extra = set(item) - {"field", "op", "value"}
            missing = {"field", "op", "value"} - set(item)
            if extra or missing:
                raise InputError("expected exactly the keys field, op and value"
                                 + (f" (missing {', '.join(sorted(missing))})" if missing
                                    else f" (unknown {', '.join(sorted(map(str, extra)))})"))
            out.append(make_criterion(item["field"], item["op"], item["value"]))
        except InputError as exc:
            raise InputError(f"criterion {n}: {exc.message}") from None
    return out


_TEXT_OP = re.compile(
    r"^(\S+)\s+(" + "|".join(re.escape(o).replace(r"\ ", r"[\s_]+")
                              for o in sorted([*OPS, *OP_ALIASES], key=len, reverse=True))
    + r")(?:\s+(.*))?$", re.IGNORECASE | re.DOTALL)


def parse_criterion_text(text: str) -> Criterion:
    """`FIELD OP VALUE`, the CLI's form, e.g. `segment equals Hospital`.

    The value is the rest of the text, taken literally (surrounding spaces removed; quotes
    are part of the value). `in` takes comma-separated values (`state in CA,OR`);
    `between` takes `LOW..HIGH` (`potential between 1000..5000`). For values holding a
    comma or `..`, or with surrounding spaces, give the criteria as JSON instead.
    """
    m = _TEXT_OP.match((text or "").strip())
    if not m:
        raise InputError(f"criterion {text!r}: expected FIELD OP VALUE, e.g. "
                         f"'segment equals Hospital'; operators: {', '.join(OPS)}")
    field, op, raw = m.group(1), _op(m.group(2)), (m.group(3) or "").strip()
    if raw == "":
        raise InputError(f"criterion {text!r}: the value is missing")
    if op == "in":
        value: Any = [v.strip() for v in raw.split(",") if v.strip()]
    elif op == "between":
        low, sep, high = raw.partition("..")
        if not sep or not low.strip() or not high.strip():
            raise InputError(f"criterion {text!r}: between takes LOW..HIGH, e.g. 100..500")
        value = [low.strip(), high.strip()]
    else:
        value = raw
    try:
        return make_criterion(field, op, value)
    except InputError as exc:
        raise InputError(f"criterion {text!r}: {exc.message}") from None


# --------------------------------------------------------------------------------------
# the boolean filter: tokens, a recursive-descent parser, a tree
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ref:
    n: int  # 1-based criterion number


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    children: tuple[Node, ...]


Node = Ref | Not | And | Or

_TOKEN = re.compile(r"\s*(?:([0-9]+)|(AND|OR|NOT)(?![A-Za-z0-9_])|([()]))", re.IGNORECASE)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """(kind, text, 1-based position); kinds: num, AND, OR, NOT, (, ), end."""
    out, i = [], 0
    while i < len(text):
        if text[i:].strip() == "":
            break
        m = _TOKEN.match(text, i)
        if not m:
            j = i + len(text[i:]) - len(text[i:].lstrip())
            raise InputError(f"boolean filter {text!r}, position {j + 1}: unexpected "
                             f"{text[j]!r}: use criterion numbers, AND, OR, NOT and "
                             "parentheses")
        pos = m.start(m.lastindex) + 1
        if m.group(1):
            out.append(("num", m.group(1), pos))
        elif m.group(2):
            out.append((m.group(2).upper(), m.group(2), pos))
        else:
            out.append((m.group(3), m.group(3), pos))
        i = m.end()
    out.append(("end", "", len(text) + 1))
    return out


class _Parser:
    """filter := or ; or := and (OR and)* ; and := not (AND not)* ;
    not := NOT not | '(' or ')' | NUMBER.  So NOT binds tighter than AND, AND than OR."""

    def __init__(self, text: str, n_criteria: int) -> None:
        self.text, self.n = text, n_criteria
        self.toks = _tokens(text)
        self.i = 0

    def fail(self, message: str, pos: int) -> InputError:
        return InputError(f"boolean filter {self.text!r}, position {pos}: {message}")

    def peek(self) -> tuple[str, str, int]:
        return self.toks[self.i]

    def take(self) -> tuple[str, str, int]:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> Node:
        node = self.or_(0)
        kind, text, pos = self.peek()
        if kind != "end":
            what = "')' without a matching '('" if kind == ")" else f"{text!r}"
            raise self.fail(f"expected AND or OR, found {what}", pos)
        return node

    def or_(self, depth: int) -> Node:
        kids = [self.and_(depth)]
        while self.peek()[0] == "OR":
            self.take()
            kids.append(self.and_(depth))
        return kids[0] if len(kids) == 1 else Or(tuple(_flatten(Or, kids)))

    def and_(self, depth: int) -> Node:
        kids = [self.not_(depth)]
        while self.peek()[0] == "AND":
            self.take()
            kids.append(self.not_(depth))
        return kids[0] if len(kids) == 1 else And(tuple(_flatten(And, kids)))

    def not_(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise self.fail(f"nested more than {MAX_DEPTH} levels deep", self.peek()[2])
        kind, text, pos = self.take()
        if kind == "NOT":
            return Not(self.not_(depth + 1))
        if kind == "(":
            node = self.or_(depth + 1)
            k2, t2, p2 = self.peek()
            if k2 != ")":
                found = "the end of the filter" if k2 == "end" else repr(t2)
                raise self.fail(f"missing ')' to close the '(' at position {pos} (found "
                                f"{found})", p2)
            self.take()
            return node
        if kind == "num":
            n = int(text)
            if not 1 <= n <= self.n:
                raise self.fail(f"criterion {n} does not exist (the rule has {self.n} "
                                f"criteri{'on' if self.n == 1 else 'a'}: 1-{self.n})", pos)
            return Ref(n)
        found = "the end of the filter" if kind == "end" else repr(text)
        raise self.fail(f"expected a criterion number, NOT or '(', found {found}", pos)


def _flatten(cls, kids: list[Node]) -> list[Node]:
    out: list[Node] = []
    for k in kids:
        out.extend(k.children if isinstance(k, cls) else [k])
    return out


def _refs(node: Node) -> set[int]:
    if isinstance(node, Ref):
        return {node.n}
    if isinstance(node, Not):
        return _refs(node.child)
    return set().union(*(_refs(k) for k in node.children))


def parse_filter(text: str | None, n_criteria: int) -> Node:
    """The tree of a boolean filter over criteria 1..n; empty or None: all criteria ANDed.

    Every criterion must appear in the filter. Errors (InputError) name the position.
    """
    if n_criteria < 1:
        raise InputError("a rule needs at least one criterion")
    if text is None or not str(text).strip():
        refs = [Ref(i) for i in range(1, n_criteria + 1)]
        return refs[0] if len(refs) == 1 else And(tuple(refs))
    text = str(text)
    if len(text) > MAX_FILTER:
        raise InputError(f"boolean filter: longer than {MAX_FILTER} characters")
    node = _Parser(text, n_criteria).parse()
    unused = sorted(set(range(1, n_criteria + 1)) - _refs(node))
    if unused:
        raise InputError(f"boolean filter {text!r}: criteri{'on' if len(unused) == 1 else 'a'}"
                         f" {', '.join(map(str, unused))} not used; use every criterion or "
                         "remove the unused ones")
    return node


def render_filter(node: Node) -> str:
    """The canonical text of a tree (parentheses only where needed)."""
    if isinstance(node, Ref):
        return str(node.n)
    if isinstance(node, Not):
        inner = render_filter(node.child)
        return f"NOT {inner}" if isinstance(node.child, (Ref, Not)) else f"NOT ({inner})"
    if isinstance(node, And):
        return " AND ".join(f"({render_filter(k)})" if isinstance(k, Or) else render_filter(k)
                            for k in node.children)
    # AND inside OR gets parentheses too: not needed (AND binds tighter), but clearer
    return " OR ".join(f"({render_filter(k)})" if isinstance(k, And) else render_filter(k)
                       for k in node.children)


# --------------------------------------------------------------------------------------
# compiling to SQL: text from the allow-list, values as parameters
# --------------------------------------------------------------------------------------
def criterion_sql(c: Criterion) -> tuple[str, list]:
    """A WHERE fragment on `accounts a` that is true or false (never NULL), and its params."""
    c = make_criterion(c.field, c.op, c.value)  # re-validate: the column comes from FIELDS
    kind, column = FIELDS[c.field]
    typ = _SQL_TYPE[kind]
    if kind == TEXT:
        col, p = f"lower({column})", "lower(?::VARCHAR)"
        lst = "(SELECT lower(unnest(?::VARCHAR[])))"
    else:
        col, p = column, f"?::{typ}"
        lst = f"(SELECT unnest(?::{typ}[]))"
    params: list = []
    if c.op == "in":
        sql = f"{col} IN {lst}"
        params.append(list(c.value))
    elif c.op == "between":
        sql = f"{col} BETWEEN {p} AND {p}"
        params += list(c.value)
    else:
        sql = {
            "equals": f"{col} = {p}",
            "not equals": f"NOT coalesce({col} = {p}, false)",
            "starts with": f"starts_with({col}, {p})",
            "contains": f"contains({col}, {p})",
            "greater than": f"{col} > {p}",
            "less than": f"{col} < {p}",
        }[c.op]
        params.append(c.value)
    return f"coalesce({sql}, false)", params


def compile_rule(criteria: Sequence[Criterion], node: Node) -> tuple[str, list]:
    """The WHERE fragment of a rule (on `accounts a`) with `?` placeholders, and its params.

    Parameters follow the placeholders' order; a criterion used twice is emitted twice.
    """
    parts = [criterion_sql(c) for c in criteria]

    def walk(n: Node) -> tuple[str, list]:
        if isinstance(n, Ref):
            return parts[n.n - 1][0], list(parts[n.n - 1][1])
        if isinstance(n, Not):
            sql, params = walk(n.child)
            return f"(NOT {sql})", params
        pieces = [walk(k) for k in n.children]
        joiner = " AND " if isinstance(n, And) else " OR "
        return ("(" + joiner.join(s for s, _ in pieces) + ")",
                [p for _, ps in pieces for p in ps])

    return walk(node)


# --------------------------------------------------------------------------------------
# territory types
# --------------------------------------------------------------------------------------
def set_territory_type(store: Store, plan: Plan, name: str, priority: int,
                       description: str | None = None) -> None:
    """Create a territory type or change its priority (smaller = higher) and description."""
    edits.writable(plan)
    name = (name or "").strip()
    if not name:
        raise InputError("a territory type needs a name")
    if isinstance(priority, bool):
        raise InputError(f"priority {priority!r}: expected a whole number")
    try:
        prio = int(priority)
    except (TypeError, ValueError):
        raise InputError(f"priority {priority!r}: expected a whole number") from None
    if isinstance(priority, float) and not priority.is_integer():
        raise InputError(f"priority {priority!r}: expected a whole number")
    if not -(2**31) < prio < 2**31:
        raise InputError(f"priority {priority!r}: out of range")
    with store.transaction() as cur:
        old = cur.execute("SELECT priority FROM territory_types WHERE plan_id = ? AND "
                          "type_name = ?", [plan.plan_id, name]).fetchone()
        cur.execute("DELETE FROM territory_types WHERE plan_id = ? AND type_name = ?",
                    [plan.plan_id, name])
        cur.execute("INSERT INTO territory_types VALUES (?, ?, ?, ?)",
                    [plan.plan_id, name, prio, description])
        detail = (f"{name}: priority {prio}" if old is None
                  else f"{name}: priority {old[0]} -> {prio}")
        log_event(cur, plan.plan_id, "territory type set", detail)
        edits.touch_plan(cur, plan)


def delete_territory_type(store: Store, plan: Plan, name: str) -> None:
    """Delete a type no territory uses (change those territories' type first)."""
    edits.writable(plan)
    with store.transaction() as cur:
        if not cur.execute("SELECT 1 FROM territory_types WHERE plan_id = ? AND type_name = ?",
                           [plan.plan_id, name]).fetchone():
            raise InputError(f"plan {plan.name!r} has no territory type {name!r}")
        used = [r[0] for r in cur.execute(
            "SELECT territory_id FROM territories WHERE plan_id = ? AND territory_type = ? "
            "ORDER BY 1", [plan.plan_id, name]).fetchall()]
        if used:
            raise InputError(f"territory type {name!r} is used by {', '.join(used[:12])}"
                             f"{' ...' if len(used) > 12 else ''}: give them another type "
                             "first")
        cur.execute("DELETE FROM territory_types WHERE plan_id = ? AND type_name = ?",
                    [plan.plan_id, name])
        log_event(cur, plan.plan_id, "territory type deleted", name)
        edits.touch_plan(cur, plan)


def list_territory_types(cur: duckdb.DuckDBPyConnection, plan: Plan) -> pd.DataFrame:
    """type_name, priority, description, territories (ids using it), best priority first."""
    return cur.execute(
        """SELECT tt.type_name, tt.priority, tt.description,
                  coalesce((SELECT string_agg(t.territory_id, ',' ORDER BY t.territory_id)
                            FROM territories t WHERE t.plan_id = tt.plan_id
                            AND t.territory_type = tt.type_name), '') AS territories
           FROM territory_types tt WHERE tt.plan_id = ?
           ORDER BY tt.priority, tt.type_name""", [plan.plan_id]).df()


def assign_type(store: Store, plan: Plan, territory_id: str,
                type_name: str | None) -> edits.EditResult:
    """Give a territory a type defined in the plan (None: no type), as an undoable edit."""
    if type_name is not None:
        type_name = type_name.strip() or None
    if type_name is not None and not store.cursor().execute(
            "SELECT 1 FROM territory_types WHERE plan_id = ? AND type_name = ?",
            [plan.plan_id, type_name]).fetchone():
        known = list_territory_types(store.cursor(), plan)["type_name"].tolist()
        raise InputError(f"plan {plan.name!r} has no territory type {type_name!r} "
                         f"(types: {', '.join(known) or 'none'}): create it first")
    return edits.update_territory(store, plan, territory_id, territory_type=type_name)


# --------------------------------------------------------------------------------------
# rules: storing, listing, deleting
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    rule_id: int
    territory_id: str
    name: str | None
    criteria: tuple[Criterion, ...]
    tree: Node
    boolean_filter: str | None  # as stored (canonical), None = all ANDed

    def where(self) -> tuple[str, list]:
        return compile_rule(self.criteria, self.tree)

    @property
    def filter_text(self) -> str:
        return render_filter(self.tree)


def validate_rule(criteria: Any, boolean_filter: str | None = None
                  ) -> tuple[list[Criterion], Node, str | None]:
    """(criteria, filter tree, canonical filter text or None) or an InputError."""
    crit = parse_criteria(criteria)
    tree = parse_filter(boolean_filter, len(crit))
    compile_rule(crit, tree)
    text = render_filter(tree) if boolean_filter and str(boolean_filter).strip() else None
    return crit, tree, text


def add_rule(store: Store, plan: Plan, territory_id: str, criteria: Any,
             boolean_filter: str | None = None, name: str | None = None) -> int:
    """Validate and store a rule for one territory; returns its rule id."""
    edits.writable(plan)
    crit, _, text = validate_rule(criteria, boolean_filter)
    name = (name or "").strip() or None
    with store.transaction() as cur:
        edits.require_territory(edits.territory_rows(cur, plan), territory_id, plan)
        rule_id = cur.execute("SELECT coalesce(max(rule_id), 0) + 1 FROM assignment_rules "
                              "WHERE plan_id = ?", [plan.plan_id]).fetchone()[0]
        cur.execute("INSERT INTO assignment_rules VALUES (?, ?, ?, ?, ?, ?)",
                    [plan.plan_id, rule_id, territory_id, name,
                     json.dumps([c.to_json() for c in crit]), text])
        log_event(cur, plan.plan_id, "rule added",
                  f"rule {rule_id} -> {territory_id}: "
                  + "; ".join(f"{i}: {c}" for i, c in enumerate(crit, 1))
                  + (f" [{text}]" if text else ""))
        edits.touch_plan(cur, plan)
    return int(rule_id)


def delete_rule(store: Store, plan: Plan, rule_id: int) -> None:
    edits.writable(plan)
    with store.transaction() as cur:
        row = cur.execute("SELECT territory_id FROM assignment_rules WHERE plan_id = ? AND "
                          "rule_id = ?", [plan.plan_id, int(rule_id)]).fetchone()
        if row is None:
            raise InputError(f"plan {plan.name!r} has no rule {rule_id}")
        cur.execute("DELETE FROM assignment_rules WHERE plan_id = ? AND rule_id = ?",
                    [plan.plan_id, int(rule_id)])
        log_event(cur, plan.plan_id, "rule deleted", f"rule {rule_id} -> {row[0]}")
        edits.touch_plan(cur, plan)


def load_rules(cur, plan: Plan, rule_ids: Iterable[int] | None = None) -> list[Rule]:
    """The plan's rules (those asked for), parsed and validated again, by rule id."""
    rows = cur.execute("SELECT rule_id, territory_id, name, criteria, boolean_filter "
                       "FROM assignment_rules WHERE plan_id = ? ORDER BY rule_id",
                       [plan.plan_id]).fetchall()
    if rule_ids is not None:
        wanted = {int(r) for r in rule_ids}
        missing = sorted(wanted - {r[0] for r in rows})
        if missing:
            raise InputError(f"plan {plan.name!r} has no rule {', '.join(map(str, missing))}")
        rows = [r for r in rows if r[0] in wanted]
    out = []
    for rid, tid, name, criteria, flt in rows:
        try:
            crit, tree, _ = validate_rule(json.loads(criteria), flt)
        except (InputError, ValueError) as exc:
            raise InputError(f"rule {rid} of plan {plan.name!r} is not valid ({exc}): "
                             "delete it and add it again") from None
        out.append(Rule(rid, tid, name, tuple(crit), tree, flt))
    return out


def list_rules(cur: duckdb.DuckDBPyConnection, plan: Plan) -> pd.DataFrame:
    """One row per rule: its territory and type, criteria, effective filter, match count."""
    rules = load_rules(cur, plan)
    terr = edits.territory_rows(cur, plan)
    prio = dict(cur.execute("SELECT type_name, priority FROM territory_types WHERE plan_id = ?",
                            [plan.plan_id]).fetchall())
    rows = []
    for r in rules:
        t = terr.get(r.territory_id)
        ttype = t["territory_type"] if t else None
        if t is None:
            matches = 0
        else:
            where, params = r.where()
            matches = cur.execute(f"SELECT count(*) FROM accounts a WHERE {where}",
                                  params).fetchone()[0]
        rows.append({
            "rule_id": r.rule_id, "name": r.name, "territory_id": r.territory_id,
            "territory_name": t["name"] if t else None,
            "territory_type": ttype, "priority": prio.get(ttype),
            "criteria": "; ".join(f"{i}: {c}" for i, c in enumerate(r.criteria, 1)),
            "boolean_filter": r.filter_text, "matches": int(matches),
            "territory_exists": t is not None,
        })
    cols = ["rule_id", "name", "territory_id", "territory_name", "territory_type", "priority",
            "criteria", "boolean_filter", "matches", "territory_exists"]
    frame = pd.DataFrame(rows, columns=cols)
    frame["priority"] = frame["priority"].astype("Int64")
    return frame


# --------------------------------------------------------------------------------------
# resolution, preview, apply
# --------------------------------------------------------------------------------------
def _matches_sql(cur, plan: Plan, rule_ids) -> tuple[str, list] | None:
    """`m` (every account x rule match, with its rank among the account's matches) as CTEs."""
    rules = load_rules(cur, plan, rule_ids)
    if not rules:
        return None
    parts, params = [], []
    for r in rules:
        where, p = r.where()
        parts.append(f"SELECT a.account_id, ?::VARCHAR AS territory_id, ?::INTEGER AS rule_id "
                     f"FROM accounts a WHERE {where}")
        params += [r.territory_id, r.rule_id, *p]
    sql = f"""hits AS ({' UNION ALL '.join(parts)}),
        m AS (
            SELECT h.account_id, h.territory_id, h.rule_id, tt.priority,
                   row_number() OVER (PARTITION BY h.account_id
                                      ORDER BY tt.priority NULLS LAST, h.rule_id) AS k
            FROM hits h
            JOIN territories t ON t.plan_id = ? AND t.territory_id = h.territory_id
            LEFT JOIN territory_types tt ON tt.plan_id = t.plan_id
                 AND tt.type_name = t.territory_type
        )"""
    return sql, [*params, plan.plan_id]


def rule_matches(cur: duckdb.DuckDBPyConnection, plan: Plan,
                 rule_ids: Iterable[int] | None = None, *,
                 all_matches: bool = False) -> pd.DataFrame:
    """account_id, territory_id, rule_id: each matched account and the rule that wins it.

    The winner: the territory whose type has the smallest priority number; territories
    without a (defined) type last; then the smaller rule id. With `all_matches`, every
    (account, rule) match instead, with `priority` and `wins` columns. `rule_ids` limits the
    rules considered (the others neither match nor compete).
    """
    cols = ["account_id", "territory_id", "rule_id"]
    if all_matches:
        cols += ["priority", "wins"]
    built = _matches_sql(cur, plan, rule_ids)
    if built is None:
        return pd.DataFrame(columns=cols)
    sql, params = built
    if all_matches:
        return cur.execute(f"WITH {sql} SELECT account_id, territory_id, rule_id, priority, "
                           "k = 1 AS wins FROM m ORDER BY account_id, k", params).df()
    return cur.execute(f"WITH {sql} SELECT {', '.join(cols)} FROM m WHERE k = 1 "
                       "ORDER BY account_id", params).df()


def _moves(cur, plan: Plan, rule_ids) -> pd.DataFrame:
    """Every matched account: its winner, its pin, its resolved territory, lock flags."""
    cols = ["account_id", "name", "potential", "from_territory", "to_territory", "rule_id",
            "pinned_to", "locked"]
    built = _matches_sql(cur, plan, rule_ids)
    if built is None:
        return pd.DataFrame(columns=cols)
    sql, params = built
    resolved, resolved_params = resolved_cte(plan)
    return cur.execute(
        f"""WITH {sql}, {resolved}
            SELECT a.account_id, a.name, a.potential, a.territory_id AS from_territory,
                   m.territory_id AS to_territory, m.rule_id, a.pinned_to,
                   coalesce(tf.locked, false) OR coalesce(tt.locked, false) AS locked
            FROM m JOIN resolved a ON a.account_id = m.account_id
            LEFT JOIN territories tf ON tf.plan_id = ? AND tf.territory_id = a.territory_id
            LEFT JOIN territories tt ON tt.plan_id = ? AND tt.territory_id = m.territory_id
            WHERE m.k = 1
            ORDER BY a.account_id""",
        [*params, *resolved_params, plan.plan_id, plan.plan_id]).df()


def preview(cur: duckdb.DuckDBPyConnection, plan: Plan,
            rule_ids: Iterable[int] | None = None) -> pd.DataFrame:
    """What applying the rules would move: account_id, name, potential, from_territory
    (pin, else unit, else empty), to_territory, rule_id, locked (True: a locked territory on
    either side, so applying skips it). Only accounts whose territory would change."""
    moves = _moves(cur, plan, rule_ids)
    changed = moves["from_territory"].fillna("\0") != moves["to_territory"]
    out = moves.loc[changed, ["account_id", "name", "potential", "from_territory",
                              "to_territory", "rule_id", "locked"]]
    return out.reset_index(drop=True)


def apply_rules(store: Store, plan: Plan,
                rule_ids: Iterable[int] | None = None) -> edits.EditResult:
    """Pin every matched account to its winning territory: ONE undoable edit.

    Accounts already pinned there are no change; accounts already in that territory through
    their unit are pinned too (no move, but painting their unit no longer moves them).
    Moves out of or into a locked territory are skipped (counted in `skipped_locked`).
    """
    ids = None if rule_ids is None else sorted({int(r) for r in rule_ids})
    if ids == []:
        edits.writable(plan)
        return edits.EditResult("Apply rules: none chosen", 0)
    label = ("Apply assignment rules" if ids is None else
             f"Apply rule{'s' if len(ids) != 1 else ''} {', '.join(map(str, ids))}")

    def build(cur):
        moves = _moves(cur, plan, ids)
        changes: list[edits.Change] = []
        skipped = 0
        for r in moves.itertuples(index=False):
            pinned = None if pd.isna(r.pinned_to) else r.pinned_to
            if pinned == r.to_territory:
                continue
            src = None if pd.isna(r.from_territory) else r.from_territory
            if r.locked and src != r.to_territory:
                skipped += 1
                continue
            changes.append((edits.PIN, r.account_id, pinned, r.to_territory))
        return changes, skipped

    return edits.commit_edit(store, plan, label, build)
