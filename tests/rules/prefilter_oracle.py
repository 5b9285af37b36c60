"""The prefilter as it was before the one-pass statement: one SQL query per flag part.

Kept only as the oracle of tests/rules/test_prefilter_one_pass.py: the one-pass statement must
select exactly the households this selects. Original docstring follows.

Pick, with SQL, the households that could possibly meet any flag; only they become facts.

For every flag we derive a *necessary* condition: one that every household meeting the flag
also meets (it may let through households that do not). Negated parts that SQL can decide
exactly (no record of a code, age outside a range) are kept; the rest are dropped, which only
widens the candidate set. The rule engine then decides exactly. A differential test checks
that the durable_rules path with this filter flags exactly what a filter-less evaluator flags.
"""

from __future__ import annotations

import sqlite3
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
from engine.rules.prefilter import Shard
from engine.support.vocabulary import CODES, SILOS

ALL = None  # "this condition cannot narrow the households"


class OldPrefilter:
    def __init__(self, rules: RuleSet, on: date):
        self.rules = rules
        self.on = on
        self.iso = on.isoformat()

    # --- person level: SQL over persons p ------------------------------------------------
    def _record_filter(self, atom: Record) -> tuple[str, list]:
        """SQL over records r: the record is of the atom's code (and category) and active."""
        since = months_before(self.on, atom.within_months).isoformat() if atom.within_months else self.iso
        sql = "r.code = ? AND r.start_date <= ? AND (r.end_date IS NULL OR r.end_date >= ?)"
        params: list = [atom.code, self.iso, since]
        if atom.values and CODES[atom.code].value_type in ("level", "category"):
            sql += f" AND r.value IN ({','.join('?' * len(atom.values))})"
            params += list(atom.values)
        return sql, params

    def _active(self, atom: Record) -> tuple[str, list]:
        sql, params = self._record_filter(atom)
        return f"SELECT 1 FROM records r WHERE r.person_id = p.person_id AND {sql}", params

    def person_sql(self, cond, positive: bool) -> tuple[str, list] | None:
        if isinstance(cond, PNot):
            return self.person_sql(cond.item, not positive)
        if isinstance(cond, (PAll, PAny)):
            parts = [self.person_sql(c, positive) for c in cond.items]
            conjunction = isinstance(cond, PAll) == positive
            if conjunction:
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
            sql, params = self._active(cond.atom())
            if positive != cond.negate:
                return f"EXISTS ({sql})", params
            exact = not cond.values and cond.min is None and cond.max is None
            return (f"NOT EXISTS ({sql})", params) if exact else None
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

    # --- household level: sets of household ids -------------------------------------------------
    def candidates(self, conn: sqlite3.Connection, shard: Shard) -> set[str]:
        """Households of the shard that may meet at least one flag."""
        self._cache: dict = {}
        self._conn, self._shard = conn, shard
        out: set[str] = set()
        for flag in self.rules.flag_list():
            found = self.household_set(flag.when, True)
            if found is ALL:
                return self._with_persons()
            out |= found
        return out

    def _with_persons(self) -> set[str]:
        where, params = self._where()
        return {
            h
            for (h,) in self._conn.execute(
                f"SELECT DISTINCT p.household_id FROM {self._shard.persons()} WHERE {where}", params
            )
        }

    def _where(self) -> tuple[str, list]:
        """The shard, and only persons born by the screening date."""
        where, params = self._shard.where("p.household_id")
        return f"{where} AND p.birth_date <= ?", params + [self.iso]

    def _query(self, key, sql: str, params: list) -> set[str]:
        if key not in self._cache:
            self._cache[key] = {h for (h,) in self._conn.execute(sql, params)}
        return self._cache[key]

    def household_set(self, cond, positive: bool) -> set[str] | None:
        if isinstance(cond, HNot):
            return self.household_set(cond.item, not positive)
        if isinstance(cond, (HAll, HAny)):
            parts = [self.household_set(c, positive) for c in cond.items]
            if isinstance(cond, HAll) == positive:
                kept = sorted((p for p in parts if p is not ALL), key=len)
                if not kept:
                    return ALL
                result = set(kept[0])
                for p in kept[1:]:
                    result &= p
                return result
            if any(p is ALL for p in parts):
                return ALL
            return set().union(*parts)
        where, wparams = self._where()
        if isinstance(cond, Member):
            if positive == cond.negate:
                return ALL
            psql = self.person_sql(self.rules.indicators[cond.indicator].when, True)
            if psql is None:
                return ALL
            return self._query(
                ("member", cond.indicator),
                f"SELECT DISTINCT p.household_id FROM {self._shard.persons()} WHERE {where} AND ({psql[0]})",
                wparams + psql[1],
            )
        if not positive:
            return ALL
        if isinstance(cond, HouseholdSize):
            having, hparams = [], []
            if cond.min is not None:
                having.append("COUNT(*) >= ?")
                hparams.append(cond.min)
            if cond.max is not None:
                having.append("COUNT(*) <= ?")
                hparams.append(cond.max)
            sql = f"SELECT p.household_id FROM {self._shard.persons()} WHERE {where} GROUP BY p.household_id HAVING {' AND '.join(having)}"
            return self._query(("size", cond.min, cond.max), sql, wparams + hparams)
        if isinstance(cond, SilosTouched):
            if not cond.min:
                return ALL
            silo, sparams = _silo_case()
            codes = [c for c, spec in CODES.items() if spec.silo or spec.silo_from_value]
            sql = (
                f"SELECT p.household_id FROM {self._shard.persons()} CROSS JOIN records r ON r.person_id = p.person_id "
                f"WHERE {where} AND r.code IN ({','.join('?' * len(codes))}) AND r.start_date <= ? "
                f"AND (r.end_date IS NULL OR r.end_date >= ?) GROUP BY p.household_id HAVING COUNT(DISTINCT {silo}) >= ?"
            )
            return self._query(("silos", cond.min), sql, wparams + codes + [self.iso, self.iso] + sparams + [cond.min])
        if isinstance(cond, DistinctValues):
            rsql, rparams = self._record_filter(cond.record)
            sql = (
                f"SELECT p.household_id FROM {self._shard.persons()} CROSS JOIN records r ON r.person_id = p.person_id "
                f"WHERE {where} AND {rsql} GROUP BY p.household_id HAVING COUNT(*) >= ?"
            )
            return self._query(("distinct", cond), sql, wparams + rparams + [cond.at_least])
        raise TypeError(cond)


def _silo_case() -> tuple[str, list]:
    """SQL for the silo of record r (NULL when it has none), as engine.support.vocabulary.record_silos."""
    whens, params = [], []
    for code, spec in CODES.items():
        if spec.silo_from_value:
            whens.append(f"WHEN ? THEN CASE WHEN r.value IN ({','.join('?' * len(SILOS))}) THEN r.value END")
            params += [code, *SILOS]
        elif spec.silo and spec.silo_min is not None:
            # as record_silos: digits only (value.isdigit()) and at least silo_min
            whens.append(
                "WHEN ? THEN CASE WHEN r.value <> '' AND r.value NOT GLOB '*[^0-9]*' AND CAST(r.value AS INTEGER) >= ? THEN ? END"
            )
            params += [code, spec.silo_min, spec.silo]
        elif spec.silo:
            whens.append("WHEN ? THEN ?")
            params += [code, spec.silo]
    return f"(CASE r.code {' '.join(whens)} END)", params


def _join(parts: list[tuple[str, list]], sep: str) -> tuple[str, list]:
    sql = sep.join(f"({s})" for s, _ in parts)
    params = [x for _, p in parts for x in p]
    return sql, params
