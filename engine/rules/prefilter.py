"""Pick, with SQL, the households that could possibly meet any flag; only they become facts.

For every flag we derive a *necessary* condition: one that every household meeting the flag
also meets (it may let through households that do not). Negated parts that SQL can decide
exactly (no record of a code, age outside a range) are kept; the rest are dropped, which only
widens the candidate set. The rule engine then decides exactly. A differential test checks
that the durable_rules path with this filter flags exactly what a filter-less evaluator flags.

The conditions are SQL over one row per household (size, members meeting each indicator,
silos touched, records passing a test), and a shard's candidates come from ONE statement that
reads its persons and their records once (engine/rules/prefilter_pass.py).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date

from engine.rules.facts import birth_cutoff, months_before
from engine.rules.model import (
    FOREIGN_EXCLUDED,
    Age,
    DistinctValues,
    Foreign,
    HAll,
    HAny,
    HNot,
    HouseholdSize,
    Member,
    PAll,
    PAny,
    PNot,
    Record,
    Relationship,
    RuleSet,
    Sex,
    SilosTouched,
)
from engine.rules.prefilter_pass import ACTIVE, Pass, Sql
from engine.support.vocabulary import ARREARS_KINDS, CODES

ALL = None  # "this condition cannot narrow the households"


@dataclass(frozen=True)
class Shard:
    """Which households to look at: an id range [lo, hi) or the ids in TEMP table scope_ids."""

    lo: str | None = None
    hi: str | None = None
    scoped: bool = False

    def persons(self) -> str:
        """FROM clause for persons p: a plain scan for id ranges (the birth_date index would
        mean a random read per person, ~8x slower), the scope's ids first when scoped."""
        if self.scoped:
            return "scope_ids s CROSS JOIN persons p ON p.household_id = s.household_id"
        return "persons p NOT INDEXED"

    def where(self, column: str) -> Sql:
        """Condition to add to a query FROM persons() (the scope is already joined there)."""
        if self.scoped:
            return "1", []
        return self.range_where(column)

    def range_where(self, column: str) -> Sql:
        """Condition restricting any table's household id column to the shard."""
        if self.scoped:
            return f"{column} IN (SELECT household_id FROM scope_ids)", []
        parts, params = [], []
        if self.lo is not None:
            parts.append(f"{column} >= ?")
            params.append(self.lo)
        if self.hi is not None:
            parts.append(f"{column} < ?")
            params.append(self.hi)
        return (" AND ".join(parts) or "1"), params


