"""Compile a checked RuleSet into durable_rules rulesets, and households into facts for them.

Two rulesets, matching the two levels of the rule language:
- persons: one fact per member (``{"id", "sid", "t": "p", "a": age, "r": 続柄, "s", "f", "k0"..}``,
  where ``kN`` counts the person's records passing record test N on the screening date); each
  indicator is a rule, its hits become the member's ``iN`` fields;
- households: one fact per household (``{"id", "sid", "t": "hh", "n", "st", "d0".., "m": [{"i0"..}]}``);
  each flag is a rule; ``member: X`` is ``$iany`` over the members' ``iX``.
Negations are pushed down to the leaves (durable_rules has no general NOT), so every leaf is a
plain comparison. Measured trap: an ``$or`` over different fields inside ``$iany`` never matches
in durable_rules 2.0.28, which is why person logic is evaluated on person facts, not in arrays.
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
        self._matchers_for: str | None = None
        self._by_code: dict[str, list] = {}
        self.person_name = f"screen_{rules.hash}_persons"
        self.household_name = f"screen_{rules.hash}_households"
        households = {}
        for flag in rules.flag_list():
            cond = self.household(flag.when, positive=True)
            households[flag.id] = {"all": [{"m": {"$and": [{"t": "hh"}, cond]}}], "run": flag.id, "cap": CAP}
        households[SEEN_RULE] = {"all": [{"m": {"t": "hh"}}], "run": SEEN_RULE, "pri": 1000, "cap": CAP}
        persons = {}
        for ind_id, field in self.indicator_fields.items():
            cond = self.person(rules.indicators[ind_id].when, positive=True)
            persons[field] = {"all": [{"m": {"$and": [{"t": "p"}, cond]}}], "run": field, "cap": CAP}
        persons[SEEN_RULE] = {"all": [{"m": {"t": "p"}}], "run": SEEN_RULE, "pri": 1000, "cap": CAP}
        self.definition: dict[str, Any] = {self.person_name: persons, self.household_name: households}

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
            return _range_cond("a", cond.min, cond.max, positive)
        if isinstance(cond, Record):
            field = self._atom(cond)
            has = positive != cond.negate
            return {"$gt": {field: 0}} if has else {field: 0}
        if isinstance(cond, Relationship):
            if positive != cond.negate:
                return _or([{"r": v} for v in cond.values])
            return _and([{"$neq": {"r": v}} for v in cond.values])
        if isinstance(cond, Sex):
            return {"s": cond.value} if positive != cond.negate else {"$neq": {"s": cond.value}}
        if isinstance(cond, Foreign):
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
            field = "$i." + self.indicator_fields[cond.indicator]
            if positive != cond.negate:
                return {"$iany": {"m": {field: 1}}}
            return {"$iall": {"m": {field: 0}}}
        if isinstance(cond, HouseholdSize):
            return _range_cond("n", cond.min, cond.max, positive)
        if isinstance(cond, SilosTouched):
            return _range_cond("st", cond.min, cond.max, positive)
        if isinstance(cond, DistinctValues):
            if cond not in self.distinct:
                self.distinct[cond] = f"d{len(self.distinct)}"
            key = self.distinct[cond]
            return {"$gte": {key: cond.at_least}} if positive else {"$lt": {key: cond.at_least}}
        raise TypeError(cond)

    # --- facts ----------------------------------------------------------------------------------
    def person_facts(self, household: Household, ctx: Context, sid: str) -> list[dict]:
        """One fact per member, in state `sid`."""
        by_code = self._matchers(ctx)
        zeros = dict.fromkeys(self.atoms.values(), 0)
        facts = []
        for p in household.persons:
            f = {
                "id": p.person_id,
                "sid": sid,
                "t": "p",
                "a": age_on(p.birth, ctx.iso),
                "r": p.relationship,
                "s": p.sex,
                "f": int(is_foreign(p.nationality)),
                **zeros,
            }
            for code, recs in p.records.items():
                for name, match in by_code.get(code, ()):
                    f[name] = sum(1 for r in recs if match(r))
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

    def household_fact(self, household: Household, ctx: Context, indicators: dict[str, set[str]], sid: str) -> dict:
        """The household fact in state `sid`; `indicators` maps person id -> indicator fields it met."""
        fields = list(self.indicator_fields.values())
        members = [{f: int(f in indicators.get(p.person_id, ())) for f in fields} for p in household.persons]
        fact = {"id": household.household_id, "sid": sid, "t": "hh", "n": len(household.persons), "m": members}
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
