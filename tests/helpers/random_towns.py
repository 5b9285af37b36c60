"""Hypothesis strategies of random households (records, persons, towns) and random rule sets, so that
every shape the rule compiler can emit is exercised (tests/rules/test_differential.py and
tests/rules/test_incremental_differential.py)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from hypothesis import strategies as st

from engine.rules.model import (
    Age,
    DistinctValues,
    Flag,
    Foreign,
    HAll,
    HAny,
    HNot,
    HouseholdSize,
    Indicator,
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
from engine.support.vocabulary import ARREARS_KINDS, CODES, SILOS
from tests.helpers.town import ON

RELS = ["世帯主", "妻", "夫", "子", "母", "父", "孫", "その他"]
NATS = ["日本"] * 6 + ["ベトナム", "ブラジル", "", "JP"]


def value_for(code: str) -> st.SearchStrategy[str]:
    spec = CODES[code]
    if spec.value_type == "level" or (spec.value_type == "category" and spec.values):
        return st.sampled_from(spec.values)
    if spec.value_type == "amount":
        return st.integers(0, 200).map(str)
    if spec.value_type == "arrears":
        return st.builds(lambda k, m: f"{k}:{m}", st.sampled_from(ARREARS_KINDS), st.integers(0, 8))
    if spec.value_type == "category":
        return st.sampled_from(["ごみ", "DV", "ひきこもり", "生活困窮", "小学校", "保育所"])
    return st.just("")


days = st.integers(-1500, 60).map(lambda d: ON + timedelta(days=d))


@st.composite
def records(draw):
    code = draw(st.sampled_from(sorted(CODES)))
    start = draw(days)
    end = draw(st.none() | st.integers(0, 900).map(lambda d: start + timedelta(days=d)))
    return (code, draw(value_for(code)), start.isoformat(), end.isoformat() if end else None)


@st.composite
def persons(draw):
    birth = ON - timedelta(days=draw(st.integers(0, 100 * 366)))
    return {
        "birth": birth.isoformat(),
        "rel": draw(st.sampled_from(RELS)),
        "sex": draw(st.sampled_from(["M", "F", "U"])),
        "nat": draw(st.sampled_from(NATS)),
        "records": draw(st.lists(records(), max_size=5)),
    }


towns = st.lists(st.lists(persons(), min_size=0, max_size=4), min_size=1, max_size=40)


# --- random rules ----------------------------------------------------------------------------
@st.composite
def record_conds(draw, negate_ok=True):
    code = draw(st.sampled_from(sorted(CODES)))
    spec = CODES[code]
    values, lo, hi = (), None, None
    if spec.values and spec.value_type in ("level", "category", "arrears") and draw(st.booleans()):
        values = tuple(draw(st.lists(st.sampled_from(spec.values), min_size=1, max_size=2, unique=True)))
    if spec.value_type in ("level", "amount", "arrears") and draw(st.booleans()):
        top = len(spec.values) - 1 if spec.value_type == "level" else 100
        lo = draw(st.integers(0, top))
        hi = draw(st.none() | st.integers(lo, top))
    return Record(
        code=code,
        values=values,
        min=lo,
        max=hi,
        within_months=draw(st.sampled_from([0, 0, 3, 6])),
        negate=negate_ok and draw(st.booleans()),
    )


def person_conds(depth=2):
    leaves = st.one_of(
        st.builds(
            lambda a, b: Age(min=a, max=None if b is None else a + b),
            st.integers(0, 90),
            st.none() | st.integers(0, 40),
        ),
        st.builds(lambda b: Age(max=b), st.integers(0, 90)),
        record_conds(),
        st.builds(
            lambda v, n: Relationship(values=tuple(v), negate=n),
            st.lists(st.sampled_from(RELS), min_size=1, max_size=3, unique=True),
            st.booleans(),
        ),
        st.builds(lambda v, n: Sex(value=v, negate=n), st.sampled_from(["M", "F", "U"]), st.booleans()),
        st.builds(Foreign, value=st.booleans()),
    )
    if depth == 0:
        return leaves
    sub = person_conds(depth - 1)
    return st.one_of(
        leaves,
        st.builds(lambda xs: PAll(items=tuple(xs)), st.lists(sub, min_size=1, max_size=3)),
        st.builds(lambda xs: PAny(items=tuple(xs)), st.lists(sub, min_size=1, max_size=3)),
        st.builds(lambda x: PNot(item=x), sub),
    )


def household_conds(names: list[str], depth=2):
    leaves = st.one_of(
        st.builds(lambda i, n: Member(indicator=i, negate=n), st.sampled_from(names), st.booleans()),
        st.builds(lambda a, b: HouseholdSize(min=a, max=a + b), st.integers(0, 3), st.integers(0, 3)),
        st.builds(lambda a: SilosTouched(min=a), st.integers(1, 4)),
        st.builds(lambda r, n: DistinctValues(record=r, at_least=n), record_conds(negate_ok=False), st.integers(1, 3)),
    )
    if depth == 0:
        return leaves
    sub = household_conds(names, depth - 1)
    return st.one_of(
        leaves,
        st.builds(lambda xs: HAll(items=tuple(xs)), st.lists(sub, min_size=1, max_size=3)),
        st.builds(lambda xs: HAny(items=tuple(xs)), st.lists(sub, min_size=1, max_size=3)),
        st.builds(lambda x: HNot(item=x), sub),
    )


@st.composite
def rule_sets(draw):
    n = draw(st.integers(1, 3))
    names = [f"ind{i}" for i in range(n)]
    indicators = {name: Indicator(id=name, title=name, when=draw(person_conds())) for name in names}
    flags = {}
    for i in range(draw(st.integers(1, 3))):
        fid = f"flag{i}"
        flags[fid] = Flag(
            id=fid, title=fid, severity="medium", silos=(SILOS[0],), version=1, when=draw(household_conds(names))
        )
    body = repr(sorted((k, v.model_dump_json()) for k, v in {**indicators, **flags}.items()))
    return RuleSet(indicators=indicators, flags=flags, hash=hashlib.sha256(body.encode()).hexdigest()[:16])