class Prefilter:
    def __init__(self, rules: RuleSet, on: date):
        self.rules = rules
        self.on = on
        self.iso = on.isoformat()

    def candidates(self, conn: sqlite3.Connection, shard: Shard) -> set[str]:
        """Households of the shard that may meet at least one flag."""
        self._pass = Pass(self.iso)
        conditions = [self.household(flag.when, True) for flag in self.rules.flag_list()]
        if not conditions:
            return set()
        where, params = shard.where("p.household_id")
        where, params = f"{where} AND p.birth_date <= ?", params + [self.iso]  # born by the screening date
        if any(c is ALL for c in conditions):
            sql = f"SELECT DISTINCT p.household_id FROM {shard.persons()} WHERE {where}"
        else:
            sql, params = self._pass.statement(shard.persons(), where, params, _join(conditions, " OR "))
        return {h for (h,) in conn.execute(sql, params)}

    def _atom(self, atom: Record, surely: bool = False) -> int | None:
        """The record test of `atom` (its code, active, its values and bounds) in the one pass: every
        record that may pass it, or with `surely` only records that surely pass it (None: none can
        be told in SQL)."""
        since = months_before(self.on, atom.within_months).isoformat() if atom.within_months else self.iso
        may, sure = value_tests(atom)
        sql, params = sure if surely else may
        if surely and sql == NONE:
            return None
        sql, params = (ACTIVE, [since]) if sql == ANY else (f"{ACTIVE} AND ({sql})", [since, *params])
        return self._pass.atom(((atom.code, sql, tuple(params)),))

    def _any_record(self, cond) -> list[int] | None:
        """The atoms of `cond` when it is just "has one of these records", else None."""
        if isinstance(cond, Record) and not cond.negate:
            return [self._atom(cond)]
        if isinstance(cond, PAny) or (isinstance(cond, PAll) and len(cond.items) == 1):
            parts = [self._any_record(c) for c in cond.items]
            return None if any(p is None for p in parts) else [a for p in parts for a in p]
        return None

    # --- person level: SQL over the per-person row p ----------------------------------------
    def person(self, cond, positive: bool) -> Sql | None:
        """A necessary condition on one person for `cond` to be `positive`; None: none in SQL."""
        if isinstance(cond, PNot):
            return self.person(cond.item, not positive)
        if isinstance(cond, (PAll, PAny)):
            parts = [self.person(c, positive) for c in cond.items]
            if isinstance(cond, PAll) == positive:
                kept = [p for p in parts if p is not None]
                return _join(kept, " AND ") if kept else None
            return None if any(p is None for p in parts) else _join(parts, " OR ")
        if isinstance(cond, Age):
            lo = ("p.birth_date <= ?", [birth_cutoff(self.on, cond.min)]) if cond.min is not None else None
            hi = ("p.birth_date > ?", [birth_cutoff(self.on, cond.max + 1)]) if cond.max is not None else None
            if positive:
                return _join([x for x in (lo, hi) if x], " AND ")
            neg = []
            if lo:
                neg.append(("p.birth_date > ?", lo[1]))
            if hi:
                neg.append(("p.birth_date <= ?", hi[1]))
            return _join(neg, " OR ")
        if isinstance(cond, Record):
            if positive != cond.negate:
                return self._pass.has(self._atom(cond.atom())), []
            # a person with no record passing the test has none of the records that surely pass it
            sure = self._atom(cond.atom(), surely=True)
            return None if sure is None else (self._pass.has(sure, False), [])
        if isinstance(cond, Relationship):
            marks = ",".join("?" * len(cond.values))
            op = "IN" if positive != cond.negate else "NOT IN"
            return f"COALESCE(p.relationship, '') {op} ({marks})", list(cond.values)
        if isinstance(cond, Sex):
            op = "=" if positive != cond.negate else "<>"
            return f"COALESCE(NULLIF(p.sex, ''), 'U') {op} ?", [cond.value]
        if isinstance(cond, Foreign):
            marks = ",".join("?" * len(FOREIGN_EXCLUDED))
            op = "NOT IN" if cond.value == positive else "IN"
            return f"TRIM(COALESCE(p.nationality, '')) {op} ({marks})", list(FOREIGN_EXCLUDED)
        raise TypeError(cond)

    # --- household level: SQL over the per-household row h ----------------------------------
    def household(self, cond, positive: bool) -> Sql | None:
        """A necessary condition on one household for `cond` to be `positive`; ALL when none."""
        if isinstance(cond, HNot):
            return self.household(cond.item, not positive)
        if isinstance(cond, (HAll, HAny)):
            parts = [self.household(c, positive) for c in cond.items]
            if isinstance(cond, HAll) == positive:
                kept = [p for p in parts if p is not ALL]
                return _join(kept, " AND ") if kept else ALL
            return ALL if any(p is ALL for p in parts) else _join(parts, " OR ")
        if isinstance(cond, Member):
            if positive == cond.negate:
                return ALL
            when = self.rules.indicators[cond.indicator].when
            atoms = self._any_record(when)
            if atoms:  # some member has one of these records: count them per household
                return " OR ".join(f"{self._pass.records_passing(a)} > 0" for a in atoms), []
            person = self.person(when, True)
            return ALL if person is None else (self._pass.some_member(person), [])
        if not positive:
            return ALL
        if isinstance(cond, HouseholdSize):
            parts = [("h.size >= ?", [cond.min])] if cond.min is not None else []
            parts += [("h.size <= ?", [cond.max])] if cond.max is not None else []
            return _join(parts, " AND ") if parts else ("1", [])
        if isinstance(cond, SilosTouched):
            return (f"{self._pass.silos_touched()} >= ?", [cond.min]) if cond.min else ALL
        if isinstance(cond, DistinctValues):
            # as many records as values (min and max are left to the rule engine)
            return f"{self._pass.records_passing(self._atom(cond.record))} >= ?", [cond.at_least]
        raise TypeError(cond)


