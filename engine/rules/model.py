"""The parsed rule language: person conditions, household conditions, indicators and flags.

Coordinators write YAML (see configs/rules/ and docs/rules.md); engine.rules.loader turns it
into these models after checking every name. Two levels:
- an *indicator* is a named condition on one person (``withdrawn_adult``);
- a *flag* is a condition on a household, combining indicators across its members (``8050``).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict

from engine.support.vocabulary import SEVERITY_JA  # noqa: F401  (a severity as read; kept with the other names)

Severity = Literal["low", "medium", "high", "urgent"]
FOREIGN_EXCLUDED = ("日本", "日本国", "JP", "JPN", "")


class _Node(BaseModel):
    model_config = ConfigDict(frozen=True)


# --- person conditions -------------------------------------------------------------------
class Age(_Node):
    kind: Literal["age"] = "age"
    min: int | None = None
    max: int | None = None


class Record(_Node):
    """A person has (or, with negate, has no) record matching code/value/min/max/within."""

    kind: Literal["record"] = "record"
    code: str
    values: tuple[str, ...] = ()
    min: int | None = None  # level rank, amount, or arrears months
    max: int | None = None
    min_label: str | None = None  # as written (要介護1), for explanations
    max_label: str | None = None
    within_months: int = 0  # 0 = active on the screening date
    negate: bool = False

    def atom(self) -> Record:
        """The same test without negation: what a feature counts."""
        return self.model_copy(update={"negate": False}) if self.negate else self


class Relationship(_Node):
    kind: Literal["relationship"] = "relationship"
    values: tuple[str, ...]
    negate: bool = False


class Sex(_Node):
    kind: Literal["sex"] = "sex"
    value: Literal["M", "F", "U"]
    negate: bool = False


class Foreign(_Node):
    kind: Literal["foreign_national"] = "foreign_national"
    value: bool = True


class PAll(_Node):
    kind: Literal["all"] = "all"
    items: tuple[PersonCond, ...]


class PAny(_Node):
    kind: Literal["any"] = "any"
    items: tuple[PersonCond, ...]


class PNot(_Node):
    kind: Literal["not"] = "not"
    item: PersonCond


PersonCond = Age | Record | Relationship | Sex | Foreign | PAll | PAny | PNot


# --- household conditions ----------------------------------------------------------------
class Member(_Node):
    """Some member satisfies the indicator (negate: no member does)."""

    kind: Literal["member"] = "member"
    indicator: str
    negate: bool = False


class HouseholdSize(_Node):
    kind: Literal["household_size"] = "household_size"
    min: int | None = None
    max: int | None = None


class SilosTouched(_Node):
    kind: Literal["silos_touched"] = "silos_touched"
    min: int | None = None
    max: int | None = None


class DistinctValues(_Node):
    """At least `at_least` different values among the household's records matching `record`."""

    kind: Literal["distinct_values"] = "distinct_values"
    record: Record
    at_least: int


class HAll(_Node):
    kind: Literal["all"] = "all"
    items: tuple[HouseholdCond, ...]


class HAny(_Node):
    kind: Literal["any"] = "any"
    items: tuple[HouseholdCond, ...]


class HNot(_Node):
    kind: Literal["not"] = "not"
    item: HouseholdCond


HouseholdCond = Member | HouseholdSize | SilosTouched | DistinctValues | HAll | HAny | HNot

for _m in (PAll, PAny, PNot, HAll, HAny, HNot):
    _m.model_rebuild()


def leaves(cond):
    """Every leaf condition below `cond` (person or household); a DistinctValues yields its record."""
    if isinstance(cond, (PAll, PAny, HAll, HAny)):
        for item in cond.items:
            yield from leaves(item)
    elif isinstance(cond, (PNot, HNot)):
        yield from leaves(cond.item)
    elif isinstance(cond, DistinctValues):
        yield cond.record
    else:
        yield cond


class Indicator(BaseModel):
    id: str
    title: str
    when: PersonCond
    description: str = ""
    file: str = ""
    line: int = 0


class Flag(BaseModel):
    id: str
    title: str
    severity: Severity
    silos: tuple[str, ...]
    version: int
    when: HouseholdCond
    description: str = ""
    pattern: int | None = None
    effective_from: date | None = None  # this version is in force from this screening date on
    file: str = ""
    line: int = 0

    @property
    def version_text(self) -> str:
        """第2版（2027-04-01から）, as explanations and the history name a version."""
        return f"第{self.version}版" + (f"（{self.effective_from.isoformat()}から）" if self.effective_from else "")


class RuleSet(BaseModel):
    indicators: dict[str, Indicator]
    flags: dict[str, Flag]  # per id, its newest version (the one with the latest effective_from)
    hash: str  # changes whenever any rule's meaning or version changes
    # every version of each flag that has an effective_from (oldest first); a flag written once
    # without one is not here. A screen uses the versions in force on its date: in_force(on).
    versions: dict[str, tuple[Flag, ...]] = {}

    def flag_list(self) -> list[Flag]:
        return list(self.flags.values())

    def versions_note(self, flag_ids) -> str:
        """（multiple_arrears 第2版（2027-04-01から））: the version of each flag that has dated
        versions, so that the history names the rule a case was opened under; empty otherwise."""
        dated = [
            f"{f} {self.flags[f].version_text}" for f in sorted(flag_ids) if f in self.versions and f in self.flags
        ]
        return f"（{'、'.join(dated)}）" if dated else ""

    def in_force(self, on: date) -> RuleSet:
        """The rules as they apply on `on`: for each flag the latest version whose effective_from is
        on or before it (a flag whose first version starts later is left out). Without effective
        dates the rule set itself, hash and all."""
        if not self.versions:
            return self
        flags = {}
        for flag_id, newest in self.flags.items():
            started = [
                v for v in self.versions.get(flag_id, (newest,)) if not v.effective_from or v.effective_from <= on
            ]
            if started:
                flags[flag_id] = started[-1]
        return RuleSet(
            indicators=self.indicators, flags=flags, versions=self.versions, hash=ruleset_hash(self.indicators, flags)
        )


def ruleset_hash(indicators: dict[str, Indicator], flags: dict[str, Flag], versions: dict | None = None) -> str:
    """The hash of what the rules mean (file and line excluded); `versions` (every dated version)
    only when there are some, so that a rule set without effective dates keeps its hash."""
    import hashlib
    import json

    canonical = {
        "i": {k: v.model_dump(exclude={"file", "line"}) for k, v in sorted(indicators.items())},
        "f": {
            k: v.model_dump(exclude={"file", "line", "effective_from"}) | _dated(v) for k, v in sorted(flags.items())
        },
    }
    if versions:
        canonical["v"] = {k: [v.model_dump(exclude={"file", "line"}) for v in vs] for k, vs in sorted(versions.items())}
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _dated(flag: Flag) -> dict:
    return {"effective_from": flag.effective_from.isoformat()} if flag.effective_from else {}
