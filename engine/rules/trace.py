"""Evaluate one household's rules step by step, keeping who and which records met each condition.

Used for the evidence stored with a flag and for `engine explain`. The rule engine itself is
durable_rules (compile.py); the tests check that both agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.rules.compile import distinct_values
from engine.rules.facts import Context, Household, Person, Rec, age_on, is_foreign
from engine.rules.model import (
    Age,
    DistinctValues,
    Flag,
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
from engine.support.vocabulary import ARREARS_LABELS, CODES


@dataclass
class Trace:
    text: str  # the condition, in Japanese
    ok: bool
    members: list[str] = field(default_factory=list)
    records: list[Rec] = field(default_factory=list)
    detail: str = ""  # what was found, in Japanese
    children: list[Trace] = field(default_factory=list)

    def evidence(self) -> dict:
        out = {"condition": self.text, "met": self.ok}
        if self.members:
            out["members"] = self.members
        if self.records:
            out["records"] = [
                {"key": r.key, "code": r.code, "value": r.value, "start": r.start, "end": r.end} for r in self.records
            ]
        if self.detail:
            out["detail"] = self.detail
        if self.children:
            out["conditions"] = [c.evidence() for c in self.children]
        return out


# --- Japanese descriptions ------------------------------------------------------------------
def _labels(cond: Record, values) -> list[str]:
    """Values as a coordinator reads them: an arrears kind by its label (kokuho → 国民健康保険料)."""
    arrears = CODES[cond.code].value_type == "arrears"
    return [ARREARS_LABELS.get(v, v) if arrears else v for v in values]


def describe_record(cond: Record) -> str:
    spec = CODES[cond.code]
    parts = []
    if cond.values:
        parts.append("・".join(_labels(cond, cond.values)))
    unit = spec.unit
    if cond.min is not None:
        parts.append(f"{cond.min_label}{unit}以上")
    if cond.max is not None:
        parts.append(f"{cond.max_label}{unit}以下")
    qual = f"（{'、'.join(parts)}）" if parts else ""
    when = f"直近{cond.within_months}か月に" if cond.within_months else ""
    return f"{spec.title}{qual}の記録が{when}{'ない' if cond.negate else 'ある'}"


def describe_range(lo, hi, unit: str) -> str:
    if lo is not None and hi is not None:
        return f"{lo}〜{hi}{unit}"
    return f"{lo}{unit}以上" if lo is not None else f"{hi}{unit}以下"


def describe_person(cond) -> str:
    if isinstance(cond, Age):
        return describe_range(cond.min, cond.max, "歳")
    if isinstance(cond, Record):
        return describe_record(cond)
    if isinstance(cond, Relationship):
        return f"続柄が{'・'.join(cond.values)}{'でない' if cond.negate else ''}"
    if isinstance(cond, Sex):
        return f"性別が{cond.value}{'でない' if cond.negate else ''}"
    if isinstance(cond, Foreign):
        return "外国籍" if cond.value else "日本国籍"
    if isinstance(cond, PAll):
        return "次のすべてに当たる"
    if isinstance(cond, PAny):
        return "次のいずれかに当たる"
    return "次に当たらない"


def describe_household(cond, rules: RuleSet) -> str:
    if isinstance(cond, Member):
        title = rules.indicators[cond.indicator].title
        return f"世帯員に「{title}」が{'いない' if cond.negate else 'いる'}"
    if isinstance(cond, HouseholdSize):
        return f"世帯人数が{describe_range(cond.min, cond.max, '人')}"
    if isinstance(cond, SilosTouched):
        return f"関わっている分野の数が{describe_range(cond.min, cond.max, '')}"
    if isinstance(cond, DistinctValues):
        return f"{describe_record(cond.record).removesuffix('の記録がある')}の種類が{cond.at_least}以上"
    if isinstance(cond, HAll):
        return "次のすべてに当たる"
    if isinstance(cond, HAny):
        return "次のいずれかに当たる"
    return "次に当たらない"


def person_label(p: Person, ctx: Context) -> str:
    return f"{p.person_id}（{age_on(p.birth, ctx.iso)}歳・{p.relationship or '続柄不明'}）"


# --- evaluation -------------------------------------------------------------------------------
def eval_person(cond, p: Person, ctx: Context) -> Trace:
    text = describe_person(cond)
    if isinstance(cond, (PAll, PAny)):
        kids = [eval_person(c, p, ctx) for c in cond.items]
        ok = all(k.ok for k in kids) if isinstance(cond, PAll) else any(k.ok for k in kids)
        recs = [r for k in kids if k.ok for r in k.records]
        return Trace(text, ok, records=recs, children=kids)
    if isinstance(cond, PNot):
        kid = eval_person(cond.item, p, ctx)
        return Trace(text, not kid.ok, children=[kid])
    if isinstance(cond, Age):
        age = age_on(p.birth, ctx.iso)
        ok = (cond.min is None or age >= cond.min) and (cond.max is None or age <= cond.max)
        return Trace(text, ok, detail=f"{age}歳")
    if isinstance(cond, Record):
        found = ctx.matching(cond.atom(), p)
        if cond.negate:
            return Trace(text, not found, records=[], detail=f"該当記録 {len(found)}件" if found else "記録なし")
        return Trace(text, bool(found), records=found, detail="" if found else "記録なし")
    if isinstance(cond, Relationship):
        ok = (p.relationship in cond.values) != cond.negate
        return Trace(text, ok, detail=p.relationship or "続柄不明")
    if isinstance(cond, Sex):
        return Trace(text, (p.sex == cond.value) != cond.negate, detail=p.sex)
    if isinstance(cond, Foreign):
        return Trace(text, is_foreign(p.nationality) == cond.value)
    raise TypeError(cond)


def person_holds(cond, p: Person, ctx: Context) -> bool:
    """eval_person(cond, p, ctx).ok without the trace (no text, no records kept): which indicators
    hold for each member of each case on a night's papers (engine/participation/matching.py)."""
    if isinstance(cond, PAll):
        return all(person_holds(c, p, ctx) for c in cond.items)
    if isinstance(cond, PAny):
        return any(person_holds(c, p, ctx) for c in cond.items)
    if isinstance(cond, PNot):
        return not person_holds(cond.item, p, ctx)
    if isinstance(cond, Age):
        age = age_on(p.birth, ctx.iso)
        return (cond.min is None or age >= cond.min) and (cond.max is None or age <= cond.max)
    if isinstance(cond, Record):
        return bool(ctx.matching(cond.atom(), p)) != cond.negate
    if isinstance(cond, Relationship):
        return (p.relationship in cond.values) != cond.negate
    if isinstance(cond, Sex):
        return (p.sex == cond.value) != cond.negate
    if isinstance(cond, Foreign):
        return is_foreign(p.nationality) == cond.value
    raise TypeError(cond)


