"""Compile a checked RuleSet into durable_rules rulesets, and households into facts for them.

Two rulesets, matching the two levels of the rule language:
- persons: one fact per member, carrying only what some indicator reads: ``a`` age, ``r``
  続柄 and ``s`` sex as small codes, ``f`` foreign national (0/1), ``kN`` = 1 when the person
  has a record passing record test N on the screening date; each indicator is a rule;
- households: one fact per household: ``n`` members, ``st`` silos touched, ``dN`` distinct
  values, ``iN`` = 1 when some member met indicator N (its rule fired on that member's fact);
  each flag is a rule, ``member: X`` tests ``iX``.
Every fact also has ``id`` (its position in the batch), ``sid`` and ``t`` (what `_seen` matches).
Negations are pushed down to the leaves (durable_rules has no general NOT), so every leaf is a
plain comparison. A 0/1 field that some rule tests for 0 is always present; the others are
present only when 1 (measured traps: ``$nex`` alone, or alone in an ``$or`` branch, never
returns in durable_rules 2.0.28; an ``$or`` over different fields inside ``$iany`` never
matches, which is why person logic is evaluated on person facts).
"""

from __future__ import annotations

from typing import Any

from engine.rules.facts import Context, Household, age_on, is_foreign, record_value_key
from engine.rules.model import (
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

SEEN_RULE = "_seen"  # matches every fact: no MessageNotHandledException, and a count
CAP = 100_000  # an action receives up to CAP matching facts at once (one call per rule and batch)
OTHER = 0  # the code of a 続柄 or sex that no rule names


def _and(parts: list[dict]) -> dict:
    return parts[0] if len(parts) == 1 else {"$and": parts}


def _or(parts: list[dict]) -> dict:
    return parts[0] if len(parts) == 1 else {"$or": parts}


class Compiled:
    """Durable rulesets plus the feature layout their facts must follow."""

    def __init__(self, rules: RuleSet):
        self.rules = rules
        self.atoms: dict[Record, str] = {}
        self.distinct: dict[DistinctValues, str] = {}
        self.indicator_fields: dict[str, str] = {}
        self.relationships: dict[str, int] = {}  # 続柄 named by a rule -> code (others: OTHER)
        self.sexes: dict[str, int] = {}
        self.person_reads: set[str] = set()  # of a, r, s, f
        self.household_reads: set[str] = set()  # of n, st
        self.zero_tested: set[str] = set()  # 0/1 fields some rule tests for 0: always present
        self._matchers_for: str | None = None
        self._by_code: dict[str, list] = {}
        self.person_name = f"screen_{rules.hash}_persons"
        self.household_name = f"screen_{rules.hash}_households"
        households = {}
        for flag in rules.flag_list():
            cond = self.household(flag.when, positive=True)
            households[flag.id] = {"all": [{"m": cond}], "run": flag.id, "cap": CAP}
        households[SEEN_RULE] = {"all": [{"m": {"t": 1}}], "run": SEEN_RULE, "pri": 1000, "cap": CAP}
        persons = {}
        for ind_id, field in self.indicator_fields.items():
            cond = self.person(rules.indicators[ind_id].when, positive=True)
            persons[field] = {"all": [{"m": cond}], "run": field, "cap": CAP}
        persons[SEEN_RULE] = {"all": [{"m": {"t": 1}}], "run": SEEN_RULE, "pri": 1000, "cap": CAP}
        self.definition: dict[str, Any] = {self.person_name: persons, self.household_name: households}
        self._dense_atoms = {name: 0 for name in self.atoms.values() if name in self.zero_tested}
        self._dense_indicators = {f: 0 for f in self.indicator_fields.values() if f in self.zero_tested}

    def _bit(self, field: str, has: bool) -> dict:
        if not has:
            self.zero_tested.add(field)
        return {field: int(has)}

    @staticmethod
    def _code(codes: dict[str, int], value: str) -> int:
        return codes.setdefault(value, len(codes) + 1)

    # --- person conditions over a person fact ---------------------------------------------
    def _atom(self, rec: Record) -> str:
        atom = rec.atom()
        if atom not in self.atoms:
            self.atoms[atom] = f"k{len(self.atoms)}"
        return self.atoms[atom]

    def person(self, cond, positive: bool) -> dict:
        if isinstance(cond, PNot):
            return self.person(cond.item, not positive)
        if isinstance(cond, (PAll, PAny)):
            parts = [self.person(c, positive) for c in cond.items]
            return _and(parts) if isinstance(cond, PAll) == positive else _or(parts)
        if isinstance(cond, Age):
            self.person_reads.add("a")
            return _range_cond("a", cond.min, cond.max, positive)
        if isinstance(cond, Record):
            return self._bit(self._atom(cond), positive != cond.negate)
        if isinstance(cond, Relationship):
            self.person_reads.add("r")
            codes = [self._code(self.relationships, v) for v in cond.values]
            if positive != cond.negate:
                return _or([{"r": c} for c in codes])
            return _and([{"$neq": {"r": c}} for c in codes])
        if isinstance(cond, Sex):
            self.person_reads.add("s")
            code = self._code(self.sexes, cond.value)
            return {"s": code} if positive != cond.negate else {"$neq": {"s": code}}
        if isinstance(cond, Foreign):
            self.person_reads.add("f")
            return {"f": int(cond.value == positive)}
        raise TypeError(cond)

    # --- household conditions ---------------------------------------------------------------
    def household(self, cond, positive: bool) -> dict:
        if isinstance(cond, HNot):
            return self.household(cond.item, not positive)
        if isinstance(cond, (HAll, HAny)):
            parts = [self.household(c, positive) for c in cond.items]
            return _and(parts) if isinstance(cond, HAll) == positive else _or(parts)
        if isinstance(cond, Member):
            if cond.indicator not in self.indicator_fields:
                self.indicator_fields[cond.indicator] = f"i{len(self.indicator_fields)}"
            return self._bit(self.indicator_fields[cond.indicator], positive != cond.negate)
        if isinstance(cond, HouseholdSize):
            self.household_reads.add("n")
            return _range_cond("n", cond.min, cond.max, positive)
        if isinstance(cond, SilosTouched):
            self.household_reads.add("st")
            return _range_cond("st", cond.min, cond.max, positive)
        if isinstance(cond, DistinctValues):
            if cond not in self.distinct:
                self.distinct[cond] = f"d{len(self.distinct)}"
            key = self.distinct[cond]
            return {"$gte": {key: cond.at_least}} if positive else {"$lt": {key: cond.at_least}}
        raise TypeError(cond)

    # --- facts ----------------------------------------------------------------------------------
    def person_facts(self, household: Household, ctx: Context, sid: str, first_id: int = 0) -> list[dict]:
        """One fact per member, in state `sid`, with ids first_id, first_id + 1, …"""
        by_code = self._matchers(ctx)
        reads, dense = self.person_reads, self._dense_atoms
        facts = []
        for n, p in enumerate(household.persons, first_id):
            f = {"id": n, "sid": sid, "t": 1, **dense}
            if "a" in reads:
                f["a"] = age_on(p.birth, ctx.iso)
            if "r" in reads:
                f["r"] = self.relationships.get(p.relationship, OTHER)
            if "s" in reads:
                f["s"] = self.sexes.get(p.sex, OTHER)
            if "f" in reads:
                f["f"] = int(is_foreign(p.nationality))
            for code, recs in p.records.items():
                for name, match in by_code.get(code, ()):
                    if any(match(r) for r in recs):
                        f[name] = 1
            facts.append(f)
        return facts

    def _matchers(self, ctx: Context) -> dict[str, list]:
        """Record tests grouped by code, built once per screening date."""
        if self._matchers_for != ctx.iso:
            self._by_code: dict[str, list] = {}
            for atom, name in self.atoms.items():
                self._by_code.setdefault(atom.code, []).append((name, ctx.matcher(atom)))
            self._matchers_for = ctx.iso
        return self._by_code

    def household_fact(self, household: Household, ctx: Context, indicators: set[str], sid: str, fid: int = 0) -> dict:
        """The household fact in state `sid`; `indicators`: the indicator fields some member met."""
        fact = {"id": fid, "sid": sid, "t": 1, **self._dense_indicators}
        for field in indicators:
            fact[field] = 1
        if "n" in self.household_reads:
            fact["n"] = len(household.persons)
        if "st" in self.household_reads:
            fact["st"] = len(ctx.active_silos(household))
        for cond, key in self.distinct.items():
            fact[key] = len(distinct_values(cond, household, ctx))
        return fact


def distinct_values(cond: DistinctValues, household: Household, ctx: Context) -> dict[str, list]:
    """Different values (arrears kinds, …) among matching records, with those records."""
    out: dict[str, list] = {}
    for p in household.persons:
        for r in ctx.matching(cond.record, p):
            out.setdefault(record_value_key(r.code, r.value), []).append((p.person_id, r))
    return out


def _range_cond(field: str, lo: int | None, hi: int | None, positive: bool) -> dict:
    if positive:
        parts = []
        if lo is not None:
            parts.append({"$gte": {field: lo}})
        if hi is not None:
            parts.append({"$lte": {field: hi}})
        return _and(parts)
    parts = []
    if lo is not None:
        parts.append({"$lt": {field: lo}})
    if hi is not None:
        parts.append({"$gt": {field: hi}})
    return _or(parts)