ANY, NONE = "1", "0"  # SQL over r: every record, no record
# the whole of x is written as SQLite writes the integer it reads (no sign but '-', no leading
# zero, no space, no digit outside ASCII, no NUL, at most 19 digits): Python's int(x) is then that
# same integer
CANONICAL = "CAST(CAST({x} AS INTEGER) AS TEXT) = {x}"


def value_tests(atom: Record) -> tuple[Sql, Sql]:
    """SQL over r for the value part of a record test, as Context.matcher reads it: (what every
    record that may pass meets, what only records that surely pass meet). Level and category
    values are compared exactly. An amount or arrears value is compared in SQL when it is written
    canonically (CANONICAL; the arrears kind known, the months not negative); any other form
    Python's int() reads ('+5', '０５', '007', '1_000') may pass and never surely passes, and is
    left to the rule engine. The cheap comparison comes first: SQLite stops at the first answer."""
    spec, lo, hi = CODES[atom.code], atom.min, atom.max
    bounded = lo is not None or hi is not None
    marks = lambda values: ",".join("?" * len(values))  # noqa: E731
    if spec.value_type in ("level", "category", "flag"):
        parts = [(f"r.value IN ({marks(atom.values)})", list(atom.values))] if atom.values else []
        if bounded:  # only a level has a rank (record_number): on the others no record passes
            ranked = [  # a level's rank is its first place on the scale (level_rank)
                v
                for v in dict.fromkeys(spec.values)
                if spec.value_type == "level" and _within(spec.values.index(v), lo, hi)
            ]
            if not ranked:
                return (NONE, []), (NONE, [])
            parts.append((f"r.value IN ({marks(ranked)})", ranked))
        exact = _join(parts, " AND ") if parts else (ANY, [])
        return exact, exact
    if spec.value_type == "amount":
        if atom.values and not bounded:  # the text itself: exact
            exact = (f"r.value IN ({marks(atom.values)})", list(atom.values))
            return exact, exact
        kind, number, canonical = "r.value", "CAST(r.value AS INTEGER)", (CANONICAL.format(x="r.value"), [])
    else:  # arrears: '<kind>:<months>'
        months = "substr(r.value, instr(r.value, ':') + 1)"
        kind, number = "substr(r.value, 1, instr(r.value, ':') - 1)", f"CAST({months} AS INTEGER)"
        # the whole value rebuilt from what SQL read: substr() stops at a NUL, Python does not
        canonical = (
            f"instr(r.value, ':') > 0 AND {number} >= 0 AND {kind} || ':' || CAST({number} AS TEXT) = r.value"
            f" AND {kind} IN ({marks(ARREARS_KINDS)})",
            list(ARREARS_KINDS),
        )
    checks: list[Sql] = [(f"{number} >= ?", [lo])] if lo is not None else []
    checks += [(f"{number} <= ?", [hi])] if hi is not None else []
    checks += [(f"{kind} IN ({marks(atom.values)})", list(atom.values))] if atom.values else []
    if not checks:
        return (ANY, []), (ANY, [])
    passes = _join(checks, " AND ")
    may = (f"({passes[0]}) OR NOT ({canonical[0]})", passes[1] + canonical[1])
    sure = (f"({passes[0]}) AND ({canonical[0]})", passes[1] + canonical[1])
    return may, sure


def _within(n: int, lo: int | None, hi: int | None) -> bool:
    return (lo is None or n >= lo) and (hi is None or n <= hi)


def _join(parts: list[Sql], sep: str) -> Sql:
    sql = sep.join(f"({s})" for s, _ in parts)
    params = [x for _, p in parts for x in p]
    return sql, params