def eval_household(cond, hh: Household, ctx: Context, rules: RuleSet) -> Trace:
    text = describe_household(cond, rules)
    if isinstance(cond, (HAll, HAny)):
        kids = [eval_household(c, hh, ctx, rules) for c in cond.items]
        ok = all(k.ok for k in kids) if isinstance(cond, HAll) else any(k.ok for k in kids)
        return Trace(text, ok, children=kids)
    if isinstance(cond, HNot):
        kid = eval_household(cond.item, hh, ctx, rules)
        return Trace(text, not kid.ok, children=[kid])
    if isinstance(cond, Member):
        indicator = rules.indicators[cond.indicator].when
        per_person = [(p, eval_person(indicator, p, ctx)) for p in hh.persons]
        hits = [(p, t) for p, t in per_person if t.ok]
        ok = bool(hits) != cond.negate
        kids = [Trace(person_label(p, ctx), t.ok, children=[t]) for p, t in per_person]
        return Trace(
            text,
            ok,
            members=[p.person_id for p, _ in hits],
            records=[r for _, t in hits for r in t.records],
            detail=f"該当 {len(hits)}人" if hits else "該当者なし",
            children=kids,
        )
    if isinstance(cond, HouseholdSize):
        n = len(hh.persons)
        ok = (cond.min is None or n >= cond.min) and (cond.max is None or n <= cond.max)
        return Trace(text, ok, detail=f"{n}人")
    if isinstance(cond, SilosTouched):
        silos = ctx.active_silos(hh)
        n = len(silos)
        ok = (cond.min is None or n >= cond.min) and (cond.max is None or n <= cond.max)
        # whose records make the count: they are concerned by the flag (consent, invitations)
        found = ctx.silo_records(hh)
        return Trace(
            text,
            ok,
            members=sorted({pid for pid, _ in found}),
            records=[r for _, r in found],
            detail=f"{n}分野（{'・'.join(silos) or 'なし'}）",
        )
    if isinstance(cond, DistinctValues):
        found = distinct_values(cond, hh, ctx)
        return Trace(
            text,
            len(found) >= cond.at_least,
            members=sorted({pid for recs in found.values() for pid, _ in recs}),
            records=[r for recs in found.values() for _, r in recs],
            detail=f"{len(found)}種類（{'・'.join(_labels(cond.record, sorted(found))) or 'なし'}）",
        )
    raise TypeError(cond)


def trace_flag(flag: Flag, hh: Household, ctx: Context, rules: RuleSet) -> Trace:
    return eval_household(flag.when, hh, ctx, rules)


def evidence(flag: Flag, hh: Household, ctx: Context, rules: RuleSet) -> dict:
    """What is stored with a flag: rule, version, date, members, and records per condition."""
    t = trace_flag(flag, hh, ctx, rules)
    members = sorted(set(_met_members(t)))
    return {
        "rule_id": flag.id,
        "rule_version": flag.version,
        "screened_on": ctx.iso,
        "members": members,
        "trace": t.evidence(),
    }


def _met_members(t: Trace):
    """Members named by conditions on a path of met conditions only."""
    if not t.ok:
        return
    yield from t.members
    for c in t.children:
        yield from _met_members(c)
