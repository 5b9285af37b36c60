"""Compile a checked RuleSet into durable_rules rulesets, and households into facts for them.

One fact per household (``{"id", "sid", "t": "hh", "n", "st", "d0".., "m": [members]}``);
each member carries its age, 続柄, sex, nationality flag and one count per record test
("k0", "k1", … = how many of the person's records pass that test on the screening date).
Each flag becomes one durable_rules rule over that fact: ``member: X`` is ``$iany`` over the
members, ``no_member`` is ``$iall`` of the negation; negations are pushed down to the leaves
(durable_rules has no general NOT), so every leaf is a plain comparison.
"""

from __future__ import annotations

from typing import Any

from engine.rules.facts import Context, Household, age_on, is_foreign
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

SEEN_RULE = "_seen"  # matches every household fact: no MessageNotHandledException, and a count


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
        self.name = f"screen_{rules.hash}"
        body = {}
        for flag in rules.flag_list():
            cond = self.household(flag.when, positive=True)
            body[flag.id] = {"all": [{"m": {"$and": [{"t": "hh"}, cond]}}], "run": flag.id}
        body[SEEN_RULE] = {"all": [{"m": {"t": "hh"}}], "run": SEEN_RULE, "pri": 1000}
        self.definition: dict[str, Any] = {self.name: body}

    # --- person conditions over "$i." fields -----------------------------------------------
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
            return _range_cond("$i.a", cond.min, cond.max, positive)
        if isinstance(cond, Record):
            field = "$i." + self._atom(cond)
            has = positive != cond.negate
            return {"$gt": {field: 0}} if has else {field: 0}
        if isinstance(cond, Relationship):
            keep = positive != cond.negate
            if keep:
                return _or([{"$i.r": v} for v in cond.values])
            return _and([{"$neq": {"$i.r": v}} for v in cond.values])
        if isinstance(cond, Sex):
            keep = positive != cond.negate
            return {"$i.s": cond.value} if keep else {"$neq": {"$i.s": cond.value}}
        if isinstance(cond, Foreign):
            return {"$i.f": int(cond.value == positive)}
        raise TypeError(cond)

    # --- household conditions ---------------------------------------------------------------
    def household(self, cond, positive: bool) -> dict:
        if isinstance(cond, HNot):
            return self.household(cond.item, not positive)
        if isinstance(cond, (HAll, HAny)):
            parts = [self.household(c, positive) for c in cond.items]
            return _and(parts) if isinstance(cond, HAll) == positive else _or(parts)
        if isinstance(cond, Member):
            indicator = self.rules.indicators[cond.indicator].when
            if positive != cond.negate:
                return {"$iany": {"m": self.person(indicator, True)}}
            return {"$iall": {"m": self.person(indicator, False)}}
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
    def fact(self, household: Household, ctx: Context) -> dict:
        """The durable_rules fact for one household on the context's date."""
        matchers = [(name, atom.code, ctx.matcher(atom)) for atom, name in self.atoms.items()]
        members = []
        for p in household.persons:
            m = {"a": age_on(p.birth, ctx.iso), "r": p.relationship, "s": p.sex, "f": int(is_foreign(p.nationality))}
            for name, code, match in matchers:
                m[name] = sum(1 for r in p.records.get(code, ()) if match(r))
            members.append(m)
        fact = {"id": household.household_id, "sid": household.household_id, "t": "hh", "n": len(household.persons), "m": members}
        fact["st"] = len(ctx.active_silos(household))
        for cond, key in self.distinct.items():
            fact[key] = len(distinct_values(cond, household, ctx))
        return fact


def distinct_values(cond: DistinctValues, household: Household, ctx: Context) -> dict[str, list]:
    """Different values (arrears kinds, …) among matching records, with those records."""
    from engine.rules.facts import record_value_key

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
